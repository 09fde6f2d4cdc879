"""asyncio's queues (Queue, PriorityQueue, LifoQueue), written for the
kernel.

Stock asyncio's behaviour on the running interpreter (``shutdown()`` and
:exc:`~asyncio.QueueShutDown` on 3.13+ only), with the blocked getters and
putters parked on the same light waiters as the locks (see ``_locks``), so a
queue can connect compat tasks and plain nursery tasks of one run. The
subclass hooks are asyncio's: ``_init(maxsize)``, ``_put(item)``, ``_get()``
and the ``_queue`` attribute.
"""

from __future__ import annotations

import collections
import heapq
import sys
from types import GenericAlias
from typing import Any

from ._exceptions import QueueEmpty, QueueFull
from ._locks import Event, _LoopBound, _Waiter

__all__ = ["Queue", "PriorityQueue", "LifoQueue"]

_PY313 = sys.version_info >= (3, 13)
if _PY313:
    from ._exceptions import QueueShutDown


class Queue(_LoopBound):
    """asyncio's FIFO queue (:class:`asyncio.Queue`). With *maxsize* > 0,
    ``put()`` waits while the queue holds *maxsize* items; ``get()`` waits
    while it is empty. Waiters are served in FIFO order. ``put_nowait()``
    and ``get_nowait()`` raise :exc:`asyncio.QueueFull` and
    :exc:`asyncio.QueueEmpty` instead of waiting."""

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        self._getters: collections.deque[_Waiter] = collections.deque()
        self._putters: collections.deque[_Waiter] = collections.deque()
        self._unfinished_tasks = 0
        self._finished = Event()
        self._finished.set()
        self._init(maxsize)
        self._is_shutdown = False

    # The hooks subclasses override.
    def _init(self, maxsize: int) -> None:
        self._queue: Any = collections.deque()

    def _get(self) -> Any:
        return self._queue.popleft()

    def _put(self, item: Any) -> None:
        self._queue.append(item)

    def _wakeup_next(self, waiters: collections.deque[Any]) -> None:
        # Wake the first waiter still waiting; the ones before it (done or
        # cancelled) leave the line on the way. (The lines hold _Waiters,
        # spoken to in asyncio's Future terms, so that a Future put there by
        # other code is woken too.)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    __class_getitem__ = classmethod(GenericAlias)

    def _format(self) -> str:
        text = f"maxsize={self._maxsize!r}"
        if getattr(self, "_queue", None):
            text += f" _queue={list(self._queue)!r}"
        if self._getters:
            text += f" _getters[{len(self._getters)}]"
        if self._putters:
            text += f" _putters[{len(self._putters)}]"
        if self._unfinished_tasks:
            text += f" tasks={self._unfinished_tasks}"
        if _PY313 and self._is_shutdown:
            text += " shutdown"
        return text

    def qsize(self) -> int:
        """The number of items in the queue."""
        return len(self._queue)

    @property
    def maxsize(self) -> int:
        """The capacity given at creation (0 or less: unbounded)."""
        return self._maxsize

    def empty(self) -> bool:
        return not self._queue

    def full(self) -> bool:
        """Whether the queue holds *maxsize* items (never, if unbounded)."""
        if self._maxsize <= 0:
            return False
        return self.qsize() >= self._maxsize

    # Hot path (put and get): Benchmark: pingpong.
    async def put(self, item: Any) -> None:
        """Put *item* in the queue, waiting while it is full. Not a
        checkpoint if there is room."""
        while self.full():
            if self._is_shutdown:
                raise QueueShutDown
            self._check_loop()
            putter = _Waiter()
            putters = self._putters
            putters.append(putter)
            try:
                await putter.wait()
            except BaseException:
                putter.cancel()
                try:
                    putters.remove(putter)
                except ValueError:
                    pass  # a get_nowait() took it out of the line already
                # Woken for a free slot we won't use: pass it on.
                if not self.full() and not putter.cancelled():
                    self._wakeup_next(putters)
                raise
        return self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """Put *item* in the queue, or raise :exc:`asyncio.QueueFull`."""
        if self._is_shutdown:
            raise QueueShutDown
        if self.full():
            raise QueueFull
        self._put(item)
        self._unfinished_tasks += 1
        self._finished.clear()
        self._wakeup_next(self._getters)

    async def get(self) -> Any:
        """Remove and return the next item, waiting while the queue is
        empty. Not a checkpoint if there is an item."""
        while self.empty():
            if self._is_shutdown and self.empty():
                raise QueueShutDown
            self._check_loop()
            getter = _Waiter()
            getters = self._getters
            getters.append(getter)
            try:
                await getter.wait()
            except BaseException:
                getter.cancel()
                try:
                    getters.remove(getter)
                except ValueError:
                    pass  # a put_nowait() took it out of the line already
                # Woken for an item we won't take: pass it on.
                if not self.empty() and not getter.cancelled():
                    self._wakeup_next(getters)
                raise
        return self.get_nowait()

    def get_nowait(self) -> Any:
        """Remove and return the next item, or raise
        :exc:`asyncio.QueueEmpty`."""
        if self.empty():
            if self._is_shutdown:
                raise QueueShutDown
            raise QueueEmpty
        item = self._get()
        self._wakeup_next(self._putters)
        return item

    def task_done(self) -> None:
        """Mark one item taken with ``get()`` as processed (for
        ``join()``)."""
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been marked with ``task_done()``."""
        if self._unfinished_tasks > 0:
            await self._finished.wait()

    if _PY313:

        def shutdown(self, immediate: bool = False) -> None:
            """Shut the queue down (3.13+): ``put()`` raises
            :exc:`asyncio.QueueShutDown`, and so does ``get()`` once the queue
            is empty; with *immediate*, the queue is emptied now (the items
            count as done for ``join()``). Blocked callers wake up."""
            self._is_shutdown = True
            if immediate:
                while not self.empty():
                    self._get()
                    if self._unfinished_tasks > 0:
                        self._unfinished_tasks -= 1
                if self._unfinished_tasks == 0:
                    self._finished.set()
            for waiters in (self._getters, self._putters):
                while waiters:
                    waiter = waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(None)


class PriorityQueue(Queue):
    """A :class:`Queue` that returns the smallest item first (a heap, as
    :class:`asyncio.PriorityQueue`)."""

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: Any, heappush: Any = heapq.heappush) -> None:
        heappush(self._queue, item)

    def _get(self, heappop: Any = heapq.heappop) -> Any:
        return heappop(self._queue)


class LifoQueue(Queue):
    """A :class:`Queue` that returns the most recently added item first."""

    def _init(self, maxsize: int) -> None:
        self._queue = []

    def _put(self, item: Any) -> None:
        self._queue.append(item)

    def _get(self) -> Any:
        return self._queue.pop()

"""asyncio.as_completed on the compat loop.

Up to 3.12 it is a generator of coroutines, each returning (or raising) the
outcome of the next future to finish. 3.13 returns an object that is both
that iterator and an asynchronous iterator yielding the futures themselves
(the tasks passed in, so they can be told apart).
"""

from __future__ import annotations

import inspect
import sys
from asyncio import coroutines, events
from collections import deque
from typing import Any, AsyncIterator, Iterator

from ._as_future import as_future, is_future

__all__ = ["as_completed"]

_PY313 = sys.version_info >= (3, 13)


class _Finished:
    # The futures in the order they finished (None for "timed out"), with
    # waiters for the next one: a minimal FIFO queue of the loop.

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._getters: deque[Any] = deque()

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        while not self._items:
            getter = self._loop.create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                try:
                    self._getters.remove(getter)
                except ValueError:
                    pass
                if self._items and not getter.cancelled():
                    # We were woken for an item we will not take.
                    self._wake_one()
                raise
        return self._items.popleft()


class _Completion:
    # The shared state of one as_completed() call.

    def __init__(self, aws: Any, timeout: float | None) -> None:
        loop = events.get_event_loop()
        self._finished = _Finished(loop)
        self._timer = None
        todo = {as_future(aw, loop) for aw in set(aws)}
        for f in todo:
            f.add_done_callback(self._one_done)
        if todo and timeout is not None:
            self._timer = loop.call_later(timeout, self._timed_out)
        self._todo = todo
        self.left = len(todo)

    def _timed_out(self) -> None:
        for f in self._todo:
            f.remove_done_callback(self._one_done)
            self._finished.put(None)
        self._todo.clear()

    def _one_done(self, f: Any) -> None:
        if not self._todo:
            return  # timed out already
        self._todo.remove(f)
        self._finished.put(f)
        if not self._todo and self._timer is not None:
            self._timer.cancel()

    async def next_future(self) -> Any:
        f = await self._finished.get()
        if f is None:
            raise TimeoutError
        return f

    async def next_result(self) -> Any:
        return (await self.next_future()).result()


class _AsCompletedIterator:
    # 3.13's as_completed() object.

    def __init__(self, aws: Any, timeout: float | None) -> None:
        self._completion = _Completion(aws, timeout)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        completion = self._completion
        if not completion.left:
            raise StopIteration
        completion.left -= 1
        return completion.next_result()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        completion = self._completion
        if not completion.left:
            raise StopAsyncIteration
        completion.left -= 1
        return await completion.next_future()


if _PY313:

    def as_completed(fs: Any, *, timeout: float | None = None) -> Any:
        """Iterate over the awaitables in *fs* in the order they finish
        (``asyncio.as_completed``). ``for aw in as_completed(fs)`` yields
        awaitables that return (or raise) the next outcome; ``async for t
        in as_completed(fs)`` yields the futures and tasks themselves (tasks
        made for bare coroutines). After *timeout* seconds the next one
        raises :exc:`TimeoutError`."""
        if inspect.isawaitable(fs):
            raise TypeError(f"expects an iterable of awaitables, not {type(fs).__name__}")
        return _AsCompletedIterator(fs, timeout)

else:

    def as_completed(fs: Any, *, timeout: float | None = None) -> Iterator[Any]:
        """Iterate over the awaitables in *fs* in the order they finish
        (``asyncio.as_completed``): each item is a coroutine that returns
        (or raises) the next outcome. After *timeout* seconds the next one
        raises :exc:`TimeoutError`. (A generator: the arguments are checked
        on the first iteration.)"""
        if is_future(fs) or coroutines.iscoroutine(fs):
            raise TypeError(f"expect an iterable of futures, not {type(fs).__name__}")
        completion = _Completion(fs, timeout)
        for _ in range(completion.left):
            yield completion.next_result()

"""Memory channels: a queue of Python objects between tasks of one run, with
a send side and a receive side that can each be cloned and closed.

The state every clone of one channel shares is a ``_ChannelState``: the
buffer, how many clones of each side are open, and the two FIFO queues of
blocked tasks. The invariants that make hand-off simple:

* tasks wait to receive only while the buffer is empty, and wait to send
  only while it is full (for ``max_buffer_size == 0``: always "full"), so at
  most one of the two queues is non-empty;
* a blocked task is in exactly one queue, and only while it is blocked:
  whoever wakes it (a hand-off, a close) removes it first, and a
  cancellation removes it in the abort function, before it runs again. So a
  task woken with a value has that value, and a cancelled task took or gave
  nothing.
"""

from __future__ import annotations

import math
import types
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator, Generic, Self, TypeVar

from ._core import (
    STATE,
    Abort,
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
    checkpoint,
    no_run_error,
)
# The kernel's cancel-shielded schedule point, yielded directly: going
# through lowlevel.cancel_shielded_checkpoint() (a generator per call) made
# the pingpong benchmark 20% slower.
from ._core._traps import _SHIELDED

__all__ = [
    "open_memory_channel",
    "MemorySendChannel",
    "MemoryReceiveChannel",
    "MemoryChannelStatistics",
]

T = TypeVar("T")

_ABORT_SUCCEEDED = Abort.SUCCEEDED


@dataclass(frozen=True)
class MemoryChannelStatistics:
    """A snapshot of a memory channel, the same from every clone of either
    side: ``current_buffer_used`` items are buffered out of
    ``max_buffer_size``; ``open_send_channels`` and ``open_receive_channels``
    count the clones not yet closed; ``tasks_waiting_send`` and
    ``tasks_waiting_receive`` count the tasks blocked in ``send()`` and
    ``receive()``."""

    current_buffer_used: int
    max_buffer_size: int | float
    open_send_channels: int
    open_receive_channels: int
    tasks_waiting_send: int
    tasks_waiting_receive: int


class _ChannelState(Generic[T]):
    __slots__ = (
        "max_buffer_size",
        "data",
        "open_send_channels",
        "open_receive_channels",
        "send_tasks",
        "receive_tasks",
    )

    def __init__(self, max_buffer_size: int | float) -> None:
        self.max_buffer_size = max_buffer_size
        self.data: deque[T] = deque()
        self.open_send_channels = 1
        self.open_receive_channels = 1
        # Blocked tasks, oldest first (insertion-ordered dicts: FIFO with
        # O(1) removal of a cancelled task from the middle). A sender maps to
        # the value it is sending. While blocked, a task's custom_sleep_data
        # is the clone it is blocked in, for closing that clone.
        self.send_tasks: dict[Any, T] = {}
        self.receive_tasks: dict[Any, None] = {}

    def statistics(self) -> MemoryChannelStatistics:
        return MemoryChannelStatistics(
            current_buffer_used=len(self.data),
            max_buffer_size=self.max_buffer_size,
            open_send_channels=self.open_send_channels,
            open_receive_channels=self.open_receive_channels,
            tasks_waiting_send=len(self.send_tasks),
            tasks_waiting_receive=len(self.receive_tasks),
        )


def _leave_queue(queue: dict[Any, Any], task: Any) -> Callable[[Any], Abort]:
    # The abort function of a blocked send or receive. Made here, not in the
    # send/receive generators: a closure there would make those generators
    # allocate cells on every call, including the non-blocking fast path.
    def abort(raise_cancel: Any) -> Abort:
        del queue[task]
        task.custom_sleep_data = None
        return _ABORT_SUCCEEDED

    return abort


def _wake_clone_tasks(queue: dict[Any, Any], clone: Any, exc_factory: Callable[[], BaseException]) -> None:
    # Wake, with a fresh exception each, the tasks in *queue* blocked in *clone*.
    for task in [task for task in queue if task.custom_sleep_data is clone]:
        del queue[task]
        task.custom_sleep_data = None
        task._runner.reschedule_exc(task, exc_factory())


def _wake_all(queue: dict[Any, Any], exc_factory: Callable[[], BaseException]) -> None:
    tasks = list(queue)
    queue.clear()
    for task in tasks:
        task.custom_sleep_data = None
        task._runner.reschedule_exc(task, exc_factory())


def _no_receivers(what: str) -> BrokenResourceError:
    return BrokenResourceError(f"{what}: every receive channel of this memory channel is closed, so nobody can receive")


class _ChannelEnd(Generic[T]):
    """What both ends of a memory channel share: how they are made, closing
    as a context manager, and statistics. Subclasses define ``close()``."""

    __slots__ = ("_state", "_closed")

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError(f"{type(self).__name__} objects are made by nursery.open_memory_channel(), not directly")

    @classmethod
    def _create(cls, state: _ChannelState[T]) -> Self:
        self = object.__new__(cls)
        self._state = state
        self._closed = False
        return self

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close this channel (see :meth:`close`), then checkpoint."""
        self.close()
        await checkpoint()

    def statistics(self) -> MemoryChannelStatistics:
        """A :class:`MemoryChannelStatistics` snapshot of the channel."""
        return self._state.statistics()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return f"<{type(self).__name__} at {id(self):#x}{closed}, state {id(self._state):#x}>"


class MemorySendChannel(_ChannelEnd[T]):
    """The send side of a memory channel, made by :func:`open_memory_channel`
    or :meth:`clone`. Use it as ``async with`` or ``with`` to close it when
    the block ends."""

    __slots__ = ()

    def send_nowait(self, value: T) -> None:
        """Send *value* without blocking: hand it to a task waiting in
        :meth:`~MemoryReceiveChannel.receive` (the longest-waiting one), or
        else put it in the buffer; raise :exc:`WouldBlock` if the buffer is
        full. Raises :exc:`ClosedResourceError` if this channel is closed and
        :exc:`BrokenResourceError` if every receive channel is."""
        if self._closed:
            raise ClosedResourceError("send_nowait() on a closed MemorySendChannel")
        state = self._state
        if not state.open_receive_channels:
            raise _no_receivers("send_nowait()")
        receivers = state.receive_tasks
        if receivers:
            task = next(iter(receivers))
            del receivers[task]
            task.custom_sleep_data = None
            task._runner.reschedule(task, value)
        elif len(state.data) < state.max_buffer_size:
            state.data.append(value)
        else:
            raise WouldBlock

    # Hot path (benchmark: pingpong). A generator rather than an async def,
    # so that a blocked sender carries one frame, not two; the fast path does
    # the work of send_nowait inline, and the abort closure is only made when
    # the task blocks.
    @types.coroutine
    def send(self, value: T) -> Generator[Any, Any, None]:
        """``await channel.send(value)``: send *value*, waiting while the
        buffer is full (with ``max_buffer_size=0``: until a task receives
        it). Blocked senders are served in the order they arrived.

        A checkpoint, cancellation-safe: if it raises :exc:`Cancelled`, the
        value was not sent; if it returns, it was. Raises
        :exc:`ClosedResourceError` if this channel is closed (also when it is
        closed while we wait), and :exc:`BrokenResourceError` if every
        receive channel is closed (also while we wait). These errors are
        raised after the check for cancellation, without yielding to other
        tasks first.
        """
        runner = STATE.runner
        if runner is None:
            raise no_run_error("MemorySendChannel.send()")
        task = runner.current_task
        if task._cancel_scope._effectively_cancelled:
            yield  # a checkpoint in a cancelled scope: raises Cancelled
        if self._closed:
            raise ClosedResourceError("send() on a closed MemorySendChannel")
        state = self._state
        if not state.open_receive_channels:
            raise _no_receivers("send()")
        receivers = state.receive_tasks
        if receivers:
            # Direct hand-off to the longest-waiting receiver.
            receiver = next(iter(receivers))
            del receivers[receiver]
            receiver.custom_sleep_data = None
            runner.reschedule(receiver, value)
        elif len(state.data) < state.max_buffer_size:
            state.data.append(value)
        else:
            state.send_tasks[task] = value
            task.custom_sleep_data = self
            return (yield _leave_queue(state.send_tasks, task))
        # Sent: now a schedule point that cannot raise Cancelled, since the
        # value is gone.
        yield _SHIELDED

    def clone(self) -> MemorySendChannel[T]:
        """Return a new send channel for the same channel. The receive side
        sees the end of the channel only once every clone is closed. Raises
        :exc:`ClosedResourceError` if this channel is closed."""
        if self._closed:
            raise ClosedResourceError("clone() of a closed MemorySendChannel")
        self._state.open_send_channels += 1
        return MemorySendChannel._create(self._state)

    def close(self) -> None:
        """Close this send channel. Tasks blocked in its :meth:`send` get
        :exc:`ClosedResourceError`. Once every clone is closed, receivers
        get :exc:`EndOfChannel` after the buffered values. Closing twice does
        nothing. Not a checkpoint."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state.send_tasks:
            _wake_clone_tasks(
                state.send_tasks,
                self,
                lambda: ClosedResourceError("the MemorySendChannel was closed while send() was waiting on it"),
            )
        state.open_send_channels -= 1
        if not state.open_send_channels:
            _wake_all(state.receive_tasks, lambda: EndOfChannel("every send channel was closed"))


class MemoryReceiveChannel(_ChannelEnd[T]):
    """The receive side of a memory channel, made by
    :func:`open_memory_channel` or :meth:`clone`. ``async for value in
    channel`` receives until the end of the channel. Use it as ``async with``
    or ``with`` to close it when the block ends."""

    __slots__ = ()

    def receive_nowait(self) -> T:
        """Return the next value without blocking: the oldest buffered one,
        or the value of the longest-waiting sender. Raises :exc:`WouldBlock`
        if there is none, :exc:`EndOfChannel` if there is none and every
        send channel is closed, and :exc:`ClosedResourceError` if this
        channel is closed."""
        if self._closed:
            raise ClosedResourceError("receive_nowait() on a closed MemoryReceiveChannel")
        state = self._state
        senders = state.send_tasks
        if senders:
            sender = next(iter(senders))
            value = senders.pop(sender)
            sender.custom_sleep_data = None
            sender._runner.reschedule(sender)
            data = state.data
            if data:
                # The buffer is full: the sender's value goes to its end.
                data.append(value)
                return data.popleft()
            return value
        if state.data:
            return state.data.popleft()
        if not state.open_send_channels:
            raise EndOfChannel("every send channel is closed and the buffer is empty")
        raise WouldBlock

    # Hot path (benchmark: pingpong); written like MemorySendChannel.send.
    @types.coroutine
    def receive(self) -> Generator[Any, Any, T]:
        """``await channel.receive()``: return the next value, waiting until
        there is one. Blocked receivers are served in the order they
        arrived.

        A checkpoint, cancellation-safe: if it raises :exc:`Cancelled`, no
        value was taken. Raises :exc:`EndOfChannel` once every send channel
        is closed and the buffer is empty (also when that happens while we
        wait), and :exc:`ClosedResourceError` if this channel is closed (also
        while we wait). These errors are raised after the check for
        cancellation, without yielding to other tasks first.
        """
        runner = STATE.runner
        if runner is None:
            raise no_run_error("MemoryReceiveChannel.receive()")
        task = runner.current_task
        if task._cancel_scope._effectively_cancelled:
            yield  # a checkpoint in a cancelled scope: raises Cancelled
        if self._closed:
            raise ClosedResourceError("receive() on a closed MemoryReceiveChannel")
        state = self._state
        data = state.data
        senders = state.send_tasks
        if senders:
            sender = next(iter(senders))
            value = senders.pop(sender)
            sender.custom_sleep_data = None
            runner.reschedule(sender)
            if data:
                data.append(value)
                value = data.popleft()
        elif data:
            value = data.popleft()
        elif not state.open_send_channels:
            raise EndOfChannel("every send channel is closed and the buffer is empty")
        else:
            state.receive_tasks[task] = None
            task.custom_sleep_data = self
            return (yield _leave_queue(state.receive_tasks, task))
        # Taken: a schedule point that cannot raise Cancelled, since the
        # value would be lost.
        yield _SHIELDED
        return value

    def clone(self) -> MemoryReceiveChannel[T]:
        """Return a new receive channel for the same channel; each value
        goes to exactly one of the clones. Senders see
        :exc:`BrokenResourceError` only once every clone is closed. Raises
        :exc:`ClosedResourceError` if this channel is closed."""
        if self._closed:
            raise ClosedResourceError("clone() of a closed MemoryReceiveChannel")
        self._state.open_receive_channels += 1
        return MemoryReceiveChannel._create(self._state)

    def close(self) -> None:
        """Close this receive channel. Tasks blocked in its :meth:`receive`
        get :exc:`ClosedResourceError`. Once every clone is closed, senders
        (blocked or not) get :exc:`BrokenResourceError`, and buffered values
        are dropped. Closing twice does nothing. Not a checkpoint."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state.receive_tasks:
            _wake_clone_tasks(
                state.receive_tasks,
                self,
                lambda: ClosedResourceError("the MemoryReceiveChannel was closed while receive() was waiting on it"),
            )
        state.open_receive_channels -= 1
        if not state.open_receive_channels:
            _wake_all(state.send_tasks, lambda: _no_receivers("send()"))
            state.data.clear()

    def __aiter__(self) -> MemoryReceiveChannel[T]:
        return self

    @types.coroutine
    def __anext__(self) -> Generator[Any, Any, T]:
        try:
            return (yield from self.receive())
        except EndOfChannel:
            raise StopAsyncIteration from None


def open_memory_channel(
    max_buffer_size: int | float,
) -> tuple[MemorySendChannel[Any], MemoryReceiveChannel[Any]]:
    """Open a channel for passing Python objects between tasks of one run;
    return ``(send_channel, receive_channel)``.

    *max_buffer_size* is how many values may wait in the channel: ``0``
    makes every send wait until a task receives the value (a rendezvous),
    ``N`` lets senders run up to N values ahead of receivers, and
    ``math.inf`` never blocks senders. Raises :exc:`TypeError` for anything
    but a non-bool int or ``math.inf``, and :exc:`ValueError` for a negative
    size or NaN. Not a checkpoint; callable outside a run.

    To type the values, annotate the variables:
    ``send: MemorySendChannel[int]; receive: MemoryReceiveChannel[int]``.
    """
    if isinstance(max_buffer_size, bool) or not isinstance(max_buffer_size, (int, float)):
        raise TypeError(
            f"open_memory_channel(): max_buffer_size must be an int or math.inf, got {max_buffer_size!r}"
        )
    if math.isnan(max_buffer_size):
        raise ValueError("open_memory_channel(): max_buffer_size must not be NaN")
    if max_buffer_size < 0:
        raise ValueError(f"open_memory_channel(): max_buffer_size must be >= 0, got {max_buffer_size!r}")
    if isinstance(max_buffer_size, float) and max_buffer_size != math.inf:
        raise TypeError(
            f"open_memory_channel(): max_buffer_size must be an int or math.inf, got {max_buffer_size!r}"
        )
    state: _ChannelState[Any] = _ChannelState(max_buffer_size)
    return MemorySendChannel._create(state), MemoryReceiveChannel._create(state)

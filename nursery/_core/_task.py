"""Tasks: a coroutine, the context it runs in, and its place in the tree."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from types import FrameType
    from ._nursery import Nursery

from ._exceptions import Cancelled, _asyncio_cancelled
from ._traps import Abort

__all__ = ["Task"]

_ABORT_SUCCEEDED = Abort.SUCCEEDED

# asyncio 3.13 made uncancel() to zero withdraw a cancellation not yet
# delivered (its Task._must_cancel); 3.11 and 3.12 keep it.
_UNCANCEL_WITHDRAWS = sys.version_info >= (3, 13)


def _name_of(fn: Any) -> str:
    # The name is computed on first use, not at spawn: spawning 10,000 tasks
    # should not format 10,000 strings nobody reads.
    while hasattr(fn, "func"):  # functools.partial and friends
        fn = fn.func
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if qualname is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


class Task:
    """A task in a run. You never create one yourself; the kernel does,
    when a nursery starts a function. Compare them by identity.
    """

    __slots__ = (
        "_name",
        "coro",
        "context",
        "_runner",
        "_parent_nursery",
        "_eventual_parent_nursery",
        "_child_nurseries",
        "_cancel_scope",
        "_send_value",
        "_throw_exc",
        "_abort_func",
        "_coro_send",
        "custom_sleep_data",
        "_cancel_requests",
        "__weakref__",
    )

    def __init__(self, coro, context, runner, parent_nursery, name) -> None:
        # (KernelRun.spawn_detached sets these same fields inline, for the
        # compat loop's tasks: a field added here goes there too.)
        self._name = name
        #: The coroutine object this task runs.
        self.coro = coro
        #: The :class:`contextvars.Context` the task runs in.
        self.context = context
        self._runner = runner
        self._parent_nursery = parent_nursery
        self._eventual_parent_nursery = None
        # The shared empty tuple until the task opens a nursery: most tasks
        # never do, and a list each would cost 56 bytes (benchmark: memory).
        self._child_nurseries: list[Nursery] | tuple[()] = ()
        # The innermost cancel scope the task is in; it starts in its
        # nursery's scope (the root task's is set by the runner).
        self._cancel_scope = None if parent_nursery is None else parent_nursery._cancel_scope
        self._send_value = None
        self._throw_exc: BaseException | None = None
        # Not None exactly while the task is blocked in wait_task_rescheduled.
        self._abort_func = None
        # Bound once here: a task step passes it to context.run(), and a
        # bound method made per step would cost an allocation each time
        # (benchmarks: switch, pingpong). Only send: each bound method costs
        # 72 bytes per task (benchmark: memory), and throw is rare.
        self._coro_send = coro.send
        #: Free for whatever code blocks the task to record why.
        self.custom_sleep_data: Any = None
        # asyncio's cancelling() count (see cancel()).
        self._cancel_requests = 0

    def _exited(self, value: Any, error: BaseException | None) -> BaseException | None:
        """Called by the kernel when the coroutine has returned *value* or
        raised *error*; returns the error the task's nursery should see.
        A subclass may record the outcome and return None, so the error is
        not raised into the nursery (asyncio's tasks keep theirs)."""
        return error

    def _leave_parking_lot(self, raise_cancel: Any) -> Any:
        # The abort function of a task parked in a ParkingLot (which records
        # itself in custom_sleep_data, and updates it on repark).
        del self.custom_sleep_data._parked[self]
        return _ABORT_SUCCEEDED

    @property
    def name(self) -> str:
        """The task's name: the one given to ``start_soon``/``start``, or the
        qualified name of its function."""
        name = self._name
        if name.__class__ is not str:
            self._name = name = _name_of(name)
        return name

    @property
    def parent_nursery(self) -> Nursery | None:
        """The nursery this task runs in (None for the root task)."""
        return self._parent_nursery

    @property
    def eventual_parent_nursery(self) -> Nursery | None:
        """For a task being started with ``Nursery.start``, the nursery it
        moves to once it calls ``task_status.started()``; otherwise None."""
        return self._eventual_parent_nursery

    @property
    def child_nurseries(self) -> list[Nursery]:
        """The nurseries currently open in this task, outermost first."""
        return list(self._child_nurseries)

    def iter_await_frames(self) -> Iterator[tuple[FrameType, int]]:
        """Yield ``(frame, lineno)`` for each coroutine this task is currently
        suspended in, outermost first."""
        coro: Any = self.coro
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                return
            yield frame, frame.f_lineno
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)

    # ------------------------------------------------------------------
    # asyncio's view of a task.
    #
    # asyncio code running inside any kernel task (asyncio.timeout,
    # TaskGroup, anyio, ...) finds the task with asyncio.current_task() and
    # cancels it asyncio's way: edge-triggered, one CancelledError at the
    # next suspension, counted by cancelling()/uncancel(). Cancel scopes are
    # a separate, level-triggered mechanism; the two never interfere except
    # that both unwind the task.

    def cancel(self, msg: Any = None) -> bool:
        """Request asyncio-style cancellation: one :exc:`asyncio.CancelledError`
        (with *msg*) is thrown into the task at its next suspension point (at
        once, if it is blocked now). Returns False if the task has finished.
        This is what ``asyncio.Task.cancel()`` does; nursery code normally
        cancels with a :class:`nursery.CancelScope` instead."""
        if self._coro_send is None:
            return False
        self._cancel_requests += 1
        self._runner.cancel_edge(self, _asyncio_cancelled(msg))
        return True

    def done(self) -> bool:
        """Whether the task has finished."""
        return self._coro_send is None

    def cancelling(self) -> int:
        """How many asyncio-style cancellations are pending (requested by
        :meth:`cancel` and not yet withdrawn by :meth:`uncancel`)."""
        return self._cancel_requests

    def uncancel(self) -> int:
        """Withdraw one asyncio-style cancellation request; returns the
        remaining count (asyncio's ``Task.uncancel``). On Python 3.13+, as
        asyncio does there, withdrawing the last request also withdraws a
        CancelledError that a running task requested for itself and that
        has not been thrown in yet. A cancel scope's :exc:`Cancelled` is
        never withdrawn."""
        if self._cancel_requests > 0:
            self._cancel_requests -= 1
            if (
                _UNCANCEL_WITHDRAWS
                and self._cancel_requests == 0
                and self._throw_exc is not None
                and not isinstance(self._throw_exc, Cancelled)
                and self._runner.current_task is self
            ):
                self._throw_exc = None
        return self._cancel_requests

    # asyncio Task internals that asyncio libraries read (anyio's cancel
    # scopes, for one): whether a cancellation is pending delivery, and
    # the future the task waits on (the kernel does not say: None).

    @property
    def _must_cancel(self) -> bool:
        return self._throw_exc is not None

    @property
    def _fut_waiter(self) -> Any:
        return None

    def get_name(self) -> str:
        return self.name

    def set_name(self, value: object) -> None:
        self._name = str(value)

    def get_coro(self) -> Any:
        return self.coro

    def get_context(self) -> Any:
        return self.context

    def get_loop(self) -> Any:
        """The asyncio event loop of the task's run (``nursery.compat``'s)."""
        return self._runner.asyncio_loop

    def __repr__(self) -> str:
        return f"<Task {self.name!r} at {id(self):#x}>"

"""The traps: the only ways a task talks to the run loop.

A task suspends by yielding one of three things up through its coroutine
stack to the run loop:

* ``None``: a checkpoint. The task goes to the back of the ready queue and
  resumes with ``Cancelled`` if its cancel scope is cancelled by then. A bare
  ``yield`` is also what asyncio's ``sleep(0)`` does, so foreign code that
  yields to its loop behaves as a checkpoint here too.
* ``_SHIELDED``: a schedule point that never raises ``Cancelled``.
* a callable: the task blocks until someone calls ``reschedule``. The
  callable is its abort function, called if the task is cancelled while it
  waits. (Nothing else we or asyncio yield is callable, which is what makes
  this test safe.)

Anything with asyncio's ``_asyncio_future_blocking`` attribute is handled by
the run loop as a foreign future.
"""

from __future__ import annotations

import enum
import types
from typing import Any, Callable

from ._exceptions import Cancelled
from ._state import STATE, no_run_error

__all__ = [
    "Abort",
    "wait_task_rescheduled",
    "checkpoint",
    "cancel_shielded_checkpoint",
    "checkpoint_if_cancelled",
]


class Abort(enum.Enum):
    """What an abort function tells the kernel.

    ``SUCCEEDED``: the task is no longer waiting; the kernel resumes it with
    ``Cancelled``. ``FAILED``: the wait cannot be abandoned right now; whoever
    owns the wait must call ``reschedule`` later.
    """

    SUCCEEDED = 1
    FAILED = 2


class _Shielded:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<cancel-shielded checkpoint>"


_SHIELDED = _Shielded()


@types.coroutine
def _yield(message):
    return (yield message)


# Hot path (every sleep(0) and every primitive that does not block): the
# checkpoint is a single generator that yields None. Benchmarks: switch,
# timeouts.
@types.coroutine
def checkpoint():
    """A pure checkpoint: raise ``Cancelled`` if the surrounding scope is
    cancelled, and otherwise let every other ready task run before
    returning."""
    if STATE.runner is None:
        raise no_run_error("checkpoint()")
    yield


@types.coroutine
def cancel_shielded_checkpoint():
    """Let other tasks run, but never raise ``Cancelled``."""
    if STATE.runner is None:
        raise no_run_error("cancel_shielded_checkpoint()")
    yield _SHIELDED


async def checkpoint_if_cancelled() -> None:
    """Raise ``Cancelled`` if the current scope is cancelled; otherwise
    return at once, without letting other tasks run (so it is not a full
    checkpoint)."""
    runner = STATE.runner
    if runner is None:
        raise no_run_error("checkpoint_if_cancelled()")
    if runner.current_task._cancel_scope._effectively_cancelled:
        await _yield(None)


# Hot path (every blocking wait). A generator rather than an async def, so
# that a blocked task carries one frame less. Benchmarks: pingpong, memory.
@types.coroutine
def wait_task_rescheduled(abort_func: Callable[[Callable[[], Any]], Abort]) -> Any:
    """Block the current task until :func:`reschedule` is called on it, and
    return (or raise) what was passed there.

    If the task is cancelled while blocked, ``abort_func(raise_cancel)`` is
    called: return :attr:`Abort.SUCCEEDED` if the wait is abandoned (the task
    then gets ``Cancelled``), or :attr:`Abort.FAILED` if it must go on (you
    must then reschedule the task yourself later, perhaps with the exception
    that ``raise_cancel()`` raises). ``abort_func`` must not block or raise.
    This is not a checkpoint by itself: callers check for cancellation first.
    """
    if STATE.runner is None:
        raise no_run_error("wait_task_rescheduled()")
    if not callable(abort_func):
        raise TypeError(f"abort_func must be callable, got {abort_func!r}")
    return (yield abort_func)


def raise_cancel() -> Any:
    """The ``raise_cancel`` passed to abort functions."""
    raise Cancelled._create()

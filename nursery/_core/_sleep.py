"""Sleeping: the kernel's own timer for a blocked task, so that a sleep
costs one heap entry instead of a cancel scope that is cancelled to end it."""

from __future__ import annotations

from math import inf
from typing import Any, Awaitable

from ._state import STATE, current_runner, no_run_error
from ._time_values import check_time
from ._traps import Abort, checkpoint, wait_task_rescheduled

__all__ = ["sleep", "sleep_until", "sleep_forever"]


class _SleepTimer:
    __slots__ = ("_timer_seq", "_task", "_runner")

    def __init__(self, runner: Any, task: Any) -> None:
        self._timer_seq = 0
        self._runner = runner
        self._task = task

    def _expire(self) -> None:
        self._runner.reschedule(self._task)


async def sleep_forever() -> None:
    """Block until cancelled. A checkpoint (the only way out is Cancelled)."""
    if STATE.runner is None:
        raise no_run_error("sleep_forever()")
    await wait_task_rescheduled(lambda _: Abort.SUCCEEDED)


async def sleep_until(deadline: float) -> None:
    """Sleep until the run's clock reaches *deadline* (see
    :func:`current_time`). A checkpoint, even if the deadline has passed."""
    runner = current_runner("sleep_until()")
    deadline = check_time(
        deadline,
        "sleep_until() takes a deadline in seconds (a number), got {value!r}",
        "sleep_until() deadline must not be NaN",
    )
    if deadline <= runner.clock.current_time():
        await checkpoint()
        return
    if deadline == inf:
        await sleep_forever()
        return
    timer = _SleepTimer(runner, runner.current_task)
    timers = runner.timers
    timers.add(deadline, timer)

    def abort(raise_cancel: Any) -> Abort:
        timers.discard(timer)
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)


async def _sleep_for(seconds: float) -> None:
    runner = current_runner("sleep()")
    await sleep_until(runner.clock.current_time() + seconds)


# Hot path (benchmark: switch): a plain function, so that sleep(0) costs one
# generator (the checkpoint) instead of a coroutine wrapped around it.
def sleep(seconds: float) -> Awaitable[None]:
    """Sleep for *seconds* (a non-negative number) of the run's clock:
    ``await sleep(seconds)``. ``sleep(0)`` is a pure checkpoint. Always a
    checkpoint. Bad arguments raise at the call."""
    if seconds == 0:
        return checkpoint()
    seconds = check_time(
        seconds,
        "sleep() takes a number of seconds, got {value!r}",
        "sleep() duration must not be NaN",
        "sleep() duration must be non-negative, got {value!r}",
    )
    return _sleep_for(seconds)

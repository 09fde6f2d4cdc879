"""Run statistics, for debugging and monitoring."""

from __future__ import annotations

from dataclasses import dataclass
from math import inf
from typing import Any

from ._state import current_runner
from ._task import Task

__all__ = ["RunStatistics", "current_statistics"]


@dataclass(frozen=True)
class RunStatistics:
    """A snapshot of the current run.

    ``tasks_living``: tasks that exist (including the root and system tasks);
    ``tasks_runnable``: tasks ready to run now; ``callbacks_ready``: plain
    callbacks waiting in the ready queue; ``seconds_to_next_deadline``: time
    until the next deadline fires (``inf`` if none); ``io_statistics``: what
    the I/O backend reports; ``run_sync_soon_queue_size``: callbacks posted
    from other threads not yet taken in.
    """

    tasks_living: int
    tasks_runnable: int
    callbacks_ready: int
    seconds_to_next_deadline: float
    io_statistics: dict[str, Any]
    run_sync_soon_queue_size: int


def current_statistics() -> RunStatistics:
    """Return a :class:`RunStatistics` snapshot of the current run."""
    runner = current_runner("current_statistics()")
    tasks = sum(1 for item in runner.ready if isinstance(item, Task))
    deadline = runner.timers.next_deadline()
    return RunStatistics(
        tasks_living=runner.n_tasks,
        tasks_runnable=tasks,
        callbacks_ready=len(runner.ready) - tasks,
        seconds_to_next_deadline=inf if deadline == inf else deadline - runner.clock.current_time(),
        io_statistics=runner.io.statistics(),
        run_sync_soon_queue_size=len(runner.threadsafe_queue),
    )

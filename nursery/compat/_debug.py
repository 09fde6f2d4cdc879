"""asyncio's debug mode on the kernel: slow task steps.

Stock asyncio steps a task from a callback handle, so its debug mode's
"Executing ... took 0.250 seconds" warning covers task steps and callbacks
alike. The kernel steps tasks itself; while the loop is in debug mode, an
instrument times each step and reports slow ones the same way (callbacks
are timed where they run, in ``_handles``).
"""

from __future__ import annotations

import time
from asyncio.log import logger
from typing import Any

from .. import lowlevel

__all__ = ["SlowStepReporter"]


class SlowStepReporter(lowlevel.Instrument):
    """Warns through asyncio's logger when one step of a task takes at least
    the loop's ``slow_callback_duration``."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        # The step being timed, and since when. Only one at a time: an eager
        # task's first step runs inside its creator's step and is timed as
        # part of it, as stock asyncio times it; and the step that turned
        # debug mode on was never started, so it is not reported.
        self._timed: Any = None
        self._started = 0.0

    def before_task_step(self, task: Any) -> None:
        if self._timed is None:
            self._timed = task
            self._started = time.monotonic()

    def after_task_step(self, task: Any) -> None:
        if task is not self._timed:
            return
        self._timed = None
        took = time.monotonic() - self._started
        if took >= self._loop.slow_callback_duration:
            logger.warning("Executing %r took %.3f seconds", task, took)

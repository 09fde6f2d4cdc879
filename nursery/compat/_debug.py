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
        # The step being timed: an eager task's first step runs inside
        # another task's step, and the step that turns debug mode on had no
        # start.
        self._started: dict[Any, float] = {}

    def before_task_step(self, task: Any) -> None:
        if self._started:
            # A step inside a step (an eager task's first): timed as part of
            # its creator's, as stock asyncio times it.
            return
        self._started[task] = time.monotonic()

    def after_task_step(self, task: Any) -> None:
        started = self._started.pop(task, None)
        if started is None:
            return
        took = time.monotonic() - started
        if took >= self._loop.slow_callback_duration:
            logger.warning("Executing %r took %.3f seconds", task, took)

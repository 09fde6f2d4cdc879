"""asyncio's callback handles, as items of the kernel's ready queue and
deadline heap.

``loop.call_soon`` puts the handle itself into the kernel's ready queue and
``loop.call_at`` puts it into the kernel's deadline heap: no wrapper object
and no task per callback (lowlevel.KernelRun documents both protocols).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asyncio.log import logger

__all__ = ["Handle", "TimerHandle"]


def _run_handle(handle: Any) -> None:
    # Shared by both handle classes. asyncio's own Handle._run reports
    # exceptions to the loop's handler but lets SystemExit and
    # KeyboardInterrupt escape its loop's run_forever(); the kernel's ready
    # queue cannot be left half-way, so those are handed to the loop, which
    # raises them when the current step ends.
    if handle._cancelled:
        return
    loop = handle._loop
    if loop._debug:
        start = time.monotonic()
    try:
        asyncio.Handle._run(handle)
    except (SystemExit, KeyboardInterrupt) as exc:
        loop._interrupt_with(exc)
    if loop._debug:
        took = time.monotonic() - start
        if took >= loop.slow_callback_duration:
            logger.warning("Executing %r took %.3f seconds", handle, took)


class Handle(asyncio.Handle):
    """The handle ``call_soon`` returns (an :class:`asyncio.Handle`)."""

    __slots__ = ()

    _run = _run_handle


class TimerHandle(asyncio.TimerHandle):
    """The handle ``call_later``/``call_at`` return (an
    :class:`asyncio.TimerHandle`)."""

    __slots__ = ("_timer_seq",)

    def __init__(self, when: float, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        super().__init__(when, callback, args, loop, context)
        self._timer_seq = 0

    _run = _run_handle

    def _expire(self) -> None:
        # The deadline passed: asyncio moves the handle to the ready queue
        # (it runs after the callbacks already there).
        self._scheduled = False
        self._loop._enqueue(self)

"""asyncio's callback handles, as items of the kernel's ready queue and
deadline heap.

``loop.call_soon`` puts the handle itself into the kernel's ready queue and
``loop.call_at`` puts it into the kernel's deadline heap: no wrapper object
and no task per callback (lowlevel.KernelRun documents both protocols).
"""

from __future__ import annotations

import asyncio
import sys
import time
from asyncio import format_helpers
from asyncio.log import logger
from contextvars import copy_context
from typing import Any

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
        _run_handle_debug(handle, loop)
        handle = None  # (see below)
        return
    # Hot path (every callback; benchmarks spawn, gather): one call, no
    # detour through asyncio's Handle._run.
    try:
        handle._context.run(handle._callback, *handle._args)
    except (SystemExit, KeyboardInterrupt) as exc:
        loop._interrupt_with(exc)
    except BaseException as exc:
        _report(handle, exc)
    # A traceback that outlives the callback (kept by a future) keeps this
    # frame: it must not keep the handle, and through it the callback's
    # task (asyncio's Handle._run does the same).
    handle = None


def _report(handle: Any, exc: BaseException) -> None:
    # What asyncio's loop reports for a callback that raised.
    context: dict[str, Any] = {
        "message": f"Exception in callback {format_helpers._format_callback_source(handle._callback, handle._args)}",
        "exception": exc,
        "handle": handle,
    }
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


def _run_handle_debug(handle: Any, loop: Any) -> None:
    start = time.monotonic()
    try:
        asyncio.Handle._run(handle)
    except (SystemExit, KeyboardInterrupt) as exc:
        loop._interrupt_with(exc)
    took = time.monotonic() - start
    if took >= loop.slow_callback_duration:
        logger.warning("Executing %r took %.3f seconds", handle, took)
    handle = None  # (see _run_handle)


class Handle(asyncio.Handle):
    """The handle ``call_soon`` returns (an :class:`asyncio.Handle`)."""

    __slots__ = ()

    def __init__(self, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        # asyncio.Handle's fields, set without its constructor's method
        # calls (loop.get_debug()). The hot paths set the same fields
        # without this call: EventLoop.call_soon and call_at, and
        # Task._exited (a change here goes there too).
        self._context = copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = format_helpers.extract_stack(sys._getframe(1)) if loop._debug else None

    _run = _run_handle


class TimerHandle(asyncio.TimerHandle):
    """The handle ``call_later``/``call_at`` return (an
    :class:`asyncio.TimerHandle`)."""

    __slots__ = ("_timer_seq",)

    def __init__(self, when: float, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        super().__init__(when, callback, args, loop, context)
        if self._source_traceback:
            # asyncio's constructor dropped its own frame, not this one.
            del self._source_traceback[-1]
        self._timer_seq = 0

    _run = _run_handle

    def _expire(self) -> None:
        # The deadline passed: asyncio moves the handle to the ready queue
        # (it runs after the callbacks already there).
        self._scheduled = False
        self._loop._enqueue(self)

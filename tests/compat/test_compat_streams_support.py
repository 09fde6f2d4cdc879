"""Shared helpers of the stream tests (test_compat_streams*.py): the event
loops a test runs on, the two stream implementations it compares, and
exceptions as comparable data. (No tests here.)

Every stream test runs the same code with stock ``asyncio``'s streams and
with ``nursery.compat``'s, on stock asyncio's loop and on compat's, and
requires the same observable outcome.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from typing import Any, Awaitable, Callable

import pytest

from nursery import compat

#: The stream implementations: the module whose open_connection,
#: StreamReader, ... a scenario uses.
IMPLS = {"asyncio": asyncio, "compat": compat}

#: The event loops a scenario runs on.
LOOP_KINDS = ("stock-loop", "compat-loop")


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "stock-loop":
        return asyncio.new_event_loop()
    if kind == "compat-loop":
        return compat.new_event_loop()
    raise ValueError(kind)


def run(kind: str, main: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, debug: bool = False) -> Any:
    """Run ``main()`` on a new loop of ``kind`` (as asyncio.run does:
    remaining tasks cancelled, async generators and the default executor
    shut down, loop closed) and return its result. Calls to the loop's
    exception handler are recorded in the returned loop's ``handled``
    list."""
    loop = new_loop(kind)
    loop.set_debug(debug)
    handled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: handled.append(context))
    run.last_handled = handled  # type: ignore[attr-defined]
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def describe(exc: BaseException) -> tuple[Any, ...]:
    """An exception as comparable data: type, message, args, and the
    attributes of asyncio's stream errors."""
    extra = {name: getattr(exc, name) for name in ("partial", "expected", "consumed") if hasattr(exc, name)}
    if isinstance(exc, OSError):
        extra["errno"] = exc.errno
    return (type(exc).__name__, str(exc), exc.args, extra)


async def outcome(awaitable: Awaitable[Any]) -> tuple[str, Any]:
    """("value", v) or ("error", describe(e))."""
    try:
        return ("value", await awaitable)
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        return ("error", describe(exc))


def collect_resource_warnings(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Call ``fn()``; return its result and the ResourceWarning messages
    raised meanwhile (a gc pass included, so dropped writers are seen)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = fn()
        gc.collect()
    return result, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


PY313 = sys.version_info >= (3, 13)

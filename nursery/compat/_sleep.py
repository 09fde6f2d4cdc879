"""asyncio.sleep on the compat loop.

``sleep(0)`` is a bare yield, as in asyncio: the task goes to the back of the
kernel's ready queue (a kernel checkpoint, so a cancelled nursery scope is
noticed there too). A real delay waits for a loop future resolved by a
``call_later`` timer, which is a kernel deadline: the wake-up takes the same
path (timer, then the future's done-callback, then the task step) as in
stock asyncio, so callbacks and tasks keep asyncio's order. Cancellation
reaches the wait both ways: ``Task.cancel()`` and a nursery cancel scope
both cancel the future and raise into the coroutine.
"""

from __future__ import annotations

import math
import sys
import types
from asyncio import events
from typing import Any

__all__ = ["sleep"]

_CHECK_NAN = sys.version_info >= (3, 13)


@types.coroutine
def _yield_once() -> Any:
    # A bare yield: "let everything else that is ready run first".
    yield


def _resolve(future: Any, result: Any) -> None:
    # The timer fired; the future may have been cancelled meanwhile.
    if not future.cancelled():
        future.set_result(result)


async def sleep(delay: float, result: Any = None) -> Any:
    """Suspend the current task for *delay* seconds and return *result*
    (``asyncio.sleep``). ``sleep(0)`` (or a negative delay) only lets the
    other ready tasks and callbacks run. Runs on the loop's clock, so on a
    :class:`nursery.testing.MockClock` a long sleep finishes at once."""
    if delay <= 0:
        await _yield_once()
        return result
    if _CHECK_NAN and math.isnan(delay):
        raise ValueError("Invalid delay: NaN (not a number)")
    loop = events.get_running_loop()
    future = loop.create_future()
    timer = loop.call_later(delay, _resolve, future, result)
    try:
        return await future
    finally:
        timer.cancel()

"""A nursery cancel scope cancelling a task blocked on an asyncio future:
the future is cancelled, the scope catches, and nothing is left behind, not
even a log message (stock asyncio's Task retrieves the result of the future
it cancelled; the kernel must do the same)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock



async def _blocked_then_cancelled(awaitable_factory: Any) -> tuple[bool, list[str]]:
    loop = asyncio.get_running_loop()
    logged: list[str] = []
    loop.set_exception_handler(lambda _loop, context: logged.append(context["message"]))
    with nursery.move_on_after(0.01) as scope:
        await awaitable_factory()
    await nursery.sleep(0.1)  # the cancelled children finish
    gc.collect()  # an unretrieved exception is reported when its future is collected
    return scope.cancelled_caught, logged


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(lambda: asyncio.sleep(10), id="asyncio.sleep"),
        pytest.param(lambda: asyncio.get_running_loop().create_future(), id="bare-future"),
        pytest.param(
            lambda: asyncio.gather(asyncio.sleep(10), asyncio.sleep(20)),
            id="asyncio.gather",
        ),
        pytest.param(
            lambda: compat.gather(compat.sleep(10), compat.sleep(20)),
            id="compat.gather",
        ),
    ],
)
def test_scope_cancels_a_task_blocked_on_an_asyncio_future(factory: Any) -> None:
    caught, logged = nursery.run(_blocked_then_cancelled, factory, clock=MockClock(autojump_threshold=0))
    assert caught
    assert logged == []


def test_stock_asyncio_logs_nothing_either() -> None:
    # The reference: a stock asyncio task cancelled while it awaits gather.
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        logged: list[str] = []
        loop.set_exception_handler(lambda _loop, context: logged.append(context["message"]))
        async def waits_for_gather() -> None:
            await asyncio.gather(asyncio.sleep(10), asyncio.sleep(20))

        task = asyncio.create_task(waits_for_gather())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        gc.collect()
        return logged

    assert asyncio.run(main()) == []

"""asyncio-style cancellation (Task.cancel(), asyncio.timeout) passes
through a nursery as a bare CancelledError, as through an asyncio TaskGroup."""

from __future__ import annotations

import asyncio

import pytest

import nursery
from nursery import compat, lowlevel
from nursery.testing import MockClock


async def test_task_cancel_while_the_body_runs_comes_out_bare() -> None:
    children_cancelled = []

    async def child() -> None:
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            children_cancelled.append(True)
            raise

    task = lowlevel.current_task()
    with pytest.raises(asyncio.CancelledError) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(child)
            await nursery.sleep(0)
            task.cancel("stop")
            await nursery.sleep(0)
    assert type(info.value) is asyncio.CancelledError
    assert info.value.args == ("stop",)
    assert children_cancelled == [True]
    assert task.uncancel() == 0


async def test_task_cancel_while_waiting_for_the_children_comes_out_bare() -> None:
    task = lowlevel.current_task()
    log = []

    async def child() -> None:
        try:
            await nursery.sleep_forever()
        finally:
            log.append("child cleanup")

    async def canceller() -> None:
        await nursery.sleep(0.1)
        task.cancel()

    async with nursery.open_nursery() as outer:
        outer.start_soon(canceller)  # outside the inner nursery
        with pytest.raises(asyncio.CancelledError) as info:
            async with nursery.open_nursery() as n:
                n.start_soon(child)
        assert not isinstance(info.value, nursery.Cancelled)
    assert log == ["child cleanup"]
    task.uncancel()


async def test_a_real_error_keeps_the_group() -> None:
    task = lowlevel.current_task()

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(fails)
            task.cancel()
            await nursery.sleep(0)
    kinds = sorted(type(e).__name__ for e in info.value.exceptions)
    assert kinds == ["CancelledError", "ValueError"]
    task.uncancel()


def test_asyncio_timeout_around_a_nursery_raises_timeout_error() -> None:
    async def main() -> str:
        try:
            async with asyncio.timeout(2):
                async with nursery.open_nursery() as n:
                    n.start_soon(nursery.sleep_forever)
        except TimeoutError:
            return "timed out"
        return "no"

    loop = compat.new_event_loop(clock=MockClock(autojump_threshold=0))
    try:
        assert loop.run_until_complete(main()) == "timed out"
    finally:
        loop.close()

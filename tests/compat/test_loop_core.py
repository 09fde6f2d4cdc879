"""The compat event loop's core: callbacks, timers and tasks on the kernel,
stock asyncio code on it, and asyncio inside nursery.run()."""

from __future__ import annotations

import asyncio
import sys

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock


@pytest.fixture
def loop():
    loop = compat.new_event_loop()
    yield loop
    loop.close()


def test_callbacks_and_task_steps_interleave_in_fifo_order(loop) -> None:
    log = []

    async def task(name: str) -> None:
        log.append(f"{name} step 1")
        await asyncio.sleep(0)
        log.append(f"{name} step 2")

    async def main() -> None:
        loop.call_soon(log.append, "cb 1")
        t = asyncio.create_task(task("t"))
        loop.call_soon(log.append, "cb 2")
        await t

    loop.run_until_complete(main())
    assert log == ["cb 1", "t step 1", "cb 2", "t step 2"]


def test_timers_fire_in_deadline_order_on_a_mock_clock() -> None:
    clock = MockClock(autojump_threshold=0)
    loop = compat.new_event_loop(clock=clock)
    log = []

    async def main() -> None:
        start = loop.time()
        loop.call_later(2, lambda: log.append(("b", loop.time() - start)))
        loop.call_later(1, lambda: log.append(("a", loop.time() - start)))
        gone = loop.call_later(1.5, log.append, "never")
        gone.cancel()
        await asyncio.sleep(3600)  # an hour of virtual time, at once
        log.append(("end", loop.time() - start))

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert log == [("a", 1.0), ("b", 2.0), ("end", 3600.0)]


def test_stock_asyncio_apis_run_on_the_loop(loop) -> None:
    async def nested() -> int:
        await asyncio.sleep(0.001)
        return 42

    async def main() -> list:
        assert asyncio.get_running_loop() is loop
        task = asyncio.create_task(nested())
        assert isinstance(task, compat.Task)
        assert asyncio.current_task() in asyncio.all_tasks()
        results = [await task]
        results.append(await asyncio.gather(nested(), nested()))
        async with asyncio.TaskGroup() as tg:
            child = tg.create_task(nested())
        results.append(child.result())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await asyncio.sleep(10)
        results.append(await asyncio.wait_for(nested(), 1))
        return results

    assert loop.run_until_complete(main()) == [42, [42, 42], 42, 42]


def test_task_cancel_with_message_and_the_future_interface(loop) -> None:
    async def sleeper() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        assert task.cancel("enough") is True
        assert task.cancelling() == 1
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert info.value.args == ("enough",)
        assert task.cancelled() and task.done()
        assert task.cancel() is False
        with pytest.raises(asyncio.CancelledError):
            task.result()

        pending = asyncio.create_task(sleeper())
        with pytest.raises(asyncio.InvalidStateError, match="Result is not set."):
            pending.result()
        with pytest.raises(asyncio.InvalidStateError, match="Exception is not set."):
            pending.exception()
        with pytest.raises(RuntimeError, match="Task does not support set_result operation"):
            pending.set_result(1)
        pending.cancel()
        await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_create_task_rejects_a_non_coroutine_with_asyncios_message(loop) -> None:
    with pytest.raises(TypeError, match=r"a coroutine was expected, got 42"):
        loop.create_task(42)


def test_run_until_complete_on_a_closed_loop() -> None:
    loop = compat.new_event_loop()
    loop.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()


def test_done_callbacks_run_on_the_loop_with_their_context(loop) -> None:
    log = []

    async def work() -> str:
        return "ok"

    async def main() -> None:
        task = asyncio.create_task(work())
        task.add_done_callback(lambda t: log.append(t.result()))
        task.add_done_callback(log.append)
        assert task.remove_done_callback(log.append) == 1
        await task
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert log == ["ok"]


def test_never_retrieved_exception_goes_to_the_exception_handler(loop) -> None:
    seen = []
    loop.set_exception_handler(lambda loop, context: seen.append(context))

    async def fails() -> None:
        raise ValueError("lost")

    async def main() -> None:
        asyncio.create_task(fails())
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    import gc

    gc.collect()
    assert [c["message"] for c in seen] == ["Task exception was never retrieved"]
    assert isinstance(seen[0]["exception"], ValueError)


def test_nursery_code_inside_an_asyncio_task(loop) -> None:
    async def main() -> list:
        got = []
        async with nursery.open_nursery() as n:
            send, receive = nursery.open_memory_channel(1)
            n.start_soon(send.send, "via channel")
            got.append(await receive.receive())
        with nursery.move_on_after(0.001):
            await asyncio.sleep(10)
            got.append("not reached")
        return got

    assert loop.run_until_complete(main()) == ["via channel"]


async def test_inside_nursery_run_asyncio_finds_the_runs_loop() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, compat.EventLoop)
    assert loop.is_running()
    assert asyncio.current_task() is nursery.lowlevel.current_task()
    queue: asyncio.Queue[int] = asyncio.Queue()
    await queue.put(1)
    assert await queue.get() == 1
    assert await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b")) == ["a", "b"]
    async with asyncio.timeout(5):
        await asyncio.sleep(0)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="This event loop is already running"):
        loop.run_until_complete(coro)
    coro.close()


async def test_a_nursery_scope_cancels_a_task_blocked_on_an_asyncio_future() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    with nursery.move_on_after(0.001) as scope:
        await future
    assert scope.cancelled_caught
    assert future.cancelled()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_stock_asyncio_run_with_loop_factory() -> None:
    async def main() -> str:
        assert isinstance(asyncio.get_running_loop(), compat.EventLoop)
        await asyncio.sleep(0)
        return "done"

    assert asyncio.run(main(), loop_factory=compat.new_event_loop) == "done"


def test_executor_threads_do_not_outlive_nursery_run() -> None:
    import threading

    before = set(threading.enumerate())

    async def main() -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, sum, [1, 2, 3])

    assert nursery.run(main) == 6
    assert set(threading.enumerate()) <= before

"""nursery.compat's Queue, PriorityQueue and LifoQueue: each scenario runs
with stock asyncio's queues on stock asyncio's loop and with compat's on
compat's loop, and the traces must be identical. Then a compat queue
between nursery tasks and compat tasks inside nursery.run."""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

from test_compat_locks import Scenario, _exc, run_compat, run_stock, same_as_stock, settle, spawn

PY313 = sys.version_info >= (3, 13)


async def fifo_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue(maxsize=2)
    trace.append((q.maxsize, q.qsize(), q.empty(), q.full(), repr(q)[: len("<Queue at")], str(q)))

    async def producer(name: str) -> None:
        for i in range(4):
            await q.put((name, i))
            trace.append(("put", name, i, q.qsize()))

    async def consumer(name: str) -> None:
        for _ in range(4):
            item = await q.get()
            trace.append(("got", name, item))
            q.task_done()
            await asyncio.sleep(0)

    ts = [spawn(producer("p1")), spawn(producer("p2")), spawn(consumer("c1")), spawn(consumer("c2"))]
    await settle(1)
    trace.append(str(q))
    await q.join()
    trace.append(("joined", str(q)))
    await asyncio.gather(*ts)
    trace.append(str(q))


async def nowait_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue(1)
    for call in (q.get_nowait, lambda: q.put_nowait(1), lambda: q.put_nowait(2), q.get_nowait, q.get_nowait):
        try:
            trace.append(("ok", call()))
        except (asyncio.QueueEmpty, asyncio.QueueFull) as exc:
            trace.append(_exc(exc))
    q.task_done()
    try:
        q.task_done()
    except ValueError as exc:
        trace.append(_exc(exc))
    unbounded = aio.Queue()
    for i in range(100):
        unbounded.put_nowait(i)
    trace.append((unbounded.full(), unbounded.qsize()))
    trace.append(await unbounded.get())
    zero = aio.Queue(-1)
    trace.append((zero.full(), str(zero)))


async def priority_lifo_scenario(aio: Any, trace: list) -> None:
    pq = aio.PriorityQueue()
    lq = aio.LifoQueue()
    for item in (5, 1, 4, 2, 3):
        await pq.put(item)
        lq.put_nowait(item)
    trace.append((str(pq), str(lq)))
    trace.append([pq.get_nowait() for _ in range(5)])
    trace.append([await lq.get() for _ in range(5)])
    bounded = aio.PriorityQueue(2)
    bounded.put_nowait((2, "b"))
    bounded.put_nowait((1, "a"))
    t = spawn(bounded.put((0, "z")))
    await settle()
    trace.append((t.done(), str(bounded)))
    trace.append(bounded.get_nowait())
    await settle()
    trace.append((t.done(), [bounded.get_nowait() for _ in range(2)]))


async def getter_cancel_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue()

    async def getter(name: str) -> None:
        try:
            trace.append(("got", name, await q.get()))
        except asyncio.CancelledError:
            trace.append(("cancelled", name, q.qsize()))
            raise

    ts = [spawn(getter(n)) for n in "abc"]
    await settle()
    trace.append(str(q))
    ts[2].cancel()  # cancelled while waiting
    await settle(1)
    q.put_nowait(1)  # wakes a...
    ts[0].cancel()  # ...cancelled before it runs: b must get the item
    trace.append(str(q))
    await settle()
    trace.append(([t.cancelled() for t in ts], str(q)))


async def putter_cancel_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue(1)
    q.put_nowait("x")

    async def putter(name: str) -> None:
        try:
            await q.put(name)
            trace.append(("put", name))
        except asyncio.CancelledError:
            trace.append(("cancelled", name, q.qsize()))
            raise

    ts = [spawn(putter(n)) for n in "abc"]
    await settle()
    trace.append(str(q))
    ts[2].cancel()
    await settle(1)
    trace.append(q.get_nowait())  # frees the slot, wakes a...
    ts[0].cancel()  # ...which is cancelled: b must take the slot
    await settle()
    trace.append(([t.cancelled() for t in ts], str(q)))
    trace.append(q.get_nowait())


async def join_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue()
    await q.join()  # nothing unfinished: returns at once
    trace.append("joined empty")
    for i in range(3):
        q.put_nowait(i)

    async def joiner(name: str) -> None:
        await q.join()
        trace.append(("joined", name, q.qsize()))

    ts = [spawn(joiner("a")), spawn(joiner("b"))]
    await settle()
    for _ in range(3):
        q.get_nowait()
        trace.append(("done", q._unfinished_tasks))
        q.task_done()
        await settle(1)
    await asyncio.gather(*ts)


async def shutdown_scenario(aio: Any, trace: list) -> None:
    q = aio.Queue(1)

    async def getter() -> None:
        try:
            trace.append(("got", await q.get()))
        except aio.QueueShutDown as exc:
            trace.append(("get shutdown", _exc(exc)))

    async def putter(item: Any) -> None:
        try:
            await q.put(item)
            trace.append(("put", item))
        except aio.QueueShutDown as exc:
            trace.append(("put shutdown", item, _exc(exc)))

    g = spawn(getter())
    await settle()
    q.shutdown()
    await settle()
    trace.append(str(q))
    for call in (lambda: q.put_nowait(1), q.get_nowait):
        try:
            call()
        except aio.QueueShutDown as exc:
            trace.append(_exc(exc))
    # Items already in are still delivered after a non-immediate shutdown.
    q2 = aio.Queue(1)
    q2.put_nowait("left")
    p = spawn(putter_to(q2, "blocked", trace, aio))
    await settle()
    q2.shutdown()
    await settle()
    trace.append(("after shutdown", q2.get_nowait(), str(q2)))
    try:
        await q2.get()
    except aio.QueueShutDown as exc:
        trace.append(("empty and shut down", _exc(exc)))
    # Immediate shutdown drops the items and releases join().
    q3 = aio.Queue()
    for i in range(3):
        q3.put_nowait(i)
    q3.get_nowait()
    j = spawn(q3.join())
    await settle()
    q3.shutdown(immediate=True)
    await settle()
    trace.append((j.done(), str(q3), q3._unfinished_tasks))
    q3.task_done()
    await settle()
    trace.append((j.done(), str(q3)))
    await asyncio.gather(g, p)


async def putter_to(q: Any, item: Any, trace: list, aio: Any) -> None:
    try:
        await q.put(item)
        trace.append(("put", item))
    except aio.QueueShutDown as exc:
        trace.append(("put shutdown", item, _exc(exc)))


SCENARIOS = [
    fifo_scenario,
    nowait_scenario,
    priority_lifo_scenario,
    getter_cancel_scenario,
    putter_cancel_scenario,
    join_scenario,
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_queue_matches_stock(scenario: Scenario) -> None:
    same_as_stock(scenario)


@pytest.mark.skipif(not PY313, reason="Queue.shutdown is new in 3.13")
def test_shutdown_matches_stock() -> None:
    trace = same_as_stock(shutdown_scenario)
    assert ("get shutdown", "QueueShutDown('')") in trace


@pytest.mark.skipif(PY313, reason="Queue.shutdown exists on 3.13+")
def test_no_shutdown_before_313() -> None:
    assert not hasattr(compat.Queue, "shutdown")
    assert not hasattr(compat, "QueueShutDown")


def test_queue_errors() -> None:
    trace = run_compat(nowait_scenario)
    assert trace[:5] == ["QueueEmpty('')", ("ok", None), "QueueFull('')", ("ok", 1), "QueueEmpty('')"]
    assert trace[5] == "ValueError('task_done() called too many times')"


def test_getter_woken_then_cancelled_passes_the_item_on() -> None:
    trace = run_compat(getter_cancel_scenario)
    assert ("got", "b", 1) in trace


def test_queues_are_ours() -> None:
    for name in ("Queue", "PriorityQueue", "LifoQueue"):
        assert getattr(compat, name) is not getattr(asyncio, name)
        assert getattr(compat, name).__module__ == "nursery.compat"
    assert compat.Queue[int] is not None  # generic, as asyncio.Queue


class _Doubling(compat.Queue):
    # asyncio's subclass hooks are honoured.
    def _put(self, item: Any) -> None:
        self._queue.append(item * 2)


def test_subclass_hooks() -> None:
    async def main() -> None:
        q = _Doubling()
        await q.put(21)
        assert await q.get() == 42

    compat.new_event_loop().run_until_complete(main())


# ----------------------------------------------------------------------
# inside nursery.run


def test_queue_between_a_nursery_task_and_a_compat_task() -> None:
    got = []

    async def main() -> None:
        q: compat.Queue[int | None] = compat.Queue(1)

        async def nursery_producer() -> None:
            for i in range(5):
                await q.put(i)
            await q.put(None)

        async def compat_consumer() -> None:
            while (item := await q.get()) is not None:
                got.append(item)
                q.task_done()
            q.task_done()

        async with nursery.open_nursery() as n:
            n.start_soon(nursery_producer)
            t = asyncio.get_running_loop().create_task(compat_consumer())
            await q.join()
            await t

    nursery.run(main)
    assert got == [0, 1, 2, 3, 4]


def test_cancel_scope_around_queue_get_leaves_no_waiter() -> None:
    async def main() -> None:
        q = compat.Queue()
        with nursery.move_on_after(10) as scope:
            await q.get()
        assert scope.cancelled_caught
        assert str(q) == "<Queue maxsize=0>"
        # A later put is not lost to the abandoned getter.
        q.put_nowait("kept")
        assert q.get_nowait() == "kept"

    nursery.run(main, clock=MockClock(autojump_threshold=0))


def test_pingpong_between_nursery_and_compat_tasks() -> None:
    async def main() -> None:
        ping, pong = compat.Queue(1), compat.Queue(1)

        async def nursery_player() -> None:
            for _ in range(100):
                ball = await ping.get()
                await pong.put(ball + 1)

        async def compat_player() -> int:
            ball = 0
            for _ in range(100):
                await ping.put(ball)
                ball = await pong.get()
            return ball

        async with nursery.open_nursery() as n:
            n.start_soon(nursery_player)
            assert await asyncio.get_running_loop().create_task(compat_player()) == 100

    nursery.run(main)


# ----------------------------------------------------------------------
# random differential scenarios


def random_traffic(kind: str, seed: int) -> Scenario:
    async def scenario(aio: Any, trace: list) -> None:
        rng = random.Random(seed)
        q = getattr(aio, kind)(rng.randint(0, 3))

        async def producer(i: int) -> None:
            try:
                for n in range(rng.randint(1, 4)):
                    await q.put((rng.randint(0, 9), i, n))
                    trace.append(("put", i, n))
            except asyncio.CancelledError:
                trace.append(("put cancelled", i))
                raise
            except Exception as exc:  # QueueShutDown (3.13)
                trace.append(("put", i, _exc(exc)))

        async def consumer(i: int) -> None:
            try:
                for _ in range(rng.randint(1, 4)):
                    trace.append(("got", i, await q.get()))
                    q.task_done()
            except asyncio.CancelledError:
                trace.append(("get cancelled", i))
                raise
            except Exception as exc:
                trace.append(("get", i, _exc(exc)))

        tasks = [spawn(producer(i)) for i in range(3)] + [spawn(consumer(i)) for i in range(3)]
        for _ in range(30):
            r = rng.random()
            if r < 0.2:
                rng.choice(tasks).cancel()
            elif r < 0.3:
                try:
                    q.put_nowait((rng.randint(0, 9), "main"))
                except Exception as exc:
                    trace.append(_exc(exc))
            elif r < 0.4:
                try:
                    trace.append(("main got", q.get_nowait()))
                except Exception as exc:
                    trace.append(_exc(exc))
            elif r < 0.42 and PY313:
                q.shutdown(immediate=rng.random() < 0.5)
            trace.append(str(q))
            await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        trace.append(str(q))

    return scenario


@pytest.mark.parametrize("kind", ["Queue", "PriorityQueue", "LifoQueue"])
def test_random_traffic_and_cancellation_match_stock(kind: str) -> None:
    for seed in range(150):
        scenario = random_traffic(kind, seed)
        assert run_compat(scenario) == run_stock(scenario), f"seed {seed}"

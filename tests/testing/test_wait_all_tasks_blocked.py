"""wait_all_tasks_blocked: wait until every other task has been blocked for
a cushion of real time."""

from __future__ import annotations

import math
import time

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked


async def test_returns_once_every_other_task_is_blocked():
    log = []
    event = nursery.Event()

    async def worker(name, steps):
        for i in range(steps):
            log.append(f"{name}{i}")
            await lowlevel.checkpoint()
        log.append(f"{name} blocks")
        await event.wait()
        log.append(f"{name} woke")

    async with nursery.open_nursery() as n:
        n.start_soon(worker, "a", 3)
        n.start_soon(worker, "b", 1)
        await wait_all_tasks_blocked()
        log.append("idle")
        event.set()
    assert log == ["a0", "b0", "a1", "b blocks", "a2", "a blocks", "idle", "b woke", "a woke"]  # (FIFO: b parked first)


async def test_the_waiter_itself_does_not_count():
    # With no other task at all, the run is idle as soon as the waiter
    # blocks.
    await wait_all_tasks_blocked()
    await wait_all_tasks_blocked(0.001)


async def test_a_task_that_keeps_running_delays_the_waiter():
    log = []

    async def spinner():
        for i in range(50):
            await lowlevel.checkpoint()
        log.append("spinner done")

    async with nursery.open_nursery() as n:
        n.start_soon(spinner)
        await wait_all_tasks_blocked()
        log.append("idle")
    assert log == ["spinner done", "idle"]


async def test_cushion_is_real_time_after_the_last_activity():
    # The sleeper is busy (wakes up) every 20 ms for a while, then blocks
    # for good; the waiter must wake at least `cushion` after that.
    cushion = 0.1
    last_activity = []

    async def sleeper():
        for _ in range(4):
            await nursery.sleep(0.02)
            last_activity.append(time.perf_counter())
        await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        n.start_soon(sleeper)
        start = time.perf_counter()
        await wait_all_tasks_blocked(cushion)
        woke = time.perf_counter()
        assert len(last_activity) == 4
        # (epoll waits in whole milliseconds, rounded up.)
        assert woke - last_activity[-1] >= cushion - 0.001
        assert woke - start >= 4 * 0.02 + cushion - 0.001
        n.cancel_scope.cancel()


async def test_waiters_with_equal_cushion_wake_together():
    # If they woke one at a time, the first would run all its steps before
    # the second woke (the second only wakes when everything is blocked
    # again). Waking together interleaves them.
    log = []

    async def waiter(name):
        await wait_all_tasks_blocked()
        for i in range(3):
            log.append(f"{name}{i}")
            await lowlevel.checkpoint()

    async with nursery.open_nursery() as n:
        n.start_soon(waiter, "a")
        n.start_soon(waiter, "b")
    assert log == ["a0", "b0", "a1", "b1", "a2", "b2"]


async def test_smaller_cushion_wakes_first_and_the_larger_one_waits_again():
    log = []

    async def waiter(cushion):
        await wait_all_tasks_blocked(cushion)
        log.append(("woke", cushion, time.perf_counter()))
        for _ in range(3):
            await lowlevel.checkpoint()
        log.append(("done", cushion, time.perf_counter()))

    async with nursery.open_nursery() as n:
        # Started largest first: the order of waking must not be FIFO.
        n.start_soon(waiter, 0.05)
        n.start_soon(waiter, 0.01)
        n.start_soon(waiter, 0)
    assert [(what, cushion) for what, cushion, _ in log] == [
        ("woke", 0),
        ("done", 0),
        ("woke", 0.01),
        ("done", 0.01),
        ("woke", 0.05),
        ("done", 0.05),
    ]
    # Each waiter's cushion counts from when the run last went idle, that
    # is, after the previous waiter finished.
    times = {(what, cushion): t for what, cushion, t in log}
    assert times["woke", 0.01] - times["done", 0] >= 0.01 - 0.001
    assert times["woke", 0.05] - times["done", 0.01] >= 0.05 - 0.001


async def test_cancelled_waiter_raises_cancelled_and_is_forgotten():
    log = []

    async def waiter(scope_box):
        with nursery.CancelScope() as scope:
            scope_box.append(scope)
            try:
                await wait_all_tasks_blocked()
            except nursery.Cancelled:
                log.append("cancelled")
                raise
            log.append("woke")  # never reached
        log.append(f"scope caught: {scope.cancelled_caught}")

    async with nursery.open_nursery() as n:
        box = []
        n.start_soon(waiter, box)
        # Let the waiter register, then cancel it before the run goes idle.
        await lowlevel.checkpoint()
        box[0].cancel()
        await lowlevel.checkpoint()
        assert log == ["cancelled", "scope caught: True"]
        # The cancelled waiter is not woken later (which would crash the
        # run), and other waiters still work.
        await wait_all_tasks_blocked()
        await wait_all_tasks_blocked(0.001)
    assert log == ["cancelled", "scope caught: True"]


async def test_in_an_already_cancelled_scope_raises_at_once():
    with nursery.CancelScope() as scope:
        scope.cancel()
        await wait_all_tasks_blocked(1000)
        pytest.fail("not cancelled")
    assert scope.cancelled_caught


@pytest.mark.parametrize("cushion", [-1, -0.01, math.nan])
async def test_bad_cushion_is_a_value_error(cushion):
    with pytest.raises(ValueError, match="cushion must be non-negative, got"):
        await wait_all_tasks_blocked(cushion)


def test_outside_a_run_is_a_clear_runtime_error():
    coro = wait_all_tasks_blocked()
    with pytest.raises(RuntimeError, match=r"wait_all_tasks_blocked\(\) must be called from inside nursery.run\(\)"):
        coro.send(None)


async def test_wakes_before_the_autojump_clock_moves(autojump_clock):
    async def sleeper():
        await nursery.sleep(5)

    async with nursery.open_nursery() as n:
        n.start_soon(sleeper)
        await wait_all_tasks_blocked()
        # The cushion (0) is not larger than the threshold (0): the waiter
        # wins, time has not jumped yet.
        assert nursery.current_time() == 0
    assert nursery.current_time() == 5


@pytest.mark.timeout(10)
async def test_cushion_elapses_under_autojump_with_no_deadline(autojump_clock):
    # Nothing to jump to: the loop must sleep (not spin with a zero timeout
    # forever), so that the cushion can elapse.
    start = time.perf_counter()
    await wait_all_tasks_blocked(0.05)
    assert 0.05 - 0.001 <= time.perf_counter() - start < 2
    assert nursery.current_time() == 0


def test_autojump_with_no_deadline_sleeps_instead_of_spinning():
    clock = MockClock(autojump_threshold=0)
    waits = []

    class CountWaits(lowlevel.Instrument):
        def before_io_wait(self, timeout):
            waits.append(timeout)

    async def main():
        await wait_all_tasks_blocked(0.05)

    nursery.run(main, clock=clock, instruments=[CountWaits()])
    # One real wait for the cushion, not thousands of zero-timeout polls.
    assert len(waits) <= 3
    assert 0.05 in waits

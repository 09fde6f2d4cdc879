"""MockClock: virtual time that stands still, runs at a rate, is jumped by
hand, or jumps by itself when every task is blocked."""

from __future__ import annotations

import math
import threading
import time

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked


# ----------------------------------------------------------------------
# outside a run


def test_defaults_and_repr():
    clock = MockClock()
    assert clock.rate == 0.0
    assert clock.autojump_threshold == math.inf
    assert repr(clock) == "<MockClock time=0.0000000 rate=0.0 autojump_threshold=inf>"
    clock.jump(1.5)
    clock.autojump_threshold = 0
    assert repr(clock) == "<MockClock time=1.5000000 rate=0.0 autojump_threshold=0.0>"


def test_rate_zero_stands_still():
    clock = MockClock()
    before = clock.current_time()
    time.sleep(0.02)
    assert clock.current_time() == before == 0.0


def test_rate_two_runs_twice_as_fast_as_real_time():
    clock = MockClock(rate=2)
    real_start = time.perf_counter()
    virtual_start = clock.current_time()
    time.sleep(0.05)
    virtual_end = clock.current_time()
    real_end = time.perf_counter()
    elapsed = virtual_end - virtual_start
    # The clock reads perf_counter in between our two readings, so its
    # virtual elapsed time is at most twice the real time we measured, and
    # at least twice the time we slept.
    assert 2 * 0.05 <= elapsed <= 2 * (real_end - real_start)


def test_changing_the_rate_keeps_time_continuous():
    clock = MockClock(rate=10)
    time.sleep(0.02)
    clock.rate = 0
    frozen = clock.current_time()
    assert frozen >= 0.2
    time.sleep(0.02)
    assert clock.current_time() == frozen
    clock.rate = 1
    assert clock.current_time() >= frozen
    assert clock.current_time() < frozen + 1


def test_jump_moves_forward():
    clock = MockClock()
    clock.jump(5)
    clock.jump(0)
    clock.jump(0.25)
    assert clock.current_time() == 5.25


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan])
def test_jump_backwards_is_a_value_error(seconds):
    clock = MockClock()
    clock.jump(3)
    with pytest.raises(ValueError, match=r"time can't go backwards: jump\("):
        clock.jump(seconds)
    assert clock.current_time() == 3


@pytest.mark.parametrize("rate", [-1, -0.5, math.nan])
def test_bad_rate_is_a_value_error(rate):
    with pytest.raises(ValueError, match="rate must be a non-negative number, got"):
        MockClock(rate=rate)
    clock = MockClock(rate=3)
    with pytest.raises(ValueError, match="rate must be a non-negative number"):
        clock.rate = rate
    assert clock.rate == 3


@pytest.mark.parametrize("threshold", [-1, math.nan])
def test_bad_autojump_threshold_is_a_value_error(threshold):
    with pytest.raises(ValueError, match="autojump_threshold must be a non-negative number, got"):
        MockClock(autojump_threshold=threshold)


def test_deadline_to_sleep_time_with_rate_zero():
    clock = MockClock()
    clock.jump(10)
    assert clock.deadline_to_sleep_time(9) == 0
    assert clock.deadline_to_sleep_time(10) == 0
    # Time never passes by itself: sleep "forever" (a long, finite wait).
    assert clock.deadline_to_sleep_time(10.5) >= 1e8


def test_deadline_to_sleep_time_scales_with_the_rate():
    for rate, ahead, expected in [(2, 10, 5), (0.5, 1, 2)]:
        clock = MockClock(rate=rate)
        real_start = time.perf_counter()
        now = clock.current_time()
        sleep_time = clock.deadline_to_sleep_time(now + ahead)
        real_elapsed = time.perf_counter() - real_start
        # `ahead` virtual seconds take `ahead / rate` real ones, less the
        # real time that passed since `now` was read.
        assert expected - real_elapsed <= sleep_time <= expected
        assert clock.deadline_to_sleep_time(now - 1) == 0


# ----------------------------------------------------------------------
# in a run


async def test_fixture_clock_is_the_runs_clock(mock_clock):
    assert lowlevel.current_clock() is mock_clock
    assert nursery.current_time() == mock_clock.current_time() == 0
    mock_clock.jump(7)
    assert nursery.current_time() == 7


async def test_sleep_wakes_only_once_jumped_past_its_deadline(mock_clock):
    woke = []

    async def sleeper():
        await nursery.sleep(10)
        woke.append(nursery.current_time())

    async with nursery.open_nursery() as n:
        n.start_soon(sleeper)
        await wait_all_tasks_blocked()
        mock_clock.jump(9.5)
        await wait_all_tasks_blocked()
        assert woke == []
        mock_clock.jump(0.5)
        await wait_all_tasks_blocked()
        assert woke == [10]


async def test_autojump_goes_straight_to_each_deadline(autojump_clock):
    log = []

    async def sleeper(seconds):
        await nursery.sleep(seconds)
        log.append((seconds, nursery.current_time()))

    real_start = time.perf_counter()
    async with nursery.open_nursery() as n:
        for seconds in (3600, 1, 60):
            n.start_soon(sleeper, seconds)
    assert log == [(1, 1), (60, 60), (3600, 3600)]
    assert time.perf_counter() - real_start < 1


async def test_autojump_does_not_jump_while_a_task_is_runnable(autojump_clock):
    seen = []

    async def spinner():
        for _ in range(20):
            seen.append(nursery.current_time())
            await lowlevel.checkpoint()

    async with nursery.open_nursery() as n:
        n.start_soon(spinner)
        await nursery.sleep(5)
        assert nursery.current_time() == 5
    assert seen == [0] * 20


def test_autojump_threshold_waits_that_much_real_time():
    clock = MockClock(autojump_threshold=0.05)

    async def main():
        real_start = time.perf_counter()
        await nursery.sleep(100)
        return nursery.current_time(), time.perf_counter() - real_start

    virtual, real = nursery.run(main, clock=clock)
    assert virtual == 100
    assert 0.05 <= real < 1


async def test_autojump_threshold_set_during_the_run_takes_effect(mock_clock):
    woke = []

    async def sleeper():
        await nursery.sleep(50)
        woke.append(nursery.current_time())

    async with nursery.open_nursery() as n:
        n.start_soon(sleeper)
        await wait_all_tasks_blocked()
        assert woke == [] and nursery.current_time() == 0
        mock_clock.autojump_threshold = 0
    assert woke == [50]


@pytest.mark.timeout(20)
def test_autojump_threshold_set_from_another_thread_wakes_the_sleeping_loop():
    # The loop is asleep with an "infinite" timeout (a rate-0 clock and no
    # autojump); setting the threshold from another thread must wake it.
    clock = MockClock()
    blocked = threading.Event()

    class Watch(lowlevel.Instrument):
        def before_io_wait(self, timeout):
            if timeout > 1000:
                blocked.set()

    def setter():
        blocked.wait(10)
        clock.autojump_threshold = 0

    async def main():
        await nursery.sleep(30)
        return nursery.current_time()

    thread = threading.Thread(target=setter)
    thread.start()
    try:
        real_start = time.perf_counter()
        assert nursery.run(main, clock=clock, instruments=[Watch()]) == 30
        assert time.perf_counter() - real_start < 5
    finally:
        thread.join()
    assert blocked.is_set()


def test_a_clock_keeps_its_time_across_runs():
    clock = MockClock(autojump_threshold=0)

    async def main():
        await nursery.sleep(5)
        return nursery.current_time()

    assert nursery.run(main, clock=clock) == 5
    assert nursery.run(main, clock=clock) == 10


async def test_autojump_with_rate_jumps_to_the_deadline(mock_clock):
    mock_clock.rate = 1
    mock_clock.autojump_threshold = 0
    real_start = time.perf_counter()
    start = nursery.current_time()
    await nursery.sleep(1000)
    assert nursery.current_time() - start >= 1000
    assert time.perf_counter() - real_start < 1

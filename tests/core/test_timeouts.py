"""Timeouts and time: move_on_*/fail_*, current_effective_deadline, the
sleeps and current_time, all on a mock clock so that times are exact."""

from __future__ import annotations

import math
import time

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked

# ----------------------------------------------------------------------
# move_on_after / move_on_at


async def test_move_on_after_fires_at_exact_time(autojump_clock):
    t0 = nursery.current_time()
    log = []
    with nursery.move_on_after(2.5) as scope:
        await nursery.sleep(10)
        log.append("not reached")  # pragma: no cover
    log.append("after")
    assert log == ["after"]
    assert isinstance(scope, nursery.CancelScope)
    assert scope.cancel_called and scope.cancelled_caught
    assert nursery.current_time() - t0 == 2.5
    assert scope.deadline == t0 + 2.5


async def test_move_on_after_block_finishes_first(autojump_clock):
    with nursery.move_on_after(5) as scope:
        await nursery.sleep(4.999)
    assert not scope.cancel_called
    assert not scope.cancelled_caught
    assert nursery.current_time() == 4.999


async def test_move_on_after_deadline_counts_from_entry(autojump_clock):
    scope = nursery.move_on_after(3)
    await nursery.sleep(10)
    with scope:
        await nursery.sleep_forever()
    assert nursery.current_time() == 13


async def test_move_on_after_zero_cancels_at_first_checkpoint():
    log = []
    with nursery.move_on_after(0) as scope:
        log.append("runs until the first checkpoint")
        await lowlevel.checkpoint()
        log.append("not reached")  # pragma: no cover
    assert log == ["runs until the first checkpoint"]
    assert scope.cancelled_caught


async def test_move_on_after_accepts_int_and_float(autojump_clock):
    with nursery.move_on_after(1):
        await nursery.sleep_forever()
    with nursery.move_on_after(0.25):
        await nursery.sleep_forever()
    assert nursery.current_time() == 1.25


async def test_move_on_at_fires_at_absolute_time(autojump_clock):
    await nursery.sleep(1)
    with nursery.move_on_at(7) as scope:
        await nursery.sleep_forever()
    assert scope.cancelled_caught
    assert scope.deadline == 7
    assert nursery.current_time() == 7


async def test_move_on_at_in_the_past():
    with nursery.move_on_at(nursery.current_time() - 5) as scope:
        await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_move_on_after_shield(autojump_clock):
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.move_on_after(3, shield=True) as inner:
            await nursery.sleep(1)
            assert inner.shield
            await nursery.sleep_forever()
    assert inner.cancelled_caught
    assert nursery.current_time() == 3
    assert not outer.cancelled_caught


async def test_move_on_after_cancels_nursery_children_at_deadline(autojump_clock):
    log = []

    async def child(name):
        try:
            await nursery.sleep_forever()
        finally:
            log.append((name, nursery.current_time()))

    with nursery.move_on_after(4) as scope:
        async with nursery.open_nursery() as n:
            n.start_soon(child, "a")
            n.start_soon(child, "b")
    assert scope.cancelled_caught
    assert sorted(log) == [("a", 4), ("b", 4)]


async def test_nested_timeouts_outer_shorter(autojump_clock):
    with nursery.move_on_after(3) as outer:
        with nursery.move_on_after(5) as inner:
            await nursery.sleep_forever()
    assert outer.cancelled_caught and not inner.cancelled_caught
    assert not inner.cancel_called
    assert nursery.current_time() == 3


async def test_nested_timeouts_inner_shorter(autojump_clock):
    log = []
    with nursery.move_on_after(5) as outer:
        with nursery.move_on_after(2) as inner:
            await nursery.sleep_forever()
        log.append(("inner done", nursery.current_time()))
        await nursery.sleep_forever()
    assert log == [("inner done", 2)]
    assert inner.cancelled_caught and outer.cancelled_caught
    assert nursery.current_time() == 5


async def test_equal_deadlines_outer_catches(autojump_clock):
    with nursery.move_on_after(2) as outer:
        with nursery.move_on_after(2) as inner:
            await nursery.sleep_forever()
    assert outer.cancelled_caught
    assert not inner.cancelled_caught
    assert inner.cancel_called
    assert nursery.current_time() == 2


async def test_deadline_passed_without_checkpoint_is_not_caught(mock_clock):
    with nursery.move_on_after(1) as scope:
        mock_clock.jump(5)
        # No checkpoint in the block: nothing raised Cancelled.
    assert not scope.cancelled_caught
    assert nursery.current_time() == 5


async def test_many_sequential_timeouts_do_not_drift(autojump_clock):
    for i in range(1, 51):
        with nursery.move_on_after(0.5):
            await nursery.sleep_forever()
        assert nursery.current_time() == i * 0.5


# ----------------------------------------------------------------------
# fail_after / fail_at


async def test_fail_after_raises_too_slow_at_deadline(autojump_clock):
    cleanup = []
    with pytest.raises(nursery.TooSlowError, match=r"^deadline of 3\.000 exceeded$") as info:
        with nursery.fail_after(3):
            try:
                await nursery.sleep(10)
            finally:
                cleanup.append(nursery.current_time())
    assert cleanup == [3]
    assert nursery.current_time() == 3
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__context__, nursery.Cancelled)


async def test_too_slow_error_is_a_timeout_error():
    assert issubclass(nursery.TooSlowError, TimeoutError)
    assert issubclass(nursery.TooSlowError, OSError)  # as TimeoutError is


async def test_fail_after_no_error_when_block_finishes(autojump_clock):
    with nursery.fail_after(3) as scope:
        await nursery.sleep(2)
    assert isinstance(scope, nursery.CancelScope)
    assert not scope.cancel_called
    assert nursery.current_time() == 2


async def test_fail_after_not_raised_when_deadline_passed_without_checkpoint(mock_clock):
    with nursery.fail_after(1) as scope:
        mock_clock.jump(2)
    assert not scope.cancelled_caught


async def test_fail_after_not_raised_when_outer_scope_cancels(autojump_clock):
    with nursery.move_on_after(1) as outer:
        with nursery.fail_after(5) as inner:
            await nursery.sleep_forever()
    assert outer.cancelled_caught
    assert not inner.cancelled_caught
    assert nursery.current_time() == 1


async def test_fail_after_explicit_cancel_raises_too_slow():
    # Like trio: the scope caught a cancellation, so the block did not
    # complete; fail_* reports it as TooSlowError.
    with pytest.raises(nursery.TooSlowError):
        with nursery.fail_after(100) as scope:
            scope.cancel()
            await lowlevel.checkpoint()


async def test_fail_after_lets_other_exceptions_through(autojump_clock):
    with pytest.raises(KeyError):
        with nursery.fail_after(1):
            raise KeyError("mine")
    with pytest.raises(ValueError):
        with nursery.fail_after(1):
            try:
                await nursery.sleep_forever()
            finally:
                raise ValueError("cleanup failed")


async def test_fail_at(autojump_clock):
    await nursery.sleep(2)
    with pytest.raises(nursery.TooSlowError, match=r"deadline of 6\.500 exceeded"):
        with nursery.fail_at(6.5) as scope:
            assert scope.deadline == 6.5
            await nursery.sleep_forever()
    assert nursery.current_time() == 6.5


async def test_fail_at_in_the_past():
    with pytest.raises(nursery.TooSlowError):
        with nursery.fail_at(nursery.current_time() - 1):
            await lowlevel.checkpoint()


async def test_fail_after_shield(autojump_clock):
    with nursery.CancelScope() as outer:
        outer.cancel()
        with pytest.raises(nursery.TooSlowError):
            with nursery.fail_after(2, shield=True):
                await nursery.sleep_forever()
        assert nursery.current_time() == 2
    assert not outer.cancelled_caught


async def test_fail_after_around_nursery_with_failing_child(autojump_clock):
    # The deadline fires, and one child fails while being cancelled: the
    # child's error wins over TooSlowError, the Cancelled parts are dropped.
    async def fails_when_cancelled():
        try:
            await nursery.sleep_forever()
        finally:
            raise ValueError("cleanup")

    async def sleeper():
        await nursery.sleep_forever()

    with pytest.raises(ExceptionGroup) as info:
        with nursery.fail_after(1) as scope:
            async with nursery.open_nursery() as n:
                n.start_soon(fails_when_cancelled)
                n.start_soon(sleeper)
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert scope.cancelled_caught


async def test_fail_after_too_slow_inside_nursery_child(autojump_clock):
    async def slow():
        with nursery.fail_after(1):
            await nursery.sleep(2)

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(slow)
    (exc,) = info.value.exceptions
    assert isinstance(exc, nursery.TooSlowError)


# ----------------------------------------------------------------------
# current_effective_deadline


async def test_effective_deadline_is_inf_without_scopes():
    assert nursery.current_effective_deadline() == math.inf


async def test_effective_deadline_is_the_minimum(autojump_clock):
    with nursery.move_on_at(10):
        assert nursery.current_effective_deadline() == 10
        with nursery.move_on_at(20):
            assert nursery.current_effective_deadline() == 10
            with nursery.move_on_at(5):
                assert nursery.current_effective_deadline() == 5
            assert nursery.current_effective_deadline() == 10
        with nursery.CancelScope():
            assert nursery.current_effective_deadline() == 10
    assert nursery.current_effective_deadline() == math.inf


async def test_effective_deadline_relative(autojump_clock):
    await nursery.sleep(3)
    with nursery.move_on_after(4):
        assert nursery.current_effective_deadline() == 7


async def test_effective_deadline_shield_cuts_the_chain(mock_clock):
    with nursery.move_on_at(10):
        with nursery.CancelScope(shield=True):
            assert nursery.current_effective_deadline() == math.inf
            with nursery.move_on_at(50):
                assert nursery.current_effective_deadline() == 50
        with nursery.CancelScope(shield=True, deadline=30):
            assert nursery.current_effective_deadline() == 30
        with nursery.CancelScope(shield=True, deadline=3):
            assert nursery.current_effective_deadline() == 3


async def test_effective_deadline_minus_inf_when_cancelled(mock_clock):
    with nursery.CancelScope() as outer:
        outer.cancel()
        assert nursery.current_effective_deadline() == -math.inf
        with nursery.CancelScope():
            assert nursery.current_effective_deadline() == -math.inf
        with nursery.CancelScope(shield=True, deadline=40):
            # Shielded from the cancellation: its own deadline applies.
            assert nursery.current_effective_deadline() == 40


async def test_effective_deadline_follows_deadline_changes(mock_clock):
    with nursery.CancelScope() as scope:
        assert nursery.current_effective_deadline() == math.inf
        scope.deadline = 100
        assert nursery.current_effective_deadline() == 100
        scope.shield = True
        assert nursery.current_effective_deadline() == 100


async def test_effective_deadline_in_child_task_includes_nursery_scopes(mock_clock):
    seen = []

    async def child():
        seen.append(nursery.current_effective_deadline())
        with nursery.move_on_at(500):
            seen.append(nursery.current_effective_deadline())

    with nursery.move_on_at(100):
        async with nursery.open_nursery() as n:
            n.cancel_scope.deadline = 200
            n.start_soon(child)
    assert seen == [100, 100]


# ----------------------------------------------------------------------
# sleep, sleep_until, sleep_forever, current_time


async def test_sleep_advances_the_mock_clock_exactly(autojump_clock):
    t0 = nursery.current_time()
    await nursery.sleep(1.5)
    assert nursery.current_time() == t0 + 1.5
    await nursery.sleep(3600)
    assert nursery.current_time() == t0 + 3601.5


async def test_sleep_zero_is_a_checkpoint():
    log = []

    async def other():
        log.append("other")

    async with nursery.open_nursery() as n:
        n.start_soon(other)
        await nursery.sleep(0)
        log.append("after sleep(0)")
    assert log == ["other", "after sleep(0)"]


async def test_sleep_until(autojump_clock):
    await nursery.sleep_until(42)
    assert nursery.current_time() == 42
    await nursery.sleep_until(42.5)
    assert nursery.current_time() == 42.5


async def test_sleep_until_past_deadline_is_still_a_checkpoint(autojump_clock):
    log = []

    async def other():
        log.append("other")

    await nursery.sleep(10)
    async with nursery.open_nursery() as n:
        n.start_soon(other)
        await nursery.sleep_until(3)
        log.append("after")
    assert log == ["other", "after"]
    assert nursery.current_time() == 10
    with nursery.CancelScope() as scope:
        scope.cancel()
        await nursery.sleep_until(3)
    assert scope.cancelled_caught


async def test_sleep_forever_ends_only_by_cancellation(autojump_clock):
    with nursery.move_on_after(1000) as scope:
        await nursery.sleep_forever()
    assert scope.cancelled_caught
    assert nursery.current_time() == 1000


async def test_sleep_inf_is_sleep_forever(autojump_clock):
    with nursery.move_on_after(8):
        await nursery.sleep(math.inf)
    assert nursery.current_time() == 8
    with nursery.move_on_after(8):
        await nursery.sleep_until(math.inf)
    assert nursery.current_time() == 16


async def test_concurrent_sleeps_wake_in_deadline_order(autojump_clock):
    woke = []

    async def sleeper(delay):
        await nursery.sleep(delay)
        woke.append((delay, nursery.current_time()))

    async with nursery.open_nursery() as n:
        for delay in (3, 1, 2, 1):
            n.start_soon(sleeper, delay)
    assert woke == [(1, 1), (1, 1), (2, 2), (3, 3)]


async def test_sleep_cancelled_midway(autojump_clock):
    async def canceller(scope):
        await nursery.sleep(2)
        scope.cancel()

    with nursery.CancelScope() as scope:
        async with nursery.open_nursery() as n:
            n.start_soon(canceller, scope)
            await nursery.sleep(10)
    assert nursery.current_time() == 2
    # The cancelled sleep's timer is gone: the clock does not jump to 10.
    await nursery.sleep(1)
    assert nursery.current_time() == 3


async def test_mock_clock_stands_still_until_jumped(mock_clock):
    log = []

    async def sleeper():
        await nursery.sleep(5)
        log.append(nursery.current_time())

    async with nursery.open_nursery() as n:
        n.start_soon(sleeper)
        await wait_all_tasks_blocked()
        assert nursery.current_time() == 0
        mock_clock.jump(4.9)
        await wait_all_tasks_blocked()
        assert log == []
        mock_clock.jump(0.1)
    assert log == [5.0]


async def test_current_time_is_monotonic_with_system_clock():
    before = time.monotonic()
    now = nursery.current_time()
    after = time.monotonic()
    assert before <= now <= after


async def test_current_time_with_mock_clock_starts_at_zero(mock_clock):
    assert nursery.current_time() == 0
    mock_clock.jump(12.5)
    assert nursery.current_time() == 12.5
    assert lowlevel.current_clock() is mock_clock


def test_current_time_outside_run():
    with pytest.raises(RuntimeError, match=r"current_time\(\) must be called from inside nursery\.run\(\)"):
        nursery.current_time()


def test_real_short_sleep_takes_real_time():
    async def main():
        t0 = nursery.current_time()
        await nursery.sleep(0.05)
        return nursery.current_time() - t0

    elapsed = nursery.run(main)
    assert 0.05 <= elapsed < 2


def test_timeout_with_mock_clock_passed_to_run():
    async def main():
        with nursery.move_on_after(30) as scope:
            await nursery.sleep_forever()
        return scope.cancelled_caught, nursery.current_time()

    assert nursery.run(main, clock=MockClock(autojump_threshold=0)) == (True, 30)

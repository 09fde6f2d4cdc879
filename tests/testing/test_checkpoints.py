"""assert_checkpoints / assert_no_checkpoints: does a block yield to the
scheduler?"""

from __future__ import annotations

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import assert_checkpoints, assert_no_checkpoints, wait_all_tasks_blocked

NO_CHECKPOINT = (
    "assert_checkpoints: the block did not execute a checkpoint (the task never yielded to the scheduler inside it)"
)


def yielded(times):
    return f"assert_no_checkpoints: the block executed a checkpoint (the task yielded to the scheduler {times})"


async def _sleep_zero():
    await nursery.sleep(0)


async def _checkpoint():
    await lowlevel.checkpoint()


async def _shielded_checkpoint():
    await lowlevel.cancel_shielded_checkpoint()


async def _blocking_wait():
    event = nursery.Event()
    lowlevel.call_soon(event.set)
    await event.wait()


async def _set_event_wait():
    event = nursery.Event()
    event.set()
    await event.wait()


async def _long_sleep():
    await nursery.sleep(5)


async def _nothing():
    pass


async def _checkpoint_if_cancelled():
    await lowlevel.checkpoint_if_cancelled()


async def _sync_work():
    event = nursery.Event()
    event.set()
    lowlevel.call_soon(lambda: None)
    sum(range(100))


YIELDING = [_sleep_zero, _checkpoint, _shielded_checkpoint, _blocking_wait, _set_event_wait, _long_sleep]
NOT_YIELDING = [_nothing, _checkpoint_if_cancelled, _sync_work]


@pytest.mark.parametrize("block", YIELDING, ids=lambda f: f.__name__)
async def test_assert_checkpoints_passes_when_the_block_yields(block, autojump_clock):
    with assert_checkpoints():
        await block()


@pytest.mark.parametrize("block", NOT_YIELDING, ids=lambda f: f.__name__)
async def test_assert_checkpoints_fails_when_the_block_does_not_yield(block):
    with pytest.raises(AssertionError) as info:
        with assert_checkpoints():
            await block()
    assert str(info.value) == NO_CHECKPOINT


@pytest.mark.parametrize("block", NOT_YIELDING, ids=lambda f: f.__name__)
async def test_assert_no_checkpoints_passes_when_the_block_does_not_yield(block):
    with assert_no_checkpoints():
        await block()


@pytest.mark.parametrize("block", YIELDING, ids=lambda f: f.__name__)
async def test_assert_no_checkpoints_fails_when_the_block_yields(block, autojump_clock):
    with pytest.raises(AssertionError) as info:
        with assert_no_checkpoints():
            await block()
    assert str(info.value) == yielded("once")


async def test_assert_no_checkpoints_counts_the_yields():
    with pytest.raises(AssertionError) as info:
        with assert_no_checkpoints():
            for _ in range(3):
                await lowlevel.checkpoint()
    assert str(info.value) == yielded("3 times")


async def test_only_the_current_tasks_yields_count():
    # While this task yields once, another task runs 20 steps.
    async def busy():
        for _ in range(20):
            await lowlevel.checkpoint()

    async with nursery.open_nursery() as n:
        n.start_soon(busy)
        with pytest.raises(AssertionError) as info:
            with assert_no_checkpoints():
                await wait_all_tasks_blocked()
        assert str(info.value) == yielded("once")


async def test_a_block_that_raises_propagates_its_error_unchanged():
    with pytest.raises(ValueError, match="not an AssertionError"):
        with assert_checkpoints():
            raise ValueError("not an AssertionError")


async def test_a_cancelled_checkpoint_counts_as_a_checkpoint():
    with nursery.CancelScope() as scope:
        scope.cancel()
        with assert_checkpoints():
            await lowlevel.checkpoint_if_cancelled()
    assert scope.cancelled_caught


async def test_no_checkpoints_failure_is_not_hidden_by_a_cancel_scope():
    # The checkpoint raises Cancelled, which the scope around would swallow;
    # the AssertionError must get out instead.
    with pytest.raises(AssertionError) as info:
        with nursery.CancelScope() as scope:
            scope.cancel()
            with assert_no_checkpoints():
                await lowlevel.checkpoint()
    assert str(info.value) == yielded("once")
    assert isinstance(info.value.__context__, nursery.Cancelled)
    assert not scope.cancelled_caught


async def test_nested_assertions_each_see_the_block():
    with assert_checkpoints():
        with assert_no_checkpoints():
            pass
        with pytest.raises(AssertionError):
            with assert_no_checkpoints():
                await lowlevel.checkpoint()
    with pytest.raises(AssertionError) as info:
        with assert_checkpoints():
            with assert_no_checkpoints():
                pass
    assert str(info.value) == NO_CHECKPOINT


def test_works_in_the_instrumented_and_shuffled_scheduler():
    # With instruments or a random seed the run takes its slow path from the
    # start; the first yield must be seen there too.
    class Noop(lowlevel.Instrument):
        def before_task_step(self, task):
            pass

    async def main():
        with assert_checkpoints():
            await lowlevel.checkpoint()
        with assert_no_checkpoints():
            pass
        with pytest.raises(AssertionError):
            with assert_no_checkpoints():
                await lowlevel.cancel_shielded_checkpoint()
        return "ok"

    assert nursery.run(main, random_seed=3) == "ok"
    assert nursery.run(main, instruments=[Noop()]) == "ok"


async def test_the_instrument_is_removed_after_the_block():
    # Once the block is over, the assertion's instrument no longer sees
    # this task's steps.
    assertion = assert_checkpoints()
    with assertion:
        await lowlevel.checkpoint()
    counter = assertion._counter
    assert counter.resumptions == 1
    await lowlevel.checkpoint()
    await lowlevel.checkpoint()
    assert counter.resumptions == 1


async def test_entering_twice_is_a_runtime_error():
    assertion = assert_no_checkpoints()
    with assertion:
        pass
    with pytest.raises(RuntimeError, match=r"assert_no_checkpoints\(\) objects cannot be entered twice"):
        with assertion:
            pass


def test_outside_a_run_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="must be called from inside nursery.run"):
        with assert_checkpoints():
            pass


def test_every_kind_of_yield_is_reported_to_instruments_as_scheduled():
    # Each resumption counted by the assertions is preceded by a
    # task_scheduled report, whatever kind of yield it was (the shielded
    # checkpoint used to go back to the ready queue unreported).
    log = []

    class Watch(lowlevel.Instrument):
        def task_scheduled(self, task):
            if main_task and task is main_task[0]:
                log.append("scheduled")

        def before_task_step(self, task):
            if main_task and task is main_task[0]:
                log.append("step")

    main_task = []

    async def main():
        main_task.append(lowlevel.current_task())
        for block in (_checkpoint, _shielded_checkpoint, _blocking_wait):
            log.append(block.__name__)
            await block()

    nursery.run(main, instruments=[Watch()])
    assert log == [
        "_checkpoint",
        "scheduled",
        "step",
        "_shielded_checkpoint",
        "scheduled",
        "step",
        "_blocking_wait",
        "scheduled",
        "step",
    ]

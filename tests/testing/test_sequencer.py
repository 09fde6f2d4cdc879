"""Sequencer: blocks in different tasks run in the order of their numbers."""

from __future__ import annotations

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import Sequencer, assert_no_checkpoints, wait_all_tasks_blocked


async def test_steps_run_in_order_whatever_order_the_tasks_start_in():
    seq = Sequencer()
    log = []

    async def step(i):
        async with seq(i):
            log.append(i)

    async with nursery.open_nursery() as n:
        for i in (4, 2, 0, 3, 1):
            n.start_soon(step, i)
    assert log == [0, 1, 2, 3, 4]


async def test_one_task_can_hold_several_steps():
    seq = Sequencer()
    log = []

    async def first():
        async with seq(0):
            log.append("first: 0")
        async with seq(2):
            log.append("first: 2")

    async def second():
        async with seq(1):
            log.append("second: 1")
        async with seq(3):
            log.append("second: 3")

    async with nursery.open_nursery() as n:
        n.start_soon(second)
        n.start_soon(first)
    assert log == ["first: 0", "second: 1", "first: 2", "second: 3"]


async def test_next_step_waits_until_the_block_is_exited(autojump_clock):
    seq = Sequencer()
    log = []

    async def zero():
        async with seq(0):
            log.append("enter 0")
            for _ in range(3):
                await lowlevel.checkpoint()
            await nursery.sleep(10)
            log.append("exit 0")

    async def one():
        async with seq(1):
            log.append(f"enter 1 at {nursery.current_time()}")

    async with nursery.open_nursery() as n:
        n.start_soon(one)
        n.start_soon(zero)
    assert log == ["enter 0", "exit 0", "enter 1 at 10.0"]


async def test_entering_on_ones_turn_is_not_a_checkpoint():
    seq = Sequencer()
    with assert_no_checkpoints():
        async with seq(0):
            pass
        async with seq(1):
            pass


async def test_using_a_step_twice_is_a_runtime_error():
    seq = Sequencer()
    async with seq(0):
        pass
    with pytest.raises(RuntimeError, match="Sequencer: step 0 was already used; each step number may be used once"):
        async with seq(0):
            pytest.fail("ran twice")


async def test_using_a_waiting_step_twice_is_a_runtime_error():
    seq = Sequencer()
    errors = []

    async def waiter():
        async with seq(1):
            pass

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        try:
            async with seq(1):
                pass
        except RuntimeError as exc:
            errors.append(str(exc))
        async with seq(0):
            pass
    assert errors == ["Sequencer: step 1 was already used; each step number may be used once"]


@pytest.mark.parametrize(
    ("position", "error", "message"),
    [
        (-1, ValueError, "Sequencer positions start at 0, got -1"),
        (1.0, TypeError, "Sequencer positions are integers, got 1.0"),
        ("0", TypeError, "Sequencer positions are integers, got '0'"),
    ],
)
def test_bad_positions(position, error, message):
    with pytest.raises(error) as info:
        Sequencer()(position)
    assert str(info.value) == message


async def test_a_block_that_raises_still_passes_the_turn():
    seq = Sequencer()
    log = []

    async def zero():
        with pytest.raises(ValueError):
            async with seq(0):
                raise ValueError("boom")
        log.append("zero caught")

    async def one():
        async with seq(1):
            log.append("one ran")

    async with nursery.open_nursery() as n:
        n.start_soon(one)
        n.start_soon(zero)
    assert log == ["zero caught", "one ran"]


async def test_a_block_cancelled_inside_still_passes_the_turn(autojump_clock):
    seq = Sequencer()
    log = []

    async def zero():
        with nursery.move_on_after(1) as scope:
            async with seq(0):
                await nursery.sleep_forever()
        log.append(f"zero cancelled: {scope.cancelled_caught}")

    async def one():
        async with seq(1):
            log.append("one ran")

    async with nursery.open_nursery() as n:
        n.start_soon(one)
        n.start_soon(zero)
    assert log == ["zero cancelled: True", "one ran"]


async def test_waiter_cancelled_breaks_the_sequence_for_later_steps(autojump_clock):
    seq = Sequencer()
    log = []
    release_zero = nursery.Event()

    async def zero():
        async with seq(0):
            await release_zero.wait()
            log.append("0 ran")

    async def one(scope_box):
        with nursery.CancelScope() as scope:
            scope_box.append(scope)
            async with seq(1):
                log.append("1 ran")  # never
        log.append(f"1 cancelled: {scope.cancelled_caught}")

    async def later(i):
        try:
            async with seq(i):
                log.append(f"{i} ran")  # never
        except RuntimeError as exc:
            log.append(f"{i}: {exc}")

    async with nursery.open_nursery() as n:
        box = []
        n.start_soon(zero)
        n.start_soon(one, box)
        n.start_soon(later, 2)
        n.start_soon(later, 3)
        await wait_all_tasks_blocked()
        box[0].cancel()
        await wait_all_tasks_blocked()
        release_zero.set()
    # A step that comes along after the break fails at once too.
    await later(4)
    broken = "Sequencer: sequence broken: step 1 was cancelled while waiting for its turn, so step {} cannot run in order"
    assert log == [
        "1 cancelled: True",
        f"2: {broken.format(2)}",
        f"3: {broken.format(3)}",
        "0 ran",
        f"4: {broken.format(4)}",
    ]


async def test_a_break_does_not_affect_earlier_steps():
    seq = Sequencer()
    log = []

    async def step(i):
        try:
            async with seq(i):
                log.append(f"{i} ran")
        except RuntimeError as exc:
            log.append(f"{i} failed: {exc}")

    async def abandoned(scope_box):
        with nursery.CancelScope() as scope:
            scope_box.append(scope)
            async with seq(3):
                pass

    async with nursery.open_nursery() as n:
        box = []
        n.start_soon(abandoned, box)
        for i in (4, 2, 1):
            n.start_soon(step, i)
        await wait_all_tasks_blocked()
        box[0].cancel()
        await wait_all_tasks_blocked()
        async with seq(0):
            log.append("0 ran")
    assert log == [
        "4 failed: Sequencer: sequence broken: step 3 was cancelled while waiting for its turn, "
        "so step 4 cannot run in order",
        "0 ran",
        "1 ran",
        "2 ran",
    ]


async def test_outer_cancellation_of_every_step_is_clean():
    # Cancelling the whole nursery while steps wait must end the run with
    # nothing but Cancelled, swallowed by the nursery's scope.
    seq = Sequencer()
    async with nursery.open_nursery() as n:
        for i in (3, 2, 1):
            n.start_soon(lambda i=i: _enter_and_never_leave(seq, i))
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert n.cancel_scope.cancelled_caught


async def _enter_and_never_leave(seq, i):
    async with seq(i):
        await nursery.sleep_forever()


def test_repr():
    seq = Sequencer()
    assert repr(seq) == "<Sequencer turn 0, 0 waiting>"
    assert repr(seq(3)) == "<Sequencer step 3>"

"""ParkingLot (FIFO parking of tasks) and Event, which is built on it."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

import nursery
from nursery import lowlevel
from nursery.lowlevel import ParkingLot
from nursery.testing import wait_all_tasks_blocked


async def _park_and_log(lot, log, name, tasks=None):
    if tasks is not None:
        tasks[name] = lowlevel.current_task()
    try:
        await lot.park()
    except nursery.Cancelled:
        log.append(("cancelled", name))
        raise
    log.append(name)


async def _start_parked(n, lot, log, names, tasks=None):
    """Park one task per name, in this order, and wait until all are parked."""
    for name in names:
        n.start_soon(_park_and_log, lot, log, name, tasks, name=name)
        # One at a time, so the parking order is the start order whatever
        # the scheduling order.
        await wait_all_tasks_blocked()


# ----------------------------------------------------------------------
# park / unpark


async def test_unpark_wakes_in_fifo_order():
    lot = ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a", "b", "c", "d"])
        assert len(lot) == 4
        woken = lot.unpark()
        assert [t.name for t in woken] == ["a"]
        assert len(lot) == 3
        await wait_all_tasks_blocked()
        assert log == ["a"]
        woken = lot.unpark(count=2)
        assert [t.name for t in woken] == ["b", "c"]
        await wait_all_tasks_blocked()
        assert log == ["a", "b", "c"]
        assert [t.name for t in lot.unpark()] == ["d"]
    assert log == ["a", "b", "c", "d"]
    assert len(lot) == 0


async def test_unpark_returns_the_parked_tasks():
    lot = ParkingLot()
    log = []
    tasks = {}
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["x", "y"], tasks)
        woken = lot.unpark_all()
        assert woken[0] is tasks["x"] and woken[1] is tasks["y"]
        assert all(isinstance(t, lowlevel.Task) for t in woken)


async def test_unpark_is_not_a_checkpoint():
    lot = ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a"])
        lot.unpark()
        log.append("after unpark")
        await lowlevel.checkpoint()
        log.append("after checkpoint")
    assert log == ["after unpark", "a", "after checkpoint"]


async def test_unpark_empty_and_zero_and_large_count():
    lot = ParkingLot()
    assert lot.unpark() == []
    assert lot.unpark(count=5) == []
    assert lot.unpark_all() == []
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a", "b"])
        assert lot.unpark(count=0) == []
        await wait_all_tasks_blocked()
        assert log == [] and len(lot) == 2
        woken = lot.unpark(count=10)
        assert [t.name for t in woken] == ["a", "b"]
    assert log == ["a", "b"]


async def test_unpark_count_inf():
    lot = ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a", "b", "c"])
        assert [t.name for t in lot.unpark(count=math.inf)] == ["a", "b", "c"]
    assert log == ["a", "b", "c"]


async def test_unpark_all_wakes_everyone_in_order():
    lot = ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a", "b", "c"])
        woken = lot.unpark_all()
        assert [t.name for t in woken] == ["a", "b", "c"]
        assert len(lot) == 0 and not lot
    assert log == ["a", "b", "c"]


@pytest.mark.parametrize("count", [-1, 1.5, "2", None, -math.inf])
def test_bad_count_is_value_error(count):
    lot = ParkingLot()
    message = re.escape(f"count must be a non-negative int or math.inf, got {count!r}")
    with pytest.raises(ValueError, match=message):
        lot.unpark(count=count)
    with pytest.raises(ValueError, match=message):
        lot.repark(ParkingLot(), count=count)


async def test_len_bool_and_statistics():
    lot = ParkingLot()
    assert len(lot) == 0
    assert not lot
    assert lot.statistics() == lowlevel.ParkingLotStatistics(tasks_waiting=0)
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot, log, ["a", "b"])
        assert len(lot) == 2
        assert lot
        stats = lot.statistics()
        assert stats.tasks_waiting == 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.tasks_waiting = 0
        assert repr(lot).endswith(", 2 parked>")
        lot.unpark()
        assert lot.statistics().tasks_waiting == 1
        lot.unpark()
    assert lot.statistics().tasks_waiting == 0


async def test_cancelled_parked_task_leaves_the_lot():
    lot = ParkingLot()
    log = []
    scopes = {}

    async def parker(name):
        with nursery.CancelScope() as scopes[name]:
            await _park_and_log(lot, log, name)

    async with nursery.open_nursery() as n:
        for name in ["a", "b", "c"]:
            n.start_soon(parker, name)
            await wait_all_tasks_blocked()
        scopes["b"].cancel()
        # Leaving happens at once, before the task even runs.
        assert len(lot) == 2
        await wait_all_tasks_blocked()
        assert log == [("cancelled", "b")]
        assert scopes["b"].cancelled_caught
        # The next unpark goes to "a", then "c": "b" is gone.
        assert [t.name for t in lot.unpark(count=5)] == [f"{parker.__module__}.{parker.__qualname__}"] * 2
    assert log == [("cancelled", "b"), "a", "c"]


async def test_park_in_cancelled_scope_raises_and_leaves_nothing_behind():
    lot = ParkingLot()
    with nursery.CancelScope() as scope:
        scope.cancel()
        await lot.park()
    assert scope.cancelled_caught
    assert len(lot) == 0


def test_park_outside_a_run():
    lot = ParkingLot()
    coro = lot.park()
    with pytest.raises(RuntimeError, match=re.escape("ParkingLot.park() must be called from inside nursery.run()")):
        coro.send(None)
    assert len(lot) == 0


# ----------------------------------------------------------------------
# repark


async def test_repark_moves_oldest_first_without_waking():
    lot1, lot2 = ParkingLot(), ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot2, log, ["z"])
        await _start_parked(n, lot1, log, ["a", "b", "c"])
        lot1.repark(lot2, count=2)
        await wait_all_tasks_blocked()
        assert log == []
        assert (len(lot1), len(lot2)) == (1, 3)
        # The moved tasks go to the end of the new lot, in their order.
        assert [t.name for t in lot2.unpark_all()] == ["z", "a", "b"]
        assert [t.name for t in lot1.unpark_all()] == ["c"]
    assert log == ["z", "a", "b", "c"]


async def test_repark_default_count_is_one():
    lot1, lot2 = ParkingLot(), ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot1, log, ["a", "b"])
        lot1.repark(lot2)
        assert (len(lot1), len(lot2)) == (1, 1)
        assert [t.name for t in lot2.unpark()] == ["a"]
        lot1.unpark()
    assert log == ["a", "b"]


async def test_repark_all_preserves_order():
    lot1, lot2 = ParkingLot(), ParkingLot()
    log = []
    async with nursery.open_nursery() as n:
        await _start_parked(n, lot1, log, ["a", "b", "c"])
        lot1.repark_all(lot2)
        assert len(lot1) == 0 and len(lot2) == 3
        assert lot1.unpark_all() == []
        assert [t.name for t in lot2.unpark_all()] == ["a", "b", "c"]
    assert log == ["a", "b", "c"]


async def test_repark_from_empty_lot_does_nothing():
    lot1, lot2 = ParkingLot(), ParkingLot()
    lot1.repark(lot2, count=3)
    lot1.repark_all(lot2)
    assert len(lot1) == len(lot2) == 0


async def test_repark_needs_a_parking_lot():
    lot = ParkingLot()
    with pytest.raises(TypeError, match=r"repark\(\) needs a ParkingLot, got \[\]"):
        lot.repark([])
    with pytest.raises(TypeError, match="needs a ParkingLot"):
        lot.repark_all(None)


async def test_cancelled_reparked_task_leaves_the_new_lot():
    lot1, lot2 = ParkingLot(), ParkingLot()
    log = []
    scopes = {}

    async def parker(name):
        with nursery.CancelScope() as scopes[name]:
            await _park_and_log(lot1, log, name)

    async with nursery.open_nursery() as n:
        for name in ["a", "b", "c"]:
            n.start_soon(parker, name, name=name)
            await wait_all_tasks_blocked()
        lot1.repark(lot2, count=2)  # a, b -> lot2
        scopes["a"].cancel()
        assert (len(lot1), len(lot2)) == (1, 1)
        await wait_all_tasks_blocked()
        assert log == [("cancelled", "a")]
        assert [t.name for t in lot2.unpark_all()] == ["b"]
        assert [t.name for t in lot1.unpark_all()] == ["c"]
    assert log == [("cancelled", "a"), "b", "c"]


async def test_repark_twice_then_cancel():
    lots = [ParkingLot(), ParkingLot(), ParkingLot()]
    log = []
    scope_holder = {}

    async def parker():
        with nursery.CancelScope() as scope_holder["s"]:
            await _park_and_log(lots[0], log, "t")

    async with nursery.open_nursery() as n:
        n.start_soon(parker)
        await wait_all_tasks_blocked()
        lots[0].repark(lots[1])
        lots[1].repark(lots[2])
        assert [len(lot) for lot in lots] == [0, 0, 1]
        scope_holder["s"].cancel()
        assert [len(lot) for lot in lots] == [0, 0, 0]
    assert log == [("cancelled", "t")]


# ----------------------------------------------------------------------
# Event


async def test_event_set_wakes_all_waiters_in_order():
    event = nursery.Event()
    log = []

    async def waiter(name):
        await event.wait()
        log.append(name)

    assert not event.is_set()
    assert event.statistics() == nursery.EventStatistics(tasks_waiting=0)
    async with nursery.open_nursery() as n:
        for name in ["a", "b", "c"]:
            n.start_soon(waiter, name)
            await wait_all_tasks_blocked()
        assert event.statistics().tasks_waiting == 3
        assert log == []
        assert "unset" in repr(event)
        event.set()
        assert event.is_set()
        assert event.statistics().tasks_waiting == 0
        assert log == []  # set() is not a checkpoint
        event.set()  # idempotent
    assert log == ["a", "b", "c"]
    assert "set" in repr(event) and "unset" not in repr(event)


async def test_event_wait_on_set_event_is_a_checkpoint():
    event = nursery.Event()
    event.set()
    log = []

    async def other():
        log.append("other")

    async with nursery.open_nursery() as n:
        n.start_soon(other)
        await event.wait()
        log.append("after wait")
    assert log == ["other", "after wait"]


async def test_event_wait_on_set_event_raises_when_cancelled():
    event = nursery.Event()
    event.set()
    with nursery.CancelScope() as scope:
        scope.cancel()
        await event.wait()
    assert scope.cancelled_caught


async def test_event_waiter_cancelled_leaves():
    event = nursery.Event()
    async with nursery.open_nursery() as n:
        n.start_soon(event.wait)
        n.start_soon(event.wait)
        await wait_all_tasks_blocked()
        assert event.statistics().tasks_waiting == 2
        n.cancel_scope.cancel()
        assert event.statistics().tasks_waiting == 0
    assert n.cancel_scope.cancelled_caught
    assert not event.is_set()


async def test_event_wait_with_timeout(autojump_clock):
    event = nursery.Event()
    with nursery.move_on_after(2.5) as scope:
        await event.wait()
    assert scope.cancelled_caught
    assert nursery.current_time() == 2.5

    async def setter():
        await nursery.sleep(1)
        event.set()

    async with nursery.open_nursery() as n:
        n.start_soon(setter)
        with nursery.fail_after(5):
            await event.wait()
    assert nursery.current_time() == 3.5

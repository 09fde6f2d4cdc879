"""asyncio-style (edge-triggered) cancellation of kernel tasks:
Task.cancel(msg), cancelling(), uncancel(), done()."""

from __future__ import annotations

import asyncio
import sys

import pytest

import nursery
import nursery.testing
from nursery import lowlevel


async def test_cancel_a_blocked_task_throws_one_cancelled_error_with_the_message() -> None:
    record = []

    async def victim(task_status=nursery.TASK_STATUS_IGNORED) -> None:
        task_status.started(lowlevel.current_task())
        try:
            await nursery.sleep_forever()
        except asyncio.CancelledError as exc:
            record.append((type(exc), exc.args))
        # Edge-triggered: the next checkpoint is not cancelled.
        await nursery.sleep(0)
        record.append("carried on")

    async with nursery.open_nursery() as n:
        task = await n.start(victim)
        assert task.cancel("stop it") is True
        assert task.cancelling() == 1
    assert record == [(asyncio.CancelledError, ("stop it",)), "carried on"]
    assert task.done()
    assert task.cancel() is False


async def test_cancel_a_ready_task_is_delivered_at_its_next_step() -> None:
    record = []

    async def victim() -> None:
        try:
            await nursery.sleep(0)
        except asyncio.CancelledError as exc:
            record.append(exc.args)

    async with nursery.open_nursery() as n:
        n.start_soon(victim)
        await nursery.sleep(0)  # victim is now ready (after its checkpoint)
        (task,) = n.child_tasks
        task.cancel()
    assert record == [()]


async def test_a_task_cancelling_itself_gets_it_at_its_next_suspension() -> None:
    task = lowlevel.current_task()
    task.cancel("self")
    with pytest.raises(asyncio.CancelledError) as info:
        await nursery.Event().wait()
    assert info.value.args == ("self",)
    assert not isinstance(info.value, nursery.Cancelled)
    assert task.uncancel() == 0


async def test_uncancel_counts_down_and_never_below_zero() -> None:
    task = lowlevel.current_task()
    assert task.cancelling() == 0
    assert task.uncancel() == 0
    task.cancel()
    task.cancel()
    assert task.cancelling() == 2
    with pytest.raises(asyncio.CancelledError):
        await nursery.sleep(0)
    # Two requests, one CancelledError (as asyncio).
    await nursery.sleep(0)
    assert task.uncancel() == 1
    assert task.uncancel() == 0


async def test_edge_cancel_is_not_swallowed_by_a_cancelled_scope() -> None:
    # A scope's own Cancelled must not eat the asyncio-style request: the
    # scope's cancellation comes again at every checkpoint, the request only
    # once.
    task = lowlevel.current_task()
    with pytest.raises(asyncio.CancelledError) as info:
        with nursery.CancelScope() as scope:
            scope.cancel()
            task.cancel("edge")
            await nursery.sleep(0)
    assert info.value.args == ("edge",)
    assert not isinstance(info.value, nursery.Cancelled)
    task.uncancel()


async def test_edge_cancel_when_the_abort_fails_is_thrown_when_rescheduled() -> None:
    aborts = []
    task_holder = []

    async def victim() -> None:
        task_holder.append(lowlevel.current_task())

        def abort(raise_cancel):
            aborts.append("tried")
            return lowlevel.Abort.FAILED

        with pytest.raises(asyncio.CancelledError):
            await lowlevel.wait_task_rescheduled(abort)

    async with nursery.open_nursery() as n:
        n.start_soon(victim)
        await nursery.testing.wait_all_tasks_blocked()
        (task,) = task_holder
        task.cancel()
        assert aborts == ["tried"]
        await nursery.sleep(0)
        assert not task.done()
        lowlevel.reschedule(task)  # the value is dropped; CancelledError wins
    assert task.done()


async def test_get_name_set_name_get_coro_get_context() -> None:
    async def child() -> None:
        task = lowlevel.current_task()
        assert task.get_name() == "kid"
        task.set_name("renamed")
        assert task.name == "renamed"
        assert task.get_coro() is task.coro
        assert task.get_context() is task.context

    async with nursery.open_nursery() as n:
        n.start_soon(child, name="kid")



def test_uncancel_to_zero_withdraws_a_self_cancel_as_the_running_asyncio_does() -> None:
    # 3.13 changed this: uncancel() down to zero withdraws a cancellation
    # the running task requested for itself and has not received yet.
    # Kernel tasks follow whichever asyncio is running; compared with stock
    # asyncio itself, not with a hard-coded version table.
    async def program(current_task, checkpoint) -> list:
        events = []
        task = current_task()
        task.cancel("self")
        events.append(task.uncancel())
        try:
            await checkpoint()
            events.append("not cancelled")
        except asyncio.CancelledError as exc:
            events.append(("cancelled", exc.args))
        return events

    stock = asyncio.run(program(asyncio.current_task, lambda: asyncio.sleep(0)))
    kernel = nursery.run(program, lowlevel.current_task, lambda: nursery.sleep(0))
    assert kernel == stock
    assert stock == ([0, "not cancelled"] if sys.version_info >= (3, 13) else [0, ("cancelled", ("self",))])


async def test_uncancel_never_withdraws_a_scope_cancellation() -> None:
    task = lowlevel.current_task()
    with nursery.CancelScope() as scope:
        scope.cancel()
        task.cancel()
        task.uncancel()
        with pytest.raises(asyncio.CancelledError) as caught:
            await nursery.sleep(0)
        # Level-triggered: whatever the asyncio-style request did, the
        # scope goes on cancelling.
        with pytest.raises(nursery.Cancelled):
            await nursery.sleep(0)
        assert isinstance(caught.value, nursery.Cancelled) or sys.version_info < (3, 13)

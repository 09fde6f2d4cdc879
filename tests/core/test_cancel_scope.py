"""Cancel scopes: cancelling, which scope catches, shields, deadlines, and
the errors for misuse."""

from __future__ import annotations

import asyncio
import math

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import wait_all_tasks_blocked

# ----------------------------------------------------------------------
# cancel() before, during and after


async def test_cancel_before_entering():
    scope = nursery.CancelScope()
    scope.cancel()
    assert scope.cancel_called
    reached = []
    with scope:
        reached.append("body runs up to the first checkpoint")
        await lowlevel.checkpoint()
        reached.append("not reached")  # pragma: no cover
    assert reached == ["body runs up to the first checkpoint"]
    assert scope.cancelled_caught


async def test_cancel_while_inside():
    with nursery.CancelScope() as scope:
        assert not scope.cancel_called
        scope.cancel()
        assert scope.cancel_called
        await lowlevel.checkpoint()
        pytest.fail("not reached")  # pragma: no cover
    assert scope.cancelled_caught


async def test_cancel_is_not_a_checkpoint_by_itself():
    log = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        log.append("still running")
    assert log == ["still running"]
    assert scope.cancel_called
    assert not scope.cancelled_caught


async def test_cancel_after_exit_has_no_effect():
    with nursery.CancelScope() as scope:
        await lowlevel.checkpoint()
    scope.cancel()
    assert scope.cancel_called
    assert not scope.cancelled_caught
    await lowlevel.checkpoint()  # nothing cancelled out here


async def test_cancel_is_idempotent():
    with nursery.CancelScope() as scope:
        scope.cancel()
        scope.cancel()
        await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_fresh_scope_state():
    scope = nursery.CancelScope()
    assert not scope.cancel_called
    assert not scope.cancelled_caught
    assert scope.deadline == math.inf
    assert scope.relative_deadline == math.inf
    assert scope.shield is False


async def test_cancel_from_another_task_wakes_blocked_task(autojump_clock):
    log = []

    async def sleeper(scope_holder):
        with nursery.CancelScope() as scope:
            scope_holder.append(scope)
            await nursery.sleep(100)
        log.append(("woke", nursery.current_time(), scope.cancelled_caught))

    holder = []
    async with nursery.open_nursery() as n:
        n.start_soon(sleeper, holder)
        await nursery.sleep(7)
        holder[0].cancel()
    assert log == [("woke", 7, True)]


async def test_cancel_reaches_every_task_in_the_scope():
    finished = []

    async def child(i):
        try:
            await nursery.sleep_forever()
        finally:
            finished.append(i)

    with nursery.CancelScope() as scope:
        async with nursery.open_nursery() as n:
            for i in range(4):
                n.start_soon(child, i)
            await wait_all_tasks_blocked()
            scope.cancel()
    assert sorted(finished) == [0, 1, 2, 3]
    assert scope.cancelled_caught
    # The outer scope was cancelled, so it is the one that caught.
    assert not n.cancel_scope.cancelled_caught


async def test_other_exceptions_pass_through_cancelled_scope():
    with pytest.raises(KeyError):
        with nursery.CancelScope() as scope:
            scope.cancel()
            raise KeyError("x")
    assert not scope.cancelled_caught


async def test_exception_from_cleanup_replaces_cancelled():
    with pytest.raises(ValueError):
        with nursery.CancelScope() as scope:
            scope.cancel()
            try:
                await lowlevel.checkpoint()
            finally:
                raise ValueError("in cleanup")
    assert not scope.cancelled_caught


# ----------------------------------------------------------------------
# level-triggered


async def test_cancellation_is_level_triggered():
    raised = 0
    with nursery.CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            try:
                await lowlevel.checkpoint()
            except nursery.Cancelled:
                raised += 1
        await nursery.sleep(0)
        pytest.fail("not reached")  # pragma: no cover
    assert raised == 3
    assert scope.cancelled_caught


async def test_every_blocking_call_raises_in_cancelled_scope(autojump_clock):
    calls = [
        lambda: nursery.sleep(0),
        lambda: nursery.sleep(10),
        lambda: nursery.sleep_until(nursery.current_time() + 5),
        lambda: nursery.sleep_forever(),
        lambda: lowlevel.checkpoint(),
        lambda: nursery.Event().wait(),
    ]
    t0 = nursery.current_time()
    with nursery.CancelScope() as scope:
        scope.cancel()
        for call in calls:
            with pytest.raises(nursery.Cancelled):
                await call()
    assert nursery.current_time() == t0


async def test_checkpoint_if_cancelled():
    log = []

    async def other():
        log.append("other ran")

    async with nursery.open_nursery() as n:
        n.start_soon(other)
        await lowlevel.checkpoint_if_cancelled()
        # Not a schedule point when not cancelled.
        log.append("after uncancelled checkpoint_if_cancelled")
    with nursery.CancelScope() as scope:
        scope.cancel()
        await lowlevel.checkpoint_if_cancelled()
        pytest.fail("not reached")  # pragma: no cover
    assert scope.cancelled_caught
    assert log == ["after uncancelled checkpoint_if_cancelled", "other ran"]


async def test_cancel_shielded_checkpoint_never_raises():
    log = []

    async def other():
        log.append("other ran")

    with nursery.CancelScope() as scope:
        scope.cancel()
        async with nursery.open_nursery() as n:
            n.start_soon(other)
            await lowlevel.cancel_shielded_checkpoint()
            log.append("after shielded checkpoint")
    assert log == ["other ran", "after shielded checkpoint"]
    assert scope.cancelled_caught  # at the nursery's exit


# ----------------------------------------------------------------------
# shields


async def test_shield_protects_inside(autojump_clock):
    log = []
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True) as inner:
            await nursery.sleep(5)
            log.append(("shielded sleep done", nursery.current_time()))
        assert not inner.cancelled_caught
        await lowlevel.checkpoint()
        log.append("not reached")  # pragma: no cover
    assert outer.cancelled_caught
    assert log == [("shielded sleep done", 5)]


async def test_shield_does_not_block_its_own_cancel():
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True) as inner:
            inner.cancel()
            await lowlevel.checkpoint()
    assert inner.cancelled_caught
    # The outer scope still has to catch its own at the next checkpoint:
    # there was none, so nothing was caught.
    assert not outer.cancelled_caught


async def test_unshielding_while_active_lets_cancellation_in(autojump_clock):
    log = []

    async def waiter(holder):
        with nursery.CancelScope(shield=True) as shielded:
            holder.append(shielded)
            try:
                await nursery.sleep(100)
            except nursery.Cancelled:
                log.append(("cancelled", nursery.current_time()))
                raise

    holder = []
    with nursery.CancelScope() as outer:
        async with nursery.open_nursery() as n:
            n.start_soon(waiter, holder)
            await nursery.sleep(1)
            outer.cancel()
            with nursery.CancelScope(shield=True):
                await nursery.sleep(2)
            assert log == []
            holder[0].shield = False
            assert holder[0].shield is False
    assert log == [("cancelled", 3)]
    assert outer.cancelled_caught
    assert not holder[0].cancelled_caught


async def test_shielding_while_active_protects():
    log = []
    with nursery.CancelScope() as outer:
        with nursery.CancelScope() as inner:
            outer.cancel()
            inner.shield = True
            await lowlevel.checkpoint()
            log.append("shielded checkpoint passed")
            inner.shield = False
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
    assert log == ["shielded checkpoint passed"]
    assert outer.cancelled_caught
    assert not inner.cancelled_caught


async def test_shield_protects_nursery_children(autojump_clock):
    log = []

    async def child():
        await nursery.sleep(3)
        log.append(("child done", nursery.current_time()))

    with nursery.CancelScope() as outer:
        with nursery.CancelScope(shield=True):
            async with nursery.open_nursery() as n:
                n.start_soon(child)
                outer.cancel()
    assert log == [("child done", 3)]
    assert not outer.cancelled_caught


async def test_nested_shield_inside_unshielded_inside_shield():
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True):
            with nursery.CancelScope() as middle:
                await lowlevel.checkpoint()  # not cancelled: shield above
                middle.cancel()
                await lowlevel.checkpoint()
            assert middle.cancelled_caught
            await lowlevel.checkpoint()
    assert not outer.cancelled_caught


async def test_unshielding_a_nursery_scope_cancels_its_children():
    log = []

    async def child(i):
        try:
            await nursery.sleep_forever()
        finally:
            log.append(i)

    with nursery.CancelScope() as outer:
        async with nursery.open_nursery() as n:
            n.cancel_scope.shield = True
            n.start_soon(child, 0)
            n.start_soon(child, 1)
            outer.cancel()
            await wait_all_tasks_blocked()
            assert log == []
            n.cancel_scope.shield = False
            await lowlevel.checkpoint()
            log.append("not reached")  # pragma: no cover
    assert sorted(log) == [0, 1]
    assert outer.cancelled_caught
    assert not n.cancel_scope.cancelled_caught


async def test_deadline_moved_into_the_past_by_another_task(autojump_clock):
    log = []

    async def sleeper(holder):
        with nursery.CancelScope() as scope:
            holder.append(scope)
            await nursery.sleep_forever()
        log.append(("woke", nursery.current_time(), scope.cancelled_caught))

    holder = []
    async with nursery.open_nursery() as n:
        n.start_soon(sleeper, holder)
        await nursery.sleep(4)
        holder[0].deadline = 1
    assert log == [("woke", 4, True)]


async def test_shield_must_be_bool():
    scope = nursery.CancelScope()
    with pytest.raises(TypeError, match="shield must be a bool, got 1"):
        scope.shield = 1


async def test_shielded_scope_with_deadline_still_fires(autojump_clock):
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True, deadline=nursery.current_time() + 4) as inner:
            await nursery.sleep_forever()
    assert inner.cancelled_caught
    assert nursery.current_time() == 4
    assert not outer.cancelled_caught


# ----------------------------------------------------------------------
# which scope catches


async def test_only_the_cancelled_scope_catches():
    with nursery.CancelScope() as outer:
        with nursery.CancelScope() as inner:
            inner.cancel()
            await lowlevel.checkpoint()
        assert inner.cancelled_caught
        await lowlevel.checkpoint()  # outer is not cancelled
    assert not outer.cancelled_caught


async def test_outer_catches_when_both_cancelled():
    log = []
    with nursery.CancelScope() as outer:
        with nursery.CancelScope() as inner:
            inner.cancel()
            outer.cancel()
            await lowlevel.checkpoint()
        log.append("between the exits")  # pragma: no cover
    assert log == []
    assert outer.cancelled_caught
    assert not inner.cancelled_caught
    assert inner.cancel_called


async def test_outer_catches_when_only_outer_cancelled():
    with nursery.CancelScope() as outer:
        with nursery.CancelScope() as inner:
            outer.cancel()
            await lowlevel.checkpoint()
    assert outer.cancelled_caught
    assert not inner.cancelled_caught
    assert not inner.cancel_called


async def test_outermost_of_three_catches():
    with nursery.CancelScope() as a:
        with nursery.CancelScope() as b:
            with nursery.CancelScope() as c:
                c.cancel()
                a.cancel()
                await lowlevel.checkpoint()
    assert [a.cancelled_caught, b.cancelled_caught, c.cancelled_caught] == [True, False, False]


async def test_shielded_inner_catches_its_own_even_if_outer_cancelled():
    log = []
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True) as inner:
            inner.cancel()
            await lowlevel.checkpoint()
        log.append("runs: the shielded scope caught it")
        await lowlevel.checkpoint()
        log.append("not reached")  # pragma: no cover
    assert log == ["runs: the shielded scope caught it"]
    assert inner.cancelled_caught and outer.cancelled_caught


async def test_cancelled_raised_outside_inner_scope_after_inner_exit():
    with nursery.CancelScope() as outer:
        with nursery.CancelScope():
            pass
        outer.cancel()
        await lowlevel.checkpoint()
    assert outer.cancelled_caught


# ----------------------------------------------------------------------
# deadlines


async def test_deadline_fires_at_the_exact_time(autojump_clock):
    t0 = nursery.current_time()
    with nursery.CancelScope(deadline=t0 + 2.5) as scope:
        await nursery.sleep_forever()
    assert scope.cancelled_caught
    assert scope.cancel_called
    assert nursery.current_time() == t0 + 2.5


async def test_deadline_in_the_past_cancels_on_entry():
    scope = nursery.CancelScope(deadline=nursery.current_time() - 1)
    assert not scope.cancel_called
    with scope:
        assert scope.cancel_called
        await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_deadline_not_reached_does_not_cancel(autojump_clock):
    with nursery.CancelScope(deadline=nursery.current_time() + 10) as scope:
        await nursery.sleep(9)
    assert not scope.cancel_called
    assert not scope.cancelled_caught
    # The deadline is gone with the scope: sleeping past it is fine.
    await nursery.sleep(5)
    assert nursery.current_time() == 14


async def test_moving_deadline_earlier_while_active(autojump_clock):
    with nursery.CancelScope(deadline=100) as scope:
        await nursery.sleep(1)
        scope.deadline = 3
        assert scope.deadline == 3
        await nursery.sleep_forever()
    assert scope.cancelled_caught
    assert nursery.current_time() == 3


async def test_moving_deadline_later_while_active(autojump_clock):
    with nursery.CancelScope(deadline=2) as scope:
        await nursery.sleep(1)
        scope.deadline = 50
        await nursery.sleep_forever()
    assert scope.cancelled_caught
    assert nursery.current_time() == 50


async def test_removing_deadline_while_active(autojump_clock):
    async def canceller(scope):
        await nursery.sleep(500)
        scope.cancel()

    with nursery.CancelScope(deadline=2) as scope:
        async with nursery.open_nursery() as n:
            scope.deadline = math.inf
            n.start_soon(canceller, scope)
            await nursery.sleep_forever()
    assert nursery.current_time() == 500
    assert scope.cancelled_caught


async def test_deadline_set_in_the_past_while_active_cancels_at_once():
    with nursery.CancelScope() as scope:
        scope.deadline = nursery.current_time() - 10
        assert scope.cancel_called
        await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_deadline_on_unentered_scope(autojump_clock):
    scope = nursery.CancelScope()
    scope.deadline = 7
    await nursery.sleep(1)
    with scope:
        await nursery.sleep_forever()
    assert nursery.current_time() == 7


async def test_setting_deadline_after_cancel_changes_nothing(autojump_clock):
    with nursery.CancelScope() as scope:
        scope.cancel()
        scope.deadline = 100
        assert scope.deadline == 100
        await nursery.sleep(1000)
    assert scope.cancelled_caught
    assert nursery.current_time() == 0


async def test_relative_deadline_before_entering(autojump_clock):
    scope = nursery.CancelScope(relative_deadline=5)
    assert scope.relative_deadline == 5
    await nursery.sleep(10)
    # Not entered yet: the deadline counts from now.
    assert scope.deadline == 15
    with scope:
        assert scope.deadline == 15
        await nursery.sleep(2)
        assert scope.relative_deadline == 3
        await nursery.sleep_forever()
    assert nursery.current_time() == 15
    assert scope.cancelled_caught


async def test_relative_deadline_set_before_entering(autojump_clock):
    scope = nursery.CancelScope(deadline=1000)
    await nursery.sleep(1)
    assert scope.relative_deadline == 999
    scope.relative_deadline = 4
    assert scope.relative_deadline == 4
    await nursery.sleep(1)
    with scope:
        await nursery.sleep_forever()
    assert nursery.current_time() == 6


async def test_relative_deadline_set_while_active(autojump_clock):
    with nursery.CancelScope() as scope:
        assert scope.relative_deadline == math.inf
        await nursery.sleep(3)
        scope.relative_deadline = 2
        assert scope.deadline == 5
        assert scope.relative_deadline == 2
        await nursery.sleep_forever()
    assert nursery.current_time() == 5


async def test_deadline_setter_clears_relative_deadline(autojump_clock):
    scope = nursery.CancelScope(relative_deadline=100)
    scope.deadline = 3
    with scope:
        await nursery.sleep_forever()
    assert nursery.current_time() == 3


async def test_deadline_and_relative_deadline_both_given():
    with pytest.raises(ValueError, match="give either deadline or relative_deadline, not both"):
        nursery.CancelScope(deadline=5, relative_deadline=5)


async def test_negative_relative_deadline():
    with pytest.raises(ValueError, match=r"relative_deadline must be non-negative, got -1\.0"):
        nursery.CancelScope(relative_deadline=-1)
    scope = nursery.CancelScope()
    with pytest.raises(ValueError, match="relative_deadline must be non-negative"):
        scope.relative_deadline = -0.5


async def test_deadline_must_be_a_number():
    with pytest.raises(TypeError, match="deadline must be a number, got 'soon'"):
        nursery.CancelScope(deadline="soon")
    scope = nursery.CancelScope()
    with pytest.raises(TypeError, match="deadline must be a number, got None"):
        scope.deadline = None


async def test_nan_deadlines_rejected():
    with pytest.raises(ValueError, match="deadline must not be NaN"):
        nursery.CancelScope(deadline=math.nan)
    with pytest.raises(ValueError, match="relative_deadline must not be NaN"):
        nursery.CancelScope(relative_deadline=math.nan)
    scope = nursery.CancelScope()
    with pytest.raises(ValueError, match="deadline must not be NaN"):
        scope.deadline = math.nan
    with pytest.raises(ValueError, match="relative_deadline must not be NaN"):
        scope.relative_deadline = math.nan
    assert scope.deadline == math.inf


async def test_many_deadlines_fire_in_order(autojump_clock):
    fired = []

    async def waiter(deadline):
        with nursery.CancelScope(deadline=deadline):
            await nursery.sleep_forever()
        fired.append((deadline, nursery.current_time()))

    async with nursery.open_nursery() as n:
        for d in (5, 1, 4, 2, 3):
            n.start_soon(waiter, d)
    assert fired == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]


# ----------------------------------------------------------------------
# entering and exiting correctly


async def test_entering_a_scope_twice():
    scope = nursery.CancelScope()
    with scope:
        pass
    with pytest.raises(RuntimeError, match="has already been entered; each CancelScope can be used for only one 'with' block"):
        with scope:
            pass  # pragma: no cover


async def test_entering_an_active_scope_again():
    with nursery.CancelScope() as scope:
        with pytest.raises(RuntimeError, match="has already been entered"):
            scope.__enter__()
        # The failed attempt left the scope intact.
        scope.cancel()
        await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_exit_without_enter():
    scope = nursery.CancelScope()
    with pytest.raises(RuntimeError, match="was exited without being entered"):
        scope.__exit__(None, None, None)


async def test_exit_out_of_order_by_hand():
    a = nursery.CancelScope()
    b = nursery.CancelScope()
    a.__enter__()
    b.__enter__()
    with pytest.raises(RuntimeError, match="out of order") as info:
        a.__exit__(None, None, None)
    message = str(info.value)
    # Both scopes are named, as they were when the mistake happened.
    assert f"<CancelScope at {id(a):#x}, active> was exited while <CancelScope at {id(b):#x}, active>" in message
    assert f"in task {lowlevel.current_task().name!r}" in message
    # The inner scope was closed by force; exiting it now is a no-op.
    assert b.__exit__(None, None, None) is False
    # The task is back in its original scope and works normally.
    with nursery.CancelScope() as c:
        c.cancel()
        await lowlevel.checkpoint()
    assert c.cancelled_caught


async def _scope_across_yield():
    with nursery.CancelScope():
        yield 1
        yield 2  # pragma: no cover


async def test_scope_held_across_yield_in_async_generator():
    agen = _scope_across_yield()
    with pytest.raises(RuntimeError, match="out of order") as info:
        with nursery.CancelScope():
            assert await agen.__anext__() == 1
    assert "async generator" in str(info.value)
    await agen.aclose()

    # The kernel keeps working afterwards, in this task and in others.
    log = []

    async def child():
        await nursery.sleep(0)
        log.append("child")

    async with nursery.open_nursery() as n:
        n.start_soon(child)
    with nursery.move_on_after(0) as scope:
        await nursery.sleep(1)
    assert scope.cancelled_caught
    assert log == ["child"]


async def test_out_of_order_exit_keeps_outer_cancellation_working(autojump_clock):
    async def body():
        agen = _scope_across_yield()
        try:
            with nursery.CancelScope():
                await agen.__anext__()
        except RuntimeError:
            pass
        await agen.aclose()
        await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        n.start_soon(body)
        await nursery.sleep(3)
        n.cancel_scope.cancel()
    assert nursery.current_time() == 3
    assert n.cancel_scope.cancelled_caught


async def test_task_exits_with_scope_still_open():
    async def leaky():
        agen = _scope_across_yield()
        await agen.__anext__()
        # agen is never closed; the task returns with its scope open.
        leaky.agen = agen

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(leaky)
    (exc,) = info.value.exceptions
    assert isinstance(exc, RuntimeError)
    assert "exited with a cancel scope or nursery still open" in str(exc)
    await leaky.agen.aclose()


async def test_scope_exited_in_another_task():
    scope = nursery.CancelScope()
    scope.__enter__()
    errors = []

    async def other():
        try:
            scope.__exit__(None, None, None)
        except RuntimeError as exc:
            errors.append(str(exc))

    with nursery.CancelScope(shield=True):
        async with nursery.open_nursery() as n:
            n.start_soon(other)
    scope.__exit__(None, None, None)
    assert len(errors) == 1
    assert "exited in another task" in errors[0]


async def test_repr():
    scope = nursery.CancelScope(deadline=12.5, shield=True)
    assert repr(scope).startswith("<CancelScope at 0x")
    assert "unbound" in repr(scope)
    assert "shielded" in repr(scope)
    assert "deadline=12.500" in repr(scope)
    with scope:
        scope.cancel()
        assert "active, cancelled" in repr(scope)
    assert "exited" in repr(scope)


# ----------------------------------------------------------------------
# Cancelled


def test_cancelled_cannot_be_constructed():
    with pytest.raises(TypeError, match="cannot be created directly"):
        nursery.Cancelled()
    with pytest.raises(TypeError):
        nursery.Cancelled("with a message")


def test_cancelled_is_an_asyncio_cancelled_error():
    assert issubclass(nursery.Cancelled, asyncio.CancelledError)
    assert issubclass(nursery.Cancelled, BaseException)
    assert not issubclass(nursery.Cancelled, Exception)


async def test_cancelled_caught_as_asyncio_cancelled_error():
    log = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        try:
            await lowlevel.checkpoint()
        except asyncio.CancelledError as exc:
            log.append((type(exc), str(exc)))
            raise
    assert log == [(nursery.Cancelled, "Cancelled")]
    assert scope.cancelled_caught


async def test_cancelled_group_partly_caught():
    cleanup = []

    async def sleeper(i):
        try:
            await nursery.sleep_forever()
        finally:
            cleanup.append(i)

    async def fails_when_cancelled():
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            raise ValueError("cleanup failed")

    with pytest.raises(ExceptionGroup) as info:
        with nursery.CancelScope() as scope:
            async with nursery.open_nursery() as n:
                n.start_soon(sleeper, 0)
                n.start_soon(fails_when_cancelled)
                n.start_soon(sleeper, 1)
                await wait_all_tasks_blocked()
                scope.cancel()
    group = info.value
    assert group.message == "Exceptions from nursery"
    (exc,) = group.exceptions
    assert isinstance(exc, ValueError) and str(exc) == "cleanup failed"
    assert scope.cancelled_caught
    assert not n.cancel_scope.cancelled_caught
    assert sorted(cleanup) == [0, 1]
    # The remainder is raised as itself, not chained to the group it was
    # split from.
    assert group.__context__ is None


async def test_group_of_only_cancelled_is_swallowed_entirely():
    async def sleeper():
        await nursery.sleep_forever()

    with nursery.CancelScope() as scope:
        async with nursery.open_nursery() as n:
            for _ in range(3):
                n.start_soon(sleeper)
            await wait_all_tasks_blocked()
            scope.cancel()
            await lowlevel.checkpoint()
    assert scope.cancelled_caught


async def test_uncancelled_scope_does_not_swallow_cancelled_from_elsewhere():
    # A Cancelled that belongs to an outer scope passes through an inner,
    # uncancelled scope and is caught by the outer one.
    with nursery.CancelScope() as outer:
        with nursery.CancelScope() as inner:
            outer.cancel()
            try:
                await lowlevel.checkpoint()
            finally:
                assert not inner.cancel_called
    assert not inner.cancelled_caught
    assert outer.cancelled_caught

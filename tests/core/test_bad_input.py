"""Every misuse of the kernel's API gets a specific error, at the point of
misuse, that says what went wrong and what to do instead."""

from __future__ import annotations

import asyncio
import functools
import math
import threading

import pytest

import nursery
from nursery import lowlevel

NO_RUN = r"must be called from inside nursery\.run\(\), but no nursery run is active in this thread"
CALL_HINT = r"did you write fn\(\) instead of fn\?"


async def async_fn(*args):
    return args


def sync_fn(*args):
    return "sync result"


async def async_gen_fn():
    yield 1  # pragma: no cover


def _never_awaited_warnings(recwarn):
    return [w for w in recwarn if "was never awaited" in str(w.message)]


# ----------------------------------------------------------------------
# not an async function


async def test_start_soon_coroutine_object(recwarn):
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=CALL_HINT) as info:
            n.start_soon(async_fn())
    message = str(info.value)
    assert message.startswith("start_soon() expected an async function, got a coroutine object")
    assert "start_soon(fn, arg1, arg2)" in message
    assert n.child_tasks == frozenset()
    # The coroutine was closed, so Python does not warn about it as well.
    assert _never_awaited_warnings(recwarn) == []


async def test_start_coroutine_object():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"^start\(\) expected an async function, got a coroutine object") as info:
            await n.start(async_fn())
    assert "start(fn, arg1, arg2)" in str(info.value)
    assert CALL_HINT.replace("\\", "") in str(info.value)


def test_run_coroutine_object(recwarn):
    with pytest.raises(TypeError, match=CALL_HINT) as info:
        nursery.run(async_fn())
    message = str(info.value)
    assert message.startswith("nursery.run() expected an async function, got a coroutine object")
    assert "nursery.run(fn, arg1, arg2)" in message
    assert _never_awaited_warnings(recwarn) == []
    # Nothing was left behind: a new run works.
    assert nursery.run(async_fn, 1) == (1,)


async def test_start_soon_sync_function():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"is synchronous \(it returned 'sync result'\); define it with 'async def'") as info:
            n.start_soon(sync_fn)
    assert str(info.value).startswith("start_soon() expected an async function, but sync_fn is synchronous")
    assert n.child_tasks == frozenset()


async def test_start_soon_sync_lambda():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"<lambda> is synchronous \(it returned 3\)"):
            n.start_soon(lambda: 3)


def test_run_sync_function():
    with pytest.raises(TypeError, match=r"^nursery\.run\(\) expected an async function, but sync_fn is synchronous"):
        nursery.run(sync_fn)


async def test_start_soon_async_generator_function():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"async_gen_fn is an async generator function; iterate it with 'async for'"):
            n.start_soon(async_gen_fn)


def test_run_async_generator_function():
    with pytest.raises(TypeError, match=r"^nursery\.run\(\) expected an async function, but async_gen_fn is an async generator function"):
        nursery.run(async_gen_fn)


async def test_start_soon_non_callable():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"^start_soon\(\) expected an async function, got 42$"):
            n.start_soon(42)
        with pytest.raises(TypeError, match=r"got None"):
            n.start_soon(None)


class _Awaitable:
    def __await__(self):  # pragma: no cover
        yield


async def test_start_soon_function_returning_an_awaitable():
    def returns_awaitable():
        return _Awaitable()

    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"returns_awaitable returned _Awaitable object, which is awaitable but not a coroutine; wrap it"):
            n.start_soon(returns_awaitable)


async def test_start_soon_awaitable_object():
    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"got an awaitable \(_Awaitable\) \(" + CALL_HINT):
            n.start_soon(_Awaitable())


async def test_start_soon_wrong_arguments_are_raised_as_is():
    # A plain TypeError from calling the function with the wrong arguments
    # is the user's own error, not misreported as "not async".
    async def takes_one(x):  # pragma: no cover
        pass

    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match=r"takes_one\(\) takes 1 positional argument but 2 were given"):
            n.start_soon(takes_one, 1, 2)


async def test_start_soon_partial_of_async_function_is_fine():
    got = []

    async def f(a, b):
        got.append((a, b))

    async with nursery.open_nursery() as n:
        n.start_soon(functools.partial(f, 1), 2)
    assert got == [(1, 2)]


# ----------------------------------------------------------------------
# no run active


def test_nursery_sleep_under_stock_asyncio():
    async def main():
        await nursery.sleep(1)

    with pytest.raises(RuntimeError, match=r"^sleep\(\) " + NO_RUN) as info:
        asyncio.run(main())
    # It says what to do.
    assert "run it under nursery.compat, or start the kernel with nursery.run(main)" in str(info.value)
    assert "bad yield" not in str(info.value)


def test_nursery_sleep_zero_under_stock_asyncio():
    async def main():
        await nursery.sleep(0)

    with pytest.raises(RuntimeError, match=r"^checkpoint\(\) " + NO_RUN):
        asyncio.run(main())


def test_open_nursery_under_stock_asyncio():
    async def main():
        async with nursery.open_nursery():
            pass  # pragma: no cover

    with pytest.raises(RuntimeError, match=r"^open_nursery\(\) " + NO_RUN):
        asyncio.run(main())


def test_cancel_scope_under_stock_asyncio():
    async def main():
        with nursery.move_on_after(1):
            await asyncio.sleep(0)  # pragma: no cover

    with pytest.raises(RuntimeError, match=r"CancelScope\.__enter__\(\) .*" + NO_RUN):
        asyncio.run(main())


@pytest.mark.parametrize(
    "call, what",
    [
        (lambda: nursery.sleep_forever(), "sleep_forever()"),
        (lambda: nursery.sleep_until(5), "sleep_until()"),
        (lambda: lowlevel.checkpoint_if_cancelled(), "checkpoint_if_cancelled()"),
        (lambda: lowlevel.cancel_shielded_checkpoint(), "cancel_shielded_checkpoint()"),
    ],
)
def test_awaitables_under_stock_asyncio(call, what):
    async def main():
        await call()

    with pytest.raises(RuntimeError) as info:
        asyncio.run(main())
    assert str(info.value).startswith(f"{what} must be called from inside nursery.run()")


@pytest.mark.parametrize(
    "call, what",
    [
        (nursery.current_time, "current_time()"),
        (nursery.current_effective_deadline, "current_effective_deadline()"),
        (lowlevel.current_task, "current_task()"),
        (lowlevel.current_root_task, "current_root_task()"),
        (lowlevel.current_clock, "current_clock()"),
        (lambda: lowlevel.call_soon(print), "call_soon()"),
        (lambda: nursery.CancelScope().__enter__(), "CancelScope.__enter__()"),
    ],
)
def test_sync_calls_outside_run(call, what):
    with pytest.raises(RuntimeError) as info:
        call()
    assert str(info.value).startswith(what)
    assert "must be called from inside nursery.run()" in str(info.value)


def test_in_run_and_in_task_outside_run():
    assert lowlevel.in_run() is False
    assert lowlevel.in_task() is False


def test_unentered_scope_needs_no_run():
    # Creating and configuring a scope outside a run is fine; only entering
    # it needs a run.
    scope = nursery.CancelScope(deadline=10, shield=True)
    scope.cancel()
    assert scope.cancel_called
    assert nursery.move_on_after(5).relative_deadline == 5


def test_nursery_api_in_another_thread_during_a_run():
    errors = []

    def worker():
        try:
            nursery.current_time()
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()

    nursery.run(main)
    assert len(errors) == 1
    assert "no nursery run is active in this thread" in errors[0]


# ----------------------------------------------------------------------
# nested runs


async def test_nested_run():
    with pytest.raises(RuntimeError, match=r"nursery\.run\(\) was called from inside a run in the same thread; runs cannot be nested") as info:
        nursery.run(async_fn)
    assert "Call the async function directly with 'await'" in str(info.value)
    # The outer run is unharmed.
    await nursery.sleep(0)


async def test_nested_run_does_not_leave_coroutine_unawaited(recwarn):
    with pytest.raises(RuntimeError, match="runs cannot be nested"):
        nursery.run(async_fn)
    assert _never_awaited_warnings(recwarn) == []


# ----------------------------------------------------------------------
# durations and deadlines


async def test_sleep_negative():
    with pytest.raises(ValueError, match=r"^sleep\(\) duration must be non-negative, got -1$"):
        await nursery.sleep(-1)
    with pytest.raises(ValueError, match=r"got -0\.5"):
        await nursery.sleep(-0.5)


async def test_sleep_nan():
    with pytest.raises(ValueError, match=r"^sleep\(\) duration must not be NaN$"):
        await nursery.sleep(math.nan)


@pytest.mark.parametrize("value", ["1", None, b"1", [1]])
async def test_sleep_not_a_number(value):
    with pytest.raises(TypeError, match=r"^sleep\(\) takes a number of seconds, got "):
        await nursery.sleep(value)


async def test_sleep_accepts_number_like_values(autojump_clock):
    import fractions

    await nursery.sleep(fractions.Fraction(1, 2))
    await nursery.sleep(True)  # an int, for better or worse
    assert nursery.current_time() == 1.5


async def test_sleep_until_nan():
    with pytest.raises(ValueError, match=r"^sleep_until\(\) deadline must not be NaN$"):
        await nursery.sleep_until(math.nan)


@pytest.mark.parametrize("value", ["5", None])
async def test_sleep_until_not_a_number(value):
    with pytest.raises(TypeError, match=r"^sleep_until\(\) takes a deadline in seconds \(a number\), got "):
        await nursery.sleep_until(value)


@pytest.mark.parametrize("fn", [nursery.move_on_after, nursery.fail_after])
def test_timeout_negative(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"^{name}\(\) timeout must be non-negative, got -1"):
        fn(-1)
    with pytest.raises(ValueError, match=rf"^{name}\(\) timeout must be non-negative, got -0\.001"):
        fn(-0.001)


@pytest.mark.parametrize("fn", [nursery.move_on_after, nursery.fail_after])
def test_timeout_nan(fn):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}\(\) timeout must not be NaN$"):
        fn(math.nan)


@pytest.mark.parametrize("fn", [nursery.move_on_after, nursery.fail_after])
@pytest.mark.parametrize("value", ["3", None])
def test_timeout_not_a_number(fn, value):
    with pytest.raises(TypeError, match=rf"^{fn.__name__}\(\) takes a number of seconds, got {value!r}$"):
        fn(value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nursery.CancelScope(deadline=math.nan),
        lambda: nursery.move_on_at(math.nan),
        lambda: nursery.fail_at(math.nan),
    ],
)
def test_nan_deadline(make):
    with pytest.raises(ValueError, match=r"^deadline must not be NaN$"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nursery.CancelScope(deadline="10"),
        lambda: nursery.move_on_at("10"),
        lambda: nursery.fail_at(None),
    ],
)
def test_deadline_not_a_number(make):
    with pytest.raises(TypeError, match=r"^deadline must be a number, got "):
        make()


async def test_nan_deadline_set_on_active_scope_leaves_it_unchanged(autojump_clock):
    with nursery.CancelScope(deadline=5) as scope:
        with pytest.raises(ValueError, match="deadline must not be NaN"):
            scope.deadline = math.nan
        assert scope.deadline == 5
        await nursery.sleep_forever()
    assert nursery.current_time() == 5


def test_deadline_and_relative_deadline_together():
    with pytest.raises(ValueError, match=r"^give either deadline or relative_deadline, not both$"):
        nursery.CancelScope(deadline=1, relative_deadline=1)


# ----------------------------------------------------------------------
# scopes, start() and closed nurseries


async def test_entering_a_scope_twice():
    scope = nursery.move_on_after(10)
    with scope:
        pass
    with pytest.raises(RuntimeError, match=r"has already been entered; each CancelScope can be used for only one 'with' block \(create a new one\)"):
        with scope:
            pass  # pragma: no cover


async def test_entering_a_fail_after_twice():
    timeout = nursery.fail_after(10)
    with timeout:
        pass
    with pytest.raises(RuntimeError, match="has already been entered"):
        with timeout:
            pass  # pragma: no cover


async def test_started_twice():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started()
        task_status.started()

    async with nursery.open_nursery() as n:
        # The second call fails in the task, which has moved to n by then.
        with pytest.raises(ExceptionGroup) as info:
            async with nursery.open_nursery() as inner:
                await inner.start(f)
    (exc,) = info.value.exceptions
    assert isinstance(exc, RuntimeError)
    assert str(exc) == "task_status.started() was called twice; call it exactly once"
    assert n.child_tasks == frozenset()


async def test_start_without_started():
    async def never_ready(task_status=nursery.TASK_STATUS_IGNORED):
        await nursery.sleep(0)

    async with nursery.open_nursery() as n:
        with pytest.raises(RuntimeError) as info:
            await n.start(never_ready)
    message = str(info.value)
    assert "never_ready returned without calling task_status.started()" in message
    assert "must call it once it is ready" in message


async def test_start_function_without_task_status_parameter():
    async def no_status():  # pragma: no cover
        pass

    async with nursery.open_nursery() as n:
        with pytest.raises(TypeError, match="unexpected keyword argument 'task_status'"):
            await n.start(no_status)


async def test_start_soon_on_closed_nursery():
    async with nursery.open_nursery() as n:
        pass
    with pytest.raises(RuntimeError, match=r"^this nursery is closed to new tasks: its 'async with' block has finished") as info:
        n.start_soon(async_fn)
    assert "Start tasks in a nursery that is still open" in str(info.value)


async def test_start_on_closed_nursery():
    async with nursery.open_nursery() as n:
        pass
    with pytest.raises(RuntimeError, match="this nursery is closed to new tasks"):
        await n.start(async_fn)


async def test_start_soon_on_closed_nursery_does_not_call_the_function(recwarn):
    called = []

    async def f():  # pragma: no cover
        called.append(True)

    def factory():  # pragma: no cover
        called.append("factory")
        return f()

    async with nursery.open_nursery() as n:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        n.start_soon(factory)
    assert called == []


async def _holds_scope_across_yield():
    with nursery.CancelScope():
        yield


async def test_scopes_exited_out_of_order():
    agen = _holds_scope_across_yield()
    with pytest.raises(RuntimeError, match=r"cancel scopes exited out of order in task") as info:
        with nursery.CancelScope():
            await agen.__anext__()
    assert "held open across a 'yield' in an async generator" in str(info.value)
    await agen.aclose()
    # Still usable afterwards.
    with nursery.move_on_after(0) as scope:
        await nursery.sleep(1)
    assert scope.cancelled_caught


async def test_scope_exited_out_of_order_by_hand():
    outer = nursery.CancelScope()
    inner = nursery.CancelScope()
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="out of order"):
        outer.__exit__(None, None, None)


# ----------------------------------------------------------------------
# awaiting something the kernel does not understand


class _YieldsString:
    def __await__(self):
        yield "not a kernel trap"


class _YieldsNumber:
    def __await__(self):
        return (yield 12345)


async def test_yielding_unknown_object_raises_type_error_naming_the_task():
    async def confused():
        await _YieldsString()

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(confused, name="confused-task")
    (exc,) = info.value.exceptions
    assert isinstance(exc, TypeError)
    message = str(exc)
    assert message.startswith("task 'confused-task' yielded 'not a kernel trap' to the nursery kernel")
    assert "does not know what to do with it" in message
    assert "another async library" in message


async def test_yielding_unknown_object_in_main_task():
    with pytest.raises(TypeError, match=rf"^task {lowlevel.current_task().name!r} yielded 12345 to the nursery kernel"):
        await _YieldsNumber()
    # The task goes on normally.
    await nursery.sleep(0)


async def test_unknown_yield_error_can_be_caught_and_cleanup_runs():
    log = []
    try:
        try:
            await _YieldsString()
        finally:
            log.append("finally")
    except TypeError:
        log.append("caught")
    assert log == ["finally", "caught"]


async def test_shield_not_bool():
    with pytest.raises(TypeError, match=r"^shield must be a bool, got 'yes'$"):
        nursery.CancelScope().shield = "yes"


async def test_cancelled_cannot_be_raised_by_user_code():
    with pytest.raises(TypeError, match=r"^Cancelled is raised by the kernel and cannot be created directly; to cancel something, call cancel\(\) on a CancelScope around it$"):
        raise nursery.Cancelled()


def test_event_wait_under_stock_asyncio_names_event_wait():
    import asyncio

    async def main():
        await nursery.Event().wait()

    with pytest.raises(RuntimeError, match=r"^Event\.wait\(\) must be called from inside nursery\.run\(\)"):
        asyncio.run(main())

"""compat's policy, install(), and asyncio's loop and task functions
(get_event_loop, get_running_loop, set_event_loop, current_task, all_tasks,
create_task, ensure_future, iscoroutine, to_thread,
run_coroutine_threadsafe), compared with stock asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
import types
import warnings

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

ON_312 = sys.version_info >= (3, 12)


@pytest.fixture(autouse=True)
def _restore_policy():
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


@pytest.fixture
def loop():
    loop = compat.new_event_loop()
    yield loop
    loop.close()


def _error(fn, *args, **kwargs):
    with pytest.raises(BaseException) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


# ----------------------------------------------------------------------
# install() and the policy


def test_install_makes_asyncio_run_use_compats_loop() -> None:
    previous = compat.install()
    assert not isinstance(previous, compat.EventLoopPolicy)
    policy = asyncio.get_event_loop_policy()
    assert isinstance(policy, compat.EventLoopPolicy)
    assert isinstance(policy, asyncio.DefaultEventLoopPolicy)
    # idempotent: the compat policy in force stays
    assert compat.install() is policy
    assert asyncio.get_event_loop_policy() is policy

    async def main() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__name__

    assert asyncio.run(main()) == "EventLoop"
    with asyncio.Runner() as runner:
        assert type(runner.get_loop()) is compat.EventLoop
    new = asyncio.new_event_loop()
    assert type(new) is compat.EventLoop
    new.close()

    asyncio.set_event_loop_policy(previous)
    new = asyncio.new_event_loop()
    assert type(new) is not compat.EventLoop
    new.close()


def test_policy_current_loop_per_thread() -> None:
    policy = compat.EventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loop = asyncio.get_event_loop()  # made on demand in the main thread
    assert type(loop) is compat.EventLoop
    assert asyncio.get_event_loop() is loop

    errors = []
    thread = threading.Thread(target=lambda: errors.append(_error(policy.get_event_loop)))
    thread.start()
    thread.join()
    assert errors == [(RuntimeError, f"There is no current event loop in thread {thread.name!r}.")]
    compat.set_event_loop(None)
    loop.close()


# ----------------------------------------------------------------------
# finding the loop


def test_get_running_loop_outside_a_loop_as_stock() -> None:
    expected = (RuntimeError, "no running event loop")
    assert _error(compat.get_running_loop) == _error(asyncio.get_running_loop) == expected


def test_get_running_loop_and_get_event_loop_inside(loop) -> None:
    async def main():
        return compat.get_running_loop(), compat.get_event_loop(), asyncio.get_running_loop()

    assert loop.run_until_complete(main()) == (loop, loop, loop)

    async def in_nursery():
        return compat.get_running_loop(), compat.get_event_loop()

    run_loop, event_loop = nursery.run(in_nursery)
    assert type(run_loop) is compat.EventLoop and event_loop is run_loop


def test_get_event_loop_makes_a_compat_loop_where_stock_makes_its_own() -> None:
    asyncio.set_event_loop_policy(None)  # a fresh default policy, nothing set
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = compat.get_event_loop()
    assert type(loop) is compat.EventLoop
    # the same warning as stock asyncio on this interpreter
    asyncio.set_event_loop_policy(None)
    with warnings.catch_warnings(record=True) as stock_caught:
        warnings.simplefilter("always")
        stock_loop = asyncio.get_event_loop()
    stock_loop.close()
    assert [(w.category, str(w.message)) for w in caught] == [(w.category, str(w.message)) for w in stock_caught]
    if ON_312:
        assert [str(w.message) for w in caught] == ["There is no current event loop"]
        assert caught[0].filename == __file__
    loop.close()

    # through ensure_future too, the warning names the caller
    asyncio.set_event_loop_policy(None)

    async def nothing() -> None:
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = compat.ensure_future(nothing())
    assert type(task.get_loop()) is compat.EventLoop
    if ON_312:
        assert [w.filename for w in caught] == [__file__]
    task.get_loop().run_until_complete(task)
    task.get_loop().close()


def test_set_event_loop(loop) -> None:
    asyncio.set_event_loop_policy(None)
    compat.set_event_loop(loop)
    assert compat.get_event_loop() is loop
    assert asyncio.get_event_loop() is loop
    compat.set_event_loop(None)
    # once set (even to None), nothing is made on demand, as stock
    expected = (RuntimeError, "There is no current event loop in thread 'MainThread'.")
    assert _error(compat.get_event_loop) == _error(asyncio.get_event_loop) == expected


# ----------------------------------------------------------------------
# tasks


def test_current_task_and_all_tasks(loop) -> None:
    async def child() -> None:
        await asyncio.sleep(0)

    async def main():
        me = compat.current_task()
        assert me is asyncio.current_task() and me is compat.current_task(loop)
        t = compat.create_task(child(), name="child")
        tasks = compat.all_tasks()
        assert tasks == asyncio.all_tasks() == compat.all_tasks(loop)
        await t
        return me, t, tasks, compat.all_tasks()

    me, t, tasks, after = loop.run_until_complete(main())
    assert tasks == {me, t}
    assert after == {me}
    assert t.get_name() == "child"
    assert compat.current_task(loop) is None
    assert _error(compat.current_task) == _error(asyncio.current_task) == (RuntimeError, "no running event loop")
    assert _error(compat.all_tasks) == _error(asyncio.all_tasks)


def test_current_task_and_all_tasks_inside_nursery_run() -> None:
    async def main():
        kernel_task = nursery.lowlevel.current_task()
        t = compat.create_task(asyncio.sleep(0))
        async with nursery.open_nursery() as n:
            n.start_soon(nursery.sleep, 0)
            listed = compat.all_tasks()
        await t
        return compat.current_task() is kernel_task, t in listed, kernel_task in listed, len(listed)

    # a plain kernel task is the current task but not in all_tasks; compat
    # tasks are
    assert nursery.run(main) == (True, True, False, 1)


def test_create_task_needs_a_running_loop_as_stock() -> None:
    async def nothing() -> None:
        pass

    errors = []
    for create_task in (asyncio.create_task, compat.create_task):
        coro = nothing()
        errors.append(_error(create_task, coro))
        coro.close()
    assert errors[0] == errors[1] == (RuntimeError, "no running event loop")


def test_create_task_name_and_context(loop) -> None:
    var = contextvars.ContextVar("var", default="outer")

    async def read() -> str:
        return var.get()

    async def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, "inner")
        t1 = compat.create_task(read(), name="n1")
        t2 = compat.create_task(read(), name="n2", context=ctx)
        return t1.get_name(), await t1, t2.get_name(), await t2, t2.get_context() is ctx

    assert loop.run_until_complete(main()) == ("n1", "outer", "n2", "inner", True)


def test_create_task_non_coroutine_as_stock(loop) -> None:
    async def attempt(create_task):
        return _error(create_task, 42)

    stock_loop = asyncio.new_event_loop()
    try:
        stock = stock_loop.run_until_complete(attempt(asyncio.create_task))
    finally:
        stock_loop.close()
    assert loop.run_until_complete(attempt(compat.create_task)) == stock
    assert stock == (TypeError, "a coroutine was expected, got 42")


def test_ensure_future(loop) -> None:
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    async def coro() -> str:
        return "coro"

    async def main():
        fut = loop.create_future()
        assert compat.ensure_future(fut) is fut
        assert compat.ensure_future(fut, loop=loop) is fut
        t1 = compat.ensure_future(coro())
        t2 = compat.ensure_future(Awaitable())
        fut.set_result("fut")
        return type(t1).__name__, await t1, await t2, await fut

    assert loop.run_until_complete(main()) == ("Task", "coro", "awaited", "fut")
    t = compat.ensure_future(coro(), loop=loop)
    assert loop.run_until_complete(t) == "coro"


def test_ensure_future_errors_as_stock(loop) -> None:
    other = compat.new_event_loop()
    fut = other.create_future()
    try:
        for bad in ((fut,), (42,)):
            stock = _error(asyncio.ensure_future, *bad, loop=loop)
            assert _error(compat.ensure_future, *bad, loop=loop) == stock
        assert stock == (TypeError, "An asyncio.Future, a coroutine or an awaitable is required")
        assert _error(compat.ensure_future, fut, loop=loop) == (
            ValueError,
            "The future belongs to a different loop than the one specified as the loop argument",
        )
    finally:
        other.close()


def test_iscoroutine_as_stock() -> None:
    async def coro() -> None:
        pass

    def gen():
        yield

    c = coro()
    objects = [c, gen(), coro, 1, None, types.SimpleNamespace()]
    assert [compat.iscoroutine(o) for o in objects] == [asyncio.iscoroutine(o) for o in objects]
    assert compat.iscoroutine(c)
    c.close()


# ----------------------------------------------------------------------
# threads


def test_to_thread_copies_the_context_and_returns(loop) -> None:
    var = contextvars.ContextVar("var")

    def work(a: int, *, b: int) -> tuple[str, str, int]:
        var.set("changed in thread")
        return threading.current_thread().name, var.get(), a + b

    async def main():
        var.set("set in task")
        name, value, total = await compat.to_thread(work, 1, b=2)
        return name != threading.current_thread().name, value, total, var.get()

    assert loop.run_until_complete(main()) == (True, "changed in thread", 3, "set in task")

    def fail() -> None:
        raise OSError("from the thread")

    with pytest.raises(OSError, match="from the thread"):
        loop.run_until_complete(compat.to_thread(fail))


def test_to_thread_inside_nursery_run() -> None:
    async def main():
        return await compat.to_thread(lambda: threading.current_thread() is threading.main_thread())

    assert nursery.run(main) is False


def test_to_thread_cancelled_stops_waiting(loop) -> None:
    release = threading.Event()

    async def main():
        t = compat.create_task(compat.to_thread(release.wait, 10))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        release.set()
        return "done"

    assert loop.run_until_complete(main()) == "done"
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_coroutine_threadsafe(loop) -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def fail() -> None:
        raise LookupError("nope")

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("task cancelled")
            raise

    log: list[str] = []
    results = []
    started = threading.Event()

    def from_thread() -> None:
        f = compat.run_coroutine_threadsafe(add(1, 2), loop)
        assert isinstance(f, concurrent.futures.Future)
        results.append(f.result(5))
        f = compat.run_coroutine_threadsafe(fail(), loop)
        results.append(type(f.exception(5)).__name__)
        f = compat.run_coroutine_threadsafe(forever(), loop)
        assert started.wait(5)
        assert not f.running()  # (as stock: running only once it is done)
        f.cancel()
        results.append(f.cancelled())
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=from_thread)
    thread.start()
    loop.run_forever()
    thread.join()
    loop.run_until_complete(asyncio.sleep(0))  # the cancellation reaches the task
    assert results == [3, "LookupError", True]
    assert log == ["task cancelled"]


def test_run_coroutine_threadsafe_exceptions_as_stock(loop) -> None:
    async def raises(exc):
        raise exc

    stock_loop = asyncio.new_event_loop()
    try:
        for make in (lambda: concurrent.futures.InvalidStateError("x"), lambda: ZeroDivisionError("y")):
            got = []
            both = ((stock_loop, asyncio.run_coroutine_threadsafe), (loop, compat.run_coroutine_threadsafe))
            for lp, run_threadsafe in both:
                f = run_threadsafe(raises(make()), lp)
                lp.run_until_complete(asyncio.sleep(0.01))
                exc = f.exception(0)
                got.append((type(exc), exc.args))
            assert got[0] == got[1]
    finally:
        stock_loop.close()


def test_run_coroutine_threadsafe_non_coroutine_as_stock(loop) -> None:
    assert _error(compat.run_coroutine_threadsafe, 1, loop) == _error(asyncio.run_coroutine_threadsafe, 1, loop)
    assert _error(compat.run_coroutine_threadsafe, 1, loop) == (TypeError, "A coroutine object is required")


def test_run_coroutine_threadsafe_on_a_mock_clock() -> None:
    clock = MockClock(autojump_threshold=0)
    loop = compat.new_event_loop(clock=clock)
    try:

        async def wait_an_hour() -> float:
            await asyncio.sleep(3600)
            return loop.time()

        async def main():
            f = await compat.to_thread(lambda: compat.run_coroutine_threadsafe(wait_an_hour(), loop))
            return await asyncio.wrap_future(f)

        assert loop.run_until_complete(main()) == 3600.0
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()

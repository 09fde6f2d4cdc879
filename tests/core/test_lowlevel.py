"""The kernel's low-level API: traps, call_soon, system tasks, task
introspection, statistics, RunVar, the task-tree dump and foreign futures."""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import re

import outcome
import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked


def _qualified(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


# ----------------------------------------------------------------------
# wait_task_rescheduled / reschedule / Abort


async def test_reschedule_with_value_returns_it():
    got = []

    async def waiter():
        got.append(await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        assert got == []
        lowlevel.reschedule(task, outcome.Value(42))
    assert got == [42]


async def test_reschedule_default_outcome_is_value_none():
    got = []

    async def waiter():
        got.append(await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        lowlevel.reschedule(task)
    assert got == [None]


async def test_reschedule_with_error_raises_it_in_the_task():
    caught = []

    async def waiter():
        try:
            await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
        except KeyError as exc:
            caught.append(exc)

    error = KeyError("boom")
    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        lowlevel.reschedule(task, outcome.Error(error))
    assert caught == [error]


async def test_reschedule_error_not_caught_reaches_the_nursery():
    async def waiter():
        await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(waiter)
            await wait_all_tasks_blocked()
            (task,) = n.child_tasks
            lowlevel.reschedule(task, outcome.Error(ValueError("from reschedule")))
    assert info.value.message == "Exceptions from nursery"
    (exc,) = info.value.exceptions
    assert type(exc) is ValueError and str(exc) == "from reschedule"


async def test_reschedule_needs_an_outcome():
    async def waiter():
        await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        with pytest.raises(TypeError, match=r"reschedule\(\) needs an outcome.Value or outcome.Error, got 42"):
            lowlevel.reschedule(task, 42)
        # The task is still blocked and can be woken properly.
        lowlevel.reschedule(task)


async def test_abort_succeeded_delivers_cancelled():
    calls = []

    def abort(raise_cancel):
        calls.append(raise_cancel)
        return lowlevel.Abort.SUCCEEDED

    after = []
    with nursery.CancelScope() as scope:
        lowlevel.call_soon(scope.cancel)
        await lowlevel.wait_task_rescheduled(abort)
        after.append("not reached")
    assert after == []
    assert len(calls) == 1 and callable(calls[0])
    assert scope.cancelled_caught


async def test_abort_raise_cancel_raises_cancelled():
    captured = []

    def abort(raise_cancel):
        captured.append(outcome.capture(raise_cancel))
        return lowlevel.Abort.SUCCEEDED

    with nursery.CancelScope() as scope:
        scope.cancel()
        await lowlevel.wait_task_rescheduled(abort)
    (result,) = captured
    assert isinstance(result, outcome.Error)
    assert type(result.error) is nursery.Cancelled


async def test_wait_in_already_cancelled_scope_calls_abort_at_once():
    calls = []

    def abort(raise_cancel):
        calls.append("abort")
        return lowlevel.Abort.SUCCEEDED

    with nursery.CancelScope() as scope:
        scope.cancel()
        await lowlevel.wait_task_rescheduled(abort)
    assert calls == ["abort"]
    assert scope.cancelled_caught


async def test_abort_failed_keeps_task_blocked_until_rescheduled_by_hand():
    state = {}
    log = []

    def abort(raise_cancel):
        state["raise_cancel"] = raise_cancel
        log.append("abort")
        return lowlevel.Abort.FAILED

    async def waiter():
        state["task"] = lowlevel.current_task()
        with nursery.CancelScope() as scope:
            state["scope"] = scope
            try:
                await lowlevel.wait_task_rescheduled(abort)
            finally:
                log.append("woke")
        log.append(("caught", scope.cancelled_caught))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        state["scope"].cancel()
        try:
            assert log == ["abort"]
            # Cancelled, but the wait could not be abandoned: still blocked.
            await wait_all_tasks_blocked()
            assert log == ["abort"]
            assert state["task"] in n.child_tasks
        finally:
            lowlevel.reschedule(state["task"], outcome.capture(state["raise_cancel"]))
    assert log == ["abort", "woke", ("caught", True)]


async def test_abort_failed_then_value_continues_and_next_checkpoint_cancels():
    state = {}
    log = []

    def abort(raise_cancel):
        log.append("abort")
        return lowlevel.Abort.FAILED

    async def waiter():
        state["task"] = lowlevel.current_task()
        with nursery.CancelScope() as scope:
            state["scope"] = scope
            log.append(await lowlevel.wait_task_rescheduled(abort))
            try:
                await lowlevel.checkpoint()
            except nursery.Cancelled:
                log.append("cancelled at checkpoint")
                raise
        log.append(("caught", scope.cancelled_caught))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        state["scope"].cancel()
        lowlevel.reschedule(state["task"], outcome.Value("finished anyway"))
    assert log == ["abort", "finished anyway", "cancelled at checkpoint", ("caught", True)]


async def test_reschedule_of_running_task_is_runtime_error():
    me = lowlevel.current_task()
    with pytest.raises(RuntimeError, match=r"can't reschedule .*it is not blocked in wait_task_rescheduled\(\)"):
        lowlevel.reschedule(me)
    with pytest.raises(RuntimeError, match="not blocked"):
        lowlevel.reschedule(me, outcome.Error(ValueError()))


async def test_reschedule_twice_is_runtime_error():
    async def waiter():
        await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        lowlevel.reschedule(task)
        with pytest.raises(RuntimeError, match=re.escape(f"can't reschedule {task!r}")):
            lowlevel.reschedule(task)


async def test_reschedule_of_task_blocked_in_sleep_is_allowed_but_ready_task_is_not():
    # A task that is ready to run (spawned, not yet started) is not blocked.
    async def child():
        await lowlevel.checkpoint()

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        (task,) = n.child_tasks
        with pytest.raises(RuntimeError, match="not blocked"):
            lowlevel.reschedule(task)


async def test_wait_task_rescheduled_needs_a_callable():
    with pytest.raises(TypeError, match="abort_func must be callable, got 'nope'"):
        await lowlevel.wait_task_rescheduled("nope")


def test_abort_function_returning_non_abort_crashes_the_run():
    log = []

    async def main():
        with nursery.CancelScope() as scope:
            lowlevel.call_soon(scope.cancel)
            try:
                # The abort function says neither SUCCEEDED nor FAILED.
                await lowlevel.wait_task_rescheduled(lambda _: "whatever")
            finally:
                log.append("unwound")

    # The run ends (instead of hanging with the task blocked forever).
    with pytest.raises(nursery.NurseryInternalError, match="returned 'whatever', not an Abort"):
        nursery.run(main)
    assert log == ["unwound"]


def test_abort_function_raising_crashes_the_run_with_cause():
    log = []

    async def main():
        async with nursery.open_nursery() as n:

            async def waiter():
                def abort(raise_cancel):
                    raise ZeroDivisionError("abort exploded")

                try:
                    await lowlevel.wait_task_rescheduled(abort)
                except nursery.Cancelled:
                    log.append("waiter got Cancelled")
                    raise

            n.start_soon(waiter)
            await wait_all_tasks_blocked()
            n.cancel_scope.cancel()

    # The run ends (instead of hanging with the waiter blocked forever).
    with pytest.raises(nursery.NurseryInternalError, match="abort function .* raised") as info:
        nursery.run(main)
    assert type(info.value.__cause__) is ZeroDivisionError
    assert str(info.value.__cause__) == "abort exploded"
    assert log == ["waiter got Cancelled"]


# ----------------------------------------------------------------------
# checkpoints


async def test_checkpoint_lets_other_tasks_run():
    log = []

    async def child(name):
        log.append(name)

    async with nursery.open_nursery() as n:
        n.start_soon(child, "a")
        n.start_soon(child, "b")
        log.append("parent before")
        await lowlevel.checkpoint()
        log.append("parent after")
    assert log == ["parent before", "a", "b", "parent after"]


async def test_checkpoint_raises_when_cancelled():
    log = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        log.append("before")
        await lowlevel.checkpoint()
        log.append("after")
    assert log == ["before"]
    assert scope.cancelled_caught


async def test_checkpoint_raises_cancelled_level_triggered():
    count = 0
    with nursery.CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            try:
                await lowlevel.checkpoint()
            except nursery.Cancelled:
                count += 1
        await lowlevel.checkpoint()
    assert count == 3
    assert scope.cancelled_caught


def test_traps_outside_a_run_raise_runtime_error():
    for trap, name in [
        (lowlevel.checkpoint, "checkpoint()"),
        (lowlevel.cancel_shielded_checkpoint, "cancel_shielded_checkpoint()"),
        (lowlevel.checkpoint_if_cancelled, "checkpoint_if_cancelled()"),
    ]:
        coro = trap()
        with pytest.raises(RuntimeError, match=re.escape(f"{name} must be called from inside nursery.run()")):
            coro.send(None)
        coro.close()
    coro = lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
    with pytest.raises(RuntimeError, match="no nursery run is active in this thread"):
        coro.send(None)


async def test_checkpoint_if_cancelled_is_not_a_schedule_point():
    log = []

    async def child():
        log.append("child")

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        for _ in range(5):
            await lowlevel.checkpoint_if_cancelled()
        log.append("parent")
    assert log == ["parent", "child"]


async def test_checkpoint_if_cancelled_raises_when_cancelled():
    log = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        await lowlevel.checkpoint_if_cancelled()
        log.append("not reached")
    assert log == []
    assert scope.cancelled_caught


async def test_checkpoint_if_cancelled_sees_outer_cancellation_unless_shielded():
    with nursery.CancelScope() as outer:
        outer.cancel()
        with nursery.CancelScope(shield=True) as inner:
            await lowlevel.checkpoint_if_cancelled()  # shielded: no raise
        assert not inner.cancelled_caught
        await lowlevel.checkpoint_if_cancelled()
    assert outer.cancelled_caught


async def test_cancel_shielded_checkpoint_never_raises_but_yields():
    log = []

    async def child():
        log.append("child")

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        with nursery.CancelScope() as scope:
            scope.cancel()
            await lowlevel.cancel_shielded_checkpoint()
            log.append("parent after shielded checkpoint")
            await lowlevel.cancel_shielded_checkpoint()
            log.append("still running")
            await lowlevel.checkpoint()
            log.append("not reached")
        assert scope.cancelled_caught
    assert log == ["child", "parent after shielded checkpoint", "still running"]


# ----------------------------------------------------------------------
# call_soon


async def test_call_soon_runs_callback_with_args_later():
    log = []
    lowlevel.call_soon(log.append, "cb")
    log.append("after call_soon")
    await lowlevel.checkpoint()
    assert log == ["after call_soon", "cb"]


async def test_call_soon_and_task_steps_share_one_fifo():
    log = []

    async def blocked(name):
        await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
        log.append(name)

    async with nursery.open_nursery() as n:
        n.start_soon(blocked, "A", name="A")
        n.start_soon(blocked, "B", name="B")
        await wait_all_tasks_blocked()
        tasks = {t.name: t for t in n.child_tasks}
        lowlevel.call_soon(log.append, "cb1")
        lowlevel.reschedule(tasks["B"])
        lowlevel.call_soon(log.append, "cb2")
        lowlevel.reschedule(tasks["A"])
        lowlevel.call_soon(log.append, "cb3")
        await lowlevel.checkpoint()
        log.append("parent")
    assert log == ["cb1", "B", "cb2", "A", "cb3", "parent"]


async def test_call_soon_from_callback_runs_in_next_batch_after_ready_tasks():
    log = []

    def first():
        log.append("first")
        lowlevel.call_soon(log.append, "nested")

    async def child():
        log.append("child 1")
        await lowlevel.checkpoint()
        log.append("child 2")

    async with nursery.open_nursery() as n:
        lowlevel.call_soon(first)
        n.start_soon(child)
        await lowlevel.checkpoint()
        log.append("parent 1")
        await lowlevel.checkpoint()
        log.append("parent 2")
    # Batch 1: first, child 1, (parent).  Batch 2: nested, child 2, parent 2.
    assert log == ["first", "child 1", "parent 1", "nested", "child 2", "parent 2"]


async def test_callback_cancel_prevents_running():
    log = []
    handle = lowlevel.call_soon(log.append, "cancelled one")
    lowlevel.call_soon(log.append, "kept")
    assert isinstance(handle, lowlevel.Callback)
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()
    assert "cancelled" in repr(handle)
    await lowlevel.checkpoint()
    assert log == ["kept"]


async def test_callback_cancel_after_it_ran_is_harmless():
    log = []
    handle = lowlevel.call_soon(log.append, 1)
    await lowlevel.checkpoint()
    handle.cancel()
    await lowlevel.checkpoint()
    assert log == [1]


async def test_call_soon_context_argument():
    var = contextvars.ContextVar("var", default="unset")
    seen = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    var.set("in task")
    lowlevel.call_soon(lambda: seen.append(("with ctx", var.get())), context=ctx)
    lowlevel.call_soon(lambda: seen.append(("no ctx", var.get())))
    await lowlevel.checkpoint()
    # Without context= the callback does not run in the task's context.
    assert seen == [("with ctx", "in ctx"), ("no ctx", "unset")]
    assert var.get() == "in task"


async def test_call_soon_context_changes_stay_in_that_context():
    var = contextvars.ContextVar("var", default=0)
    ctx = contextvars.Context()
    lowlevel.call_soon(var.set, 5, context=ctx)
    await lowlevel.checkpoint()
    assert ctx[var] == 5
    assert var.get() == 0


async def test_in_a_callback_there_is_a_run_but_no_task():
    seen = {}

    def cb():
        seen["in_run"] = lowlevel.in_run()
        seen["in_task"] = lowlevel.in_task()
        try:
            lowlevel.current_task()
        except RuntimeError as exc:
            seen["error"] = str(exc)

    lowlevel.call_soon(cb)
    await lowlevel.checkpoint()
    assert seen == {
        "in_run": True,
        "in_task": False,
        "error": "current_task() was called outside of any task (in a callback?)",
    }


def test_raising_callback_crashes_the_run_with_nursery_internal_error():
    cleanup = []

    def bad():
        raise ValueError("callback failed")

    async def main():
        async with nursery.open_nursery() as n:

            async def child():
                try:
                    await nursery.sleep_forever()
                finally:
                    cleanup.append("child")

            n.start_soon(child)
            lowlevel.call_soon(bad)
            try:
                await nursery.sleep_forever()
            finally:
                cleanup.append("main")

    with pytest.raises(nursery.NurseryInternalError, match=r"callback <Callback .*bad.*> raised") as info:
        nursery.run(main)
    cause = info.value.__cause__
    assert type(cause) is ValueError and str(cause) == "callback failed"
    assert sorted(cleanup) == ["child", "main"]


def test_call_soon_outside_a_run():
    with pytest.raises(RuntimeError, match=re.escape("call_soon() must be called from inside nursery.run()")):
        lowlevel.call_soon(print)


# ----------------------------------------------------------------------
# spawn_system_task


async def test_spawn_system_task_runs_in_the_system_nursery():
    ran = []

    async def system(x, y):
        ran.append(x + y)

    task = lowlevel.spawn_system_task(system, 1, 2, name="sys")
    assert isinstance(task, lowlevel.Task)
    assert task.name == "sys"
    root = lowlevel.current_root_task()
    (system_nursery,) = root.child_nurseries
    assert task.parent_nursery is system_nursery
    assert task in system_nursery.child_tasks
    await wait_all_tasks_blocked()
    assert ran == [3]
    assert task not in system_nursery.child_tasks


def test_system_task_is_cancelled_when_main_exits():
    log = []

    async def system():
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            log.append("system cancelled")
            raise
        finally:
            log.append("system finally")

    async def main():
        lowlevel.spawn_system_task(system)
        await lowlevel.checkpoint()
        log.append("main returns")
        return "result"

    assert nursery.run(main) == "result"
    assert log == ["main returns", "system cancelled", "system finally"]


def test_main_sees_system_task_still_running():
    # The system task is not part of main's nursery: main returns without
    # waiting for it.
    async def system():
        await nursery.sleep(1000)

    async def main():
        task = lowlevel.spawn_system_task(system)
        await lowlevel.checkpoint()
        return task.coro.cr_frame is not None

    assert nursery.run(main, clock=MockClock()) is True


def test_crashing_system_task_crashes_the_run():
    cleanup = []

    async def system():
        await lowlevel.checkpoint()
        raise OSError("system task broke")

    async def main():
        lowlevel.spawn_system_task(system, name="crasher")
        try:
            await nursery.sleep_forever()
        finally:
            cleanup.append("main finally")

    with pytest.raises(nursery.NurseryInternalError, match="system task 'crasher' crashed") as info:
        nursery.run(main)
    assert type(info.value.__cause__) is OSError
    assert str(info.value.__cause__) == "system task broke"
    assert cleanup == ["main finally"]


def test_system_task_that_catches_cancel_late_does_not_crash():
    # A system task that ends with Cancelled is normal.
    async def system():
        await nursery.sleep_forever()

    async def main():
        lowlevel.spawn_system_task(system)
        return 7

    assert nursery.run(main) == 7


async def test_system_task_context_is_isolated_from_the_spawner():
    var = contextvars.ContextVar("var", default="default")
    var.set("set in main")
    seen = {}

    async def report(key):
        seen[key] = var.get()

    lowlevel.spawn_system_task(report, "system")
    async with nursery.open_nursery() as n:
        n.start_soon(report, "child")
    await wait_all_tasks_blocked()
    assert seen == {"system": "default", "child": "set in main"}


async def test_spawn_system_task_context_argument():
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.Context()
    ctx.run(var.set, "explicit")
    seen = []

    async def report():
        seen.append(var.get())
        var.set("changed by task")

    task = lowlevel.spawn_system_task(report, context=ctx)
    assert task.context is ctx
    await wait_all_tasks_blocked()
    assert seen == ["explicit"]
    assert ctx[var] == "changed by task"


async def test_spawn_system_task_rejects_coroutine_object():
    async def f():
        pass

    coro = f()
    try:
        with pytest.raises(TypeError, match="coroutine object"):
            lowlevel.spawn_system_task(coro)
    finally:
        coro.close()


def test_spawn_system_task_outside_a_run():
    async def f():
        pass

    with pytest.raises(RuntimeError, match=re.escape("spawn_system_task() must be called from inside nursery.run()")):
        lowlevel.spawn_system_task(f)


# ----------------------------------------------------------------------
# current_task, current_root_task, in_run, in_task


def test_accessors_outside_a_run():
    assert lowlevel.in_run() is False
    assert lowlevel.in_task() is False
    for fn, name in [
        (lowlevel.current_task, "current_task()"),
        (lowlevel.current_root_task, "current_root_task()"),
        (lowlevel.current_clock, "current_clock()"),
        (lowlevel.current_statistics, "current_statistics()"),
        (lowlevel.format_task_tree, "format_task_tree()"),
        (nursery.current_time, "current_time()"),
    ]:
        with pytest.raises(RuntimeError, match=re.escape(f"{name} must be called from inside nursery.run()")):
            fn()


async def test_in_run_and_in_task_inside_a_task():
    assert lowlevel.in_run() is True
    assert lowlevel.in_task() is True


async def test_current_task_identity_per_task():
    seen = {}

    async def child(key):
        seen[key] = lowlevel.current_task()
        await lowlevel.checkpoint()
        assert lowlevel.current_task() is seen[key]

    me = lowlevel.current_task()
    async with nursery.open_nursery() as n:
        n.start_soon(child, "a", name="a")
        n.start_soon(child, "b", name="b")
    assert lowlevel.current_task() is me
    assert seen["a"] is not seen["b"]
    assert {seen["a"].name, seen["b"].name} == {"a", "b"}
    assert seen["a"].parent_nursery is n


async def test_current_root_task():
    root = lowlevel.current_root_task()
    assert isinstance(root, lowlevel.Task)
    assert root.name == "<init>"
    assert root.parent_nursery is None
    assert root is not lowlevel.current_task()
    # The main task lives in the root task's (system) nursery.
    (system_nursery,) = root.child_nurseries
    assert system_nursery.parent_task is root
    main = lowlevel.current_task()
    assert main.parent_nursery is system_nursery


def test_in_run_after_the_run_is_false():
    inside = []

    async def main():
        inside.append((lowlevel.in_run(), lowlevel.in_task()))

    nursery.run(main)
    assert inside == [(True, True)]
    assert (lowlevel.in_run(), lowlevel.in_task()) == (False, False)


# ----------------------------------------------------------------------
# Task attributes


async def test_task_name_defaults_to_qualified_function_name():
    async def worker():
        pass

    async with nursery.open_nursery() as n:
        n.start_soon(worker)
        (task,) = n.child_tasks
        assert task.name == _qualified(worker)
        assert task.name.endswith("test_task_name_defaults_to_qualified_function_name.<locals>.worker")
        assert repr(task).startswith(f"<Task {task.name!r} at 0x")


async def test_task_name_given_and_partial():
    async def worker(x):
        pass

    async with nursery.open_nursery() as n:
        n.start_soon(worker, 1, name="explicit name")
        n.start_soon(functools.partial(worker, 2))
        names = sorted(t.name for t in n.child_tasks)
    assert names == sorted(["explicit name", _qualified(worker)])


async def test_task_non_string_name_is_formatted():
    async def worker():
        pass

    class Named:
        __qualname__ = "Named"
        __module__ = "somewhere"

    async with nursery.open_nursery() as n:
        n.start_soon(worker, name=Named)
        (task,) = n.child_tasks
        assert task.name == "somewhere.Named"


async def test_task_coro_and_context():
    var = contextvars.ContextVar("v", default=None)
    got = {}

    async def worker():
        var.set("inside")
        got["task"] = lowlevel.current_task()
        await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        n.start_soon(worker)
        await wait_all_tasks_blocked()
        task = got["task"]
        assert inspect.iscoroutine(task.coro)
        assert task.coro.cr_code is worker.__code__
        assert isinstance(task.context, contextvars.Context)
        assert task.context[var] == "inside"
        assert var.get() is None
        n.cancel_scope.cancel()


async def test_task_child_nurseries_outermost_first():
    me = lowlevel.current_task()
    before = me.child_nurseries
    async with nursery.open_nursery() as outer:
        async with nursery.open_nursery() as inner:
            assert me.child_nurseries == before + [outer, inner]
            assert outer.parent_task is me and inner.parent_task is me
            listing = me.child_nurseries
            listing.clear()  # a copy: changing it changes nothing
            assert me.child_nurseries == before + [outer, inner]
        assert me.child_nurseries == before + [outer]
    assert me.child_nurseries == before


async def test_task_eventual_parent_nursery_during_start():
    seen = {}

    async def starter(task_status=nursery.TASK_STATUS_IGNORED):
        task = lowlevel.current_task()
        seen["before_parent"] = task.parent_nursery
        seen["before_eventual"] = task.eventual_parent_nursery
        task_status.started()
        seen["after_parent"] = task.parent_nursery
        seen["after_eventual"] = task.eventual_parent_nursery

    async with nursery.open_nursery() as target:
        await target.start(starter)
    assert seen["before_eventual"] is target
    assert seen["before_parent"] is not target
    assert seen["before_parent"].parent_task is lowlevel.current_task()
    assert seen["after_parent"] is target
    assert seen["after_eventual"] is None


async def test_plain_task_has_no_eventual_parent():
    assert lowlevel.current_task().eventual_parent_nursery is None


# ----------------------------------------------------------------------
# clock and statistics


async def test_current_clock_default_is_system_clock():
    clock = lowlevel.current_clock()
    assert isinstance(clock, lowlevel.SystemClock)
    assert isinstance(clock, lowlevel.Clock)
    t = nursery.current_time()
    assert clock.current_time() >= t


async def test_current_clock_is_the_mock_clock(mock_clock):
    assert lowlevel.current_clock() is mock_clock
    mock_clock.jump(12.5)
    assert nursery.current_time() == mock_clock.current_time() == 12.5


def test_run_rejects_non_clock():
    async def main():
        pass

    with pytest.raises(TypeError, match="clock must be a nursery Clock"):
        nursery.run(main, clock=object())


async def test_statistics_counts_tasks(mock_clock):
    stats = lowlevel.current_statistics()
    # The root task and the main task.
    assert stats.tasks_living == 2
    assert stats.tasks_runnable == 0
    assert stats.callbacks_ready == 0
    assert stats.seconds_to_next_deadline == math.inf
    assert stats.run_sync_soon_queue_size == 0
    assert stats.io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 0, "reader_callbacks": 0, "writer_callbacks": 0}

    async with nursery.open_nursery() as n:
        for delay in (5, 7, 9):
            n.start_soon(nursery.sleep, delay)
        stats = lowlevel.current_statistics()
        assert stats.tasks_living == 5
        assert stats.tasks_runnable == 3
        lowlevel.call_soon(lambda: None)
        assert lowlevel.current_statistics().callbacks_ready == 1
        await wait_all_tasks_blocked()
        stats = lowlevel.current_statistics()
        assert stats.tasks_living == 5
        assert stats.tasks_runnable == 0
        assert stats.callbacks_ready == 0
        assert stats.seconds_to_next_deadline == 5.0
        mock_clock.jump(2)
        assert lowlevel.current_statistics().seconds_to_next_deadline == 3.0
        mock_clock.jump(7)
    assert nursery.current_time() == 9.0
    stats = lowlevel.current_statistics()
    assert stats.tasks_living == 2
    assert stats.seconds_to_next_deadline == math.inf


async def test_statistics_is_frozen():
    stats = lowlevel.current_statistics()
    with pytest.raises(AttributeError):
        stats.tasks_living = 0


# ----------------------------------------------------------------------
# RunVar


async def test_run_var_without_default_raises_lookup_error():
    var = lowlevel.RunVar("nodefault")
    with pytest.raises(LookupError, match="RunVar 'nodefault' has no value in this run and no default"):
        var.get()
    assert var.get("fallback") == "fallback"
    assert var.name == "nodefault"
    assert repr(var) == "<RunVar name='nodefault'>"


async def test_run_var_default_and_set_and_reset():
    var = lowlevel.RunVar("v", default=1)
    assert var.get() == 1
    assert var.get(99) == 99  # get's default wins over the variable's
    t1 = var.set(2)
    assert isinstance(t1, lowlevel.RunVarToken)
    assert var.get() == 2
    assert var.get(99) == 2
    t2 = var.set(3)
    assert t2.old_value == 2
    assert var.get() == 3
    var.reset(t2)
    assert var.get() == 2
    var.reset(t1)
    assert var.get() == 1
    assert var.get(99) == 99


async def test_run_var_token_reuse_and_foreign_token():
    var = lowlevel.RunVar("v")
    other = lowlevel.RunVar("other")
    token = var.set("x")
    with pytest.raises(ValueError, match="was not created by this RunVar"):
        other.reset(token)
    with pytest.raises(ValueError, match="was not created by this RunVar"):
        var.reset("not a token")
    var.reset(token)
    with pytest.raises(LookupError):
        var.get()
    with pytest.raises(ValueError, match="this RunVarToken has already been used"):
        var.reset(token)


async def test_run_var_is_shared_by_all_tasks_of_a_run():
    var = lowlevel.RunVar("shared", default=0)

    async def setter():
        var.set(10)

    async with nursery.open_nursery() as n:
        n.start_soon(setter)
    # Unlike a ContextVar, a value set in a child task is seen by the parent.
    assert var.get() == 10


def test_run_var_is_isolated_between_runs():
    var = lowlevel.RunVar("per-run", default="fresh")
    seen = []

    async def main(value):
        seen.append(var.get())
        var.set(value)
        seen.append(var.get())

    nursery.run(main, "first")
    nursery.run(main, "second")
    assert seen == ["fresh", "first", "fresh", "second"]


def test_run_var_outside_a_run():
    var = lowlevel.RunVar("v", default=1)
    with pytest.raises(RuntimeError, match=re.escape("RunVar('v').get() must be called from inside nursery.run()")):
        var.get()
    with pytest.raises(RuntimeError, match="no nursery run is active"):
        var.set(2)


# ----------------------------------------------------------------------
# format_task_tree


async def _parked_at_known_line(lines, key):
    lines[key] = inspect.currentframe().f_lineno + 1
    await nursery.sleep_forever()


async def test_format_task_tree_shows_nurseries_tasks_and_where_they_wait():
    lines = {}
    async with nursery.open_nursery() as n:
        n.start_soon(_parked_at_known_line, lines, "a", name="worker-a")
        async with nursery.open_nursery() as inner:
            inner.cancel_scope.shield = True
            inner.start_soon(_parked_at_known_line, lines, "b", name="worker-b")
            await wait_all_tasks_blocked()
            tree = lowlevel.format_task_tree()
            inner.cancel_scope.cancel()
        n.cancel_scope.cancel()
    text = tree.splitlines()
    me = lowlevel.current_task()
    assert text[0].startswith("task '<init>' (blocked)")
    assert any(line.endswith("nursery") and "─" in line for line in text[1:2])
    assert f"task {me.name!r} (running): " in tree
    assert (
        f"task 'worker-a' (blocked): _parked_at_known_line at test_lowlevel.py:{lines['a']} (in sleep_forever)"
        in tree
    )
    assert (
        f"task 'worker-b' (blocked): _parked_at_known_line at test_lowlevel.py:{lines['b']} (in sleep_forever)"
        in tree
    )
    assert "nursery [shielded]" in tree
    # Structure: both nurseries belong to the running task, each holds its worker.
    idx_a = next(i for i, line in enumerate(text) if "worker-a" in line)
    idx_b = next(i for i, line in enumerate(text) if "worker-b" in line)
    assert text[idx_a - 1].endswith("├── nursery")
    assert text[idx_a].lstrip("│ ").startswith("└── task 'worker-a'")
    assert text[idx_b - 1].endswith("└── nursery [shielded]")
    assert text[idx_b].lstrip(" ").startswith("└── task 'worker-b'")
    assert text[idx_a - 2].lstrip("│ └├─").startswith(f"task {me.name!r} (running)")
    assert idx_b == idx_a + 2 == len(text) - 1


async def test_format_task_tree_scope_notes(mock_clock):
    async with nursery.open_nursery() as n:
        n.start_soon(nursery.sleep_forever, name="sleepy")
        n.cancel_scope.deadline = 12.25
        await wait_all_tasks_blocked()
        assert "nursery [deadline=12.250]" in lowlevel.format_task_tree()
        n.cancel_scope.deadline = math.inf
        n.cancel_scope.cancel()
        assert "nursery [cancelled]" in lowlevel.format_task_tree()
        n.cancel_scope.shield = True
        n.cancel_scope.deadline = 12.25
        tree = lowlevel.format_task_tree()
        assert "nursery [cancelled, shielded, deadline=12.250]" in tree
        # The cancelled task is ready (to receive Cancelled), not blocked.
        assert "task 'sleepy' (ready)" in tree


async def test_format_task_tree_from_a_given_root():
    async def parent():
        async with nursery.open_nursery() as n:
            n.start_soon(nursery.sleep_forever, name="grandchild")
            await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        n.start_soon(parent, name="parent")
        await wait_all_tasks_blocked()
        (task,) = n.child_tasks
        tree = lowlevel.format_task_tree(task)
        n.cancel_scope.cancel()
    lines = tree.splitlines()
    assert lines[0].startswith("task 'parent' (blocked): parent at test_lowlevel.py:")
    assert lines[1] == "└── nursery"
    assert lines[2].startswith("    └── task 'grandchild' (blocked): ")
    assert len(lines) == 3
    assert "<init>" not in tree


# ----------------------------------------------------------------------
# foreign futures (asyncio's Future protocol)


class FakeFuture:
    """The smallest object that follows asyncio's future protocol."""

    def __init__(self):
        self._asyncio_future_blocking = False
        self._done = False
        self._cancelled = False
        self._result = None
        self._callbacks = []
        self.cancel_calls = 0
        self.removed = []

    def add_done_callback(self, fn, *, context=None):
        self._callbacks.append(fn)

    def remove_done_callback(self, fn):
        before = len(self._callbacks)
        self._callbacks = [cb for cb in self._callbacks if cb != fn]
        self.removed.append(fn)
        return before - len(self._callbacks)

    def _finish(self):
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def cancel(self, msg=None):
        self.cancel_calls += 1
        if self._done:
            return False
        self._cancelled = True
        self._finish()
        return True

    def cancelled(self):
        return self._cancelled

    def done(self):
        return self._done

    def set_result(self, value):
        self._result = value
        self._finish()

    def result(self):
        if self._cancelled:
            raise RuntimeError("fake future was cancelled")
        if not self._done:
            raise RuntimeError("result is not ready")
        return self._result

    def __await__(self):
        if not self._done:
            self._asyncio_future_blocking = True
            yield self
        if not self._done:
            raise RuntimeError("await wasn't used with future")
        return self.result()


async def test_foreign_future_parks_until_done():
    fut = FakeFuture()
    log = []

    async def waiter():
        log.append(("got", await fut))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert log == []
        assert len(fut._callbacks) == 1
        assert fut._asyncio_future_blocking is False  # reset by the kernel
        assert lowlevel.current_statistics().tasks_runnable == 0
        fut.set_result("hello")
        log.append("set")
    assert log == ["set", ("got", "hello")]
    assert fut.cancel_calls == 0


async def test_foreign_future_completed_from_a_callback():
    fut = FakeFuture()
    lowlevel.call_soon(fut.set_result, 5)
    assert await fut == 5


async def test_foreign_future_already_done_does_not_block():
    fut = FakeFuture()
    fut.set_result("ready")
    log = []

    async def other():
        log.append("other")

    async with nursery.open_nursery() as n:
        n.start_soon(other)
        log.append(await fut)
    assert log == ["ready", "other"]


async def test_foreign_future_cancelled_scope_cancels_the_future():
    fut = FakeFuture()
    log = []

    async def waiter():
        with nursery.CancelScope() as scope:
            log.append("scope")
            try:
                await fut
            except nursery.Cancelled:
                log.append("Cancelled")
                raise
        log.append(("caught", scope.cancelled_caught))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert log == ["scope", "Cancelled"]
    assert fut.cancel_calls == 1
    assert fut.cancelled()
    assert len(fut.removed) == 1  # the kernel's wake-up callback was removed first


async def test_foreign_future_with_move_on_after(autojump_clock):
    fut = FakeFuture()
    with nursery.move_on_after(3) as scope:
        await fut
    assert scope.cancelled_caught
    assert nursery.current_time() == 3
    assert fut.cancel_calls == 1


async def test_foreign_future_awaited_in_already_cancelled_scope():
    fut = FakeFuture()
    with nursery.CancelScope() as scope:
        scope.cancel()
        await fut
    assert scope.cancelled_caught
    assert fut.cancel_calls == 1


async def test_foreign_future_done_before_cancel_wins():
    # The future completes and the scope is cancelled in the same batch:
    # the task was already rescheduled, so the abort is not called.
    fut = FakeFuture()
    results = []

    async def waiter():
        results.append(await fut)

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        fut.set_result("won")
        n.cancel_scope.cancel()
    assert results == ["won"]
    assert fut.cancel_calls == 0


class _BadYieldFuture(FakeFuture):
    def __await__(self):
        yield self  # without setting _asyncio_future_blocking
        return None


async def test_foreign_future_yielded_without_blocking_flag():
    with pytest.raises(RuntimeError, match="yield was used instead of yield from in task .* with <"):
        await _BadYieldFuture()


async def test_yielding_an_unknown_object_is_type_error():
    import types

    @types.coroutine
    def weird():
        yield 42

    with pytest.raises(TypeError, match="yielded 42 to the nursery kernel, which does not know what to do with it"):
        await weird()


async def test_format_task_tree_shows_the_running_task_at_its_current_line():
    async def helper():
        return inspect.currentframe().f_lineno, lowlevel.format_task_tree()

    line, tree = await helper()
    me = lowlevel.current_task()
    assert f"task {me.name!r} (running): helper at test_lowlevel.py:{line} (in format_task_tree)" in tree

"""Nurseries: children run concurrently, the block waits for them, errors
cancel the rest and come out as one exception group, and ``start()`` hands a
task over to another nursery once it is ready."""

from __future__ import annotations

import contextvars

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import wait_all_tasks_blocked

GROUP_MESSAGE = "Exceptions from nursery"


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        out: list[BaseException] = []
        for exc in group.exceptions:
            out.extend(_leaves(exc))
        return out
    return [group]


# ----------------------------------------------------------------------
# start_soon and waiting


async def test_children_run_concurrently_in_time_order(autojump_clock):
    log = []

    async def child(name, delay):
        log.append(("start", name, nursery.current_time()))
        await nursery.sleep(delay)
        log.append(("end", name, nursery.current_time()))

    t0 = nursery.current_time()
    async with nursery.open_nursery() as n:
        n.start_soon(child, "a", 3)
        n.start_soon(child, "b", 1)
        n.start_soon(child, "c", 2)
    assert [(kind, name, t - t0) for kind, name, t in log] == [
        ("start", "a", 0),
        ("start", "b", 0),
        ("start", "c", 0),
        ("end", "b", 1),
        ("end", "c", 2),
        ("end", "a", 3),
    ]
    # Concurrent, not sequential: 3 seconds in all, not 6.
    assert nursery.current_time() - t0 == 3


async def test_start_soon_does_not_run_the_child_immediately():
    log = []

    async def child():
        log.append("child")

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        log.append("after start_soon")
        await lowlevel.checkpoint()
        log.append("after checkpoint")
    assert log == ["after start_soon", "child", "after checkpoint"]


async def test_children_first_run_in_spawn_order():
    log = []

    async def child(i):
        log.append(i)

    async with nursery.open_nursery() as n:
        for i in range(10):
            n.start_soon(child, i)
    assert log == list(range(10))


async def test_block_waits_for_all_children(autojump_clock):
    done = []

    async def child(i):
        await nursery.sleep(i)
        done.append(i)

    async with nursery.open_nursery() as n:
        for i in (5, 1, 3):
            n.start_soon(child, i)
        assert done == []
    assert sorted(done) == [1, 3, 5]
    assert n.child_tasks == frozenset()


async def test_empty_nursery_returns_immediately(autojump_clock):
    t0 = nursery.current_time()
    async with nursery.open_nursery() as n:
        pass
    assert nursery.current_time() == t0
    assert n.child_tasks == frozenset()


async def test_children_can_start_siblings(autojump_clock):
    log = []

    async def grandchild():
        await nursery.sleep(2)
        log.append("grandchild")

    async def child(n):
        await nursery.sleep(1)
        n.start_soon(grandchild)
        log.append("child")

    async with nursery.open_nursery() as n:
        n.start_soon(child, n)
    assert log == ["child", "grandchild"]
    assert nursery.current_time() == 3


async def test_start_soon_passes_positional_args():
    got = []

    async def child(*args):
        got.append(args)

    async with nursery.open_nursery() as n:
        n.start_soon(child, 1, "two", None)
    assert got == [(1, "two", None)]


async def test_child_return_value_is_discarded():
    async def child():
        return 42

    async with nursery.open_nursery() as n:
        n.start_soon(child)
    # Nothing to assert but that no error came out of the block.
    assert n.child_tasks == frozenset()


# ----------------------------------------------------------------------
# errors: cancellation of the rest and the exception group


async def test_child_error_cancels_siblings_and_body(autojump_clock):
    log = []

    async def sleeper(name):
        try:
            await nursery.sleep_forever()
        finally:
            log.append(("finally", name, nursery.current_time()))

    async def crasher():
        await nursery.sleep(5)
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper, "s1")
            n.start_soon(crasher)
            n.start_soon(sleeper, "s2")
            try:
                await nursery.sleep_forever()
            finally:
                log.append(("finally", "body", nursery.current_time()))
    group = info.value
    assert group.message == GROUP_MESSAGE
    assert len(group.exceptions) == 1
    assert isinstance(group.exceptions[0], ValueError)
    assert str(group.exceptions[0]) == "boom"
    assert sorted(log) == [
        ("finally", "body", 5),
        ("finally", "s1", 5),
        ("finally", "s2", 5),
    ]


async def test_error_group_is_exception_group_for_plain_exceptions():
    async def crasher():
        raise KeyError("k")

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
    assert type(info.value) is ExceptionGroup
    assert info.value.message == GROUP_MESSAGE
    (exc,) = info.value.exceptions
    assert type(exc) is KeyError


async def test_single_error_is_still_a_group():
    async def crasher():
        raise ValueError("only one")

    try:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
    except ValueError:  # pragma: no cover - would be a bug
        pytest.fail("a nursery must always raise a group (strict mode)")
    except ExceptionGroup as group:
        assert [str(e) for e in group.exceptions] == ["only one"]
    else:  # pragma: no cover
        pytest.fail("no exception")


async def test_multiple_errors_in_the_order_they_happened(autojump_clock):
    async def crash_after(delay, exc):
        try:
            await nursery.sleep(delay)
        finally:
            # Each one raises while being cancelled, in a known order.
            with nursery.CancelScope(shield=True):
                await nursery.sleep(delay)
            raise exc

    async def first():
        await nursery.sleep(1)
        raise ValueError("first")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crash_after, 30, KeyError("third"))
            n.start_soon(first)
            n.start_soon(crash_after, 20, TypeError("second"))
    assert [type(e) for e in info.value.exceptions] == [ValueError, TypeError, KeyError]
    assert [e.args[0] for e in info.value.exceptions] == ["first", "second", "third"]


async def test_errors_raised_in_same_batch_keep_spawn_order():
    async def crasher(i):
        raise ValueError(i)

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            for i in range(5):
                n.start_soon(crasher, i)
    assert [e.args[0] for e in info.value.exceptions] == [0, 1, 2, 3, 4]


async def test_body_exception_is_included_in_group():
    async def sleeper():
        await nursery.sleep_forever()

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper)
            await lowlevel.checkpoint()
            raise ValueError("from the body")
    assert info.value.message == GROUP_MESSAGE
    (exc,) = info.value.exceptions
    assert isinstance(exc, ValueError) and str(exc) == "from the body"
    assert n.child_tasks == frozenset()


async def test_body_exception_cancels_children_and_their_finally_runs():
    log = []

    async def sleeper():
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    with pytest.raises(ExceptionGroup):
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper)
            await wait_all_tasks_blocked()
            raise RuntimeError("x")
    assert log == ["cancelled", "finally"]


async def test_body_and_child_exceptions_both_in_group(autojump_clock):
    async def crasher():
        raise ValueError("child")

    async def slow_crasher():
        try:
            await nursery.sleep_forever()
        finally:
            raise KeyError("while cancelled")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(slow_crasher)
            n.start_soon(crasher)
            await nursery.sleep(1)  # Cancelled here; the scope catches it.
    excs = info.value.exceptions
    assert [type(e) for e in excs] == [ValueError, KeyError]


async def test_body_exception_without_checkpoint_comes_after_child_errors():
    async def crasher():
        raise ValueError("child")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
            with nursery.CancelScope(shield=True):
                await wait_all_tasks_blocked()
            raise KeyError("body")
    assert [type(e) for e in info.value.exceptions] == [ValueError, KeyError]


async def test_cancelled_children_do_not_appear_in_group():
    async def sleeper():
        await nursery.sleep_forever()

    async def crasher():
        await wait_all_tasks_blocked()
        raise ValueError

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            for _ in range(3):
                n.start_soon(sleeper)
            n.start_soon(crasher)
    assert [type(e) for e in _leaves(info.value)] == [ValueError]
    assert n.cancel_scope.cancelled_caught


async def test_nested_nurseries_give_nested_groups():
    async def crasher(exc):
        raise exc

    async def inner_owner():
        async with nursery.open_nursery() as inner:
            inner.start_soon(crasher, ValueError("inner"))

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as outer:
            outer.start_soon(inner_owner)
    outer_group = info.value
    assert outer_group.message == GROUP_MESSAGE
    (inner_group,) = outer_group.exceptions
    assert isinstance(inner_group, ExceptionGroup)
    assert inner_group.message == GROUP_MESSAGE
    (leaf,) = inner_group.exceptions
    assert isinstance(leaf, ValueError) and str(leaf) == "inner"


async def test_nested_nursery_in_body_and_sibling_error():
    async def crasher(exc):
        await wait_all_tasks_blocked()
        raise exc

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as outer:
            outer.start_soon(crasher, KeyError("outer child"))
            async with nursery.open_nursery() as inner:
                inner.start_soon(crasher, ValueError("inner child"))
    group = info.value
    # Both crash in the same batch; the inner nursery's group is the body's
    # exception, which comes after the sibling's.
    assert [type(e) for e in group.exceptions] == [KeyError, ExceptionGroup]
    assert [type(e) for e in group.exceptions[1].exceptions] == [ValueError]


async def test_three_levels_of_nesting():
    async def crasher():
        raise ValueError("deep")

    async def level(depth):
        async with nursery.open_nursery() as n:
            if depth == 0:
                n.start_soon(crasher)
            else:
                n.start_soon(level, depth - 1)

    with pytest.raises(ExceptionGroup) as info:
        await level(2)
    group = info.value
    for _ in range(2):
        (group,) = group.exceptions
        assert isinstance(group, ExceptionGroup) and group.message == GROUP_MESSAGE
    (leaf,) = group.exceptions
    assert str(leaf) == "deep"


async def test_keyboard_interrupt_from_body_makes_base_exception_group():
    cleaned = []

    async def sleeper():
        try:
            await nursery.sleep_forever()
        finally:
            cleaned.append(True)

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper)
            await wait_all_tasks_blocked()
            raise KeyboardInterrupt
    assert not isinstance(info.value, ExceptionGroup)
    assert [type(e) for e in info.value.exceptions] == [KeyboardInterrupt]
    assert cleaned == [True]


async def test_group_is_not_chained_to_the_body_exception():
    # The body's exception is inside the group already; the group must not
    # also carry it as __context__ (tracebacks would show it twice).
    async def crasher():
        raise KeyError("child")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
            with nursery.CancelScope(shield=True):
                await wait_all_tasks_blocked()
            raise ValueError("body")
    assert [type(e) for e in info.value.exceptions] == [KeyError, ValueError]
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


async def test_keyboard_interrupt_from_child_makes_base_exception_group():
    async def ki():
        raise KeyboardInterrupt

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(ki)
    assert type(info.value) is BaseExceptionGroup
    assert not isinstance(info.value, ExceptionGroup)
    assert info.value.message == GROUP_MESSAGE
    (exc,) = info.value.exceptions
    assert type(exc) is KeyboardInterrupt


async def test_custom_base_exception_from_child_cancels_siblings():
    class Fatal(BaseException):
        pass

    cleaned = []

    async def sleeper():
        try:
            await nursery.sleep_forever()
        finally:
            cleaned.append(True)

    async def fatal():
        await wait_all_tasks_blocked()
        raise Fatal("stop")

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper)
            n.start_soon(fatal)
    assert [type(e) for e in info.value.exceptions] == [Fatal]
    assert not isinstance(info.value, ExceptionGroup)
    assert cleaned == [True]


async def test_mixed_base_and_plain_exceptions():
    async def crasher(exc):
        raise exc

    with pytest.raises(BaseExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher, ValueError("v"))
            n.start_soon(crasher, SystemExit(3))
    assert type(info.value) is BaseExceptionGroup
    assert [type(e) for e in info.value.exceptions] == [ValueError, SystemExit]
    matched, rest = info.value.split(ValueError)
    assert [type(e) for e in matched.exceptions] == [ValueError]
    assert [type(e) for e in rest.exceptions] == [SystemExit]


async def test_except_star_works_on_nursery_group():
    async def crasher():
        raise ValueError("x")

    caught = []
    try:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
    except* ValueError as group:
        caught.extend(group.exceptions)
    assert [str(e) for e in caught] == ["x"]


async def test_child_that_swallows_cancelled_keeps_running_until_checkpoint(autojump_clock):
    log = []

    async def stubborn():
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            log.append("swallowed")
        # Level-triggered: the next checkpoint raises again.
        try:
            await nursery.sleep(1)
        except nursery.Cancelled:
            log.append("cancelled again")
            raise

    async def crasher():
        await nursery.sleep(1)
        raise ValueError

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(stubborn)
            n.start_soon(crasher)
    assert log == ["swallowed", "cancelled again"]
    assert [type(e) for e in info.value.exceptions] == [ValueError]


async def test_exception_traceback_points_into_the_child():
    async def crasher():
        raise ValueError("tb")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
    (exc,) = info.value.exceptions
    tb = exc.__traceback__
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert names[-1] == "crasher"


async def test_no_task_outlives_its_nursery_after_error(autojump_clock):
    tasks = []

    async def child():
        tasks.append(lowlevel.current_task())
        try:
            await nursery.sleep_forever()
        finally:
            # Cleanup that takes time is awaited by the nursery.
            with nursery.CancelScope(shield=True):
                await nursery.sleep(10)

    async def crasher():
        await nursery.sleep(1)
        raise ValueError

    with pytest.raises(ExceptionGroup):
        async with nursery.open_nursery() as n:
            n.start_soon(child)
            n.start_soon(crasher)
    assert nursery.current_time() == 11
    assert n.child_tasks == frozenset()
    # The task's coroutine has finished.
    assert tasks[0].coro.cr_frame is None


# ----------------------------------------------------------------------
# attributes


async def test_child_tasks_parent_task_and_cancel_scope():
    me = lowlevel.current_task()
    started = []

    async def child():
        started.append(lowlevel.current_task())
        await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        assert n.parent_task is me
        assert isinstance(n.cancel_scope, nursery.CancelScope)
        assert n.child_tasks == frozenset()
        n.start_soon(child)
        n.start_soon(child)
        (spawned,) = [n.child_tasks]
        assert len(spawned) == 2
        await wait_all_tasks_blocked()
        assert n.child_tasks == frozenset(started)
        for task in started:
            assert task.parent_nursery is n
        assert n in me.child_nurseries
        n.cancel_scope.cancel()
    assert n.child_tasks == frozenset()
    assert n not in me.child_nurseries
    assert n.cancel_scope.cancel_called and n.cancel_scope.cancelled_caught


async def test_child_tasks_shrinks_as_children_finish(autojump_clock):
    async def child(delay):
        await nursery.sleep(delay)

    async with nursery.open_nursery() as n:
        n.start_soon(child, 1)
        n.start_soon(child, 2)
        assert len(n.child_tasks) == 2
        await nursery.sleep(1.5)
        assert len(n.child_tasks) == 1
        (left,) = n.child_tasks
        assert left.coro.cr_frame is not None
    assert n.child_tasks == frozenset()


async def test_child_tasks_is_a_snapshot():
    async def child():
        pass

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        snapshot = n.child_tasks
        assert isinstance(snapshot, frozenset)
    assert len(snapshot) == 1
    assert n.child_tasks == frozenset()


async def test_child_nurseries_outermost_first():
    me = lowlevel.current_task()
    async with nursery.open_nursery() as a:
        async with nursery.open_nursery() as b:
            assert me.child_nurseries == [a, b]
        assert me.child_nurseries == [a]
    assert me.child_nurseries == []


async def test_cancel_scope_cancels_everything_in_the_nursery(autojump_clock):
    log = []

    async def child(i):
        try:
            await nursery.sleep_forever()
        finally:
            log.append(i)

    async with nursery.open_nursery() as n:
        for i in range(3):
            n.start_soon(child, i)
        await nursery.sleep(1)
        n.cancel_scope.cancel()
        await nursery.sleep(1)
        log.append("body not reached")  # pragma: no cover
    assert sorted(log) == [0, 1, 2]
    assert n.cancel_scope.cancelled_caught
    assert nursery.current_time() == 1


async def test_cancelling_nursery_before_children_run():
    ran = []

    async def child():
        ran.append("started")
        await lowlevel.checkpoint()
        ran.append("not reached")  # pragma: no cover

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        n.cancel_scope.cancel()
    # The child runs up to its first checkpoint, which raises Cancelled.
    assert ran == ["started"]


async def test_default_task_name_is_qualified_function_name():
    names = []

    async def child():
        names.append(lowlevel.current_task().name)

    async with nursery.open_nursery() as n:
        n.start_soon(child)
    assert names == [f"{child.__module__}.{child.__qualname__}"]
    assert names[0].endswith("test_default_task_name_is_qualified_function_name.<locals>.child")


async def test_custom_task_name():
    names = []

    async def child():
        names.append(lowlevel.current_task().name)

    async with nursery.open_nursery() as n:
        n.start_soon(child, name="worker-1")
        n.start_soon(child, name=12)
    assert names[0] == "worker-1"
    assert names[1] == "12"


async def test_task_name_of_partial_is_the_wrapped_function():
    import functools

    names = []

    async def child(x):
        names.append((x, lowlevel.current_task().name))

    async with nursery.open_nursery() as n:
        n.start_soon(functools.partial(child, 7))
    assert names == [(7, f"{child.__module__}.{child.__qualname__}")]


async def test_task_name_used_in_repr():
    reprs = []

    async def child():
        reprs.append(repr(lowlevel.current_task()))

    async with nursery.open_nursery() as n:
        n.start_soon(child, name="fancy")
    assert reprs[0].startswith("<Task 'fancy' at 0x")


# ----------------------------------------------------------------------
# contextvars

_var: contextvars.ContextVar[str] = contextvars.ContextVar("_var", default="unset")


async def test_child_inherits_context_at_spawn_time():
    seen = []

    async def child():
        seen.append(_var.get())

    _var.set("parent value")
    async with nursery.open_nursery() as n:
        n.start_soon(child)
        _var.set("changed after spawn")
    assert seen == ["parent value"]


async def test_child_context_changes_do_not_leak():
    seen = []

    async def child(value):
        _var.set(value)
        await lowlevel.checkpoint()
        seen.append(_var.get())

    _var.set("parent")
    async with nursery.open_nursery() as n:
        n.start_soon(child, "a")
        n.start_soon(child, "b")
    assert seen == ["a", "b"]
    assert _var.get() == "parent"


async def test_each_task_has_its_own_context_object():
    contexts = []

    async def child():
        contexts.append(lowlevel.current_task().context)

    async with nursery.open_nursery() as n:
        n.start_soon(child)
        n.start_soon(child)
    assert contexts[0] is not contexts[1]
    mine = lowlevel.current_task().context
    assert all(context is not mine for context in contexts)


async def test_start_copies_callers_context():
    seen = []

    async def starter(task_status=nursery.TASK_STATUS_IGNORED):
        seen.append(_var.get())
        _var.set("child changed it")
        task_status.started()
        seen.append(_var.get())

    async with nursery.open_nursery() as n:
        _var.set("caller")
        await n.start(starter)
        assert _var.get() == "caller"
    assert seen == ["caller", "child changed it"]


# ----------------------------------------------------------------------
# start()


async def test_start_returns_value_passed_to_started():
    async def server(port, task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started(("listening", port))
        await nursery.sleep_forever()

    async with nursery.open_nursery() as n:
        value = await n.start(server, 8080)
        assert value == ("listening", 8080)
        n.cancel_scope.cancel()


async def test_start_returns_none_when_started_without_value():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started()

    async with nursery.open_nursery() as n:
        assert await n.start(f) is None


async def test_start_waits_until_started(autojump_clock):
    log = []

    async def slow_start(task_status=nursery.TASK_STATUS_IGNORED):
        log.append("starting")
        await nursery.sleep(5)
        log.append("ready")
        task_status.started()
        await nursery.sleep(5)
        log.append("finished")

    async with nursery.open_nursery() as n:
        await n.start(slow_start)
        log.append(("start returned", nursery.current_time()))
    log.append(("nursery exited", nursery.current_time()))
    assert log == ["starting", "ready", ("start returned", 5), "finished", ("nursery exited", 10)]


async def test_start_moves_task_to_target_nursery():
    seen = {}

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        me = lowlevel.current_task()
        seen["before"] = me.parent_nursery
        seen["eventual"] = me.eventual_parent_nursery
        task_status.started()
        seen["after"] = me.parent_nursery
        seen["eventual after"] = me.eventual_parent_nursery
        seen["task"] = me
        await nursery.sleep_forever()

    async with nursery.open_nursery() as target:
        async with nursery.open_nursery() as caller_nursery:
            caller_nursery.start_soon(lambda: target.start(f))
        assert seen["before"] is not target
        assert seen["before"] is not caller_nursery
        assert seen["eventual"] is target
        assert seen["after"] is target
        assert seen["eventual after"] is None
        assert seen["task"] in target.child_tasks
        target.cancel_scope.cancel()


async def test_started_task_is_not_in_target_before_started():
    observed = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        observed.append(lowlevel.current_task() in target.child_tasks)
        await lowlevel.checkpoint()
        task_status.started()
        observed.append(lowlevel.current_task() in target.child_tasks)

    async with nursery.open_nursery() as target:
        await target.start(f)
    assert observed == [False, True]


async def test_started_task_runs_in_target_after_caller_is_gone(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started()
        await nursery.sleep(10)
        log.append(("done", nursery.current_time()))

    async def caller(target):
        await target.start(f)
        log.append("caller returns")

    async with nursery.open_nursery() as target:
        async with nursery.open_nursery() as other:
            other.start_soon(caller, target)
        log.append(("other closed", nursery.current_time()))
    assert log == ["caller returns", ("other closed", 0), ("done", 10)]


async def test_callers_cancellation_reaches_task_before_started(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        try:
            await nursery.sleep(10)
        except nursery.Cancelled:
            log.append(("cancelled", nursery.current_time()))
            raise
        task_status.started()  # pragma: no cover

    async with nursery.open_nursery() as target:
        with nursery.move_on_after(3) as scope:
            await target.start(f)
            log.append("not reached")  # pragma: no cover
    assert scope.cancelled_caught
    assert log == [("cancelled", 3)]
    assert target.child_tasks == frozenset()


async def test_callers_cancellation_does_not_reach_task_after_started(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started()
        await nursery.sleep(10)
        log.append(("finished", nursery.current_time()))

    async with nursery.open_nursery() as target:
        with nursery.CancelScope() as scope:
            await target.start(f)
            scope.cancel()
            await nursery.sleep(1)
        log.append(("caller cancelled", nursery.current_time()))
    assert scope.cancelled_caught
    assert log == [("caller cancelled", 0), ("finished", 10)]


async def test_target_cancellation_does_not_reach_task_before_started(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        await nursery.sleep(5)
        log.append(("ready", nursery.current_time()))
        task_status.started()
        try:
            await nursery.sleep(5)
        except nursery.Cancelled:
            log.append(("cancelled after move", nursery.current_time()))
            raise

    async def caller(target):
        await target.start(f)
        log.append("start returned")

    async with nursery.open_nursery() as other:
        # The caller runs in `other`, outside the target nursery, so that
        # cancelling the target does not cancel the caller.
        async with nursery.open_nursery() as target:
            other.start_soon(caller, target)
            await nursery.sleep(1)
            target.cancel_scope.cancel()
    assert log == [("ready", 5), "start returned", ("cancelled after move", 5)]
    assert target.cancel_scope.cancelled_caught


async def test_scopes_entered_before_started_move_with_task(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        with nursery.CancelScope() as inner:
            task_status.started(inner)
            try:
                await nursery.sleep_forever()
            finally:
                log.append(("inner finally", nursery.current_time()))
        log.append(("inner caught", inner.cancelled_caught))

    async with nursery.open_nursery() as target:
        with nursery.CancelScope() as caller_scope:
            inner = await target.start(f)
            # The caller's cancellation no longer reaches the moved scope ...
            caller_scope.cancel()
            await nursery.sleep(1)  # raises Cancelled at once
        assert caller_scope.cancelled_caught
        assert not inner.cancel_called
        await nursery.sleep(2)
        assert log == []
        # ... the target's does.
        target.cancel_scope.cancel()
    # The target's scope is the one that was cancelled; the moved scope is
    # inside it, so it lets Cancelled through and the task exits.
    assert log == [("inner finally", 2)]
    assert not inner.cancelled_caught
    assert target.cancel_scope.cancelled_caught


async def test_nursery_opened_before_started_moves_with_task(autojump_clock):
    log = []

    async def grandchild():
        try:
            await nursery.sleep_forever()
        finally:
            log.append(("grandchild finally", nursery.current_time()))

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        async with nursery.open_nursery() as inner:
            inner.start_soon(grandchild)
            await lowlevel.checkpoint()
            task_status.started()

    async with nursery.open_nursery() as target:
        with nursery.CancelScope() as caller_scope:
            await target.start(f)
            caller_scope.cancel()
            await lowlevel.checkpoint()
        await nursery.sleep(3)
        assert log == []
        target.cancel_scope.cancel()
    assert log == [("grandchild finally", 3)]


async def test_started_into_already_cancelled_target():
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        await lowlevel.checkpoint()
        with nursery.CancelScope() as scope:
            task_status.started()
            try:
                await lowlevel.checkpoint()
            except nursery.Cancelled:
                log.append(("cancelled in target", lowlevel.current_task().parent_nursery is target))
                raise
        log.append(("not reached", scope))  # pragma: no cover

    async def caller(target):
        await target.start(f)
        log.append("start returned")

    async with nursery.open_nursery() as other:
        async with nursery.open_nursery() as target:
            target.cancel_scope.cancel()
            # The caller is outside the target, so it is not cancelled; the
            # cancelled target stays open for the pending start().
            other.start_soon(caller, target)
            with nursery.CancelScope(shield=True):
                await lowlevel.checkpoint()  # let the caller call start()
    assert log == ["start returned", ("cancelled in target", True)]
    assert target.cancel_scope.cancelled_caught


async def test_exception_before_started_is_raised_directly():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        await lowlevel.checkpoint()
        raise ValueError("failed to start")

    async with nursery.open_nursery() as target:
        with pytest.raises(ValueError, match="^failed to start$") as info:
            await target.start(f)
        assert not isinstance(info.value, BaseExceptionGroup)
        # The target nursery was not affected.
        assert not target.cancel_scope.cancel_called
    assert target.child_tasks == frozenset()


async def test_exception_before_started_has_no_group_context():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        raise KeyError("k")

    async with nursery.open_nursery() as target:
        with pytest.raises(KeyError) as info:
            await target.start(f)
    assert not isinstance(info.value.__context__, BaseExceptionGroup)


async def test_exception_after_started_goes_to_target_nursery():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started("ok")
        await lowlevel.checkpoint()
        raise ValueError("after start")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as target:
            assert await target.start(f) == "ok"
    (exc,) = info.value.exceptions
    assert str(exc) == "after start"


async def test_nursery_group_before_started_is_raised_as_is():
    # The task's own nursery fails before started(): start() raises the
    # task's exception, which is that nursery's group (not a group of it).
    async def crasher():
        raise ValueError("grandchild")

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)
        task_status.started()  # pragma: no cover

    async with nursery.open_nursery() as target:
        with pytest.raises(ExceptionGroup) as info:
            await target.start(f)
    (exc,) = info.value.exceptions
    assert isinstance(exc, ValueError) and str(exc) == "grandchild"


async def test_start_without_started_raises_runtime_error():
    async def lazy(task_status=nursery.TASK_STATUS_IGNORED):
        await lowlevel.checkpoint()

    async with nursery.open_nursery() as target:
        with pytest.raises(RuntimeError, match=r"returned without calling task_status\.started\(\)") as info:
            await target.start(lazy)
    assert "lazy" in str(info.value)


async def test_started_twice_raises_in_the_task():
    errors = []

    async def twice(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started(1)
        try:
            task_status.started(2)
        except RuntimeError as exc:
            errors.append(str(exc))

    async with nursery.open_nursery() as target:
        assert await target.start(twice) == 1
    assert errors == ["task_status.started() was called twice; call it exactly once"]


async def test_start_into_closed_nursery():
    async def f(task_status=nursery.TASK_STATUS_IGNORED):  # pragma: no cover
        task_status.started()

    async with nursery.open_nursery() as n:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await n.start(f)


async def test_target_stays_open_while_a_start_is_pending(autojump_clock):
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        await nursery.sleep(5)
        task_status.started()
        await nursery.sleep(5)
        log.append(("task done", nursery.current_time()))

    async def caller(target):
        await target.start(f)
        log.append(("start returned", nursery.current_time()))

    async with nursery.open_nursery() as other:
        async with nursery.open_nursery() as target:
            other.start_soon(caller, target)
            await lowlevel.checkpoint()
        # The block had no children of its own, but it waited for the
        # pending start() and then for the task it received.
        log.append(("target exited", nursery.current_time()))
    assert log == [("start returned", 5), ("task done", 10), ("target exited", 10)]


async def test_start_passes_name():
    names = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        names.append(lowlevel.current_task().name)
        task_status.started()

    async with nursery.open_nursery() as n:
        await n.start(f, name="starter")
        await n.start(f)
    assert names == ["starter", f"{f.__module__}.{f.__qualname__}"]


async def test_start_in_cancelled_caller_does_not_move_the_task():
    log = []

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started("value")
        try:
            await lowlevel.checkpoint()
        except nursery.Cancelled:
            log.append(("cancelled in", lowlevel.current_task().parent_nursery is n))
            raise

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:
            scope.cancel()
            await n.start(f)
            pytest.fail("not reached")  # pragma: no cover
        assert scope.cancelled_caught
        assert not n.cancel_scope.cancel_called
    # started() in a cancelled caller leaves the task where it is, so the
    # caller's Cancelled stays under the caller's scope.
    assert log == [("cancelled in", False)]


async def test_started_during_cancellation_does_not_leak_cancelled_into_target(autojump_clock):
    log = []

    async def sibling():
        await nursery.sleep(10)
        log.append(("sibling done", nursery.current_time()))

    async def f(task_status=nursery.TASK_STATUS_IGNORED):
        try:
            await nursery.sleep_forever()
        finally:
            # Reported ready while the caller's Cancelled is propagating.
            task_status.started("late")

    async with nursery.open_nursery() as target:
        target.start_soon(sibling)
        with nursery.move_on_after(1) as scope:
            await target.start(f)
            log.append("not reached")  # pragma: no cover
        log.append(("caller moved on", nursery.current_time()))
    assert scope.cancelled_caught
    assert not target.cancel_scope.cancel_called
    assert log == [("caller moved on", 1), ("sibling done", 10)]


async def test_task_status_ignored_works_with_start_soon():
    log = []

    async def server(task_status=nursery.TASK_STATUS_IGNORED):
        task_status.started("ignored")
        log.append("ran")

    async with nursery.open_nursery() as n:
        n.start_soon(server)
    await server()  # and called directly
    assert log == ["ran", "ran"]
    assert repr(nursery.TASK_STATUS_IGNORED) == "TASK_STATUS_IGNORED"


async def test_task_status_ignored_started_twice_is_harmless():
    nursery.TASK_STATUS_IGNORED.started()
    nursery.TASK_STATUS_IGNORED.started(5)


# ----------------------------------------------------------------------
# exit is a checkpoint; closed nurseries


async def test_empty_nursery_exit_is_a_checkpoint():
    reached = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        async with nursery.open_nursery():
            reached.append("body")
        reached.append("after nursery")  # pragma: no cover
    assert reached == ["body"]
    assert scope.cancelled_caught


async def test_empty_nursery_exit_lets_others_run():
    log = []

    async def other():
        log.append("other")

    async with nursery.open_nursery() as outer:
        outer.start_soon(other)
        async with nursery.open_nursery():
            pass
        log.append("after inner")
    assert log == ["other", "after inner"]


async def test_start_soon_on_closed_nursery():
    async with nursery.open_nursery() as n:
        pass

    async def child():  # pragma: no cover
        pass

    with pytest.raises(RuntimeError, match="closed"):
        n.start_soon(child)


async def test_start_soon_during_exit_wait_is_allowed(autojump_clock):
    log = []

    async def late():
        log.append(("late", nursery.current_time()))

    async def spawner(n):
        await nursery.sleep(1)
        n.start_soon(late)

    async with nursery.open_nursery() as n:
        n.start_soon(spawner, n)
    assert log == [("late", 1)]


async def test_nursery_closed_after_error():
    async def crasher():
        raise ValueError

    with pytest.raises(ExceptionGroup):
        async with nursery.open_nursery() as n:
            n.start_soon(crasher)

    async def child():  # pragma: no cover
        pass

    with pytest.raises(RuntimeError, match="closed"):
        n.start_soon(child)


async def test_nursery_repr():
    async with nursery.open_nursery() as n:
        text = repr(n)
    assert text.startswith("<Nursery at 0x")
    assert "0 tasks" in text


async def test_nursery_usable_as_type_hint():
    async with nursery.open_nursery() as n:
        assert isinstance(n, nursery.Nursery)

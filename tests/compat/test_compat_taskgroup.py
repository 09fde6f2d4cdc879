"""nursery.compat's TaskGroup: each scenario runs with stock asyncio on its
own loop, with nursery.compat on compat's loop (virtual time) and inside
nursery.run, and must give the same trace, result and exceptions."""

from __future__ import annotations

import asyncio
import sys

import nursery
from nursery import compat
from nursery.testing import MockClock

from differential import describe, same

PY313 = sys.version_info >= (3, 13)


async def worker(aio, log, name, delay, result=None, error=None):
    log.append(f"{name} start")
    try:
        await aio.sleep(delay)
    except asyncio.CancelledError:
        log.append(f"{name} cancelled")
        raise
    if error is not None:
        log.append(f"{name} fails")
        raise error
    log.append(f"{name} done")
    return result


def test_taskgroup_waits_for_all_tasks():
    async def scenario(aio, log):
        async with aio.TaskGroup() as tg:
            log.append(repr(tg))
            a = tg.create_task(worker(aio, log, "a", 0.02, "A"), name="task-a")
            b = tg.create_task(worker(aio, log, "b", 0.01, "B"))
            log.append(repr(tg))
        log.append(repr(tg))
        return a.result(), b.result(), a.get_name()

    assert same(scenario) == (
        ("value", ("A", "B", "task-a")),
        [
            "<TaskGroup entered>", "<TaskGroup tasks=2 entered>",
            "a start", "b start", "b done", "a done", "<TaskGroup entered>",
        ],
    )


def test_first_error_cancels_siblings_and_the_body():
    async def scenario(aio, log):
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(worker(aio, log, "bad", 0.01, error=ValueError("boom")))
                tg.create_task(worker(aio, log, "slow", 1))
                await aio.sleep(1)
                log.append("body not reached")
        except* ValueError as eg:
            log.append(("caught", describe(eg)))
        return aio.current_task().cancelling()

    assert same(scenario) == (
        ("value", 0),
        [
            "bad start", "slow start", "bad fails", "slow cancelled",
            ("caught", ("ExceptionGroup", "unhandled errors in a TaskGroup", [("ValueError", "boom")])),
        ],
    )


def test_errors_from_several_tasks_and_the_body_are_grouped():
    async def scenario(aio, log):
        async with aio.TaskGroup() as tg:
            tg.create_task(worker(aio, log, "a", 0.01, error=KeyError("a")))
            tg.create_task(worker(aio, log, "b", 0.01, error=OSError("b")))
            try:
                await aio.sleep(1)
            except asyncio.CancelledError:
                raise RuntimeError("body")

    result = same(scenario)[0]
    assert result == (
        "error",
        (
            "ExceptionGroup",
            "unhandled errors in a TaskGroup",
            [("KeyError", "'a'"), ("OSError", "b"), ("RuntimeError", "body")],
        ),
    )


def test_parent_cancelled_from_outside():
    async def scenario(aio, log):
        async def parent():
            async with aio.TaskGroup() as tg:
                tg.create_task(worker(aio, log, "a", 1))
                tg.create_task(worker(aio, log, "b", 1))
                await aio.sleep(1)

        t = aio.ensure_future(parent())
        await aio.sleep(0.01)
        t.cancel("outside")
        try:
            await t
        except asyncio.CancelledError as exc:
            log.append(("parent", exc.args, t.cancelling()))
        log[2:4] = sorted(log[2:4])  # (the group cancels its tasks in a set's order)

    assert same(scenario)[1] == ["a start", "b start", "a cancelled", "b cancelled", ("parent", ("outside",), 1)]


def test_create_task_misuse():
    async def scenario(aio, log):
        tg = aio.TaskGroup()
        coro = aio.sleep(0)
        try:
            tg.create_task(coro)
        except RuntimeError as exc:
            log.append(str(exc))
        coro.close()
        async with tg:
            pass
        coro = aio.sleep(0)
        try:
            tg.create_task(coro)
        except RuntimeError as exc:
            log.append(str(exc))
        coro.close()
        try:
            async with tg:
                pass
        except RuntimeError as exc:
            log.append(str(exc))

    assert same(scenario)[1] == [
        "TaskGroup <TaskGroup> has not been entered",
        "TaskGroup <TaskGroup entered> is finished",
        "TaskGroup <TaskGroup entered> has already been entered",
    ]


def test_create_task_while_shutting_down():
    async def scenario(aio, log):
        async def spawner(tg):
            try:
                await aio.sleep(1)
            except asyncio.CancelledError:
                coro = aio.sleep(0)
                try:
                    tg.create_task(coro)
                except RuntimeError as exc:
                    log.append(str(exc))
                coro.close()
                raise

        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(spawner(tg))
                tg.create_task(worker(aio, log, "bad", 0.01, error=ValueError()))
        except* ValueError:
            log.append("caught")

    assert same(scenario)[1] == [
        "bad start", "bad fails", "TaskGroup <TaskGroup tasks=1 errors=1 cancelling> is shutting down", "caught",
    ]


def test_taskgroup_with_timeout_around_it():
    async def scenario(aio, log):
        try:
            async with aio.timeout(0.02):
                async with aio.TaskGroup() as tg:
                    tg.create_task(worker(aio, log, "a", 1))
                    tg.create_task(worker(aio, log, "b", 0.01, "B"))
        except TimeoutError:
            log.append("timeout")
        return aio.current_task().cancelling()

    assert same(scenario) == (("value", 0), ["a start", "b start", "b done", "a cancelled", "timeout"])


def test_nursery_cancel_scope_around_a_taskgroup():
    # A scope cancels the parent while the group waits for a task whose
    # cleanup takes (virtual) time: the group waits for it, then the
    # scope catches its Cancelled.
    log = []

    async def slow_cleanup():
        try:
            await compat.sleep(10)
        except asyncio.CancelledError:
            log.append("cleanup")
            await compat.sleep(3)
            log.append("cleaned")
            raise

    async def main():
        with nursery.move_on_after(1) as scope:
            async with compat.TaskGroup() as tg:
                tg.create_task(slow_cleanup())
        log.append((scope.cancelled_caught, nursery.current_time()))

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == ["cleanup", "cleaned", (True, 4.0)]


def test_nursery_cancel_scope_cancels_the_body_of_a_taskgroup():
    # The scope's Cancelled comes out of the body: the group cancels its
    # tasks (asyncio-style), waits for them, and re-raises the Cancelled
    # for the scope to catch; a task's error is still reported in a group.
    log = []

    async def quick_fail():
        try:
            await compat.sleep(10)
        except asyncio.CancelledError:
            log.append("child cancelled")
            await compat.sleep(2)
            raise

    async def main():
        with nursery.move_on_after(1) as scope:
            async with compat.TaskGroup() as tg:
                tg.create_task(quick_fail())
                await compat.sleep(10)
        log.append((scope.cancelled_caught, nursery.current_time()))
        try:
            with nursery.move_on_after(1) as scope:
                async with compat.TaskGroup() as tg:
                    tg.create_task(worker(compat, log, "bad", 0.5, error=ValueError("v")))
                    await compat.sleep(10)
        except* ValueError:
            log.append("group with the error")
        log.append(compat.current_task().cancelling())

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [
        "child cancelled", (True, 3.0), "bad start", "bad fails", "group with the error", 0,
    ]

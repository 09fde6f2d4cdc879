"""``asyncio.Task(...)`` called directly, and eager tasks, on compat's loop.

Code that calls the class itself (aiohttp's server on 3.12+) must get a
kernel task on compat's loop, so that nursery code works inside it, and
stock's Task everywhere else.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

import nursery
from nursery import compat
from nursery.compat._asyncio_task import AsyncioTask

from differential import same

needs_eager = pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_start is new in 3.12")


@pytest.fixture
def loop():
    loop = compat.new_event_loop()
    yield loop
    loop.close()


async def uses_a_nursery(log: list) -> str:
    async with nursery.open_nursery() as n:
        n.start_soon(nursery.sleep, 0)
        log.append(nursery.lowlevel.current_task() is asyncio.current_task())
    await nursery.sleep(0)
    return "done"


def test_asyncio_Task_on_a_compat_loop_is_a_kernel_task(loop) -> None:
    assert asyncio.Task is AsyncioTask

    async def main() -> tuple:
        log: list = []
        given = asyncio.Task(uses_a_nursery(log), loop=asyncio.get_running_loop(), name="given")
        implied = asyncio.Task(uses_a_nursery(log))
        return type(given), type(implied), given.get_name(), await given, await implied, log

    given, implied, name, r1, r2, log = loop.run_until_complete(main())
    assert (given, implied, name, r1, r2, log) == (compat.Task, compat.Task, "given", "done", "done", [True, True])


def test_asyncio_Task_elsewhere_is_stock_Task() -> None:
    async def main() -> tuple:
        task = asyncio.Task(asyncio.sleep(0, "slept"), loop=asyncio.get_running_loop())
        return type(task), await task

    stock = asyncio.new_event_loop()
    try:
        assert stock.run_until_complete(main()) == (asyncio.tasks.Task, "slept")
    finally:
        stock.close()


def test_isinstance_and_issubclass_answer_for_both_kinds(loop) -> None:
    async def main() -> compat.Task:
        return asyncio.current_task()  # type: ignore[return-value]

    kernel_task = loop.run_until_complete(main())
    stock = asyncio.new_event_loop()
    try:
        stock_task = stock.run_until_complete(main())
    finally:
        stock.close()
    assert isinstance(kernel_task, asyncio.Task) and isinstance(stock_task, asyncio.Task)
    assert issubclass(compat.Task, asyncio.Task) and issubclass(asyncio.tasks.Task, asyncio.Task)
    assert not isinstance(asyncio.Future(loop=loop), asyncio.Task)
    assert not issubclass(asyncio.Future, asyncio.Task)
    assert asyncio.Task.__name__ == "Task"
    assert asyncio.Task[int].__origin__ is asyncio.Task


def test_a_subclass_of_asyncio_Task_is_an_ordinary_stock_task_subclass(loop) -> None:
    class Named(asyncio.Task):  # type: ignore[misc]
        def get_name(self) -> str:
            return "named:" + super().get_name()

    async def main() -> tuple:
        task = Named(asyncio.sleep(0, 7), loop=asyncio.get_running_loop(), name="x")
        return type(task), task.get_name(), await task, asyncio.current_task()

    kind, name, result, kernel_task = loop.run_until_complete(main())
    assert (kind, name, result) == (Named, "named:x", 7)
    # isinstance() against the subclass is the ordinary test, not the
    # dispatcher's "either kind".
    assert isinstance(kernel_task, asyncio.Task) and not isinstance(kernel_task, Named)
    assert issubclass(Named, asyncio.tasks.Task) and not issubclass(compat.Task, Named)


def test_bad_arguments_get_asyncios_errors(loop) -> None:
    async def main() -> list:
        running = asyncio.get_running_loop()
        errors = []
        coro = asyncio.sleep(0)
        for args, kwargs in [((42,), {}), ((), {}), ((coro,), {"bogus": 1})]:
            with pytest.raises(TypeError) as info:
                asyncio.Task(*args, loop=running, **kwargs)
            errors.append(str(info.value))
        coro.close()
        return errors

    errors = loop.run_until_complete(main())
    assert errors[0] == "a coroutine was expected, got 42"  # (stock's message)
    assert "coro" in errors[1] and "bogus" in errors[2]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11 has no eager_start")
def test_eager_start_is_refused_on_3_11_as_stock_refuses_it(loop) -> None:
    async def main(aio) -> None:
        coro = aio.sleep(0)
        try:
            asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)
        finally:
            coro.close()

    stock = asyncio.new_event_loop()
    try:
        for run_on in (loop, stock):
            with pytest.raises(TypeError, match="^'eager_start' is an invalid keyword argument for Task\\(\\)$"):
                run_on.run_until_complete(main(asyncio))
    finally:
        stock.close()
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError, match="'eager_start' is an invalid keyword argument"):
        compat.Task(coro, loop=loop, eager_start=False)
    coro.close()


async def eager_scenario(aio, log: list) -> list:
    # Stock code (asyncio.Task itself), on each of the three runs.
    loop = aio.get_running_loop()
    caller = aio.current_task()

    async def child(name: str, suspend: bool) -> str:
        log.append(f"{name} starts as the current task: {aio.current_task().get_name() == name}")
        if suspend:
            await aio.sleep(0)
            log.append(f"{name} resumes")
        return name

    async def failing() -> None:
        raise ValueError("eager failure")

    loop.call_soon(log.append, "callback queued before")
    quick = asyncio.Task(child("quick", False), loop=loop, name="quick", eager_start=True)
    log.append(f"quick done after construction: {quick.done()}")
    log.append(f"caller is current again: {aio.current_task() is caller}")
    slow = asyncio.Task(child("slow", True), loop=loop, name="slow", eager_start=True)
    log.append(f"slow done after construction: {slow.done()}")
    bad = asyncio.Task(failing(), loop=loop, eager_start=True)
    log.append(f"bad: {bad.done()} {type(bad.exception()).__name__} {bad.exception()}")
    log.append(f"in all_tasks: {slow in aio.all_tasks()}, {quick in aio.all_tasks()}")
    results = [await quick, await slow]
    log.append("awaited")
    return results


@needs_eager
def test_eager_start_runs_the_first_step_inside_the_constructor_as_stock_does() -> None:
    outcome, log = same(eager_scenario)
    assert outcome == ("value", ["quick", "slow"])
    assert log == [
        "quick starts as the current task: True",
        "quick done after construction: True",
        "caller is current again: True",
        "slow starts as the current task: True",
        "slow done after construction: False",
        "bad: True ValueError eager failure",
        "in all_tasks: True, False",
        "callback queued before",
        "slow resumes",
        "awaited",
    ]


@needs_eager
def test_an_eager_task_is_current_during_its_first_step(loop) -> None:
    seen = []

    async def child() -> None:
        seen.append((asyncio.current_task() is nursery.lowlevel.current_task(), asyncio.current_task().get_name()))
        async with nursery.open_nursery() as n:
            n.start_soon(nursery.sleep, 0)
        seen.append(asyncio.current_task().get_name())

    async def main() -> None:
        task = asyncio.Task(child(), loop=asyncio.get_running_loop(), name="eager", eager_start=True)
        seen.append(("caller", asyncio.current_task().get_name(), nursery.lowlevel.current_task().name))
        await task

    loop.run_until_complete(main())
    first, caller, last = seen
    assert first == (True, "eager")
    assert caller[0] == "caller" and caller[1] == caller[2] != "eager"
    assert last == "eager"


@needs_eager
@pytest.mark.parametrize("made", ["stock eager_task_factory", "create_eager_task_factory(asyncio.Task)"])
def test_stock_eager_task_factory_makes_eager_kernel_tasks(loop, made) -> None:
    log = []
    if made == "stock eager_task_factory":
        factory = asyncio.eager_task_factory
    else:
        factory = asyncio.create_eager_task_factory(asyncio.Task)

    async def child() -> str:
        log.append(("child", asyncio.current_task() is nursery.lowlevel.current_task()))
        return "ok"

    async def main() -> str:
        asyncio.get_running_loop().set_task_factory(factory)
        task = asyncio.create_task(child())
        log.append(("created", task.done(), type(task) is compat.Task))
        return await task

    assert loop.run_until_complete(main()) == "ok"
    assert log == [("child", True), ("created", True, True)]
    assert loop.get_task_factory() is factory


@needs_eager
def test_eager_start_outside_the_running_loop_schedules_the_task(loop) -> None:
    log = []

    async def child() -> None:
        log.append("child ran")

    task = asyncio.Task(child(), loop=loop, eager_start=True)
    assert type(task) is compat.Task and not task.done() and log == []
    loop.run_until_complete(task)
    assert log == ["child ran"]

"""asyncio's debug mode on compat's loop (slow task steps reported as stock
asyncio reports them) and compat tasks in the kernel's task-tree dump."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time

import pytest

import nursery.compat
from nursery import lowlevel


async def _slow_step() -> None:
    time.sleep(0.03)  # blocks the loop: what debug mode is for


async def _main_with_a_slow_task() -> None:
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.01
    await asyncio.create_task(_slow_step(), name="slowpoke")


def _slow_warnings(caplog: pytest.LogCaptureFixture, factory, debug: bool) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
            runner.run(_main_with_a_slow_task())
    # The duration varies; the rest of the message must not.
    return [re.sub(r"took \d+\.\d+ seconds", "took N seconds", r.getMessage()) for r in caplog.records]


def test_debug_mode_reports_a_slow_task_step_as_stock_asyncio_does(caplog: pytest.LogCaptureFixture) -> None:
    stock = _slow_warnings(caplog, asyncio.new_event_loop, debug=True)
    compat = _slow_warnings(caplog, nursery.compat.new_event_loop, debug=True)
    slow = [m for m in stock if "slowpoke" in m]
    assert slow and slow[0].startswith("Executing <Task finished name='slowpoke' coro=<_slow_step() done")
    assert "created at " in slow[0] and slow[0].endswith("took N seconds")
    assert [m for m in compat if "slowpoke" in m] == slow


def test_no_step_timing_outside_debug_mode(caplog: pytest.LogCaptureFixture) -> None:
    assert _slow_warnings(caplog, nursery.compat.new_event_loop, debug=False) == []


def test_set_debug_false_removes_the_step_timer(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_debug(False)
        await _main_with_a_slow_task()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        with asyncio.Runner(loop_factory=nursery.compat.new_event_loop, debug=True) as runner:
            runner.run(main())
            assert runner.get_loop().get_debug() is False
    assert not [r for r in caplog.records if "slowpoke" in r.getMessage()]


def test_debug_mode_turned_on_inside_a_step_times_only_later_steps(caplog: pytest.LogCaptureFixture) -> None:
    # The step that turns debug mode on was never started by the timer: it
    # must not be reported (with a duration counted from the epoch); an
    # eager task's first step is timed as part of its creator's, as stock does.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = 0.01
        loop.set_debug(True)
        await asyncio.sleep(0)
        task = asyncio.Task(_slow_step(), loop=loop, name="nested", eager_start=True) if sys.version_info >= (3, 12) else None
        if task is not None:
            await task

    def slow_steps(run) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            run(main())
        messages = [r.getMessage() for r in caplog.records]
        assert not [m for m in messages if re.search(r"took \d{3,}\.", m)]
        # (Names and places differ between runs; the count and kind must not.)
        return [re.sub(r"<Task .*", "<Task ...>", m) for m in messages if m.startswith("Executing <Task")]

    stock = slow_steps(asyncio.run)
    assert stock == (["Executing <Task ...>"] if sys.version_info >= (3, 12) else [])
    assert slow_steps(nursery.compat.run) == stock


def test_the_task_tree_shows_compat_tasks_with_their_names_and_where_they_wait() -> None:
    async def sleeper() -> None:
        await asyncio.sleep(3600)

    async def main() -> str:
        task = asyncio.create_task(sleeper(), name="sleepy")
        await asyncio.sleep(0)
        tree = lowlevel.format_task_tree()
        task.cancel()
        return tree

    tree = nursery.compat.run(main())
    assert re.search(r"task 'Task-\d+' \(running\): main at test_compat_debug_mode\.py:\d+ \(in format_task_tree\)", tree)
    # (Where it waits: inside asyncio.sleep.)
    assert re.search(r"task 'sleepy' \(blocked\): sleep at tasks\.py:\d+", tree)

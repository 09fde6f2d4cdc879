"""Instruments: which hook fires when, and how instruments are installed,
removed and dropped when they fail."""

from __future__ import annotations

import logging
import re

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked


class Recorder:
    """Implements every hook and logs (hook, task name) / (hook,)."""

    def __init__(self, log=None):
        self.log = [] if log is None else log

    def before_run(self):
        self.log.append(("before_run",))

    def after_run(self):
        self.log.append(("after_run",))

    def task_spawned(self, task):
        self.log.append(("task_spawned", task.name))

    def task_scheduled(self, task):
        self.log.append(("task_scheduled", task.name))

    def before_task_step(self, task):
        self.log.append(("before_task_step", task.name))

    def after_task_step(self, task):
        self.log.append(("after_task_step", task.name))

    def task_exited(self, task):
        self.log.append(("task_exited", task.name))

    def before_io_wait(self, timeout):
        self.log.append(("before_io_wait", timeout))

    def after_io_wait(self, timeout):
        self.log.append(("after_io_wait", timeout))


def _names(log, *hooks):
    return [entry for entry in log if entry[0] in hooks]


def _main_name(fn):
    return f"{fn.__module__}.{fn.__qualname__}"


def test_hook_sequence_for_a_small_program():
    rec = Recorder()

    async def child():
        await nursery.sleep(0.01)

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(child, name="child")
        return "done"

    assert nursery.run(main, instruments=[rec]) == "done"
    main_name = _main_name(main)
    log = rec.log
    # The I/O wait: exactly one, for the child's sleep, with a timeout that
    # is at most the sleep.
    io = [i for i, e in enumerate(log) if e[0] in ("before_io_wait", "after_io_wait")]
    assert [log[i][0] for i in io] == ["before_io_wait", "after_io_wait"]
    assert io[1] == io[0] + 1
    timeout = log[io[0]][1]
    assert 0 < timeout <= 0.01 and log[io[1]][1] == timeout
    del log[io[0] : io[1] + 1]
    assert log == [
        ("before_run",),
        ("task_spawned", "<init>"),
        ("task_scheduled", "<init>"),
        ("before_task_step", "<init>"),
        ("task_spawned", main_name),
        ("task_scheduled", main_name),
        ("after_task_step", "<init>"),
        ("before_task_step", main_name),
        ("task_spawned", "child"),
        ("task_scheduled", "child"),
        ("after_task_step", main_name),
        ("before_task_step", "child"),
        ("after_task_step", "child"),
        # (the I/O wait was here)
        ("task_scheduled", "child"),
        ("before_task_step", "child"),
        ("task_exited", "child"),
        ("task_scheduled", main_name),
        ("after_task_step", "child"),
        ("before_task_step", main_name),
        ("task_exited", main_name),
        ("task_scheduled", "<init>"),
        ("after_task_step", main_name),
        ("before_task_step", "<init>"),
        ("task_exited", "<init>"),
        ("after_task_step", "<init>"),
        ("after_run",),
    ]


def test_checkpoint_reschedules_the_task():
    rec = Recorder()

    async def main():
        await lowlevel.checkpoint()

    nursery.run(main, instruments=[rec])
    main_name = _main_name(main)
    steps = _names(rec.log, "task_scheduled", "before_task_step", "after_task_step")
    i = steps.index(("before_task_step", main_name))
    assert steps[i : i + 4] == [
        ("before_task_step", main_name),
        ("task_scheduled", main_name),  # the checkpoint put it back in the queue
        ("after_task_step", main_name),
        ("before_task_step", main_name),
    ]


def test_cancellation_and_reschedule_are_task_scheduled():
    rec = Recorder()

    async def blocked():
        await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(blocked, name="woken")
            n.start_soon(blocked, name="cancelled")
            await wait_all_tasks_blocked()
            tasks = {t.name: t for t in n.child_tasks}
            rec.log.append(("mark",))
            lowlevel.reschedule(tasks["woken"])
            # Cancelling the nursery wakes the still-blocked task through
            # its abort function; "woken" is already scheduled, so not twice.
            n.cancel_scope.cancel()
            rec.log.append(("mark",))

    nursery.run(main, instruments=[rec])
    a = rec.log.index(("mark",))
    b = rec.log.index(("mark",), a + 1)
    assert rec.log[a + 1 : b] == [
        ("task_scheduled", "woken"),
        ("task_scheduled", "cancelled"),
    ]


def test_io_wait_hooks_report_the_timeout():
    rec = Recorder()

    async def main():
        await nursery.sleep(0.02)

    nursery.run(main, instruments=[rec])
    waits = _names(rec.log, "before_io_wait", "after_io_wait")
    assert len(waits) >= 2 and len(waits) % 2 == 0
    for before, after in zip(waits[::2], waits[1::2]):
        assert before[0] == "before_io_wait" and after[0] == "after_io_wait"
        assert before[1] == after[1]
        assert 0 < before[1] <= 0.02


def test_partial_instrument_gets_only_its_hooks():
    log = []

    class OnlyExits(lowlevel.Instrument):
        def task_exited(self, task):
            log.append(task.name)

    class Duck:  # not a subclass: any object with a hook method will do
        def task_spawned(self, task):
            log.append(("spawned", task.name))

    async def child():
        pass

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(child, name="kid")

    nursery.run(main, instruments=[OnlyExits(), Duck()])
    main_name = _main_name(main)
    assert log == [
        ("spawned", "<init>"),
        ("spawned", main_name),
        ("spawned", "kid"),
        "kid",
        main_name,
        "<init>",
    ]


def test_instrument_base_class_hooks_are_no_ops():
    inst = lowlevel.Instrument()
    # A bare Instrument is accepted (it is one), and its hooks do nothing.
    assert nursery.run(_return_one, instruments=[inst]) == 1
    assert inst.before_run() is None
    assert inst.task_spawned(None) is None


async def _return_one():
    return 1


async def test_add_and_remove_instrument_during_a_run():
    rec = Recorder()

    async def child(name):
        await lowlevel.checkpoint()

    lowlevel.add_instrument(rec)
    async with nursery.open_nursery() as n:
        n.start_soon(child, "a", name="a")
    lowlevel.remove_instrument(rec)
    async with nursery.open_nursery() as n:
        n.start_soon(child, "b", name="b")
    names = {entry[1] for entry in rec.log if len(entry) > 1 and isinstance(entry[1], str)}
    assert "a" in names
    assert "b" not in names
    assert ("before_run",) not in rec.log  # added after the run started
    assert ("after_run",) not in rec.log  # removed before it finished
    assert _names(rec.log, "task_spawned", "task_exited") == [("task_spawned", "a"), ("task_exited", "a")]


def test_instrument_added_during_run_sees_after_run():
    rec = Recorder()

    async def main():
        lowlevel.add_instrument(rec)
        await lowlevel.checkpoint()

    nursery.run(main)
    assert rec.log[-1] == ("after_run",)
    assert ("before_run",) not in rec.log


def test_instrument_removed_inside_its_own_hook():
    log = []

    class Once:
        def before_task_step(self, task):
            log.append(task.name)
            lowlevel.remove_instrument(self)

    async def main():
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()

    nursery.run(main, instruments=[Once()])
    assert log == ["<init>"]


async def test_adding_twice_installs_once():
    rec = Recorder()
    lowlevel.add_instrument(rec)
    lowlevel.add_instrument(rec)
    await lowlevel.checkpoint()
    lowlevel.remove_instrument(rec)
    me = lowlevel.current_task().name
    assert rec.log.count(("before_task_step", me)) == 1
    with pytest.raises(KeyError):
        lowlevel.remove_instrument(rec)


async def test_remove_not_installed_instrument_is_key_error():
    rec = Recorder()
    with pytest.raises(KeyError, match="is not installed in this run"):
        lowlevel.remove_instrument(rec)


@pytest.mark.parametrize("bad", [object(), 42, "before_run"])
async def test_add_non_instrument_is_type_error(bad):
    with pytest.raises(TypeError, match=re.escape(f"{bad!r} is not an instrument: it has none of the hook methods")):
        lowlevel.add_instrument(bad)


def test_run_with_non_instrument_is_type_error():
    with pytest.raises(TypeError, match="is not an instrument"):
        nursery.run(_return_one, instruments=[object()])


def test_add_instrument_outside_a_run():
    with pytest.raises(RuntimeError, match=re.escape("add_instrument() must be called from inside nursery.run()")):
        lowlevel.add_instrument(Recorder())
    with pytest.raises(RuntimeError, match="no nursery run is active"):
        lowlevel.remove_instrument(Recorder())


def test_raising_instrument_is_logged_and_removed(caplog):
    good = Recorder()
    calls = []

    class Broken:
        def before_task_step(self, task):
            calls.append(task.name)
            raise ValueError("instrument bug")

        def task_exited(self, task):
            calls.append(("exited", task.name))

    broken = Broken()

    async def main():
        await lowlevel.checkpoint()
        return "fine"

    with caplog.at_level(logging.ERROR, logger="nursery.instruments"):
        assert nursery.run(main, instruments=[broken, good]) == "fine"
    # Called once, then removed from every hook (task_exited never fires).
    assert calls == ["<init>"]
    records = [r for r in caplog.records if r.name == "nursery.instruments"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert repr(broken) in message
    assert "raised in before_task_step(); it has been removed from the run" in message
    assert records[0].exc_info[0] is ValueError
    assert str(records[0].exc_info[1]) == "instrument bug"
    # The other instrument saw everything.
    assert good.log[0] == ("before_run",) and good.log[-1] == ("after_run",)
    assert ("task_exited", _main_name(main)) in good.log


def test_raising_before_run_does_not_stop_the_run(caplog):
    class Broken:
        def before_run(self):
            raise RuntimeError("nope")

        def after_run(self):  # never reached: removed after before_run
            raise AssertionError("should have been removed")

    with caplog.at_level(logging.ERROR, logger="nursery.instruments"):
        assert nursery.run(_return_one, instruments=[Broken()]) == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "nursery.instruments"]
    assert len(messages) == 1 and "raised in before_run()" in messages[0]


def test_instruments_with_random_seed_and_mock_clock():
    rec = Recorder()

    async def child(i):
        await nursery.sleep(i)

    async def main():
        async with nursery.open_nursery() as n:
            for i in range(4):
                n.start_soon(child, i, name=f"c{i}")

    nursery.run(main, instruments=[rec], clock=MockClock(autojump_threshold=0), random_seed=3)
    exits = [e[1] for e in _names(rec.log, "task_exited")]
    # With virtual time each sleeper exits in deadline order; c0 (sleep(0))
    # only needs a checkpoint, so it is first.
    assert exits[:4] == ["c0", "c1", "c2", "c3"]
    assert exits[-1] == "<init>"
    spawned = [e[1] for e in _names(rec.log, "task_spawned")]
    assert sorted(spawned) == sorted(exits)

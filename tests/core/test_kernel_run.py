"""lowlevel.KernelRun: the run loop as an event loop built on the kernel
sees it (ready items, timer items, detached tasks, runs driven by step())."""

from __future__ import annotations

import contextvars
import threading

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock


class ReadyItem:
    def __init__(self, log: list, label: str) -> None:
        self.log = log
        self.label = label

    def _run(self) -> None:
        self.log.append(self.label)


class TimerItem:
    def __init__(self, run: lowlevel.KernelRun, log: list, label: str) -> None:
        self._timer_seq = 0
        self.run = run
        self.log = log
        self.label = label

    def _expire(self) -> None:
        self.log.append((self.label, self.run.time()))


async def test_ready_items_run_in_fifo_order_with_tasks() -> None:
    run = lowlevel.current_kernel_run()
    assert lowlevel.current_kernel_run() is run
    log: list = []
    run.enqueue(ReadyItem(log, "a"))
    lowlevel.call_soon(log.append, "b")
    run.enqueue(ReadyItem(log, "c"))
    await nursery.sleep(0)
    assert log == ["a", "b", "c"]


async def test_timer_items_expire_in_deadline_order_and_can_be_removed(autojump_clock: MockClock) -> None:
    run = lowlevel.current_kernel_run()
    log: list = []
    start = run.time()
    late = TimerItem(run, log, "late")
    early = TimerItem(run, log, "early")
    gone = TimerItem(run, log, "gone")
    run.add_timer(late, start + 2)
    run.add_timer(early, start + 1)
    run.add_timer(gone, start + 1.5)
    run.remove_timer(gone)
    run.remove_timer(gone)  # no-op
    await nursery.sleep(3)
    assert log == [("early", start + 1), ("late", start + 2)]


async def test_spawn_detached_task_outlives_the_caller_and_keeps_its_error() -> None:
    run = lowlevel.current_kernel_run()
    outcomes = []

    class Recording(lowlevel.Task):
        __slots__ = ()

        def _exited(self, value, error):
            outcomes.append((value, type(error).__name__ if error else None))
            return None  # keep the error out of the tree

    async def fails() -> None:
        await nursery.sleep(0)
        raise ValueError("kept")

    async def returns() -> int:
        return 7

    with nursery.CancelScope() as scope:
        scope.cancel()  # the caller's scope does not reach detached tasks
        t1 = run.spawn_detached(fails(), task=Recording.__new__(Recording), name="fails")
        t2 = run.spawn_detached(returns(), task=Recording.__new__(Recording), name="returns")
    assert isinstance(t1, Recording) and t1.name == "fails"
    for _ in range(3):
        await nursery.sleep(0)
    assert sorted(outcomes, key=str) == sorted([(None, "ValueError"), (7, None)], key=str)
    assert t1.done() and t2.done()


async def test_spawn_detached_initializes_a_subclass_task_as_task_init_does() -> None:
    # spawn_detached sets Task.__init__'s fields itself (a hot path): a
    # field added to one and not the other would leave a task half made.
    run = lowlevel.current_kernel_run()

    class Sub(lowlevel.Task):
        __slots__ = ()

        def _exited(self, value, error):
            return None

    async def job() -> None:
        await nursery.sleep(0)

    context = contextvars.copy_context()
    detached = run.spawn_detached(job(), task=Sub.__new__(Sub), name="job", context=context)
    spawned = lowlevel.spawn_system_task(job, name="job", context=context)
    fields = [name for name in lowlevel.Task.__slots__ if name != "__weakref__"]
    for name in fields:
        assert hasattr(detached, name), name
    same = {"_name", "context", "_runner", "_parent_nursery", "_eventual_parent_nursery", "_child_nurseries",
            "_cancel_scope", "_send_value", "_throw_exc", "_abort_func", "custom_sleep_data", "_cancel_requests"}
    assert same | {"coro", "_coro_send"} == set(fields)
    for name in same:
        assert getattr(detached, name) == getattr(spawned, name), name
    assert detached._coro_send == detached.coro.send
    for _ in range(3):
        await nursery.sleep(0)
    assert detached.done() and spawned.done()


def test_a_run_driven_by_step() -> None:
    run = lowlevel.KernelRun.create(clock=MockClock())
    log: list = []

    async def job() -> None:
        log.append(("start", lowlevel.current_kernel_run() is run))
        await nursery.sleep(5)
        log.append(("end", nursery.current_time()))

    assert not nursery.lowlevel.in_run()
    run.enter()
    try:
        assert lowlevel.in_run()
        with pytest.raises(RuntimeError, match="another nursery run is active"):
            run.enter()
        task = run.spawn_detached(job(), name="job")
        run.step(0)
        assert log == [("start", True)]
        run.clock.jump(5)
        run.step(0)
        assert log[-1] == ("end", 5.0)
        assert task.done()
        assert not run.done
        outcome = run.shutdown()
    finally:
        run.leave()
    assert outcome.unwrap() is None
    assert run.done
    assert not lowlevel.in_run()


def test_step_wakes_up_for_another_thread() -> None:
    run = lowlevel.KernelRun.create()
    log: list = []
    run.enter()
    try:
        thread = threading.Thread(target=run.run_sync_soon_threadsafe, args=(log.append, "from thread"))
        thread.start()
        while not log:
            run.step(10)
        thread.join()
        assert log == ["from thread"]
    finally:
        run.shutdown()
        run.leave()
    with pytest.raises(nursery.RunFinishedError):
        run.run_sync_soon_threadsafe(log.append, "too late")


def test_spawn_detached_eager_takes_the_first_step_at_once() -> None:
    run = lowlevel.KernelRun.create()
    log: list = []

    async def job(name: str) -> str:
        log.append((name, "first step", lowlevel.current_task().name))
        await lowlevel.checkpoint()
        log.append((name, "second step"))
        return name

    coro = job("refused")
    with pytest.raises(RuntimeError, match=r"spawn_detached\(eager=True\) runs the task's first step at once"):
        run.spawn_detached(coro, eager=True)
    coro.close()
    assert not run.ready_queue  # (refused before anything was queued)
    run.enter()
    try:
        lazy = run.spawn_detached(job("lazy"), name="lazy")
        eager = run.spawn_detached(job("eager"), name="eager", eager=True)
        # The eager task stepped before spawn_detached returned; its
        # checkpoint queued it after the lazy one.
        assert log == [("eager", "first step", "eager")]
        assert run.current_task is None
        run.step(0)
        run.step(0)
        assert log[1:] == [("lazy", "first step", "lazy"), ("eager", "second step"), ("lazy", "second step")]
        assert lazy.done() and eager.done()
        run.shutdown()
    finally:
        run.leave()

"""nursery.compat's Lock, Event, Condition, Semaphore, BoundedSemaphore and
Barrier: every scenario runs twice, with stock asyncio's primitives on stock
asyncio's loop and with compat's on compat's loop, and the two traces must
be identical (wake-up order, cancellation, errors, reprs). Then the
primitives inside nursery.run, shared by nursery tasks and compat tasks."""

from __future__ import annotations

import asyncio
import random
import re
import sys
from typing import Any, Awaitable, Callable

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

Scenario = Callable[[Any, list], Awaitable[None]]


def _norm(text: str) -> str:
    # <asyncio.locks.Lock object at 0x7f.. [...]> and
    # <nursery.compat.Lock object at 0x7f.. [...]> both become <Lock [...]>.
    return re.sub(r"<[\w.]*?(\w+) object at 0x[0-9a-f]+", r"<\1", text)


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}({str(exc)!r})"


def run_stock(scenario: Scenario) -> list:
    trace: list = []
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario(asyncio, trace))
    finally:
        loop.close()
    return trace


def run_compat(scenario: Scenario) -> list:
    trace: list = []
    loop = compat.new_event_loop(clock=MockClock(autojump_threshold=0))
    try:
        loop.run_until_complete(scenario(compat, trace))
    finally:
        loop.close()
    return trace


def same_as_stock(scenario: Scenario) -> list:
    stock = run_stock(scenario)
    ours = run_compat(scenario)
    assert ours == stock
    return ours


def spawn(coro: Any) -> asyncio.Task:
    return asyncio.get_running_loop().create_task(coro)


async def settle(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# ----------------------------------------------------------------------
# Lock


async def lock_fifo(aio: Any, trace: list) -> None:
    lock = aio.Lock()

    async def worker(i: int) -> None:
        for _ in range(2):
            async with lock:
                trace.append(("in", i, lock.locked()))
                await asyncio.sleep(0)
            trace.append(("out", i))

    tasks = [spawn(worker(i)) for i in range(4)]
    await settle(1)
    trace.append(_norm(repr(lock)))
    await asyncio.gather(*tasks)
    trace.append(_norm(repr(lock)))


def test_lock_is_fifo_and_repr_matches_stock() -> None:
    trace = same_as_stock(lock_fifo)
    assert trace[1] == "<Lock [locked, waiters:3]>" or "<Lock [locked, waiters:3]>" in trace
    assert trace[-1] == "<Lock [unlocked]>"


async def lock_errors(aio: Any, trace: list) -> None:
    lock = aio.Lock()
    try:
        lock.release()
    except RuntimeError as exc:
        trace.append(_exc(exc))
    trace.append(await lock.acquire())
    trace.append(lock.locked())
    lock.release()
    trace.append(lock.locked())


def test_lock_release_unlocked_raises() -> None:
    trace = same_as_stock(lock_errors)
    assert trace[0] == "RuntimeError('Lock is not acquired.')"


async def lock_cancel_waiting(aio: Any, trace: list) -> None:
    lock = aio.Lock()
    await lock.acquire()

    async def waiter(name: str) -> None:
        try:
            async with lock:
                trace.append(("got", name))
        except asyncio.CancelledError as exc:
            trace.append(("cancelled", name, exc.args))
            raise

    b = spawn(waiter("b"))
    c = spawn(waiter("c"))
    await settle()
    trace.append(_norm(repr(lock)))
    b.cancel("stop b")
    await settle(1)
    trace.append(_norm(repr(lock)))
    lock.release()
    await settle()
    trace.append((b.cancelled(), c.done(), lock.locked()))


async def lock_woken_then_cancelled(aio: Any, trace: list) -> None:
    # The head waiter is woken by release() and cancelled before it runs:
    # the wakeup must pass on to the next waiter.
    lock = aio.Lock()
    await lock.acquire()

    async def waiter(name: str) -> None:
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            trace.append(("cancelled", name, lock.locked()))
            raise
        trace.append(("got", name))
        await asyncio.sleep(0)
        lock.release()

    b = spawn(waiter("b"))
    c = spawn(waiter("c"))
    await settle()
    lock.release()
    b.cancel()
    trace.append(_norm(repr(lock)))
    await settle()
    trace.append((b.cancelled(), c.done(), lock.locked()))


async def lock_no_queue_jumping(aio: Any, trace: list) -> None:
    # release() then acquire() at once: the waiter woken first gets it.
    lock = aio.Lock()
    await lock.acquire()

    async def waiter() -> None:
        async with lock:
            trace.append("waiter has it")

    t = spawn(waiter())
    await settle()
    lock.release()
    await lock.acquire()
    trace.append("main has it")
    lock.release()
    await t


async def lock_all_cancelled_fast_path(aio: Any, trace: list) -> None:
    lock = aio.Lock()
    await lock.acquire()
    ts = [spawn(lock.acquire()) for _ in range(2)]
    await settle()
    for t in ts:
        t.cancel()
    lock.release()
    # Both waiters are cancelled (their tasks have not run yet): acquire()
    # takes the lock without waiting.
    trace.append(await lock.acquire())
    trace.append(_norm(repr(lock)))
    await settle()
    trace.append([t.cancelled() for t in ts])
    trace.append(_norm(repr(lock)))


@pytest.mark.parametrize(
    "scenario",
    [lock_cancel_waiting, lock_woken_then_cancelled, lock_no_queue_jumping, lock_all_cancelled_fast_path],
)
def test_lock_cancellation_and_fairness_match_stock(scenario: Scenario) -> None:
    same_as_stock(scenario)


def test_lock_woken_then_cancelled_passes_the_wakeup_on() -> None:
    trace = run_compat(lock_woken_then_cancelled)
    assert ("got", "c") in trace
    assert trace[-1] == (True, True, False)


# ----------------------------------------------------------------------
# Event


async def event_scenario(aio: Any, trace: list) -> None:
    ev = aio.Event()
    trace.append((ev.is_set(), _norm(repr(ev))))

    async def waiter(i: int) -> None:
        trace.append(("woke", i, await ev.wait()))

    ts = [spawn(waiter(i)) for i in range(3)]
    await settle()
    trace.append(_norm(repr(ev)))
    ts[1].cancel()
    await settle(1)
    ev.set()
    ev.set()
    trace.append(_norm(repr(ev)))
    await settle()
    trace.append([t.cancelled() for t in ts])
    trace.append(await ev.wait())
    ev.clear()
    trace.append((ev.is_set(), _norm(repr(ev))))
    # set() then clear() before the waiter runs: it still wakes.
    t = spawn(waiter(9))
    await settle()
    ev.set()
    ev.clear()
    await settle()
    trace.append(t.done())


def test_event_matches_stock() -> None:
    trace = same_as_stock(event_scenario)
    assert trace[-1] is True


# ----------------------------------------------------------------------
# Condition


async def condition_scenario(aio: Any, trace: list) -> None:
    cond = aio.Condition()
    for call in (cond.wait, cond.notify):
        try:
            result = call()
            if asyncio.iscoroutine(result):
                await result
        except RuntimeError as exc:
            trace.append(_exc(exc))
    items: list = []

    async def consumer(i: int) -> None:
        async with cond:
            trace.append(("waiting", i))
            await cond.wait_for(lambda: items)
            trace.append(("took", i, items.pop(0), cond.locked()))

    ts = [spawn(consumer(i)) for i in range(4)]
    await settle()
    trace.append(_norm(repr(cond)))
    async with cond:
        items.extend("ab")
        cond.notify(2)
        trace.append(_norm(repr(cond)))
    await settle()
    async with cond:
        items.extend("cd")
        cond.notify_all()
    await asyncio.gather(*ts)
    trace.append(_norm(repr(cond)))


async def condition_cancel_scenario(aio: Any, trace: list) -> None:
    lock = aio.Lock()
    cond = aio.Condition(lock)

    async def waiter(name: str) -> None:
        async with cond:
            try:
                await cond.wait()
                trace.append(("notified", name, lock.locked()))
            except asyncio.CancelledError as exc:
                # The lock is held again even though the wait was cancelled.
                trace.append(("cancelled", name, lock.locked(), exc.args))
                raise

    a = spawn(waiter("a"))
    b = spawn(waiter("b"))
    await settle()
    # Cancelled while waiting for the notification.
    a.cancel("go")
    await settle()
    # Notified, then cancelled while re-acquiring the lock.
    async with cond:
        cond.notify()
        await settle()
        b.cancel("late")
        await settle()
        trace.append((b.done(), _norm(repr(cond))))
    await settle()
    trace.append((a.cancelled(), b.cancelled(), lock.locked()))


async def condition_notified_then_cancelled(aio: Any, trace: list) -> None:
    # Notified, then cancelled before it ran: (3.13) the notification passes
    # to another waiter; (3.11/3.12) it is lost. Stock decides.
    cond = aio.Condition()

    async def waiter(name: str) -> None:
        async with cond:
            try:
                await cond.wait()
                trace.append(("notified", name))
            except asyncio.CancelledError:
                trace.append(("cancelled", name))
                raise

    a = spawn(waiter("a"))
    b = spawn(waiter("b"))
    await settle()
    async with cond:
        cond.notify(1)
        a.cancel()
    await settle(10)
    trace.append((a.cancelled(), b.done()))
    b.cancel()
    await settle()


@pytest.mark.parametrize("scenario", [condition_scenario, condition_cancel_scenario, condition_notified_then_cancelled])
def test_condition_matches_stock(scenario: Scenario) -> None:
    same_as_stock(scenario)


def test_condition_requires_the_lock() -> None:
    trace = run_compat(condition_scenario)
    assert trace[:2] == [
        "RuntimeError('cannot wait on un-acquired lock')",
        "RuntimeError('cannot notify on un-acquired lock')",
    ]


# ----------------------------------------------------------------------
# Semaphore and BoundedSemaphore


async def semaphore_scenario(aio: Any, trace: list) -> None:
    try:
        aio.Semaphore(-1)
    except ValueError as exc:
        trace.append(_exc(exc))
    sem = aio.Semaphore(2)
    trace.append(_norm(repr(sem)))

    async def worker(i: int) -> None:
        async with sem:
            trace.append(("in", i, sem.locked()))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        trace.append(("out", i))

    ts = [spawn(worker(i)) for i in range(5)]
    await settle(1)
    trace.append(_norm(repr(sem)))
    await asyncio.gather(*ts)
    trace.append(_norm(repr(sem)))


async def semaphore_cancel_scenario(aio: Any, trace: list) -> None:
    sem = aio.Semaphore(1)
    await sem.acquire()

    async def waiter(name: str) -> None:
        try:
            await sem.acquire()
        except asyncio.CancelledError:
            trace.append(("cancelled", name, sem._value))
            raise
        trace.append(("got", name, sem._value))
        await asyncio.sleep(0)
        sem.release()

    a = spawn(waiter("a"))
    b = spawn(waiter("b"))
    c = spawn(waiter("c"))
    await settle()
    c.cancel()  # cancelled while pending
    await settle(1)
    sem.release()  # wakes a...
    a.cancel()  # ...which is cancelled before it runs: b must get the unit
    trace.append(_norm(repr(sem)))
    await settle(10)
    trace.append((a.cancelled(), b.done(), c.cancelled(), sem.locked(), _norm(repr(sem))))


async def semaphore_release_many(aio: Any, trace: list) -> None:
    sem = aio.Semaphore(0)
    ts = [spawn(sem.acquire()) for _ in range(3)]
    await settle()
    sem.release()
    sem.release()
    trace.append(_norm(repr(sem)))
    ts[0].cancel()
    await settle()
    trace.append(([t.done() for t in ts], _norm(repr(sem))))
    sem.release()
    await settle()
    trace.append(([t.done() for t in ts], _norm(repr(sem))))


async def bounded_scenario(aio: Any, trace: list) -> None:
    sem = aio.BoundedSemaphore(2)
    await sem.acquire()
    sem.release()
    try:
        sem.release()
    except ValueError as exc:
        trace.append(_exc(exc))
    trace.append(_norm(repr(sem)))


@pytest.mark.parametrize(
    "scenario", [semaphore_scenario, semaphore_cancel_scenario, semaphore_release_many, bounded_scenario]
)
def test_semaphore_matches_stock(scenario: Scenario) -> None:
    same_as_stock(scenario)


def test_semaphore_errors() -> None:
    assert run_compat(semaphore_scenario)[0] == "ValueError('Semaphore initial value must be >= 0')"
    assert run_compat(bounded_scenario)[0] == "ValueError('BoundedSemaphore released too many times')"


# ----------------------------------------------------------------------
# Barrier


async def barrier_scenario(aio: Any, trace: list) -> None:
    try:
        aio.Barrier(0)
    except ValueError as exc:
        trace.append(_exc(exc))
    barrier = aio.Barrier(3)
    trace.append((barrier.parties, barrier.n_waiting, barrier.broken, _norm(repr(barrier))))

    async def party(i: int) -> None:
        try:
            index = await barrier.wait()
            trace.append(("passed", i, index))
        except asyncio.BrokenBarrierError as exc:
            trace.append(("broken", i, _exc(exc)))

    # One full round, twice (the barrier is reusable).
    for _ in range(2):
        ts = [spawn(party(i)) for i in range(3)]
        await asyncio.gather(*ts)
        trace.append(_norm(repr(barrier)))
    # A reset while two wait.
    ts = [spawn(party(i)) for i in range(2)]
    await settle()
    trace.append((barrier.n_waiting, _norm(repr(barrier))))
    await barrier.reset()
    trace.append(_norm(repr(barrier)))
    await asyncio.gather(*ts)
    trace.append((barrier.n_waiting, _norm(repr(barrier))))
    # Async with.
    async def ctx(i: int) -> None:
        async with barrier as index:
            trace.append(("ctx", i, index))

    await asyncio.gather(*(ctx(i) for i in range(3)))
    # Abort while one waits, and after.
    ts = [spawn(party(i)) for i in range(1)]
    await settle()
    await barrier.abort()
    await asyncio.gather(*ts)
    await party(7)
    trace.append((barrier.broken, barrier.n_waiting, _norm(repr(barrier))))


async def barrier_cancel_scenario(aio: Any, trace: list) -> None:
    barrier = aio.Barrier(2)

    async def party() -> None:
        try:
            await barrier.wait()
        except asyncio.CancelledError:
            trace.append(("cancelled", barrier.n_waiting))
            raise

    t = spawn(party())
    await settle()
    trace.append(barrier.n_waiting)
    t.cancel()
    await settle()
    trace.append((t.cancelled(), barrier.n_waiting, _norm(repr(barrier))))


@pytest.mark.parametrize("scenario", [barrier_scenario, barrier_cancel_scenario])
def test_barrier_matches_stock(scenario: Scenario) -> None:
    same_as_stock(scenario)


def test_barrier_errors() -> None:
    trace = run_compat(barrier_scenario)
    assert trace[0] == "ValueError('parties must be > 0')"
    assert ("broken", 7, "BrokenBarrierError('Barrier aborted')") in trace
    assert ("broken", 0, "BrokenBarrierError('Abort or reset of barrier')") in trace


# ----------------------------------------------------------------------
# identity, loop binding


def test_primitives_are_ours_and_print_as_stock_asyncios() -> None:
    for name in ("Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier"):
        cls = getattr(compat, name)
        assert cls is not getattr(asyncio, name)
        assert cls.__module__ == "nursery.compat"
    # The repr is stock asyncio's text, so programs print the same under compat.
    assert re.fullmatch(r"<asyncio\.locks\.Lock object at 0x[0-9a-f]+ \[unlocked\]>", repr(compat.Lock()))

    class MyLock(compat.Lock):
        pass

    assert repr(MyLock()).startswith(f"<{__name__}.test_primitives_are_ours_and_print_as_stock_asyncios.<locals>.MyLock object")


def test_exceptions_are_asyncios_own() -> None:
    assert compat.CancelledError is asyncio.CancelledError
    assert compat.TimeoutError is TimeoutError
    for name in ("InvalidStateError", "BrokenBarrierError", "QueueEmpty", "QueueFull",
                 "IncompleteReadError", "LimitOverrunError"):
        assert getattr(compat, name) is getattr(asyncio, name)
    assert hasattr(compat, "QueueShutDown") == (sys.version_info >= (3, 13))
    if sys.version_info >= (3, 13):
        assert compat.QueueShutDown is asyncio.QueueShutDown


def test_a_primitive_is_bound_to_the_loop_it_first_blocks_in() -> None:
    lock = compat.Lock()

    async def hold_and_wait() -> None:
        await lock.acquire()
        t = asyncio.get_running_loop().create_task(lock.acquire())
        await asyncio.sleep(0)
        t.cancel()
        await asyncio.sleep(0)
        lock.release()

    loop = compat.new_event_loop()
    loop.run_until_complete(hold_and_wait())
    loop.close()

    async def block_elsewhere() -> None:
        await lock.acquire()  # free: no waiting, no binding needed
        t = asyncio.get_running_loop().create_task(lock.acquire())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match=r"<asyncio\.locks\.Lock .* is bound to a different event loop"):
            t.result()
        lock.release()

    loop = compat.new_event_loop()
    loop.run_until_complete(block_elsewhere())
    loop.close()


# ----------------------------------------------------------------------
# inside nursery.run, with nursery tasks


def test_lock_shared_by_nursery_tasks_and_compat_tasks_in_fifo_order() -> None:
    order = []

    async def main() -> None:
        lock = compat.Lock()

        async def user(name: str) -> None:
            for _ in range(2):
                async with lock:
                    order.append(name)
                    await nursery.sleep(0)

        async with nursery.open_nursery() as n:
            n.start_soon(user, "n1")
            t = asyncio.get_running_loop().create_task(user("c1"))
            n.start_soon(user, "n2")
            await t
        assert not lock.locked()

    nursery.run(main)
    assert sorted(order) == ["c1", "c1", "n1", "n1", "n2", "n2"]
    # FIFO: nobody gets the lock twice while another is queued.
    assert order[:3] != order[3:] or len(set(order[:3])) == 3
    assert len(set(order[:3])) == 3


def test_cancel_scope_cancels_a_task_blocked_on_a_compat_lock() -> None:
    log = []

    async def main() -> None:
        lock = compat.Lock()
        await lock.acquire()

        async def blocked(name: str) -> None:
            with nursery.move_on_after(1) as scope:
                async with lock:
                    log.append(f"{name} got it")
            log.append((name, scope.cancelled_caught))

        async def patient() -> None:
            async with lock:
                log.append("patient got it")

        async with nursery.open_nursery() as n:
            n.start_soon(blocked, "b")
            n.start_soon(patient)
            await nursery.sleep(5)
            assert repr(lock).endswith("[locked, waiters:1]>")
            lock.release()
        assert not lock.locked()

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [("b", True), "patient got it"]


def test_event_and_condition_across_nursery_and_compat_tasks() -> None:
    log = []

    async def main() -> None:
        ev = compat.Event()
        cond = compat.Condition()
        box: list = []

        async def nursery_waiter() -> None:
            await ev.wait()
            log.append("nursery task saw the event")
            async with cond:
                box.append(1)
                cond.notify_all()

        async def compat_waiter() -> None:
            async with cond:
                await cond.wait_for(lambda: box)
                log.append("compat task notified")

        async with nursery.open_nursery() as n:
            n.start_soon(nursery_waiter)
            t = asyncio.get_running_loop().create_task(compat_waiter())
            await nursery.sleep(0)
            ev.set()
            await t

    nursery.run(main)
    assert log == ["nursery task saw the event", "compat task notified"]


def test_task_cancel_reaches_a_nursery_task_blocked_on_a_semaphore() -> None:
    async def main() -> None:
        sem = compat.Semaphore(0)
        caught = []

        async def blocked() -> None:
            try:
                await sem.acquire()
            except asyncio.CancelledError as exc:
                caught.append(exc.args)
                raise

        async with nursery.open_nursery() as n:
            n.start_soon(blocked)
            await nursery.sleep(0)
            t = sem._waiters[0].task
            t.cancel("msg")
        assert caught == [("msg",)]
        assert not sem.locked() is False  # value 0: still locked
        assert repr(sem).endswith("[locked]>")

    with pytest.raises(BaseExceptionGroup) as info:
        nursery.run(main)
    assert info.group_contains(asyncio.CancelledError)


# ----------------------------------------------------------------------
# random differential scenarios: tasks contend, random ones are cancelled at
# random moments; every step's trace and repr must match stock asyncio


def random_contention(kind: str, seed: int) -> Scenario:
    async def scenario(aio: Any, trace: list) -> None:
        rng = random.Random(seed)
        if kind == "lock":
            prim = aio.Lock()
        elif kind == "semaphore":
            prim = aio.Semaphore(rng.randint(0, 3))
        else:
            prim = aio.Condition()

        async def worker(i: int) -> None:
            try:
                for _ in range(rng.randint(1, 3)):
                    async with prim:
                        trace.append(("in", i))
                        if kind == "condition":
                            if rng.random() < 0.5:
                                await prim.wait()
                                trace.append(("woke", i))
                            else:
                                prim.notify(rng.randint(0, 2))
                        else:
                            for _ in range(rng.randint(0, 2)):
                                await asyncio.sleep(0)
                    trace.append(("out", i))
            except asyncio.CancelledError:
                trace.append(("cancelled", i))
                raise

        tasks = [spawn(worker(i)) for i in range(6)]
        for _ in range(40):
            r = rng.random()
            if r < 0.2:
                rng.choice(tasks).cancel()
            elif r < 0.3 and kind == "semaphore":
                prim.release()
                trace.append("extra release")
            elif r < 0.35 and kind == "condition":
                async with prim:
                    prim.notify_all()
            trace.append(_norm(repr(prim)))
            await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        trace.append(_norm(repr(prim)))

    return scenario


@pytest.mark.parametrize("kind", ["lock", "semaphore", "condition"])
def test_random_contention_and_cancellation_match_stock(kind: str) -> None:
    for seed in range(150):
        scenario = random_contention(kind, seed)
        assert run_compat(scenario) == run_stock(scenario), f"seed {seed}"


def test_waiting_on_a_foreign_event_loop_says_what_to_do() -> None:
    async def main() -> None:
        lock = compat.Lock()
        await lock.acquire()  # free: no waiting, works anywhere
        with pytest.raises(RuntimeError, match=r"wait on the nursery kernel, and this code runs on another event loop"):
            await lock.acquire()
        with pytest.raises(RuntimeError, match=r"run it on nursery.compat's loop"):
            await compat.Queue().get()

    loop = asyncio.SelectorEventLoop()  # stock asyncio's, whatever the policy
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()

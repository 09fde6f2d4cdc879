"""Lock, StrictFIFOLock, Condition, Semaphore and CapacityLimiter: semantics,
fairness (FIFO hand-off), cancellation safety, checkpoints and misuse
errors."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import assert_checkpoints, assert_no_checkpoints, wait_all_tasks_blocked

LOCKS = [nursery.Lock, nursery.StrictFIFOLock]


async def _start_in_order(n, fn, names, *args):
    """Start fn(name, *args) per name, one at a time, each until it blocks,
    so that they queue up in this order."""
    for name in names:
        n.start_soon(fn, name, *args, name=name)
        await wait_all_tasks_blocked()


# ----------------------------------------------------------------------
# Lock and StrictFIFOLock


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_lock_acquire_release_and_statistics(lock_class):
    lock = lock_class()
    me = lowlevel.current_task()
    assert not lock.locked()
    assert lock.statistics() == nursery.LockStatistics(locked=False, owner=None, tasks_waiting=0)
    await lock.acquire()
    assert lock.locked()
    assert lock.statistics() == nursery.LockStatistics(locked=True, owner=me, tasks_waiting=0)
    assert "locked by" in repr(lock)
    lock.release()
    assert not lock.locked()
    async with lock:
        assert lock.statistics().owner is me
    assert not lock.locked()
    lock.acquire_nowait()
    assert lock.locked()
    lock.release()
    with pytest.raises(dataclasses.FrozenInstanceError):
        lock.statistics().locked = True  # type: ignore[misc]


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_lock_misuse_errors(lock_class):
    lock = lock_class()
    with pytest.raises(RuntimeError, match=r"release of .* which is not locked"):
        lock.release()
    async with lock:
        with pytest.raises(RuntimeError, match="already held by this task"):
            await lock.acquire()
        with pytest.raises(RuntimeError, match="already held by this task"):
            lock.acquire_nowait()
        # Still held exactly once, by us.
        assert lock.statistics().owner is lowlevel.current_task()

        errors = []

        async def stranger():
            with pytest.raises(nursery.WouldBlock):
                lock.acquire_nowait()
            try:
                lock.release()
            except RuntimeError as exc:
                errors.append(str(exc))

        async with nursery.open_nursery() as n:
            n.start_soon(stranger)
        assert len(errors) == 1
        assert "by a task that does not hold it" in errors[0]
        assert "the owner is <Task" in errors[0]
    assert not lock.locked()


def test_lock_outside_a_run_says_so():
    with pytest.raises(RuntimeError, match=r"Lock.acquire_nowait\(\) must be called from inside nursery.run"):
        nursery.Lock().acquire_nowait()
    with pytest.raises(RuntimeError, match=r"Lock.release\(\) must be called from inside nursery.run"):
        nursery.Lock().release()


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_lock_hands_off_to_the_first_waiter(lock_class):
    lock = lock_class()
    log = []
    tasks = {}

    async def waiter(name):
        tasks[name] = lowlevel.current_task()
        async with lock:
            log.append(name)

    await lock.acquire()
    async with nursery.open_nursery() as n:
        await _start_in_order(n, waiter, ["a", "b", "c"])
        assert lock.statistics().tasks_waiting == 3
        lock.release()
        # Ownership moved before "a" even ran: nobody can barge in now.
        assert lock.statistics() == nursery.LockStatistics(locked=True, owner=tasks["a"], tasks_waiting=2)
        with pytest.raises(nursery.WouldBlock):
            lock.acquire_nowait()
    assert log == ["a", "b", "c"]
    assert not lock.locked()


@pytest.mark.parametrize("lock_class", LOCKS)
@pytest.mark.parametrize("checkpoint_inside", [True, False])
async def test_lock_is_fair_to_tasks_that_loop(lock_class, checkpoint_inside):
    # Each task re-acquires right after releasing. Without hand-off the
    # releasing task would take the lock again at once, every time.
    lock = lock_class()
    log = []

    async def looper(i):
        for _ in range(10):
            async with lock:
                log.append(i)
                if checkpoint_inside:
                    await nursery.sleep(0)

    async with nursery.open_nursery() as n:
        for i in range(5):
            n.start_soon(looper, i)
    assert log == list(range(5)) * 10


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_lock_acquire_is_a_checkpoint_and_release_is_not(lock_class):
    lock = lock_class()
    with assert_checkpoints():
        await lock.acquire()  # uncontended
    with assert_no_checkpoints():
        lock.release()
    with assert_no_checkpoints():
        lock.acquire_nowait()
        lock.release()

    # In a cancelled scope, an uncontended acquire raises and takes nothing.
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(nursery.Cancelled):
            await lock.acquire()
        assert not lock.locked()
    assert not scope.cancelled_caught  # pytest.raises caught it first
    assert not lock.locked()

    # A shielded-checkpoint acquire cannot lose the lock to a cancellation
    # that arrives while it lets others run.
    async def cancel_soon(scope):
        scope.cancel()

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:
            n.start_soon(cancel_soon, scope)
            await lock.acquire()  # the other task cancels us meanwhile
            assert lock.statistics().owner is lowlevel.current_task()
            lock.release()
            await nursery.sleep(0)
            pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught
    assert not lock.locked()


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_cancelled_lock_waiter_leaves_no_ghost(lock_class):
    lock = lock_class()
    log = []
    scopes = {}

    async def waiter(name):
        with nursery.CancelScope() as scopes[name]:
            async with lock:
                log.append(name)
                return
        log.append(f"{name} cancelled")

    await lock.acquire()
    async with nursery.open_nursery() as n:
        await _start_in_order(n, waiter, ["a", "b", "c"])
        scopes["b"].cancel()
        await wait_all_tasks_blocked()
        assert log == ["b cancelled"]
        assert lock.statistics().tasks_waiting == 2
        lock.release()
    assert log == ["b cancelled", "a", "c"]
    assert lock.statistics() == nursery.LockStatistics(locked=False, owner=None, tasks_waiting=0)


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_a_woken_waiter_keeps_the_lock_even_if_cancelled_at_once(lock_class):
    # Hand-off then cancellation before the woken task runs: it owns the
    # lock, and gives it back when its block unwinds.
    lock = lock_class()
    log = []

    async def waiter(name, scope_box):
        with nursery.CancelScope() as scope_box[name]:
            async with lock:
                log.append(("got", name))
                await nursery.sleep(0)
                log.append(("not reached", name))
        log.append(("left", name))

    scopes = {}
    await lock.acquire()
    async with nursery.open_nursery() as n:
        await _start_in_order(n, waiter, ["a", "b"], scopes)
        lock.release()  # hands off to a
        scopes["a"].cancel()
    assert log == [("got", "a"), ("left", "a"), ("got", "b"), ("not reached", "b"), ("left", "b")]
    assert not lock.locked()


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_lock_survives_random_cancellations(lock_class, autojump_clock):
    rng = random.Random(1234)
    lock = lock_class()
    inside = 0
    counts = {"acquired": 0, "released": 0, "cancelled_waiting": 0, "cancelled_holding": 0}

    async def worker():
        nonlocal inside
        for _ in range(30):
            acquired = False
            with nursery.move_on_after(rng.choice([0, rng.uniform(0, 0.05)])):
                await lock.acquire()
                acquired = True
                counts["acquired"] += 1
                try:
                    inside += 1
                    assert inside == 1
                    await nursery.sleep(rng.choice([0, rng.uniform(0, 0.01)]))
                except nursery.Cancelled:
                    counts["cancelled_holding"] += 1
                    raise
                finally:
                    inside -= 1
                    lock.release()
                    counts["released"] += 1
            if not acquired:
                counts["cancelled_waiting"] += 1

    async with nursery.open_nursery() as n:
        for _ in range(20):
            n.start_soon(worker)
    assert counts["acquired"] == counts["released"] > 0
    assert counts["cancelled_waiting"] > 0
    assert counts["cancelled_holding"] > 0
    assert counts["acquired"] + counts["cancelled_waiting"] == 20 * 30
    assert lock.statistics() == nursery.LockStatistics(locked=False, owner=None, tasks_waiting=0)
    # And it still works.
    async with lock:
        pass


# ----------------------------------------------------------------------
# Condition


async def test_condition_misuse_errors():
    with pytest.raises(TypeError, match=r"Condition\(\) needs a nursery.Lock \(or StrictFIFOLock\), got 42"):
        nursery.Condition(42)  # type: ignore[arg-type]
    cond = nursery.Condition()
    with pytest.raises(RuntimeError, match=r"Condition.wait\(\) must be called by the task holding the condition's lock"):
        await cond.wait()
    with pytest.raises(RuntimeError, match=r"Condition.notify\(\) must be called by the task holding"):
        cond.notify()
    with pytest.raises(RuntimeError, match=r"Condition.notify_all\(\) must be called by the task holding"):
        cond.notify_all()
    async with cond:
        with pytest.raises(ValueError, match=r"notify\(\) needs a non-negative int, got -1"):
            cond.notify(-1)
        with pytest.raises(ValueError, match=r"notify\(\) needs a non-negative int, got 1.5"):
            cond.notify(1.5)  # type: ignore[arg-type]

        # Held by another task is not held by us.
        async def other():
            with pytest.raises(RuntimeError, match="must be called by the task holding"):
                await cond.wait()

        async with nursery.open_nursery() as n:
            n.start_soon(other)
    assert not cond.locked()


async def test_condition_lock_methods():
    lock = nursery.StrictFIFOLock()
    cond = nursery.Condition(lock)
    assert not cond.locked()
    await cond.acquire()
    assert cond.locked() and lock.locked()
    cond.release()
    cond.acquire_nowait()
    assert lock.statistics().owner is lowlevel.current_task()
    cond.release()
    assert cond.statistics() == nursery.ConditionStatistics(
        tasks_waiting=0, lock_statistics=nursery.LockStatistics(locked=False, owner=None, tasks_waiting=0)
    )


async def test_condition_notify_wakes_in_fifo_order_holding_the_lock():
    cond = nursery.Condition()
    log = []

    async def waiter(name):
        async with cond:
            await cond.wait()
            # Back from wait() means we hold the lock again.
            assert cond.statistics().lock_statistics.owner is lowlevel.current_task()
            log.append(name)

    async with nursery.open_nursery() as n:
        await _start_in_order(n, waiter, ["a", "b", "c", "d"])
        assert cond.statistics().tasks_waiting == 4
        assert not cond.locked()
        async with cond:
            cond.notify()
            assert cond.statistics().tasks_waiting == 3
            # "a" is now queued for the lock, which we still hold.
            assert cond.statistics().lock_statistics.tasks_waiting == 1
            await wait_all_tasks_blocked()
            assert log == []
        await wait_all_tasks_blocked()
        assert log == ["a"]
        async with cond:
            cond.notify(2)
        await wait_all_tasks_blocked()
        assert log == ["a", "b", "c"]
        async with cond:
            cond.notify(0)
            cond.notify_all()
    assert log == ["a", "b", "c", "d"]
    assert cond.statistics().tasks_waiting == 0
    assert not cond.locked()


async def test_condition_wait_cancelled_reacquires_the_lock_first():
    cond = nursery.Condition()
    log = []

    async def waiter(scope_box):
        with nursery.CancelScope() as scope_box["scope"]:
            async with cond:
                try:
                    await cond.wait()
                except nursery.Cancelled:
                    # Cancelled, but the lock is ours again before we see it.
                    assert cond.statistics().lock_statistics.owner is lowlevel.current_task()
                    log.append("waiter has the lock")
                    raise
        assert not cond.locked()
        log.append("waiter done")

    box = {}
    async with nursery.open_nursery() as n:
        n.start_soon(waiter, box)
        await wait_all_tasks_blocked()
        async with cond:
            box["scope"].cancel()
            # The waiter must wait for us, however long we keep the lock.
            await nursery.sleep(0)
            await wait_all_tasks_blocked()
            log.append("holder releases")
    assert log == ["holder releases", "waiter has the lock", "waiter done"]


async def test_condition_wait_cancelled_after_notify_reacquires_the_lock():
    # Cancelled while queued on the lock (after notify, before the release).
    cond = nursery.Condition()
    log = []
    box = {}

    async def waiter():
        with nursery.CancelScope() as box["scope"]:
            async with cond:
                try:
                    await cond.wait()
                finally:
                    log.append(("holds lock", cond.statistics().lock_statistics.owner is lowlevel.current_task()))
        log.append("cancelled" if box["scope"].cancelled_caught else "woken")

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        async with cond:
            cond.notify()
            box["scope"].cancel()
            await wait_all_tasks_blocked()
            assert cond.statistics().lock_statistics.tasks_waiting == 1  # waiting again, shielded
    assert log == [("holds lock", True), "cancelled"]
    assert not cond.locked()


async def test_condition_wait_is_a_checkpoint():
    cond = nursery.Condition()

    async def notifier():
        async with cond:
            cond.notify()

    async with cond:
        async with nursery.open_nursery() as n:
            n.start_soon(notifier)
            with assert_checkpoints():
                await cond.wait()
        with assert_no_checkpoints():
            cond.notify()
            cond.notify_all()
        # Already cancelled: wait() raises, holding the lock again.
        with nursery.CancelScope() as scope:
            scope.cancel()
            await cond.wait()
        assert scope.cancelled_caught
        assert cond.statistics().lock_statistics.owner is lowlevel.current_task()


async def test_condition_producer_consumer(autojump_clock):
    cond = nursery.Condition()
    items = []
    got = []

    async def consumer(name):
        for _ in range(5):
            async with cond:
                while not items:
                    await cond.wait()
                got.append((name, items.pop(0)))

    async def producer():
        for i in range(10):
            await nursery.sleep(0.1)
            async with cond:
                items.append(i)
                cond.notify()

    async with nursery.open_nursery() as n:
        n.start_soon(consumer, "x")
        n.start_soon(consumer, "y")
        n.start_soon(producer)
    assert sorted(item for _, item in got) == list(range(10))
    assert [name for name, _ in got].count("x") == 5


# ----------------------------------------------------------------------
# Semaphore


def test_semaphore_bad_arguments():
    with pytest.raises(ValueError, match=r"Semaphore initial_value must be >= 0, got -1"):
        nursery.Semaphore(-1)
    with pytest.raises(TypeError, match=r"Semaphore initial_value must be an int, got 1.5"):
        nursery.Semaphore(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Semaphore initial_value must be an int, got '1'"):
        nursery.Semaphore("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Semaphore initial_value must be an int, got True"):
        nursery.Semaphore(True)
    with pytest.raises(TypeError, match=r"Semaphore max_value must be an int, got 2.0"):
        nursery.Semaphore(1, max_value=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"initial_value \(3\) must not exceed max_value \(2\)"):
        nursery.Semaphore(3, max_value=2)


async def test_semaphore_basics_and_max_value():
    sem = nursery.Semaphore(2, max_value=3)
    assert (sem.value, sem.max_value) == (2, 3)
    await sem.acquire()
    sem.acquire_nowait()
    assert sem.value == 0
    with pytest.raises(nursery.WouldBlock):
        sem.acquire_nowait()
    assert sem.statistics() == nursery.SemaphoreStatistics(value=0, max_value=3, tasks_waiting=0)
    sem.release()
    sem.release()
    sem.release()
    assert sem.value == 3
    with pytest.raises(ValueError, match=r"Semaphore released too many times: its value is already max_value \(3\)"):
        sem.release()
    assert sem.value == 3
    async with sem:
        assert sem.value == 2
    assert sem.value == 3
    unbounded = nursery.Semaphore(0)
    assert unbounded.max_value is None
    for _ in range(5):
        unbounded.release()
    assert unbounded.value == 5
    assert "value 5," in repr(unbounded)


async def test_semaphore_hands_off_in_fifo_order():
    sem = nursery.Semaphore(0, max_value=1)
    log = []

    async def waiter(name):
        await sem.acquire()
        log.append(name)

    async with nursery.open_nursery() as n:
        await _start_in_order(n, waiter, ["a", "b", "c"])
        assert sem.statistics().tasks_waiting == 3
        sem.release()
        # The permit went to "a": nothing left for anyone else, and no
        # max_value error either.
        assert sem.value == 0
        with pytest.raises(nursery.WouldBlock):
            sem.acquire_nowait()
        sem.release()
        sem.release()
    assert log == ["a", "b", "c"]
    assert sem.value == 0
    sem.release()
    assert sem.value == 1


async def test_semaphore_is_fair_to_tasks_that_loop():
    sem = nursery.Semaphore(2)
    log = []

    async def looper(i):
        for _ in range(20):
            async with sem:
                log.append(i)
                await nursery.sleep(0)

    async with nursery.open_nursery() as n:
        for i in range(5):
            n.start_soon(looper, i)
    # Any window of 5 consecutive acquisitions has every task exactly once.
    assert len(log) == 100
    for start in range(0, 100 - 5):
        assert sorted(log[start : start + 5]) == list(range(5)), (start, log)


async def test_semaphore_checkpoints():
    sem = nursery.Semaphore(1)
    with assert_checkpoints():
        await sem.acquire()
    with assert_no_checkpoints():
        sem.release()
        sem.acquire_nowait()
        sem.release()
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(nursery.Cancelled):
            await sem.acquire()
    assert sem.value == 1


async def test_semaphore_survives_random_cancellations(autojump_clock):
    rng = random.Random(99)
    sem = nursery.Semaphore(3, max_value=3)
    inside = 0
    most_inside = 0
    counts = {"acquired": 0, "released": 0, "cancelled_waiting": 0}

    async def worker():
        nonlocal inside, most_inside
        for _ in range(30):
            acquired = False
            with nursery.move_on_after(rng.choice([0, rng.uniform(0, 0.05)])):
                async with sem:
                    acquired = True
                    counts["acquired"] += 1
                    inside += 1
                    most_inside = max(most_inside, inside)
                    try:
                        await nursery.sleep(rng.uniform(0, 0.02))
                    finally:
                        inside -= 1
                        counts["released"] += 1
            if not acquired:
                counts["cancelled_waiting"] += 1

    async with nursery.open_nursery() as n:
        for _ in range(20):
            n.start_soon(worker)
    assert counts["acquired"] == counts["released"] > 0
    assert counts["cancelled_waiting"] > 0
    assert most_inside == 3
    assert sem.statistics() == nursery.SemaphoreStatistics(value=3, max_value=3, tasks_waiting=0)


# ----------------------------------------------------------------------
# CapacityLimiter


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"total_tokens must be >= 1, got 0"),
        (-3, ValueError, r"total_tokens must be >= 1, got -3"),
        (1.5, TypeError, r"total_tokens must be an int or math.inf, got 1.5"),
        ("3", TypeError, r"total_tokens must be an int or math.inf, got '3'"),
        (True, TypeError, r"total_tokens must be an int or math.inf, got True"),
        (-math.inf, TypeError, r"total_tokens must be an int or math.inf, got -inf"),
        (math.nan, TypeError, r"total_tokens must be an int or math.inf, got nan"),
    ],
)
def test_capacity_limiter_bad_total_tokens(value, error, message):
    with pytest.raises(error, match=message):
        nursery.CapacityLimiter(value)
    limiter = nursery.CapacityLimiter(2)
    with pytest.raises(error, match=message):
        limiter.total_tokens = value
    assert limiter.total_tokens == 2


async def test_capacity_limiter_basics():
    limiter = nursery.CapacityLimiter(2)
    me = lowlevel.current_task()
    assert (limiter.total_tokens, limiter.borrowed_tokens, limiter.available_tokens) == (2, 0, 2)
    await limiter.acquire()
    assert (limiter.borrowed_tokens, limiter.available_tokens) == (1, 1)
    with pytest.raises(RuntimeError, match=r"<Task .*> already holds one of this CapacityLimiter's tokens"):
        await limiter.acquire()
    with pytest.raises(RuntimeError, match="already holds one of this CapacityLimiter's tokens"):
        limiter.acquire_nowait()
    limiter.acquire_on_behalf_of_nowait("job")
    with pytest.raises(RuntimeError, match=r"'job' already holds one"):
        await limiter.acquire_on_behalf_of("job")
    assert limiter.statistics() == nursery.CapacityLimiterStatistics(
        borrowed_tokens=2, total_tokens=2, borrowers=limiter.statistics().borrowers, tasks_waiting=0
    )
    assert set(limiter.statistics().borrowers) == {me, "job"}
    with pytest.raises(nursery.WouldBlock):
        limiter.acquire_on_behalf_of_nowait("other")
    limiter.release_on_behalf_of("job")
    with pytest.raises(RuntimeError, match=r"'job' does not hold any of this CapacityLimiter's tokens"):
        limiter.release_on_behalf_of("job")
    limiter.release()
    with pytest.raises(RuntimeError, match=r"<Task .*> does not hold any of this CapacityLimiter's tokens"):
        limiter.release()
    async with limiter:
        assert limiter.statistics().borrowers == [me]
    assert limiter.borrowed_tokens == 0

    unlimited = nursery.CapacityLimiter(math.inf)
    for i in range(100):
        unlimited.acquire_on_behalf_of_nowait(i)
    assert unlimited.available_tokens == math.inf


async def test_capacity_limiter_hand_off_and_total_tokens_changes():
    limiter = nursery.CapacityLimiter(1)
    log = []

    async def borrower(name):
        await limiter.acquire_on_behalf_of(name)
        log.append(name)

    limiter.acquire_on_behalf_of_nowait("first")
    async with nursery.open_nursery() as n:
        await _start_in_order(n, borrower, ["a", "b", "c", "d"])
        assert limiter.statistics().tasks_waiting == 4
        limiter.release_on_behalf_of("first")
        # Handed to "a" at once.
        assert limiter.statistics().borrowers == ["a"]
        with pytest.raises(nursery.WouldBlock):
            limiter.acquire_on_behalf_of_nowait("barger")
        await wait_all_tasks_blocked()
        assert log == ["a"]
        # Raising the limit wakes as many waiters as it allows.
        limiter.total_tokens = 3
        assert sorted(limiter.statistics().borrowers) == ["a", "b", "c"]
        await wait_all_tasks_blocked()
        assert log == ["a", "b", "c"]
        # Lowering it takes nothing back, and lets nobody in until enough
        # tokens came back.
        limiter.total_tokens = 1
        assert limiter.available_tokens == 0
        limiter.release_on_behalf_of("a")
        limiter.release_on_behalf_of("b")
        assert limiter.statistics().tasks_waiting == 1
        limiter.release_on_behalf_of("c")
        assert limiter.statistics().borrowers == ["d"]
    assert log == ["a", "b", "c", "d"]
    limiter.release_on_behalf_of("d")
    assert limiter.borrowed_tokens == 0


async def test_capacity_limiter_one_wait_per_borrower():
    limiter = nursery.CapacityLimiter(1)
    limiter.acquire_on_behalf_of_nowait("holder")
    errors = []

    async def wait_for(borrower):
        try:
            await limiter.acquire_on_behalf_of(borrower)
        except RuntimeError as exc:
            errors.append(str(exc))

    async with nursery.open_nursery() as n:
        await _start_in_order(n, wait_for, ["job", "job"])
        assert errors == ["'job' is already waiting for one of this CapacityLimiter's tokens in another task"]
        limiter.release_on_behalf_of("holder")
    assert limiter.statistics().borrowers == ["job"]
    limiter.release_on_behalf_of("job")
    assert limiter.borrowed_tokens == 0


@pytest.mark.parametrize("lock_class", LOCKS)
async def test_contended_acquire_in_a_cancelled_scope_leaves_no_waiter(lock_class):
    lock = lock_class()
    sem = nursery.Semaphore(0)
    limiter = nursery.CapacityLimiter(1)
    limiter.acquire_on_behalf_of_nowait("holder")

    async def try_all():
        with nursery.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(nursery.Cancelled):
                await lock.acquire()
            with pytest.raises(nursery.Cancelled):
                await sem.acquire()
            with pytest.raises(nursery.Cancelled):
                await limiter.acquire()

    async with lock:
        async with nursery.open_nursery() as n:
            n.start_soon(try_all)
    assert lock.statistics().tasks_waiting == 0
    assert sem.statistics().tasks_waiting == 0
    assert limiter.statistics().tasks_waiting == 0
    assert limiter._pending == {}


async def test_capacity_limiter_checkpoints():
    limiter = nursery.CapacityLimiter(1)
    with assert_checkpoints():
        await limiter.acquire()
    with assert_no_checkpoints():
        limiter.release()
        limiter.acquire_nowait()
        limiter.release()
    with assert_checkpoints():
        await limiter.acquire_on_behalf_of("x")
    limiter.release_on_behalf_of("x")
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(nursery.Cancelled):
            await limiter.acquire()
    assert limiter.borrowed_tokens == 0


async def test_capacity_limiter_survives_random_cancellations(autojump_clock):
    rng = random.Random(7)
    limiter = nursery.CapacityLimiter(4)
    counts = {"acquired": 0, "released": 0, "cancelled_waiting": 0}
    inside = set()
    most_inside = 0

    async def worker(w):
        nonlocal most_inside
        for i in range(30):
            me = (w, i)
            acquired = False
            with nursery.move_on_after(rng.choice([0, rng.uniform(0, 0.05)])):
                await limiter.acquire_on_behalf_of(me)
                acquired = True
                counts["acquired"] += 1
                inside.add(me)
                most_inside = max(most_inside, len(inside))
                try:
                    await nursery.sleep(rng.uniform(0, 0.02))
                finally:
                    inside.remove(me)
                    limiter.release_on_behalf_of(me)
                    counts["released"] += 1
            if not acquired:
                counts["cancelled_waiting"] += 1
            if i == 15 and w == 0:
                limiter.total_tokens = 6

    async with nursery.open_nursery() as n:
        for w in range(20):
            n.start_soon(worker, w)
    assert counts["acquired"] == counts["released"] > 0
    assert counts["cancelled_waiting"] > 0
    assert most_inside == 6
    assert limiter.statistics() == nursery.CapacityLimiterStatistics(
        borrowed_tokens=0, total_tokens=6, borrowers=[], tasks_waiting=0
    )
    assert limiter._pending == {}  # no ghost of a cancelled waiter's borrower
    for i in range(6):
        limiter.acquire_on_behalf_of_nowait(i)
    with pytest.raises(nursery.WouldBlock):
        limiter.acquire_on_behalf_of_nowait("one too many")

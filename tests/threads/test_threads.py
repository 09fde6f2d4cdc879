"""Threads: to_thread.run_sync, from_thread, check_cancelled, tokens and the
worker thread cache."""

from __future__ import annotations

import contextvars
import queue
import re
import threading
import time

import pytest

import nursery
from nursery import from_thread, lowlevel, to_thread
from nursery import _worker_cache
from nursery.testing import wait_all_tasks_blocked

# Long enough for any wait in these tests that is expected to end, short
# enough that a hang fails the test instead of the whole suite.
TIMEOUT = 10.0

cvar: contextvars.ContextVar[str] = contextvars.ContextVar("cvar", default="unset")


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("nursery worker")}


async def _until(predicate, what: str) -> None:
    """Let the run go on (in real time) until predicate() holds."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await nursery.sleep(0.001)


def _foreign_thread(fn, *args, **kwargs) -> tuple[threading.Thread, list]:
    """Start a plain thread (not one of nursery's) running fn(*args,
    **kwargs); its result or exception lands in the returned list."""
    box: list = []

    def main():
        try:
            box.append(("value", fn(*args, **kwargs)))
        except BaseException as exc:
            box.append(("error", exc))

    thread = threading.Thread(target=main, name="test foreign thread")
    thread.start()
    return thread, box


# ----------------------------------------------------------------------
# to_thread.run_sync: results, errors, threads


async def test_run_sync_returns_the_result_computed_in_another_thread():
    def work(a, b):
        return a + b, threading.get_ident()

    total, ident = await to_thread.run_sync(work, 2, 3)
    assert total == 5
    assert ident != threading.get_ident()


async def test_run_sync_raises_the_functions_exception_with_its_traceback():
    def fail():
        raise ValueError("boom from the thread")

    with pytest.raises(ValueError, match="boom from the thread") as info:
        await to_thread.run_sync(fail)
    assert any(entry.name == "fail" for entry in info.traceback)


async def test_run_sync_passes_base_exceptions_through():
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await to_thread.run_sync(interrupt)


async def test_a_second_call_reuses_the_idle_worker_thread(monkeypatch):
    # Long enough that even a slow machine cannot idle the worker out
    # between two calls; shorter than the leak check's grace period.
    monkeypatch.setattr(_worker_cache, "IDLE_TIMEOUT", 1.0)
    idents = [await to_thread.run_sync(threading.get_ident) for _ in range(20)]
    assert len(set(idents)) == 1


async def test_worker_threads_are_daemon_threads():
    assert await to_thread.run_sync(lambda: threading.current_thread().daemon) is True


async def test_concurrent_calls_run_in_distinct_threads():
    barrier = threading.Barrier(3, timeout=TIMEOUT)
    idents = []

    def meet():
        barrier.wait()  # only returns once three threads are in it at once
        idents.append(threading.get_ident())

    async with nursery.open_nursery() as n:
        for _ in range(3):
            n.start_soon(to_thread.run_sync, meet)
    assert len(set(idents)) == 3


def test_idle_workers_exit_after_the_idle_timeout(monkeypatch):
    monkeypatch.setattr(_worker_cache, "IDLE_TIMEOUT", 0.05)
    started: set[threading.Thread] = set()

    def work(barrier):
        barrier.wait()
        started.add(threading.current_thread())

    async def main():
        barrier = threading.Barrier(4, timeout=TIMEOUT)
        async with nursery.open_nursery() as n:
            for _ in range(4):
                n.start_soon(to_thread.run_sync, work, barrier)

    nursery.run(main)
    assert len(started) == 4
    deadline = time.monotonic() + TIMEOUT
    while any(t.is_alive() for t in started) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in started)
    assert _worker_cache.idle_worker_count() == 0


def test_a_worker_that_idled_out_is_replaced_by_a_new_thread(monkeypatch):
    monkeypatch.setattr(_worker_cache, "IDLE_TIMEOUT", 0.01)

    async def main():
        first = await to_thread.run_sync(threading.current_thread)
        first.join(TIMEOUT)
        assert not first.is_alive()
        second = await to_thread.run_sync(threading.current_thread)
        assert second is not first

    nursery.run(main)


async def test_run_sync_rejects_a_coroutine_object():
    async def afn():
        pass

    coro = afn()
    with pytest.raises(TypeError, match=re.escape("to_thread.run_sync() expected a sync function, got a coroutine object (did you write fn() instead of fn?")):
        await to_thread.run_sync(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


async def test_run_sync_rejects_an_async_function():
    async def afn():
        pass

    with pytest.raises(TypeError, match="expected a sync function, but .*afn is an async function"):
        await to_thread.run_sync(afn)


async def test_run_sync_rejects_a_non_callable():
    with pytest.raises(TypeError, match=re.escape("to_thread.run_sync() expected a sync function, got 42")):
        await to_thread.run_sync(42)


def test_run_sync_outside_a_run_says_so():
    with pytest.raises(RuntimeError, match=re.escape("to_thread.run_sync() must be called from inside nursery.run()")):
        to_thread.run_sync(print).send(None)


# ----------------------------------------------------------------------
# context variables


async def test_the_worker_sees_the_tasks_context_variables():
    cvar.set("from the task")
    assert await to_thread.run_sync(cvar.get) == "from the task"


async def test_context_changes_in_the_worker_stay_in_the_worker():
    cvar.set("task")

    def change():
        cvar.set("worker")
        return cvar.get()

    assert await to_thread.run_sync(change) == "worker"
    assert cvar.get() == "task"
    # ... and do not leak into the next call on the same worker thread.
    assert await to_thread.run_sync(cvar.get) == "task"


async def test_each_task_passes_its_own_context():
    results = {}

    async def one(name):
        cvar.set(name)
        results[name] = await to_thread.run_sync(cvar.get)

    async with nursery.open_nursery() as n:
        for name in "abc":
            n.start_soon(one, name)
    assert results == {"a": "a", "b": "b", "c": "c"}


# ----------------------------------------------------------------------
# limiters


async def test_a_limiter_bounds_the_number_of_concurrent_threads():
    limiter = nursery.CapacityLimiter(2)
    lock = threading.Lock()
    running = 0
    peak = 0

    def work():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async with nursery.open_nursery() as n:
        for _ in range(5):
            n.start_soon(lambda: to_thread.run_sync(work, limiter=limiter))
    assert peak == 2
    assert limiter.borrowed_tokens == 0


async def test_the_call_holds_a_token_of_the_limiter_while_the_thread_runs():
    limiter = nursery.CapacityLimiter(3)

    def inside():
        return from_thread.run_sync(lambda: (limiter.borrowed_tokens, limiter.statistics().borrowers))

    borrowed, borrowers = await to_thread.run_sync(inside, limiter=limiter)
    assert borrowed == 1
    assert re.fullmatch(r"\[<to_thread.run_sync call of .*inside>\]", repr(borrowers))
    assert limiter.borrowed_tokens == 0


async def test_the_default_limiter_has_40_tokens_and_is_one_per_run():
    limiter = to_thread.current_default_thread_limiter()
    assert isinstance(limiter, nursery.CapacityLimiter)
    assert limiter.total_tokens == 40
    assert to_thread.current_default_thread_limiter() is limiter
    borrowed = await to_thread.run_sync(from_thread.run_sync, lambda: limiter.borrowed_tokens)
    assert borrowed == 1

    async def other_run():
        return to_thread.current_default_thread_limiter()

    other = await to_thread.run_sync(nursery.run, other_run)
    assert other is not limiter


async def test_lowering_the_default_limit_applies_to_run_sync():
    to_thread.current_default_thread_limiter().total_tokens = 1
    lock = threading.Lock()
    running = peak = 0

    def work():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async with nursery.open_nursery() as n:
        for _ in range(3):
            n.start_soon(to_thread.run_sync, work)
    assert peak == 1


async def test_a_cancelled_wait_for_a_limiter_token_starts_no_thread():
    limiter = nursery.CapacityLimiter(1)
    release = threading.Event()
    ran = []

    async with nursery.open_nursery() as n:
        n.start_soon(lambda: to_thread.run_sync(release.wait, TIMEOUT, limiter=limiter))
        await _until(lambda: limiter.borrowed_tokens == 1, "the first call to start")
        with nursery.CancelScope() as scope:
            scope.cancel()
            await to_thread.run_sync(ran.append, "second", limiter=limiter)
        assert scope.cancelled_caught
        release.set()
    assert ran == []
    assert limiter.borrowed_tokens == 0


class _BrokenReleaseLimiter:
    def __init__(self):
        self.inner = nursery.CapacityLimiter(1)

    async def acquire_on_behalf_of(self, borrower):
        await self.inner.acquire_on_behalf_of(borrower)

    def release_on_behalf_of(self, borrower):
        self.inner.release_on_behalf_of(borrower)
        raise RuntimeError("release failed")


async def test_an_error_releasing_the_limiter_replaces_the_result_and_chains():
    limiter = _BrokenReleaseLimiter()
    with pytest.raises(RuntimeError, match="release failed"):
        await to_thread.run_sync(lambda: 1, limiter=limiter)

    def fail():
        raise ValueError("fn failed")

    with pytest.raises(RuntimeError, match="release failed") as info:
        await to_thread.run_sync(fail, limiter=limiter)
    assert isinstance(info.value.__context__, ValueError)


# ----------------------------------------------------------------------
# cancellation


async def test_an_already_cancelled_call_raises_and_never_runs_the_function():
    ran = []
    with nursery.CancelScope() as scope:
        scope.cancel()
        await to_thread.run_sync(ran.append, 1)
    assert scope.cancelled_caught
    assert ran == []


async def test_without_abandon_a_cancelled_call_waits_for_the_thread_and_returns():
    started = threading.Event()
    release = threading.Event()
    events = []

    def work():
        started.set()
        release.wait(TIMEOUT)
        events.append("thread finished")
        return "result"

    async def canceller(scope):
        await to_thread.run_sync(started.wait, TIMEOUT)
        scope.cancel()
        events.append("cancelled")
        # The call must still be waiting: give it a chance to (wrongly) return.
        await wait_all_tasks_blocked()
        events.append("releasing")
        release.set()

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:
            n.start_soon(canceller, scope)
            result = await to_thread.run_sync(work)
            events.append(f"returned {result}")
            await nursery.sleep(0)  # the next checkpoint raises Cancelled
            events.append("not reached")
    assert scope.cancelled_caught
    assert events == ["cancelled", "releasing", "thread finished", "returned result"]


async def test_with_abandon_a_cancelled_call_raises_at_once_and_discards_the_result():
    limiter = nursery.CapacityLimiter(1)
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def work():
        started.set()
        release.wait(TIMEOUT)
        finished.set()
        raise ValueError("discarded")

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:

            async def canceller():
                await to_thread.run_sync(started.wait, TIMEOUT)
                scope.cancel()

            n.start_soon(canceller)
            await to_thread.run_sync(work, abandon_on_cancel=True, limiter=limiter)
        assert scope.cancelled_caught
        assert not finished.is_set()
        # The thread still holds the limiter token until it is done.
        assert limiter.borrowed_tokens == 1
        release.set()
        await _until(lambda: limiter.borrowed_tokens == 0, "the abandoned thread to return its token")
    assert finished.is_set()


# ----------------------------------------------------------------------
# from_thread.check_cancelled


async def test_check_cancelled_lets_a_worker_stop_when_its_caller_is_cancelled():
    started = threading.Event()
    polls = []

    def poll_until_cancelled():
        started.set()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            from_thread.check_cancelled()
            polls.append(1)
            time.sleep(0.001)
        return "never cancelled"

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:

            async def canceller():
                await to_thread.run_sync(started.wait, TIMEOUT)
                scope.cancel()

            n.start_soon(canceller)
            await to_thread.run_sync(poll_until_cancelled)
    assert scope.cancelled_caught
    assert polls  # it polled at least once before the cancellation


async def test_check_cancelled_returns_quietly_while_not_cancelled():
    def poll():
        from_thread.check_cancelled()
        return "fine"

    assert await to_thread.run_sync(poll) == "fine"


async def test_check_cancelled_in_an_abandoned_thread_raises():
    started = threading.Event()
    release = threading.Event()
    outcome_box = []

    def work():
        started.set()
        release.wait(TIMEOUT)
        try:
            from_thread.check_cancelled()
        except nursery.Cancelled:
            outcome_box.append("cancelled")
        else:
            outcome_box.append("not cancelled")

    limiter = nursery.CapacityLimiter(1)
    with nursery.CancelScope() as scope:
        async with nursery.open_nursery() as n:

            async def canceller():
                await to_thread.run_sync(started.wait, TIMEOUT)
                scope.cancel()

            n.start_soon(canceller)
            await to_thread.run_sync(work, abandon_on_cancel=True, limiter=limiter)
    release.set()
    await _until(lambda: limiter.borrowed_tokens == 0, "the abandoned thread to finish")
    assert outcome_box == ["cancelled"]


async def test_check_cancelled_outside_a_worker_thread_is_an_error():
    message = "from_thread.check_cancelled() can only be called from a worker thread started by nursery.to_thread.run_sync()"
    with pytest.raises(RuntimeError, match=re.escape(message)):
        from_thread.check_cancelled()
    thread, box = _foreign_thread(from_thread.check_cancelled)
    await to_thread.run_sync(thread.join, TIMEOUT)
    ((kind, exc),) = box
    assert kind == "error" and isinstance(exc, RuntimeError) and str(exc) == message


# ----------------------------------------------------------------------
# from_thread from to_thread workers


async def test_from_thread_run_sync_runs_in_the_calling_task_in_the_run_thread():
    host = lowlevel.current_task()
    run_thread = threading.get_ident()

    def back_in_the_run():
        return lowlevel.current_task(), threading.get_ident()

    task, ident = await to_thread.run_sync(from_thread.run_sync, back_in_the_run)
    assert task is host
    assert ident == run_thread


async def test_from_thread_run_sync_raises_the_functions_exception_in_the_worker():
    def fail():
        raise KeyError("in the run")

    def worker():
        try:
            from_thread.run_sync(fail)
        except KeyError as exc:
            return f"caught {exc!r}"

    assert await to_thread.run_sync(worker) == "caught KeyError('in the run')"


async def test_from_thread_run_awaits_in_the_calling_task(autojump_clock):
    host = lowlevel.current_task()

    async def back_in_the_run(delay):
        start = nursery.current_time()
        await nursery.sleep(delay)
        return lowlevel.current_task(), nursery.current_time() - start

    task, slept = await to_thread.run_sync(from_thread.run, back_in_the_run, 5)
    assert task is host
    assert slept == 5


async def test_from_thread_run_raises_the_async_functions_exception():
    async def fail():
        await nursery.sleep(0)
        raise ValueError("async failure")

    def worker():
        with pytest.raises(ValueError, match="async failure"):
            from_thread.run(fail)
        return "ok"

    assert await to_thread.run_sync(worker) == "ok"


async def test_from_thread_sees_the_workers_context_and_changes_stay_there():
    cvar.set("task")

    def worker():
        cvar.set("worker")
        seen_sync = from_thread.run_sync(cvar.get)

        async def read_and_change():
            value = cvar.get()
            cvar.set("changed in the run")
            return value

        seen_async = from_thread.run(read_and_change)
        return seen_sync, seen_async, cvar.get()

    assert await to_thread.run_sync(worker) == ("worker", "worker", "worker")
    assert cvar.get() == "task"


async def test_from_thread_run_is_cancelled_with_the_calling_task():
    # The async function runs inside the host task's cancel scopes: cancelling
    # the to_thread call cancels it, and Cancelled comes out of
    # from_thread.run in the worker, and then out of to_thread.run_sync.
    in_run = []

    async def sleeper():
        in_run.append("sleeping")
        await nursery.sleep_forever()

    def worker():
        try:
            from_thread.run(sleeper)
        except nursery.Cancelled:
            in_run.append("Cancelled in the worker")
            raise

    async with nursery.open_nursery() as n:
        with nursery.CancelScope() as scope:

            async def canceller():
                await _until(lambda: in_run, "the async function to start")
                scope.cancel()

            n.start_soon(canceller)
            await to_thread.run_sync(worker)
    assert scope.cancelled_caught
    assert in_run == ["sleeping", "Cancelled in the worker"]


async def test_from_thread_in_a_loop_from_one_worker():
    counter = []

    async def add(i):
        await nursery.sleep(0)
        counter.append(i)

    def worker():
        for i in range(50):
            from_thread.run(add, i)
            from_thread.run_sync(counter.append, -i)
        return len(counter)

    assert await to_thread.run_sync(worker) == 100


async def test_a_worker_can_start_another_thread_through_the_run():
    def inner():
        return "inner"

    def outer():
        return from_thread.run(to_thread.run_sync, inner)

    assert await to_thread.run_sync(outer) == "inner"


async def test_from_thread_in_an_abandon_on_cancel_call_runs_in_a_system_task():
    host = lowlevel.current_task()

    def worker():
        return from_thread.run_sync(lowlevel.in_task), from_thread.run(_current_task_async)

    in_task, task = await to_thread.run_sync(worker, abandon_on_cancel=True)
    assert in_task is False  # a plain callback of the run loop
    assert task is not host
    assert task.parent_nursery is lowlevel.current_root_task().child_nurseries[0]


async def _current_task_async():
    return lowlevel.current_task()


# ----------------------------------------------------------------------
# tokens and foreign threads


async def test_current_token_is_one_token_per_run():
    token = lowlevel.current_token()
    assert isinstance(token, lowlevel.Token)
    assert lowlevel.current_token() is token
    assert re.fullmatch(r"<nursery.lowlevel.Token for a running run at 0x[0-9a-f]+>", repr(token))

    async def other():
        return lowlevel.current_token()

    other_token = await to_thread.run_sync(nursery.run, other)
    assert other_token is not token
    assert "finished" in repr(other_token)


def test_current_token_outside_a_run_says_so():
    with pytest.raises(RuntimeError, match=re.escape("current_token() must be called from inside nursery.run()")):
        lowlevel.current_token()


async def test_token_run_sync_soon_from_a_foreign_thread_runs_in_order():
    token = lowlevel.current_token()
    got = []
    done = nursery.Event()

    def post():
        for i in range(100):
            token.run_sync_soon(got.append, i)
        token.run_sync_soon(done.set)

    thread, box = _foreign_thread(post)
    await done.wait()
    thread.join(TIMEOUT)
    assert got == list(range(100))
    assert box == [("value", None)]


def test_token_run_sync_soon_wakes_the_idle_run_at_once():
    # No deadline anywhere: the run sleeps in its I/O wait with no timeout
    # until the foreign thread's call wakes it.
    def main():
        async def wait_for_thread():
            done = nursery.Event()
            token = lowlevel.current_token()
            t0 = time.monotonic()
            timer = threading.Timer(0.05, token.run_sync_soon, (done.set,))
            timer.start()
            await done.wait()
            timer.join()
            return time.monotonic() - t0

        return nursery.run(wait_for_thread)

    assert main() < 2.0


async def test_token_run_sync_soon_runs_in_the_runs_context_outside_any_task():
    token = lowlevel.current_token()
    cvar.set("task value")
    seen = []
    done = nursery.Event()

    def record():
        seen.append((cvar.get(), lowlevel.in_task(), threading.get_ident()))
        done.set()

    thread, _ = _foreign_thread(token.run_sync_soon, record)
    await done.wait()
    thread.join(TIMEOUT)
    assert seen == [("unset", False, threading.get_ident())]


def test_token_run_sync_soon_after_the_run_raises_run_finished_error():
    async def main():
        return lowlevel.current_token()

    token = nursery.run(main)
    with pytest.raises(nursery.RunFinishedError, match="this run has finished"):
        token.run_sync_soon(print)


async def test_from_thread_with_a_token_from_a_foreign_thread():
    token = lowlevel.current_token()
    host = lowlevel.current_task()
    cvar.set("task")

    async def afn(x):
        await nursery.sleep(0)
        return x * 2, lowlevel.current_task(), cvar.get()

    def foreign():
        cvar.set("foreign")
        a = from_thread.run_sync(lambda: (threading.get_ident(), cvar.get()), token=token)
        b = from_thread.run(afn, 21, token=token)
        return a, b

    thread, box = _foreign_thread(foreign)
    await to_thread.run_sync(thread.join, TIMEOUT)
    ((kind, ((ident, sync_cvar), (doubled, task, async_cvar))),) = box
    assert kind == "value"
    assert ident == threading.get_ident()
    assert sync_cvar == "foreign"
    assert doubled == 42
    assert task is not host
    assert async_cvar == "foreign"


async def test_from_thread_with_a_token_propagates_exceptions():
    token = lowlevel.current_token()

    async def afail():
        raise ValueError("async")

    def fail():
        raise ValueError("sync")

    def foreign():
        errors = []
        for call, fn in ((from_thread.run, afail), (from_thread.run_sync, fail)):
            try:
                call(fn, token=token)
            except ValueError as exc:
                errors.append(str(exc))
        return errors

    thread, box = _foreign_thread(foreign)
    await to_thread.run_sync(thread.join, TIMEOUT)
    assert box == [("value", ["async", "sync"])]


def test_a_system_task_from_a_token_is_cancelled_when_the_run_finishes():
    async def main():
        token = lowlevel.current_token()
        started = threading.Event()

        async def forever():
            started.set()
            await nursery.sleep_forever()

        thread, box = _foreign_thread(from_thread.run, forever, token=token)
        await to_thread.run_sync(started.wait, TIMEOUT)
        return thread, box  # the main task ends: system tasks are cancelled

    thread, box = nursery.run(main)
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    ((kind, exc),) = box
    assert kind == "error" and isinstance(exc, nursery.Cancelled)


def test_from_thread_after_the_run_finished_raises_run_finished_error():
    async def main():
        return lowlevel.current_token()

    token = nursery.run(main)
    for call, fn in ((from_thread.run_sync, print), (from_thread.run, nursery.sleep)):
        thread, box = _foreign_thread(call, fn, token=token)
        thread.join(TIMEOUT)
        ((kind, exc),) = box
        assert kind == "error" and isinstance(exc, nursery.RunFinishedError), box


@pytest.mark.allow_leaks("threads")  # the abandoned worker outlives the run by design
def test_an_abandoned_worker_that_calls_back_after_the_run_gets_run_finished_error():
    release = threading.Event()
    box = []
    done = threading.Event()

    def worker():
        release.wait(TIMEOUT)
        try:
            from_thread.run_sync(print)
        except BaseException as exc:
            box.append(exc)
        done.set()

    async def main():
        with nursery.move_on_after(0.01):
            await to_thread.run_sync(worker, abandon_on_cancel=True)

    nursery.run(main)
    release.set()
    assert done.wait(TIMEOUT)
    (exc,) = box
    assert isinstance(exc, nursery.RunFinishedError)


# ----------------------------------------------------------------------
# from_thread misuse


async def test_from_thread_in_the_run_thread_is_an_error():
    token = lowlevel.current_token()

    async def afn():
        pass

    for where, call, fn, instead in (
        ("from_thread.run_sync()", from_thread.run_sync, print, "call the function directly instead"),
        ("from_thread.run()", from_thread.run, afn, "await the async function directly instead"),
    ):
        message = (
            f"{where} was called from a thread that is running a nursery run, where waiting for the "
            f"result would block that run forever; {instead}"
        )
        for kwargs in ({}, {"token": token}):
            with pytest.raises(RuntimeError, match=re.escape(message)):
                call(fn, **kwargs)


def test_from_thread_in_the_run_thread_from_a_callback_is_an_error():
    # Outside any task (a call_soon callback), but still in the run's thread.
    errors = []

    def callback(token):
        try:
            from_thread.run_sync(print, token=token)
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main():
        lowlevel.call_soon(callback, lowlevel.current_token())
        await nursery.sleep(0)
        await nursery.sleep(0)

    nursery.run(main)
    assert len(errors) == 1 and "running a nursery run" in errors[0]


async def test_from_thread_in_a_foreign_thread_without_token_is_an_error():
    def foreign():
        return [_error_of(from_thread.run_sync, print), _error_of(from_thread.run, nursery.sleep, 0)]

    thread, box = _foreign_thread(foreign)
    await to_thread.run_sync(thread.join, TIMEOUT)
    ((kind, errors),) = box
    for (exc_type, message), where in zip(errors, ("from_thread.run_sync()", "from_thread.run()")):
        assert exc_type is RuntimeError
        assert message == (
            f"{where} was called from a thread that nursery.to_thread.run_sync did not start, so it does "
            "not know which run to call into: pass token=..., a token you got in that run with "
            "nursery.lowlevel.current_token()"
        )


def _error_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        return type(exc), str(exc)
    return None


async def test_from_thread_with_a_wrong_token_type_is_an_error():
    assert await to_thread.run_sync(lambda: _error_of(from_thread.run_sync, print, token="tok")) == (
        TypeError,
        "from_thread.run_sync(): token must be a nursery.lowlevel.Token, got 'tok'",
    )


async def test_from_thread_with_the_wrong_kind_of_function_is_an_error():
    async def afn():
        return 1

    def sync_fn():
        return 1

    def worker():
        coro = afn()
        errors = [
            _error_of(from_thread.run_sync, afn),
            _error_of(from_thread.run, sync_fn),
            _error_of(from_thread.run, coro),
            _error_of(from_thread.run_sync, 3),
        ]
        return errors, coro.cr_frame is None

    errors, closed = await to_thread.run_sync(worker)
    assert closed
    assert [e[0] for e in errors] == [TypeError] * 4
    assert re.fullmatch(r"from_thread.run_sync\(\) expected a sync function, but .*afn is an async function .*use from_thread.run\(\) for async functions", errors[0][1])
    assert re.fullmatch(r"from_thread.run\(\) expected an async function, but .*sync_fn returned 1; use from_thread.run_sync\(\) for sync functions", errors[1][1])
    assert errors[2][1].startswith("from_thread.run() expected an async function, got a coroutine object (did you write fn() instead of fn?")
    assert errors[3][1] == "from_thread.run_sync() expected a sync function, got 3"


# ----------------------------------------------------------------------
# the worker cache itself


def test_start_thread_soon_delivers_value_or_error_in_the_worker():
    delivered: queue.SimpleQueue = queue.SimpleQueue()

    def deliver(result):
        delivered.put((result, threading.get_ident()))

    def fail():
        raise ValueError("x")

    _worker_cache.start_thread_soon(threading.get_ident, deliver)
    result, deliverer = delivered.get(timeout=TIMEOUT)
    assert result.unwrap() == deliverer != threading.get_ident()  # fn and deliver ran in one worker
    _worker_cache.start_thread_soon(fail, deliver)
    result, second_deliverer = delivered.get(timeout=TIMEOUT)
    assert second_deliverer == deliverer  # the idle worker was reused
    with pytest.raises(ValueError, match="x"):
        result.unwrap()


def test_a_failing_deliver_is_reported_and_the_worker_survives(capsys):
    delivered: queue.SimpleQueue = queue.SimpleQueue()

    def bad_deliver(result):
        delivered.put(threading.get_ident())
        raise RuntimeError("deliver bug")

    _worker_cache.start_thread_soon(lambda: None, bad_deliver)
    first = delivered.get(timeout=TIMEOUT)
    _worker_cache.start_thread_soon(lambda: None, lambda result: delivered.put(threading.get_ident()))
    assert delivered.get(timeout=TIMEOUT) == first
    err = capsys.readouterr().err
    assert "exception in a worker thread's deliver()" in err and "RuntimeError: deliver bug" in err

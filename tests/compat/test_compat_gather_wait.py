"""nursery.compat's gather, shield, wait, as_completed and sleep: each
scenario runs with stock asyncio on its own loop and with nursery.compat on
compat's loop (virtual time) and inside nursery.run, and must give the same
trace, result and exceptions."""

from __future__ import annotations

import asyncio
import sys

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

from differential import describe, same

PY313 = sys.version_info >= (3, 13)


async def worker(aio, log, name, delay, result=None, error=None):
    log.append(f"{name} start")
    try:
        await aio.sleep(delay)
    except asyncio.CancelledError as exc:
        log.append(f"{name} cancelled {exc.args}")
        raise
    if error is not None:
        log.append(f"{name} fails")
        raise error
    log.append(f"{name} done")
    return result


# ----------------------------------------------------------------------
# sleep


def test_sleep_zero_is_one_bare_yield():
    async def scenario(aio, log):
        async def other():
            for i in range(3):
                log.append(f"other {i}")
                await aio.sleep(0)

        t = aio.ensure_future(other())
        for i in range(3):
            log.append(f"main {i}")
            r = await aio.sleep(-1, result=i)
            log.append(f"got {r}")
        await t
        return await aio.sleep(0.01, "late")

    result, log = same(scenario)
    assert result == ("value", "late")
    assert log[:4] == ["main 0", "other 0", "got 0", "main 1"]


def test_sleep_can_be_cancelled_by_task_cancel_with_a_message():
    async def scenario(aio, log):
        t = aio.ensure_future(worker(aio, log, "w", 10))
        await aio.sleep(0)
        t.cancel("stop it")
        try:
            await t
        except asyncio.CancelledError as exc:
            log.append(("outer", exc.args))
        return t.cancelled()

    result, log = same(scenario)
    assert result == ("value", True)
    assert log == ["w start", "w cancelled ('stop it',)", ("outer", ("stop it",))]


def test_sleep_of_an_hour_takes_no_time_on_the_mock_clock():
    clock = MockClock(autojump_threshold=0)
    loop = compat.new_event_loop(clock=clock)

    async def main():
        start = loop.time()
        assert await compat.sleep(3600, "x") == "x"
        return loop.time() - start

    try:
        assert loop.run_until_complete(main()) == 3600
    finally:
        loop.close()


@pytest.mark.skipif(not PY313, reason="3.13 checks for NaN")
def test_sleep_nan_is_rejected_on_313():
    async def scenario(aio, log):
        await aio.sleep(float("nan"))

    assert same(scenario)[0] == ("error", ("ValueError", "Invalid delay: NaN (not a number)"))


def test_sleep_in_a_cancelled_nursery_scope_is_cancelled_level_triggered():
    log = []

    async def main():
        with nursery.CancelScope() as scope:
            scope.cancel()
            for i in range(3):
                try:
                    await compat.sleep(1)  # asyncio code swallowing the cancellation...
                except asyncio.CancelledError as exc:
                    log.append((i, type(exc).__name__))
            log.append("never here without a checkpoint")
            await compat.sleep(0)  # ...is cancelled again at its next checkpoint
            log.append("not reached")
        log.append(scope.cancelled_caught)

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [(0, "Cancelled"), (1, "Cancelled"), (2, "Cancelled"), "never here without a checkpoint", True]


# ----------------------------------------------------------------------
# gather


def test_gather_results_in_argument_order():
    async def scenario(aio, log):
        fut = aio.get_running_loop().create_future()
        fut.set_result("ready")
        coro = worker(aio, log, "a", 0.03, "A")
        return await aio.gather(coro, worker(aio, log, "b", 0.01, "B"), fut, worker(aio, log, "c", 0, "C"))

    result, log = same(scenario)
    assert result == ("value", ["A", "B", "ready", "C"])
    assert log == ["a start", "b start", "c start", "c done", "b done", "a done"]


def test_gather_of_nothing_is_an_empty_list():
    async def scenario(aio, log):
        outer = aio.gather()
        log.append(outer.done())
        return await outer

    assert same(scenario) == (("value", []), [True])


def test_gather_same_awaitable_twice_runs_it_once():
    async def scenario(aio, log):
        t = aio.ensure_future(worker(aio, log, "t", 0.01, 7))
        return await aio.gather(t, t, t)

    assert same(scenario) == (("value", [7, 7, 7]), ["t start", "t done"])


def test_gather_first_error_propagates_and_the_others_go_on():
    async def scenario(aio, log):
        slow = aio.ensure_future(worker(aio, log, "slow", 0.05, "S"))
        try:
            await aio.gather(worker(aio, log, "bad", 0.01, error=KeyError("k")), slow)
        except KeyError as exc:
            log.append(("caught", repr(exc), slow.done()))
        return await slow

    result, log = same(scenario)
    assert result == ("value", "S")
    assert log == ["slow start", "bad start", "bad fails", ("caught", "KeyError('k')", False), "slow done"]


def test_gather_return_exceptions_collects_errors_and_cancellations():
    async def scenario(aio, log):
        victim = aio.ensure_future(worker(aio, log, "victim", 1))
        aio.get_running_loop().call_later(0.01, victim.cancel, "bye")
        results = await aio.gather(
            worker(aio, log, "ok", 0, 1), worker(aio, log, "bad", 0.02, error=ValueError("v")), victim,
            return_exceptions=True,
        )
        return [describe(r) if isinstance(r, BaseException) else r for r in results]

    result, log = same(scenario)
    assert result == ("value", [1, ("ValueError", "v"), ("CancelledError", "")])  # (as asyncio: the message is lost)


def test_gather_cancelled_child_without_return_exceptions_raises_cancelled_error():
    async def scenario(aio, log):
        victim = aio.ensure_future(worker(aio, log, "victim", 1))
        aio.get_running_loop().call_later(0.01, victim.cancel, "child msg")
        outer = aio.gather(victim, worker(aio, log, "other", 0.05, 2))
        try:
            await outer
        except asyncio.CancelledError as exc:
            log.append(("caught", exc.args, outer.cancelled()))
        await aio.sleep(0.1)

    result, log = same(scenario)
    assert ("caught", ("child msg",), False) in log
    assert log[-1] == "other done"


def test_cancelling_the_gather_cancels_the_children():
    async def scenario(aio, log):
        outer = aio.gather(worker(aio, log, "a", 1), worker(aio, log, "b", 1), return_exceptions=True)
        await aio.sleep(0.01)
        log.append(("cancel", outer.cancel("go away")))
        log.append(("done at once", outer.done()))
        try:
            await outer
        except asyncio.CancelledError as exc:
            log.append(("outer", exc.args))
        log.append(("cancel again", outer.cancel()))

    result, log = same(scenario)
    assert log == [
        "a start", "b start", ("cancel", True), ("done at once", False),
        "a cancelled ('go away',)", "b cancelled ('go away',)", ("outer", ("go away",)), ("cancel again", False),
    ]


def test_cancelling_the_awaiting_task_cancels_the_gather():
    async def scenario(aio, log):
        async def parent():
            await aio.gather(worker(aio, log, "a", 1), worker(aio, log, "b", 1))

        t = aio.ensure_future(parent())
        await aio.sleep(0.01)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            log.append("parent cancelled")

    assert same(scenario)[1] == ["a start", "b start", "a cancelled ()", "b cancelled ()", "parent cancelled"]


def test_gather_rejects_what_is_not_awaitable():
    async def scenario(aio, log):
        await aio.gather(1)

    assert same(scenario)[0] == ("error", ("TypeError", "An asyncio.Future, a coroutine or an awaitable is required"))


# ----------------------------------------------------------------------
# shield


def test_shield_keeps_the_inner_task_running_when_the_waiter_is_cancelled():
    async def scenario(aio, log):
        inner = aio.ensure_future(worker(aio, log, "inner", 0.05, "kept"))

        async def waiter():
            return await aio.shield(inner)

        w = aio.ensure_future(waiter())
        await aio.sleep(0.01)
        w.cancel()
        try:
            await w
        except asyncio.CancelledError:
            log.append("waiter cancelled")
        return await inner

    assert same(scenario) == (("value", "kept"), ["inner start", "waiter cancelled", "inner done"])


def test_shield_of_a_cancelled_inner_is_cancelled_and_of_a_done_one_is_it():
    async def scenario(aio, log):
        inner = aio.ensure_future(worker(aio, log, "inner", 1))
        outer = aio.shield(inner)
        await aio.sleep(0.01)
        inner.cancel()
        await aio.sleep(0)
        await aio.sleep(0)
        log.append(outer.cancelled())
        done = aio.get_running_loop().create_future()
        done.set_result(1)
        log.append(aio.shield(done) is done)

    assert same(scenario)[1] == ["inner start", "inner cancelled ()", True, True]


def test_shield_under_a_nursery_cancel_scope_keeps_the_inner_task():
    log = []

    async def main():
        inner = compat.ensure_future(worker(compat, log, "inner", 5, "kept"))
        with nursery.move_on_after(1) as scope:
            await compat.shield(inner)
        log.append(("scope caught", scope.cancelled_caught, inner.done()))
        log.append(await inner)

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == ["inner start", ("scope caught", True, False), "inner done", "kept"]


# ----------------------------------------------------------------------
# wait


@pytest.mark.parametrize("return_when", ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"])
def test_wait_return_when(return_when):
    async def scenario(aio, log):
        tasks = {
            "fast": aio.ensure_future(worker(aio, log, "fast", 0.01, 1)),
            "bad": aio.ensure_future(worker(aio, log, "bad", 0.02, error=OSError("x"))),
            "slow": aio.ensure_future(worker(aio, log, "slow", 0.04, 3)),
        }
        done, pending = await aio.wait(tasks.values(), return_when=getattr(aio, return_when))
        names = {t: n for n, t in tasks.items()}
        out = (sorted(names[t] for t in done), sorted(names[t] for t in pending))
        await aio.wait(tasks.values())
        tasks["bad"].exception()
        return out

    expected = {
        "FIRST_COMPLETED": (["fast"], ["bad", "slow"]),
        "FIRST_EXCEPTION": (["bad", "fast"], ["slow"]),
        "ALL_COMPLETED": (["bad", "fast", "slow"], []),
    }[return_when]
    assert same(scenario)[0] == ("value", expected)


def test_wait_timeout_returns_pending_without_raising_or_cancelling():
    async def scenario(aio, log):
        t = aio.ensure_future(worker(aio, log, "t", 0.05, 1))
        done, pending = await aio.wait([t], timeout=0.01)
        log.append((len(done), len(pending), t.cancelled()))
        return await t

    assert same(scenario) == (("value", 1), ["t start", (0, 1, False), "t done"])


@pytest.mark.parametrize(
    "bad",
    ["empty", "coroutine", "future", "return_when"],
)
def test_wait_bad_arguments_fail_like_asyncio(bad):
    async def scenario(aio, log):
        fut = aio.get_running_loop().create_future()
        fut.set_result(None)
        if bad == "empty":
            await aio.wait([])
        elif bad == "coroutine":
            coro = aio.sleep(0)
            try:
                await aio.wait([coro])
            finally:
                coro.close()
        elif bad == "future":
            await aio.wait(fut)
        else:
            await aio.wait([fut], return_when="SOMETIMES")

    result = same(scenario)[0]
    assert result[0] == "error"
    assert result[1] == {
        "empty": ("ValueError", "Set of Tasks/Futures is empty."),
        "coroutine": ("TypeError", "Passing coroutines is forbidden, use tasks explicitly."),
        "future": ("TypeError", "expect a list of futures, not Future"),
        "return_when": ("ValueError", "Invalid return_when value: SOMETIMES"),
    }[bad]


# ----------------------------------------------------------------------
# as_completed


def test_as_completed_yields_results_in_completion_order():
    async def scenario(aio, log):
        out = []
        aws = [worker(aio, log, "c", 0.03, "C"), worker(aio, log, "a", 0.01, "A"), worker(aio, log, "b", 0.02, "B")]
        for next_one in aio.as_completed(aws):
            out.append(await next_one)
        log.sort()  # (the start order follows a set's: arbitrary)
        return out

    assert same(scenario)[0] == ("value", ["A", "B", "C"])


def test_as_completed_timeout_raises_timeout_error_for_the_rest():
    async def scenario(aio, log):
        slow = aio.ensure_future(worker(aio, log, "slow", 1, "S"))
        out = []
        for next_one in aio.as_completed([worker(aio, log, "fast", 0.01, "F"), slow], timeout=0.05):
            try:
                out.append(await next_one)
            except TimeoutError:
                out.append("timeout")
        slow.cancel()
        log.sort()
        return out

    assert same(scenario)[0] == ("value", ["F", "timeout"])


def test_as_completed_rejects_a_single_future():
    async def scenario(aio, log):
        fut = aio.get_running_loop().create_future()
        for _ in aio.as_completed(fut):
            pass

    expected = "expects an iterable of awaitables, not Future" if PY313 else "expect an iterable of futures, not Future"
    assert same(scenario)[0] == ("error", ("TypeError", expected))


@pytest.mark.skipif(not PY313, reason="async iteration is new in 3.13")
def test_as_completed_async_iteration_yields_the_tasks_themselves():
    async def scenario(aio, log):
        a = aio.ensure_future(worker(aio, log, "a", 0.02, "A"))
        b = aio.ensure_future(worker(aio, log, "b", 0.01, "B"))
        out = []
        async for t in aio.as_completed([a, b]):
            out.append(("a" if t is a else "b" if t is b else "?", t.result()))
        return out

    assert same(scenario)[0] == ("value", [("b", "B"), ("a", "A")])


def test_gather_and_wait_work_inside_nursery_tasks():
    # Plain kernel tasks (not compat Tasks) await compat's combinators.
    log = []

    async def child(n):
        await compat.sleep(n)
        return n

    async def in_nursery_task():
        log.append(await compat.gather(child(2), child(1)))
        t = compat.ensure_future(child(3))
        done, pending = await compat.wait([t], timeout=1)
        log.append((len(done), len(pending)))
        t.cancel()

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(in_nursery_task)

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [[2, 1], (0, 1)]

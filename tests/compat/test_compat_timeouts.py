"""nursery.compat's timeout, timeout_at, Timeout and wait_for: each scenario
runs with stock asyncio on its own loop, with nursery.compat on compat's loop
(virtual time) and inside nursery.run, and must give the same trace, result
and exceptions. Plus nursery cancel scopes around and inside them."""

from __future__ import annotations

import asyncio
import sys

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

from differential import same

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


# ----------------------------------------------------------------------
# timeout


def test_timeout_expires_into_timeout_error_and_reports_expired():
    async def scenario(aio, log):
        cm = aio.timeout(0.01)
        log.append(repr(cm).startswith("<Timeout [created]"))
        try:
            async with cm:
                log.append(repr(cm).startswith("<Timeout [active] when="))
                await aio.sleep(10)
        except TimeoutError as exc:
            log.append(("timeout", type(exc.__cause__).__name__, cm.expired(), repr(cm)))
        return aio.current_task().cancelling()

    assert same(scenario) == (
        ("value", 0),
        [True, True, ("timeout", "CancelledError", True, "<Timeout [expired]>")],
    )


def test_timeout_not_reached_and_none():
    async def scenario(aio, log):
        async with aio.timeout(10) as cm:
            await aio.sleep(0.01)
        log.append((cm.expired(), repr(cm)))
        async with aio.timeout(None) as cm:
            log.append((cm.when(), repr(cm)))
            await aio.sleep(0.01)
        log.append(repr(cm))
        return "ok"

    assert same(scenario) == (
        ("value", "ok"),
        [(False, "<Timeout [finished]>"), (None, "<Timeout [active] when=None>"), "<Timeout [finished]>"],
    )


def test_timeout_at_and_reschedule():
    async def scenario(aio, log):
        loop = aio.get_running_loop()
        try:
            async with aio.timeout_at(loop.time() + 10) as cm:
                cm.reschedule(None)
                log.append(cm.when())
                cm.reschedule(loop.time() - 1)  # in the past: expires at once
                await aio.sleep(10)
        except TimeoutError:
            log.append("expired")
        for when in (1, None):
            try:
                cm.reschedule(when)
            except RuntimeError as exc:
                log.append(str(exc))
        fresh = aio.timeout(1)
        try:
            fresh.reschedule(2)
        except RuntimeError as exc:
            log.append(str(exc))
        async with fresh:
            pass
        try:
            async with fresh:
                pass
        except RuntimeError as exc:
            log.append(str(exc))

    assert same(scenario)[1] == [
        None,
        "expired",
        "Cannot change state of expired Timeout",
        "Cannot change state of expired Timeout",
        "Timeout has not been entered",
        "Timeout has already been entered",
    ]


def test_nested_timeouts_the_inner_one_converts():
    async def scenario(aio, log):
        try:
            async with aio.timeout(0.05) as outer:
                try:
                    async with aio.timeout(0.01) as inner:
                        await aio.sleep(10)
                except TimeoutError:
                    log.append(("inner", inner.expired(), outer.expired()))
                await aio.sleep(10)
        except TimeoutError:
            log.append(("outer", outer.expired()))

    assert same(scenario)[1] == [("inner", True, False), ("outer", True)]


def test_timeout_does_not_convert_an_outside_cancel():
    # The task is cancelled from outside while its timeout also expired:
    # CancelledError, not TimeoutError, since cancelling() stays above the
    # count at entry.
    async def scenario(aio, log):
        async def body():
            try:
                async with aio.timeout(0.01):
                    aio.current_task().cancel("outside")
                    await aio.sleep(10)
            except TimeoutError:
                log.append("timeout")
            except asyncio.CancelledError as exc:
                log.append(("cancelled", exc.args))

        await aio.ensure_future(body())

    assert same(scenario)[1] == [("cancelled", ("outside",))]


def test_swallowed_cancellation_inside_an_expired_timeout():
    # The block swallows its CancelledError and ends normally.
    async def scenario(aio, log):
        async with aio.timeout(0.01) as cm:
            try:
                await aio.sleep(10)
            except asyncio.CancelledError:
                log.append("swallowed")
        log.append(cm.expired())
        return aio.current_task().cancelling()

    assert same(scenario) == (("value", 0), ["swallowed", True])


def test_other_error_raised_while_expiring():
    async def scenario(aio, log):
        try:
            async with aio.timeout(0.01):
                try:
                    await aio.sleep(10)
                except asyncio.CancelledError:
                    raise KeyError("cleanup failed")
        except KeyError as exc:
            ctx = exc.__context__
            log.append((type(ctx).__name__, type(ctx.__context__).__name__ if ctx else None))

    expected = ("TimeoutError", "CancelledError") if PY313 else ("CancelledError", "NoneType")
    assert same(scenario)[1] == [expected]


def test_timeout_outside_a_task_is_an_error():
    loop = compat.new_event_loop()

    async def enter():
        return await compat.timeout(1).__aenter__()

    try:
        coro = enter()
        with pytest.raises(RuntimeError, match="Timeout should be used inside a task"):
            # Stepped by hand outside of any task: no current task.
            loop.run_until_complete(_stepped_outside_task(loop, coro))
    finally:
        loop.close()


async def _stepped_outside_task(loop, coro):
    fut = loop.create_future()

    def step():
        try:
            coro.send(None)
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)

    loop.call_soon(step)
    return await fut


# ----------------------------------------------------------------------
# nursery cancel scopes and asyncio timeouts


def test_nursery_cancel_scope_around_a_compat_timeout():
    log = []

    async def main():
        with nursery.move_on_after(1) as scope:
            async with compat.timeout(5) as cm:
                await compat.sleep(10)
        log.append((scope.cancelled_caught, cm.expired(), repr(cm)))
        with nursery.move_on_after(5) as scope:
            try:
                async with compat.timeout(1) as cm:
                    await compat.sleep(10)
            except TimeoutError:
                log.append("timeout")
        log.append((scope.cancelled_caught, cm.expired()))
        log.append(compat.current_task().cancelling())

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [(True, False, "<Timeout [finished]>"), "timeout", (False, True), 0]


def test_a_scope_cancellation_is_never_turned_into_timeout_error():
    # Both fire at the same instant: the scope's Cancelled goes on to the scope.
    log = []

    async def main():
        with nursery.move_on_after(1) as scope:
            async with compat.timeout(1) as cm:
                await compat.sleep(10)
        log.append((scope.cancelled_caught, cm.expired()))

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert [caught for caught, _ in log] == [True]  # (no TimeoutError escaped)


def test_compat_timeout_inside_a_compat_task_inside_a_nursery():
    log = []

    async def job():
        async with nursery.open_nursery() as n:
            n.start_soon(nursery.sleep, 0.5)
            try:
                async with compat.timeout(2):
                    await compat.sleep(10)
            except TimeoutError:
                log.append(("timeout at", compat.get_running_loop().time() - start))

    loop = compat.new_event_loop(clock=MockClock(autojump_threshold=0))
    start = loop.time()
    try:
        loop.run_until_complete(job())
    finally:
        loop.close()
    assert log == [("timeout at", 2.0)]


# ----------------------------------------------------------------------
# wait_for


def test_wait_for_result_and_timeout():
    async def scenario(aio, log):
        async def job(d):
            try:
                await aio.sleep(d)
            except asyncio.CancelledError:
                log.append("job cancelled")
                raise
            return d

        log.append(await aio.wait_for(job(0.01), 1))
        log.append(await aio.wait_for(job(0.01), None))
        try:
            await aio.wait_for(job(10), 0.01)
        except TimeoutError as exc:
            log.append(("timeout", type(exc.__cause__).__name__))
        return "end"

    assert same(scenario) == (("value", "end"), [0.01, 0.01, "job cancelled", ("timeout", "CancelledError")])


def test_wait_for_zero_or_negative_timeout():
    async def scenario(aio, log):
        done = aio.get_running_loop().create_future()
        done.set_result("already")
        log.append(await aio.wait_for(done, 0))
        try:
            await aio.wait_for(aio.sleep(1), -1)
        except TimeoutError:
            log.append("timeout")

    assert same(scenario)[1] == ["already", "timeout"]


def test_wait_for_a_task_that_swallows_the_cancellation():
    # 3.11: wait_for returns the value the task returned instead;
    # 3.12+ (on timeout()): the same, via the swallowed CancelledError.
    async def scenario(aio, log):
        async def stubborn():
            try:
                await aio.sleep(10)
            except asyncio.CancelledError:
                log.append("swallowed")
            return "mine"

        try:
            log.append(await aio.wait_for(stubborn(), 0.01))
        except TimeoutError:
            log.append("timeout")

    assert same(scenario)[1] in (["swallowed", "mine"], ["swallowed", "timeout"])


def test_wait_for_cancelled_from_outside_cancels_the_inner_task():
    async def scenario(aio, log):
        inner_started = aio.get_running_loop().create_future()

        async def inner():
            inner_started.set_result(None)
            try:
                await aio.sleep(10)
            except asyncio.CancelledError:
                log.append("inner cancelled")
                raise

        async def outer():
            await aio.wait_for(inner(), 5)

        t = aio.ensure_future(outer())
        await inner_started
        t.cancel("from outside")
        try:
            await t
        except asyncio.CancelledError as exc:
            log.append(("outer", exc.args))

    assert same(scenario)[1] == ["inner cancelled", ("outer", ("from outside",))]


def test_wait_for_under_a_nursery_cancel_scope():
    log = []

    async def job():
        try:
            await compat.sleep(10)
        except asyncio.CancelledError:
            log.append("job cancelled")
            raise

    async def main():
        with nursery.move_on_after(1) as scope:
            await compat.wait_for(job(), 5)
        log.append(scope.cancelled_caught)

    nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == ["job cancelled", True]

"""compat.run and compat.Runner: asyncio.run/asyncio.Runner on the kernel,
compared with stock asyncio on the same interpreter."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import sys
import threading

import pytest

import nursery
from nursery import compat
from nursery.testing import MockClock

ON_312 = sys.version_info >= (3, 12)


@pytest.fixture(autouse=True)
def _restore_asyncio_state():
    policy = asyncio.get_event_loop_policy()
    handler = signal.getsignal(signal.SIGINT)
    yield
    asyncio.set_event_loop_policy(policy)
    signal.signal(signal.SIGINT, handler)


def _error(fn, *args, **kwargs):
    with pytest.raises(BaseException) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


def _stock_and_compat(make):
    """Run ``make(run, Runner)`` with stock asyncio's and with compat's."""
    return make(asyncio.run, asyncio.Runner), make(compat.run, compat.Runner)


# ----------------------------------------------------------------------
# run


def test_run_returns_the_result_on_a_compat_loop_and_closes_it() -> None:
    seen = {}

    async def main(x: int) -> int:
        seen["loop"] = asyncio.get_running_loop()
        seen["current"] = asyncio.get_event_loop_policy().get_event_loop()
        await asyncio.sleep(0)
        return x * 2

    assert compat.run(main(21)) == 42
    assert type(seen["loop"]) is compat.EventLoop
    assert seen["current"] is seen["loop"]  # current loop during the run
    assert seen["loop"].is_closed()
    # ...and not after it (as asyncio.run leaves it)
    with pytest.raises(RuntimeError, match="There is no current event loop"):
        asyncio.get_event_loop_policy().get_event_loop()


def test_run_raises_mains_exception() -> None:
    async def main() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        compat.run(main())


def test_run_with_a_non_coroutine_fails_as_stock() -> None:
    async def main() -> None:
        pass

    for bad in (5, main, None):
        stock, ours = _stock_and_compat(lambda run, Runner: _error(run, bad))
        assert stock == ours
        assert ours[0] is ValueError
        assert ours[1] == f"a coroutine was expected, got {bad!r}"


def test_run_inside_a_running_loop_fails_as_stock() -> None:
    async def nothing() -> None:
        pass

    def attempt(run):
        async def main():
            coro = nothing()
            try:
                return _error(run, coro)
            finally:
                coro.close()

        return main

    stock = asyncio.run(attempt(asyncio.run)())
    on_compat = compat.run(attempt(compat.run)())
    assert stock == on_compat == (RuntimeError, "asyncio.run() cannot be called from a running event loop")
    # also inside nursery.run, whose compat loop is running
    assert nursery.run(attempt(compat.run)) == stock


def test_runner_run_inside_a_running_loop_fails_as_stock() -> None:
    async def nothing() -> None:
        pass

    def attempt(Runner):
        async def main():
            coro = nothing()
            try:
                # (fails before the runner makes its loop)
                return _error(Runner().run, coro)
            finally:
                coro.close()

        return main

    stock = asyncio.run(attempt(asyncio.Runner)())
    ours = compat.run(attempt(compat.Runner)())
    assert stock == ours == (RuntimeError, "Runner.run() cannot be called from a running event loop")


def test_run_debug_sets_the_loops_debug_mode() -> None:
    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert compat.run(debug(), debug=True) is True
    assert compat.run(debug(), debug=False) is False


@pytest.mark.skipif(not ON_312, reason="loop_factory is 3.12+")
def test_run_loop_factory_with_a_mock_clock() -> None:
    clock = MockClock(autojump_threshold=0)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - start

    assert compat.run(main(), loop_factory=lambda: compat.new_event_loop(clock=clock)) == 3600.0
    # stock asyncio.run takes compat's loop the same way
    assert asyncio.run(main(), loop_factory=lambda: compat.new_event_loop(clock=clock)) == 3600.0


@pytest.mark.skipif(ON_312, reason="3.11's asyncio.run has no loop_factory")
def test_run_has_no_loop_factory_on_311() -> None:
    async def main() -> None:
        pass

    for run in (asyncio.run, compat.run):
        coro = main()
        with pytest.raises(TypeError, match="loop_factory"):
            run(coro, loop_factory=compat.new_event_loop)
        coro.close()


def test_leftover_tasks_are_cancelled_and_their_errors_reported() -> None:
    def make(run, Runner):
        log = []

        async def sleeper(name: str) -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                log.append(f"{name} cancelled")
                raise

        async def stubborn() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ValueError("refused") from None

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda loop, ctx: log.append((ctx["message"], repr(ctx["exception"]))))
            asyncio.create_task(sleeper("a"))
            asyncio.create_task(sleeper("b"))
            asyncio.create_task(stubborn())
            await asyncio.sleep(0)

        run(main())
        return sorted(log, key=str)

    stock, ours = _stock_and_compat(make)
    assert stock == ours
    assert ours == [
        ("unhandled exception during asyncio.run() shutdown", "ValueError('refused')"),
        "a cancelled",
        "b cancelled",
    ]


def test_async_generators_are_finalized_at_the_end() -> None:
    def make(run, Runner):
        log = []

        async def agen():
            try:
                yield 1
                yield 2
            finally:
                await asyncio.sleep(0)
                log.append("finalized")

        async def main() -> None:
            it = agen()
            assert await it.__anext__() == 1
            main.keep = it  # still referenced when main returns

        run(main())
        del main.keep
        return log

    assert _stock_and_compat(make) == (["finalized"], ["finalized"])


def test_default_executor_is_shut_down_no_thread_left() -> None:
    before = set(threading.enumerate())

    async def main() -> str:
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    name = compat.run(main())
    assert name != threading.current_thread().name
    assert set(threading.enumerate()) == before


# ----------------------------------------------------------------------
# Runner


def test_runner_runs_several_coroutines_on_one_loop_and_context() -> None:
    var = contextvars.ContextVar("var", default=0)

    async def bump() -> tuple[int, object]:
        var.set(var.get() + 1)
        return var.get(), asyncio.get_running_loop()

    with compat.Runner() as runner:
        loop = runner.get_loop()
        assert type(loop) is compat.EventLoop
        assert runner.run(bump()) == (1, loop)
        assert runner.run(bump()) == (2, loop)  # the runner's own context
        other = contextvars.copy_context()
        assert runner.run(bump(), context=other) == (1, loop)
        assert other[var] == 1
    assert loop.is_closed()
    assert var.get() == 0


def test_runner_lifecycle_errors_as_stock() -> None:
    async def nothing() -> None:
        pass

    def make(run, Runner):
        runner = Runner()
        runner.close()  # not open yet: nothing happens
        loop = runner.get_loop()  # opens it
        runner.close()
        runner.close()  # again: nothing
        coro = nothing()
        errors = [_error(runner.run, coro), _error(runner.get_loop), _error(runner.__enter__)]
        coro.close()
        return loop.is_closed(), errors

    stock, ours = _stock_and_compat(make)
    assert stock == ours
    assert ours == (True, [(RuntimeError, "Runner is closed")] * 3)


def test_runner_non_coroutine_as_stock() -> None:
    def make(run, Runner):
        with Runner() as runner:
            return _error(runner.run, [1])

    stock, ours = _stock_and_compat(make)
    assert stock == ours == (ValueError, "a coroutine was expected, got [1]")


def test_runner_loop_factory_and_debug() -> None:
    clock = MockClock(autojump_threshold=0)
    with compat.Runner(debug=True, loop_factory=lambda: compat.new_event_loop(clock=clock)) as runner:
        loop = runner.get_loop()
        assert loop.get_debug()
        assert runner.run(asyncio.sleep(86400, "a day later")) == "a day later"
        assert clock.current_time() == 86400
        # a factory's loop is not made the current loop
        assert asyncio.get_event_loop_policy()._local._loop is not loop
    assert loop.is_closed()


def test_stock_runner_with_compat_loop_factory() -> None:
    with asyncio.Runner(loop_factory=compat.new_event_loop) as runner:
        assert type(runner.get_loop()) is compat.EventLoop
        assert runner.run(asyncio.sleep(0, "ok")) == "ok"


# ----------------------------------------------------------------------
# Ctrl-C


def _ctrl_c_cases(run, Runner):
    log = []

    async def cancelled_by_ctrl_c() -> None:
        asyncio.get_running_loop().call_later(0.01, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("main cancelled")
            raise

    async def swallows_it() -> str:
        asyncio.get_running_loop().call_later(0.01, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "swallowed"
        return "not interrupted"

    async def twice() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("first")
            loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
            await asyncio.sleep(10)  # the second one interrupts the loop

    outcomes = []
    for main in (cancelled_by_ctrl_c, swallows_it):
        try:
            outcomes.append(("returned", run(main())))
        except BaseException as exc:
            outcomes.append(("raised", type(exc).__name__))
        outcomes.append(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    with Runner() as runner:
        try:
            runner.run(twice())
        except BaseException as exc:
            outcomes.append(("raised", type(exc).__name__))
    return log, outcomes


def test_ctrl_c_as_stock() -> None:
    stock, ours = _stock_and_compat(_ctrl_c_cases)
    assert stock == ours
    assert ours == (
        ["main cancelled", "first"],
        [("raised", "KeyboardInterrupt"), True, ("returned", "swallowed"), True, ("raised", "KeyboardInterrupt")],
    )


def test_ctrl_c_handler_left_alone_when_not_default() -> None:
    got = []
    signal.signal(signal.SIGINT, lambda *a: got.append("mine"))

    async def main() -> str:
        asyncio.get_running_loop().call_later(0.01, signal.raise_signal, signal.SIGINT)
        await asyncio.sleep(0.05)
        return "done"

    assert compat.run(main()) == "done"
    assert got == ["mine"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_fds_or_threads_leak_over_many_runs() -> None:
    async def main() -> int:
        t = asyncio.create_task(asyncio.sleep(0, 1))
        await asyncio.to_thread(int)
        return await t

    compat.run(main())  # (anything made once per process)
    gc.collect()
    fds, threads = _open_fds(), threading.active_count()
    for _ in range(30):
        assert compat.run(main()) == 1
    gc.collect()
    assert (_open_fds(), threading.active_count()) == (fds, threads)

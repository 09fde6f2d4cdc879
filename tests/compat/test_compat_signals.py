"""loop.add_signal_handler / remove_signal_handler on compat's loop: asyncio's
contract (checked against stock asyncio's Unix loop), on a loop of its own
and on the loop of a nursery.run, next to the kernel's own signal handling."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import nursery
from nursery import compat

from differential import describe


def new_compat_loop() -> asyncio.AbstractEventLoop:
    return compat.new_event_loop()


@pytest.fixture(autouse=True)
def _signals_restored():
    """Every test leaves the process's signal handlers as it found them."""
    watched = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGHUP)
    before = {sig: signal.getsignal(sig) for sig in watched}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    assert {sig: signal.getsignal(sig) for sig in watched} == before
    now = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(now)
    assert now == wakeup


def run_on_loop(loop, scenario):
    log: list = []
    try:
        result = ("value", loop.run_until_complete(scenario(loop, log)))
    except BaseException as exc:  # noqa: BLE001 - compared by the caller
        result = ("error", describe(exc))
    finally:
        loop.close()
    return result, log


def run_in_nursery(scenario):
    log: list = []

    async def main():
        return await scenario(asyncio.get_running_loop(), log)

    try:
        result = ("value", nursery.run(main))
    except BaseException as exc:  # noqa: BLE001
        result = ("error", describe(exc))
    return result, log


def same(scenario):
    """Stock asyncio's loop, compat's loop and a nursery.run's loop agree."""
    stock = run_on_loop(asyncio.new_event_loop(), scenario)
    assert run_on_loop(new_compat_loop(), scenario) == stock
    assert run_in_nursery(scenario) == stock
    return stock


# ----------------------------------------------------------------------
# the contract, differentially


def test_handler_runs_as_a_loop_callback_with_its_args():
    async def scenario(loop, log):
        done = loop.create_future()

        def handler(*args):
            log.append(("handler", args, asyncio.current_task() is None))
            done.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, handler, "a", 1)
        os.kill(os.getpid(), signal.SIGUSR1)
        log.append("sent")
        await asyncio.wait_for(done, 5)
        log.append(loop.remove_signal_handler(signal.SIGUSR1))
        log.append(loop.remove_signal_handler(signal.SIGUSR1))
        return "ok"

    assert same(scenario) == (("value", "ok"), ["sent", ("handler", ("a", 1), True), True, False])


def test_each_signal_calls_the_handler_again_and_the_latest_handler_wins():
    async def scenario(loop, log):
        for label in ("first", "second"):
            done = loop.create_future()
            loop.add_signal_handler(signal.SIGUSR2, lambda label=label, done=done: (log.append(label), done.set_result(None)))
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.wait_for(done, 5)
        done = loop.create_future()
        os.kill(os.getpid(), signal.SIGUSR2)
        loop.call_later(0.05, done.set_result, None)
        await done
        loop.remove_signal_handler(signal.SIGUSR2)

    assert same(scenario)[1] == ["first", "second", "second"]


def test_a_cancelled_handle_is_removed_when_its_signal_arrives():
    async def scenario(loop, log):
        loop.add_signal_handler(signal.SIGUSR1, log.append, "never")
        loop._signal_handlers[signal.SIGUSR1].cancel()
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(20):
            await asyncio.sleep(0.005)
        log.append(signal.SIGUSR1 in loop._signal_handlers)
        log.append(loop.remove_signal_handler(signal.SIGUSR1))

    assert same(scenario)[1] == [False, False]


def test_a_failing_handler_goes_to_the_exception_handler():
    async def scenario(loop, log):
        done = loop.create_future()
        loop.set_exception_handler(lambda loop, context: (log.append((context["message"], describe(context["exception"]))), done.set_result(None)))

        def handler():
            raise ValueError("boom")

        loop.add_signal_handler(signal.SIGUSR1, handler)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(done, 5)
        loop.remove_signal_handler(signal.SIGUSR1)

    [(message, error)] = same(scenario)[1]
    assert message.startswith("Exception in callback ") and "handler()" in message
    assert error == ("ValueError", "boom")


@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        (signal.SIGKILL, [("RuntimeError", "sig 9 cannot be caught"), ("returned", False)]),
        (signal.SIGSTOP, [("RuntimeError", "sig 19 cannot be caught"), ("returned", False)]),
        (0, [("ValueError", "invalid signal number 0")] * 2),
        (-1, [("ValueError", "invalid signal number -1")] * 2),
        (1000, [("ValueError", "invalid signal number 1000")] * 2),
        ("SIGUSR1", [("TypeError", "sig must be an int, not 'SIGUSR1'")] * 2),
        (1.5, [("TypeError", "sig must be an int, not 1.5")] * 2),
        (None, [("TypeError", "sig must be an int, not None")] * 2),
    ],
    ids=["SIGKILL", "SIGSTOP", "zero", "negative", "too-big", "str", "float", "None"],
)
def test_bad_signals_are_refused_with_asyncios_errors(sig, expected):
    async def scenario(loop, log):
        for call in (lambda: loop.add_signal_handler(sig, print), lambda: loop.remove_signal_handler(sig)):
            try:
                log.append(("returned", call()))
            except Exception as exc:  # noqa: BLE001
                log.append(describe(exc))

    assert same(scenario)[1] == expected


def test_coroutine_functions_and_coroutines_are_refused():
    async def scenario(loop, log):
        async def coro_fn():
            pass

        coro = coro_fn()
        for callback in (coro_fn, coro):
            try:
                loop.add_signal_handler(signal.SIGUSR1, callback)
            except TypeError as exc:
                log.append(str(exc))
        coro.close()
        log.append(signal.SIGUSR1 in loop._signal_handlers)

    assert same(scenario)[1] == ["coroutines cannot be used with add_signal_handler()"] * 2 + [False]


def test_closed_loop_refuses_new_handlers():
    def outcome(loop):
        loop.close()
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as exc:
            return str(exc)

    assert outcome(new_compat_loop()) == outcome(asyncio.new_event_loop()) == "Event loop is closed"


def test_only_the_main_thread_may_add_handlers():
    def in_thread(make_loop):
        got = []

        def target():
            loop = make_loop()
            try:
                loop.add_signal_handler(signal.SIGUSR1, print)
            except RuntimeError as exc:
                got.append(str(exc))
            finally:
                loop.close()

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        return got

    assert in_thread(new_compat_loop) == in_thread(asyncio.new_event_loop)
    assert in_thread(new_compat_loop) == ["set_wakeup_fd only works in main thread of the main interpreter"]


# ----------------------------------------------------------------------
# compat specifics: the kernel's wake-up fd, previous handlers


def test_a_signal_from_another_thread_wakes_an_idle_loop():
    # The signal is delivered to some thread; the loop sleeps in the
    # kernel's I/O wait with nothing else to do, and must wake up for it.
    loop = new_compat_loop()

    async def main():
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, done.set_result, "woken")
        thread = threading.Thread(target=lambda: (time.sleep(0.05), os.kill(os.getpid(), signal.SIGUSR1)))
        thread.start()
        try:
            start = time.monotonic()
            result = await done
            return result, time.monotonic() - start
        finally:
            thread.join()
            loop.remove_signal_handler(signal.SIGUSR1)

    try:
        result, took = loop.run_until_complete(main())
    finally:
        loop.close()
    assert result == "woken"
    assert took < 2


def test_the_kernels_wakeup_fd_is_left_alone():
    loop = new_compat_loop()

    async def main():
        kernel_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(kernel_fd)
        loop.add_signal_handler(signal.SIGUSR1, print)
        now = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(now)
        loop.remove_signal_handler(signal.SIGUSR1)
        after = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(after)
        return kernel_fd, now, after

    try:
        kernel_fd, now, after = loop.run_until_complete(main())
    finally:
        loop.close()
    assert kernel_fd != -1  # the running loop's kernel installed one
    assert now == after == kernel_fd


def test_removal_and_close_put_the_previous_handler_back():
    def previous(signum, frame):
        pass

    old = signal.signal(signal.SIGUSR1, previous)
    try:
        loop = new_compat_loop()
        loop.add_signal_handler(signal.SIGUSR1, print)
        loop.add_signal_handler(signal.SIGUSR1, print)  # replacing keeps the first previous
        assert signal.getsignal(signal.SIGUSR1) is not previous
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert signal.getsignal(signal.SIGUSR1) is previous

        loop.add_signal_handler(signal.SIGUSR1, print)
        loop.add_signal_handler(signal.SIGHUP, print)
        loop.close()
        assert signal.getsignal(signal.SIGUSR1) is previous
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        assert loop._signal_handlers == {}
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_a_handler_installed_over_ours_is_not_clobbered():
    def theirs(signum, frame):
        pass

    loop = new_compat_loop()
    try:
        loop.add_signal_handler(signal.SIGUSR1, print)
        signal.signal(signal.SIGUSR1, theirs)
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert signal.getsignal(signal.SIGUSR1) is theirs
    finally:
        loop.close()
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def test_a_signal_arriving_while_the_loop_is_not_running_is_handled_when_it_runs():
    loop = new_compat_loop()
    try:
        got = []
        loop.add_signal_handler(signal.SIGUSR1, got.append, "late")
        os.kill(os.getpid(), signal.SIGUSR1)
        assert got == []
        loop.run_until_complete(asyncio.sleep(0.01))
        assert got == ["late"]
    finally:
        loop.close()


# ----------------------------------------------------------------------
# inside nursery.run


def test_inside_a_nursery_run_next_to_a_signal_receiver():
    got = []

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("loop"), done.set_result(None)))
        with nursery.open_signal_receiver(signal.SIGUSR2) as receiver:
            os.kill(os.getpid(), signal.SIGUSR2)
            os.kill(os.getpid(), signal.SIGUSR1)
            async for signum in receiver:
                got.append(signum)
                break
            await done
        assert loop.remove_signal_handler(signal.SIGUSR1)

    nursery.run(main)
    assert sorted(map(str, got)) == sorted(["loop", str(signal.SIGUSR2)])


def test_a_loop_handler_over_a_signal_receiver_hands_the_signal_back():
    got = []

    async def main():
        loop = asyncio.get_running_loop()
        with nursery.open_signal_receiver(signal.SIGUSR1) as receiver:
            loop.add_signal_handler(signal.SIGUSR1, got.append, "loop")
            os.kill(os.getpid(), signal.SIGUSR1)
            await nursery.sleep(0.01)
            loop.remove_signal_handler(signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR1)
            async for signum in receiver:
                got.append(signum)
                break

    nursery.run(main)
    assert got == ["loop", signal.SIGUSR1]


def test_sigint_handler_inside_a_run_gives_ctrl_c_back_to_the_kernel():
    got = []

    async def main():
        loop = asyncio.get_running_loop()
        kernel_handler = signal.getsignal(signal.SIGINT)
        loop.add_signal_handler(signal.SIGINT, got.append, "sigint")
        signal.raise_signal(signal.SIGINT)
        await nursery.sleep(0.01)
        loop.remove_signal_handler(signal.SIGINT)
        got.append(signal.getsignal(signal.SIGINT) is kernel_handler)
        # Still registered when the run ends: the run's end removes it.
        loop.add_signal_handler(signal.SIGINT, got.append, "again")

    nursery.run(main)
    assert got == ["sigint", True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

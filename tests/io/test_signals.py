"""nursery.open_signal_receiver."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import nursery
from nursery import open_signal_receiver
from nursery.testing import wait_all_tasks_blocked


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)


async def until_pending(receiver, count: int) -> None:
    """Wait until *count* distinct signals are pending (the handler posts
    them to the run; they land a tick later)."""
    with nursery.fail_after(5):
        while receiver.pending_signal_count() < count:
            await nursery.sleep(0.001)


@pytest.fixture
def recorded_sigusr():
    """Python handlers for SIGUSR1 and SIGUSR2 that record what they get (so
    a signal that escapes a receiver does not kill the test process)."""
    seen: list[int] = []

    def recorder(signum, frame):
        seen.append(signum)

    old1 = signal.signal(signal.SIGUSR1, recorder)
    old2 = signal.signal(signal.SIGUSR2, recorder)
    try:
        yield seen, recorder
    finally:
        signal.signal(signal.SIGUSR1, old1)
        signal.signal(signal.SIGUSR2, old2)


async def test_receives_a_signal(recorded_sigusr):
    seen, _ = recorded_sigusr
    with open_signal_receiver(signal.SIGUSR1) as receiver:
        send(signal.SIGUSR1)
        signum = await receiver.__anext__()
    assert signum == signal.SIGUSR1
    assert isinstance(signum, signal.Signals)
    assert seen == []  # the previous handler did not see it


async def test_repeats_of_a_pending_signal_are_coalesced(recorded_sigusr, autojump_clock):
    seen, _ = recorded_sigusr
    with open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as receiver:
        send(signal.SIGUSR1)
        send(signal.SIGUSR1)
        await until_pending(receiver, 1)
        send(signal.SIGUSR2)
        send(signal.SIGUSR1)  # still pending: no new entry
        await until_pending(receiver, 2)
        got = []
        async for signum in receiver:
            got.append(signum)
            if not receiver.pending_signal_count():
                break
        assert got == [signal.SIGUSR1, signal.SIGUSR2]
        with nursery.move_on_after(10) as scope:
            await receiver.__anext__()
        assert scope.cancelled_caught  # nothing more came
        # Read once, a signal is reported again when it comes again.
        send(signal.SIGUSR1)
        assert await receiver.__anext__() == signal.SIGUSR1
    assert seen == []


async def test_a_signal_from_another_thread_wakes_an_idle_run(recorded_sigusr):
    with open_signal_receiver(signal.SIGUSR2) as receiver:
        timer = threading.Timer(0.05, send, (signal.SIGUSR2,))
        timer.start()
        try:
            with nursery.fail_after(5):
                assert await receiver.__anext__() == signal.SIGUSR2
        finally:
            timer.join()


async def test_previous_handlers_are_restored(recorded_sigusr):
    _, recorder = recorded_sigusr
    old_ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with open_signal_receiver(signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR1):
            assert signal.getsignal(signal.SIGUSR1) is not recorder
            assert signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGUSR1) is recorder
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        # Also when the block raises.
        with pytest.raises(ZeroDivisionError):
            with open_signal_receiver(signal.SIGUSR1, signal.SIGHUP):
                1 / 0
        assert signal.getsignal(signal.SIGUSR1) is recorder
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old_ignored)


async def test_sigint_goes_to_the_receiver_and_ctrl_c_handling_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with open_signal_receiver(signal.SIGINT) as receiver:
        send(signal.SIGINT)
        assert await receiver.__anext__() == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


async def test_unread_signals_go_to_the_previous_handler_on_exit(recorded_sigusr):
    seen, _ = recorded_sigusr
    with open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as receiver:
        send(signal.SIGUSR2)
        send(signal.SIGUSR1)
        await until_pending(receiver, 2)
    assert seen == [signal.SIGUSR2, signal.SIGUSR1]


async def test_signal_in_flight_at_exit_goes_to_the_previous_handler(recorded_sigusr):
    seen, _ = recorded_sigusr
    with open_signal_receiver(signal.SIGUSR1):
        # The handler has posted it to the run, but the run has not taken
        # it in yet when the block ends.
        send(signal.SIGUSR1)
    assert seen == []
    await wait_all_tasks_blocked()
    assert seen == [signal.SIGUSR1]


async def test_nested_receivers_for_the_same_signal(recorded_sigusr):
    with open_signal_receiver(signal.SIGUSR1) as outer:
        with open_signal_receiver(signal.SIGUSR1) as inner:
            send(signal.SIGUSR1)
            assert await inner.__anext__() == signal.SIGUSR1
        send(signal.SIGUSR1)
        assert await outer.__anext__() == signal.SIGUSR1
        assert inner.pending_signal_count() == 0


async def test_cancelling_the_iterating_task(recorded_sigusr, autojump_clock):
    _, recorder = recorded_sigusr
    received = []

    async def listen(receiver):
        async for signum in receiver:
            received.append(signum)

    with open_signal_receiver(signal.SIGUSR1) as receiver:
        async with nursery.open_nursery() as n:
            n.start_soon(listen, receiver)
            send(signal.SIGUSR1)
            await wait_all_tasks_blocked()
            assert received == [signal.SIGUSR1]
            n.cancel_scope.cancel()
        # The cancelled wait left the receiver usable.
        send(signal.SIGUSR1)
        assert await receiver.__anext__() == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is recorder


async def test_two_tasks_iterating_at_once_is_an_error(recorded_sigusr):
    with open_signal_receiver(signal.SIGUSR1) as receiver:
        async with nursery.open_nursery() as n:
            n.start_soon(receiver.__anext__)
            await wait_all_tasks_blocked()
            with pytest.raises(
                nursery.BusyResourceError, match="^another task is already iterating over this signal receiver$"
            ):
                await receiver.__anext__()
            n.cancel_scope.cancel()


async def test_iterating_after_the_block_is_an_error(recorded_sigusr):
    with open_signal_receiver(signal.SIGUSR1) as receiver:
        pass
    with pytest.raises(nursery.ClosedResourceError, match="^this signal receiver's 'with' block has ended$"):
        await receiver.__anext__()


# ----------------------------------------------------------------------
# bad input


async def test_no_signals_is_a_type_error():
    with pytest.raises(
        TypeError,
        match=r"^open_signal_receiver\(\) needs at least one signal, e\.g\. open_signal_receiver\(signal\.SIGTERM\)$",
    ):
        with open_signal_receiver():
            pass


async def test_what_is_not_a_signal_number_is_a_type_error():
    for bad in ("SIGTERM", 1.0, None, True):
        with pytest.raises(TypeError, match=rf"^open_signal_receiver\(\) expected signal numbers.*got {bad!r}$"):
            with open_signal_receiver(bad):
                pass


async def test_uncatchable_or_unknown_signal_is_a_value_error_and_restores_the_others(recorded_sigusr):
    _, recorder = recorded_sigusr
    with pytest.raises(
        ValueError, match=r"^open_signal_receiver\(\) cannot catch SIGKILL \(9\): it cannot be caught \("
    ):
        with open_signal_receiver(signal.SIGUSR1, signal.SIGKILL):
            pass
    assert signal.getsignal(signal.SIGUSR1) is recorder
    with pytest.raises(
        ValueError, match=r"^open_signal_receiver\(\) cannot catch signal 1000 \(1000\): it does not exist \("
    ):
        with open_signal_receiver(1000):
            pass


def test_outside_the_main_thread_is_a_runtime_error():
    errors = []

    async def main():
        with open_signal_receiver(signal.SIGUSR1):
            pass

    def thread():
        try:
            nursery.run(main)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=thread, name="not-main")
    t.start()
    t.join()
    (error,) = errors
    assert isinstance(error, RuntimeError)
    assert str(error) == (
        "open_signal_receiver() only works in the main thread: Python runs signal handlers "
        "there only, and this is thread 'not-main'"
    )


def test_outside_a_run_is_a_runtime_error():
    with pytest.raises(RuntimeError, match=r"current_token\(\) must be called from inside nursery\.run\(\)"):
        with open_signal_receiver(signal.SIGUSR1):
            pass
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

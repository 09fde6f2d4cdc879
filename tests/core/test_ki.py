"""Ctrl-C: a real SIGINT during nursery.run() cancels every task, lets their
cleanup run, and surfaces as KeyboardInterrupt from run()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import nursery
from nursery import lowlevel
from nursery.testing import MockClock, wait_all_tasks_blocked

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(autouse=True)
def _default_sigint():
    # Every test starts and must end with Python's default SIGINT handler.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_cancels_every_task_and_runs_cleanup():
    log = []

    async def sleeper(name):
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            log.append(f"{name} cancelled")
            raise
        finally:
            log.append(f"{name} finally")

    async def spinner():
        try:
            while True:
                await lowlevel.checkpoint()
        finally:
            log.append("spinner finally")

    async def grandparent():
        try:
            async with nursery.open_nursery() as n:
                n.start_soon(sleeper, "grandchild")
                try:
                    await nursery.sleep_forever()
                finally:
                    log.append("grandparent finally")
        finally:
            log.append("grandparent's nursery exited")

    async def main():
        try:
            async with nursery.open_nursery() as n:
                n.start_soon(sleeper, "child")
                n.start_soon(spinner)
                n.start_soon(grandparent)
                for _ in range(3):  # (the spinner never blocks)
                    await lowlevel.checkpoint()
                log.append("sending SIGINT")
                _ctrl_c()
                # The handler only sets a flag: this task goes on until its
                # next checkpoint.
                log.append("after kill")
                await nursery.sleep_forever()
        finally:
            log.append("main finally")

    with pytest.raises(KeyboardInterrupt) as info:
        nursery.run(main)
    assert type(info.value) is KeyboardInterrupt
    assert log[:2] == ["sending SIGINT", "after kill"]
    assert log[-1] == "main finally"
    for expected in [
        "child cancelled",
        "child finally",
        "grandchild cancelled",
        "grandchild finally",
        "grandparent finally",
        "spinner finally",
    ]:
        assert log.count(expected) == 1, expected
    # The grandparent's nursery waited for the grandchild's cleanup.
    assert log.index("grandchild finally") < log.index("grandparent's nursery exited")
    assert log.index("grandparent's nursery exited") < log.index("main finally")


def test_run_works_normally_after_a_ctrl_c():
    async def interrupted():
        _ctrl_c()
        await nursery.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        nursery.run(interrupted)

    async def normal():
        async with nursery.open_nursery() as n:
            n.start_soon(nursery.sleep, 0.001)
        return "fine"

    assert nursery.run(normal) == "fine"


def test_handler_is_installed_during_the_run_and_restored_after():
    seen = []

    async def main():
        seen.append(signal.getsignal(signal.SIGINT))

    nursery.run(main)
    (handler,) = seen
    assert handler is not signal.default_int_handler
    assert callable(handler)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_handler_restored_when_the_run_raises():
    async def main():
        raise ValueError("main failed")

    with pytest.raises(ValueError, match="main failed"):
        nursery.run(main)
    # (the autouse fixture checks the handler)


def test_custom_sigint_handler_is_left_alone():
    calls = []

    def custom(signum, frame):
        calls.append(signum)

    async def main():
        assert signal.getsignal(signal.SIGINT) is custom
        _ctrl_c()
        await lowlevel.checkpoint()
        await nursery.sleep(0.001)
        return "not interrupted"

    previous = signal.signal(signal.SIGINT, custom)
    try:
        assert nursery.run(main) == "not interrupted"
        assert calls == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is custom
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ignored_sigint_is_left_alone():
    async def main():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        _ctrl_c()
        await nursery.sleep(0.001)
        return 1

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert nursery.run(main) == 1
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_run_in_another_thread_does_not_touch_sigint():
    seen = []

    async def main():
        seen.append(signal.getsignal(signal.SIGINT))
        return "ok"

    results = []
    t = threading.Thread(target=lambda: results.append(nursery.run(main)))
    t.start()
    t.join()
    assert results == ["ok"]
    assert seen == [signal.default_int_handler]


def test_ctrl_c_wins_over_a_return_value():
    async def main():
        _ctrl_c()
        return "value that is lost"

    with pytest.raises(KeyboardInterrupt):
        nursery.run(main)


def test_cleanup_error_is_chained_to_keyboard_interrupt():
    async def stubborn():
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            raise OSError("cleanup failed")

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(stubborn)
            await wait_all_tasks_blocked()
            _ctrl_c()
            await nursery.sleep_forever()

    with pytest.raises(KeyboardInterrupt) as info:
        nursery.run(main)
    context = info.value.__context__
    assert isinstance(context, BaseExceptionGroup)
    errors = [e for e in context.exceptions if not isinstance(e, nursery.Cancelled)]
    assert [(type(e), str(e)) for e in errors] == [(OSError, "cleanup failed")]


def test_only_cancelled_is_not_chained():
    async def main():
        _ctrl_c()
        await nursery.sleep_forever()

    with pytest.raises(KeyboardInterrupt) as info:
        nursery.run(main)
    assert info.value.__context__ is None


def test_shielded_cleanup_completes_before_keyboard_interrupt():
    log = []

    async def careful():
        try:
            await nursery.sleep_forever()
        finally:
            with nursery.CancelScope(shield=True):
                await nursery.sleep(5)  # virtual time
                log.append(("careful cleanup done", nursery.current_time()))

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(careful)
            await wait_all_tasks_blocked()
            _ctrl_c()
            await nursery.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        nursery.run(main, clock=MockClock(autojump_threshold=0))
    assert log == [("careful cleanup done", 5.0)]


def test_sigint_during_system_task_cancels_it_too():
    log = []

    async def system():
        try:
            await nursery.sleep_forever()
        finally:
            log.append("system finally")

    async def main():
        lowlevel.spawn_system_task(system)
        await wait_all_tasks_blocked()
        _ctrl_c()
        try:
            await nursery.sleep_forever()
        finally:
            log.append("main finally")

    with pytest.raises(KeyboardInterrupt):
        nursery.run(main)
    assert sorted(log) == ["main finally", "system finally"]


# ----------------------------------------------------------------------
# In a fresh interpreter: Ctrl-C from another thread while the loop is idle


def _run_script(tmp_path, source):
    """Run *source* in a fresh interpreter (a real process to signal) and
    return its output lines; it must exit cleanly."""
    script = tmp_path / "ki_script.py"
    script.write_text(source)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


_IDLE_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import nursery

    log = []

    async def sleeper(name):
        try:
            await nursery.sleep_forever()
        finally:
            log.append(name)

    async def main():
        async with nursery.open_nursery() as n:
            for name in ("a", "b", "c"):
                n.start_soon(sleeper, name)
            # Every task is now blocked with no deadline: the loop sleeps in
            # its I/O wait until the signal arrives.
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                await nursery.sleep_forever()
            finally:
                log.append("main")

    t0 = time.monotonic()
    try:
        nursery.run(main)
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    print("elapsed<5", time.monotonic() - t0 < 5)
    print("cleanup", sorted(log))
    print("handler restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    async def again():
        await nursery.sleep(0.01)
        return "second run ok"

    print(nursery.run(again))
    for t in threading.enumerate():
        if t is not threading.main_thread():
            t.join()
    """
)


def test_sigint_from_a_thread_while_idle_in_a_subprocess(tmp_path):
    assert _run_script(tmp_path, _IDLE_SCRIPT) == [
        "KeyboardInterrupt",
        "elapsed<5 True",
        "cleanup ['a', 'b', 'c', 'main']",
        "handler restored True",
        "second run ok",
    ]


_BUSY_SCRIPT = textwrap.dedent(
    """
    import os, signal, threading
    import nursery
    from nursery import lowlevel

    steps = [0]
    cleaned = []

    async def busy():
        try:
            while True:
                steps[0] += 1
                await lowlevel.checkpoint()
        finally:
            cleaned.append("busy")

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(busy)
            n.start_soon(busy)
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()

    try:
        nursery.run(main)
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    print("ran", steps[0] > 10)
    print("cleanup", cleaned)
    for t in threading.enumerate():
        if t is not threading.main_thread():
            t.join()
    """
)


def test_sigint_from_a_thread_while_busy_in_a_subprocess(tmp_path):
    assert _run_script(tmp_path, _BUSY_SCRIPT) == ["KeyboardInterrupt", "ran True", "cleanup ['busy', 'busy']"]


_SPIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, threading, time
    import nursery

    cleaned = []

    async def spin():
        # Never reaches a checkpoint: the first Ctrl-C can only be noted.
        try:
            while True:
                pass
        finally:
            cleaned.append("spin")

    async def sleeper():
        try:
            await nursery.sleep_forever()
        finally:
            cleaned.append("sleeper")

    async def main():
        async with nursery.open_nursery() as n:
            n.start_soon(sleeper)
            n.start_soon(spin)
            for delay in (0.2, 0.6):
                threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()

    try:
        nursery.run(main)
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    print("cleanup", sorted(cleaned))
    print("handler restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    print(nursery.run(nursery.sleep, 0) is None)
    for t in threading.enumerate():
        if t is not threading.main_thread():
            t.join()
    """
)


def test_second_ctrl_c_interrupts_a_task_that_never_checkpoints(tmp_path):
    assert _run_script(tmp_path, _SPIN_SCRIPT) == [
        "KeyboardInterrupt",
        "cleanup ['sleeper', 'spin']",
        "handler restored True",
        "True",
    ]

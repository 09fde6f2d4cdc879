"""A signal wakes the run loop's idle wait, whichever thread the OS
delivers it to (signal.set_wakeup_fd for the duration of a run)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap

import nursery

SCRIPT = textwrap.dedent(
    """
    import os, signal, threading, time
    import nursery

    async def main():
        # Blocked in the main thread, so the OS must deliver it to the
        # other thread, while the main thread sits in epoll_wait.
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])

        def other():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGUSR1)

        thread = threading.Thread(target=other)
        thread.start()
        with nursery.open_signal_receiver(signal.SIGUSR1) as signals:
            async for signum in signals:
                print("received", signal.Signals(signum).name)
                break
        thread.join()

    nursery.run(main)
    """
)


def test_signal_delivered_to_another_thread_wakes_the_idle_loop() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "received SIGUSR1\n"


def test_wakeup_fd_is_set_during_the_run_and_restored_after() -> None:
    seen = []

    async def main() -> None:
        fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(fd)
        seen.append(fd)

    assert signal.set_wakeup_fd(-1) == -1
    nursery.run(main)
    assert seen[0] != -1
    assert signal.set_wakeup_fd(-1) == -1


def test_someone_elses_wakeup_fd_is_kept() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        signal.set_wakeup_fd(a.fileno())
        seen = []

        async def main() -> None:
            fd = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(fd)
            seen.append(fd)

        nursery.run(main)
        assert seen == [a.fileno()]
        assert signal.set_wakeup_fd(-1) == a.fileno()
    finally:
        signal.set_wakeup_fd(-1)
        a.close()
        b.close()

"""nursery.lowlevel.wait_child_exited: waiting for a Popen's child without
blocking the run, with a pidfd and with the waiter-thread fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import nursery
from nursery.lowlevel import wait_child_exited
from nursery.testing import assert_checkpoints, wait_all_tasks_blocked


def child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def assert_reaped(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


async def test_returns_the_exit_status_and_reaps(wait_mode):
    popen = child("import sys; sys.exit(3)")
    assert await wait_child_exited(popen) == 3
    assert popen.returncode == 3
    assert_reaped(popen.pid)


async def test_a_child_killed_by_a_signal(wait_mode):
    popen = child("import time; time.sleep(60)")
    popen.kill()
    assert await wait_child_exited(popen) == -signal.SIGKILL
    assert_reaped(popen.pid)


async def test_other_tasks_run_while_waiting(wait_mode):
    popen = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    got = []

    async def waiter():
        got.append(await wait_child_exited(popen))

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert got == []
        popen.stdin.close()  # the child exits at end of input
    assert got == [0]


async def test_already_exited_is_still_a_checkpoint(wait_mode):
    popen = child("pass")
    popen.wait()
    with assert_checkpoints():
        assert await wait_child_exited(popen) == 0


async def test_exited_but_not_reaped(wait_mode):
    popen = child("pass")
    # Exited (a zombie) but nobody has reaped it yet.
    os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOWAIT)
    assert popen.returncode is None
    assert await wait_child_exited(popen) == 0
    assert_reaped(popen.pid)


async def test_several_waiters_and_poll_agree(wait_mode):
    popen = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(5)"], stdin=subprocess.PIPE)
    got = []

    async def waiter():
        got.append(await wait_child_exited(popen))

    async with nursery.open_nursery() as n:
        for _ in range(3):
            n.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert popen.poll() is None
        popen.stdin.close()
    assert got == [5, 5, 5]
    assert popen.poll() == 5


async def test_cancelling_the_wait_leaves_the_child_running(wait_mode):
    popen = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with nursery.move_on_after(0.05) as scope:
            await wait_child_exited(popen)
        assert scope.cancelled_caught
        assert popen.poll() is None
    finally:
        popen.stdin.close()
        # A new wait after a cancelled one works (and, for the thread
        # fallback, races with the abandoned thread's wait harmlessly).
        assert await wait_child_exited(popen) == 0
    assert_reaped(popen.pid)


async def test_no_pidfd_left_open(wait_mode):
    before = set(os.listdir("/proc/self/fd"))
    popen = child("pass")
    await wait_child_exited(popen)
    assert set(os.listdir("/proc/self/fd")) == before

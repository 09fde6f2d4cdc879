"""Waiting for a child process to exit without blocking the run.

Two ways, best first:

* a pidfd (Linux 5.3+, ``os.pidfd_open``): a descriptor that becomes
  readable when the child exits, so the wait is one more fd in the kernel's
  epoll set and costs no thread;
* a worker thread that blocks in ``waitpid`` (everywhere else, or where
  pidfds are refused, e.g. by a seccomp sandbox).

Either way the child is reaped by ``subprocess.Popen``'s own ``wait()``,
which records the exit status on the Popen object under its lock: a
``poll()`` racing with the waiter thread sees either "still running" or the
status, never a stolen one.
"""

from __future__ import annotations

import math
import os
import subprocess
from typing import Any

from ._core import RunVar, checkpoint, wait_readable

# Replaced by None in the tests to exercise the thread fallback.
pidfd_open: Any = getattr(os, "pidfd_open", None)


def open_pidfd(pid: int) -> int | None:
    """A pidfd for child *pid* (close-on-exec), or None where this platform
    or sandbox has none."""
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except OSError:
        # ENOSYS (kernel older than 5.3), EPERM (seccomp): fall back.
        return None


# One waiter thread per waited-for child, however many there are: a limit
# would let a few long-running children starve the others' waits (and the
# default to_thread limiter, shared with user code, is the wrong pool).
_waiter_limiter: RunVar[Any] = RunVar("nursery subprocess waiter limiter")


def _limiter() -> Any:
    limiter = _waiter_limiter.get(None)
    if limiter is None:
        from ._sync import CapacityLimiter

        limiter = CapacityLimiter(math.inf)
        _waiter_limiter.set(limiter)
    return limiter


async def wait_in_thread(popen: subprocess.Popen[bytes]) -> None:
    """Block until *popen*'s child has exited and is reaped, in a worker
    thread. Cancellable: the thread is abandoned, and still reaps the child
    (and records its status on *popen*) when it exits."""
    # Imported here: nursery.lowlevel imports this module (through
    # open_process), and the threads module imports nursery.lowlevel.
    from ._threads import to_thread_run_sync

    await to_thread_run_sync(popen.wait, abandon_on_cancel=True, limiter=_limiter())


async def wait_child_exited(popen: subprocess.Popen[Any]) -> int:
    """Wait until the child process that *popen* started has exited, reap it
    and return its exit status (``popen.returncode``: ``-N`` if signal ``N``
    killed it).

    For code that starts children with :class:`subprocess.Popen` itself and
    needs to know when they exit without blocking the run (compat's asyncio
    subprocess transport is such code). Where the platform has pidfds (Linux
    5.3+) the wait is one more descriptor in the run's I/O wait; elsewhere
    it is a worker thread blocked in ``waitpid``.

    The child is reaped through *popen* (its ``wait()``), so ``poll()`` or
    ``wait()`` on the same Popen object elsewhere, even at the same time,
    agree with this function, and several tasks may wait for the same child
    at once. Nothing else in the process may reap the child behind *popen*'s
    back (``os.waitpid(-1, ...)``, a ``SIGCHLD`` handler that reaps).

    A checkpoint, also when the child has already exited. Cancelling the
    wait leaves the child running; where a thread waits, that thread still
    reaps the child (and records its status on *popen*) when it exits.
    """
    if popen.returncode is not None:
        await checkpoint()
        return popen.returncode
    pidfd = open_pidfd(popen.pid)
    if pidfd is None:
        await wait_in_thread(popen)
    else:
        try:
            # The pidfd was opened before this poll(): if the child is not
            # reaped yet, the pidfd is for that child (its pid cannot have
            # been reused), and becomes readable when it exits.
            if popen.poll() is None:
                await wait_readable(pidfd)
            else:
                await checkpoint()
        finally:
            os.close(pidfd)
        # Exited, so this reaps it at once, without blocking.
        popen.wait()
    return popen.returncode  # type: ignore[return-value]

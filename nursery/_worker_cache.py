"""The cache of idle worker threads behind :func:`nursery.to_thread.run_sync`.

Starting a thread costs far more than handing work to one that exists, so a
worker that finishes its job does not exit: it goes back to the idle list and
waits for the next job, for up to ``IDLE_TIMEOUT`` seconds, after which it
exits. Jobs go to the most recently idled worker (the list is a stack), so
under a steady load the same few threads do all the work and the surplus of
an earlier burst idles out.

Hot path (benchmark: to_thread). Each worker waits on a lock of its own, which
the thread handing it a job releases: one lock operation per hand-off, no
shared queue and no condition variable. The idle list is a plain list used
only through ``append``, ``pop`` and ``remove``, each atomic (under the GIL,
and under free-threading's per-object locks), so no lock guards it:

* a worker whose wait times out leaves the list with ``remove``; if that
  fails, a job submitter popped it in the meantime and is about to hand it a
  job, so it waits for that job instead of exiting;
* a worker re-enters the list *before* it delivers its result, so that the
  caller, woken by the result, finds it idle when it submits its next job
  (otherwise a sequential caller could race the worker and start a new
  thread each time).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import traceback
from typing import Any, Callable

import outcome

__all__ = ["IDLE_TIMEOUT", "start_thread_soon", "idle_worker_count"]

#: Seconds an idle worker thread waits for a job before it exits. Read by
#: each worker every time it starts waiting; the test suite shortens it.
IDLE_TIMEOUT = 10.0

_idle: list[_Worker] = []
_names = itertools.count(1)


class _Worker:
    __slots__ = ("_wake", "_job", "thread")

    def __init__(self, job: tuple[Callable[[], Any], Callable[[Any], Any]]) -> None:
        # Held whenever the worker has no job waiting for it; the submitter
        # stores the job in _job and then releases the lock.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._job = job
        self.thread = threading.Thread(target=self._main, name=f"nursery worker {next(_names)}", daemon=True)

    def _main(self) -> None:
        wake = self._wake
        idle = _idle
        job = self._job
        while True:
            self._job = None
            fn, deliver = job
            del job
            try:
                result: Any = outcome.Value(fn())
            except BaseException as exc:
                result = outcome.Error(exc)
            del fn
            idle.append(self)
            try:
                deliver(result)
            except BaseException:
                # deliver() must not raise; if it does, that is a bug in the
                # library, but the worker stays usable.
                print("nursery: exception in a worker thread's deliver():", file=sys.stderr)
                traceback.print_exc()
            del deliver, result
            if not wake.acquire(timeout=IDLE_TIMEOUT):
                try:
                    idle.remove(self)
                except ValueError:
                    # Popped by a submitter between our timeout and here:
                    # its job is on the way.
                    wake.acquire()
                else:
                    return
            job = self._job


def start_thread_soon(fn: Callable[[], Any], deliver: Callable[[outcome.Outcome], Any]) -> None:
    """Call ``fn()`` in a worker thread, then ``deliver(outcome)`` in that
    same thread with its result (an :class:`outcome.Value`) or exception (an
    :class:`outcome.Error`). ``deliver`` must not raise. Returns at once.

    Thread-safe. The worker is a daemon thread, taken from the idle cache if
    there is one there, else started."""
    try:
        worker = _idle.pop()
    except IndexError:
        worker = _Worker((fn, deliver))
        worker.thread.start()
    else:
        worker._job = (fn, deliver)
        worker._wake.release()


def idle_worker_count() -> int:
    """How many worker threads are idle in the cache right now."""
    return len(_idle)


def _forget_workers_after_fork() -> None:
    # In a forked child only the forking thread exists: the idle workers'
    # threads are gone, and handing them a job would lose it.
    _idle.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)

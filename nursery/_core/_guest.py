"""Guest mode: the kernel running on top of another event loop (a stock
asyncio loop, Qt, ...), one tick at a time.

The host loop runs the ticks; the only blocking part of a tick, the I/O
wait, runs in a helper thread, which hands the events back to the host with
``run_sync_soon_threadsafe``. So at any moment either the host has a tick
scheduled or the helper thread waits for I/O, never both, and the kernel's
state is only touched from the host's thread.
"""

from __future__ import annotations

import threading
from math import inf
from queue import SimpleQueue
from typing import Any, Callable

import outcome

from ._run import Runner
from ._state import STATE

__all__ = ["start_guest_run"]


class _IOWaiter:
    """One helper thread per guest run, waiting for I/O on request."""

    def __init__(self, run: GuestRun) -> None:
        self._requests: SimpleQueue[float | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._loop, args=(run,), name="nursery guest I/O", daemon=True)
        self._thread.start()

    def _loop(self, run: GuestRun) -> None:
        io = run.runner.io
        while True:
            timeout = self._requests.get()
            if timeout is None:
                return
            try:
                events = io.get_events(timeout)
            except BaseException as exc:  # pragma: no cover - epoll failing
                run.post(run.io_failed, exc)
                return
            run.post(run.io_done, events)

    def wait(self, timeout: float) -> None:
        self._requests.put(timeout)

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join()


class GuestRun:
    def __init__(
        self,
        runner: Runner,
        run_sync_soon_threadsafe: Callable[[Callable[[], Any]], Any],
        run_sync_soon_not_threadsafe: Callable[[Callable[[], Any]], Any],
        done_callback: Callable[[outcome.Outcome], Any],
    ) -> None:
        self.runner = runner
        self.post_threadsafe = run_sync_soon_threadsafe
        self.post_local = run_sync_soon_not_threadsafe
        self.done_callback = done_callback
        self._idle = 0
        self._io_waiter: _IOWaiter | None = None
        self._finished = False

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.post_threadsafe(lambda: fn(*args))

    def _enter(self) -> None:
        if STATE.runner is not None:
            raise RuntimeError("a guest run tick ran while another nursery run is active in this thread")
        STATE.runner = self.runner

    def tick(self) -> None:
        """Run on the host loop: do one kernel tick, then schedule the next
        (directly, or after an I/O wait in the helper thread)."""
        runner = self.runner
        self._enter()
        try:
            timeout, idle = runner.compute_timeout(inf)
            if timeout > 0:
                self._idle = idle
                if self._io_waiter is None:
                    self._io_waiter = _IOWaiter(self)
                self._io_waiter.wait(timeout)
                return
            events = runner.io.get_events(0) if runner.io.busy else ()
            runner.process_events(events, idle)
        finally:
            STATE.runner = None
        self._after_tick()

    def io_done(self, events: Any) -> None:
        self._enter()
        try:
            self.runner.process_events(events, self._idle)
        finally:
            STATE.runner = None
        self._after_tick()

    def io_failed(self, exc: BaseException) -> None:  # pragma: no cover
        self.runner.crash(RuntimeError("the guest run's I/O wait failed"), exc)
        self.post_local(self.tick)

    def _after_tick(self) -> None:
        if not self.runner.done:
            self.post_local(self.tick)
            return
        if self._finished:
            return
        self._finished = True
        if self._io_waiter is not None:
            self._io_waiter.stop()
        self.runner.finish()
        self.done_callback(self.runner.outcome())


def start_guest_run(
    async_fn: Callable[..., Any],
    *args: Any,
    run_sync_soon_threadsafe: Callable[[Callable[[], Any]], Any],
    done_callback: Callable[[outcome.Outcome], Any],
    run_sync_soon_not_threadsafe: Callable[[Callable[[], Any]], Any] | None = None,
    clock: Any = None,
    instruments: Any = (),
    random_seed: int | None = None,
) -> None:
    """Start ``async_fn(*args)`` in a new kernel that runs as a guest of
    another event loop in this thread, and return at once.

    ``run_sync_soon_threadsafe(fn)`` must make the host loop call ``fn()``
    soon, from any thread (for asyncio: ``loop.call_soon_threadsafe``).
    ``run_sync_soon_not_threadsafe`` may be a cheaper same-thread variant
    (``loop.call_soon``). When the run finishes, ``done_callback(outcome)``
    is called on the host loop with an :class:`outcome.Outcome`. The host
    keeps control of Ctrl-C.
    """
    if run_sync_soon_not_threadsafe is None:
        run_sync_soon_not_threadsafe = run_sync_soon_threadsafe
    if STATE.runner is not None:
        # Checked before the Runner exists, so that its fds are not leaked.
        raise RuntimeError(
            "start_guest_run() was called while another nursery run is active in this thread; "
            "start the guest from the host loop's own code, outside any nursery run"
        )
    runner = Runner(clock=clock, instruments=instruments, random_seed=random_seed)
    guest = GuestRun(runner, run_sync_soon_threadsafe, run_sync_soon_not_threadsafe, done_callback)
    guest._enter()
    try:
        runner.start(async_fn, args, "start_guest_run()")
    except BaseException:
        runner.finish()
        raise
    finally:
        STATE.runner = None
    run_sync_soon_not_threadsafe(guest.tick)

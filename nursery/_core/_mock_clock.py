"""A clock for tests: virtual time that can stand still, run at any rate,
be jumped by hand, or jump by itself whenever every task is blocked."""

from __future__ import annotations

import time
import weakref
from math import inf

from ._clock import Clock
from ._state import STATE

__all__ = ["MockClock"]


class MockClock(Clock):
    """A virtual clock for :func:`nursery.run`.

    ``rate`` is how many virtual seconds pass per real second (0, the
    default, means time stands still until :meth:`jump` is called).
    ``autojump_threshold``: once every task has been blocked for that many
    *real* seconds, the clock jumps straight to the next deadline. With
    ``autojump_threshold=0`` a test that sleeps for an hour finishes at once,
    and deterministically.
    """

    __slots__ = ("_real_base", "_virtual_base", "_rate", "_autojump_threshold", "_real_clock", "_runner_ref")

    def __init__(self, rate: float = 0.0, autojump_threshold: float = inf) -> None:
        self._real_clock = time.perf_counter
        # The run using this clock (set by start_clock), so that a change of
        # threshold can wake its loop even from another thread.
        self._runner_ref: weakref.ref | None = None
        self._real_base = 0.0
        self._virtual_base = 0.0
        self._rate = 0.0
        self._autojump_threshold = inf
        self.rate = rate
        self.autojump_threshold = autojump_threshold

    def __repr__(self) -> str:
        return f"<MockClock time={self.current_time():.7f} rate={self._rate} autojump_threshold={self._autojump_threshold}>"

    @property
    def rate(self) -> float:
        """Virtual seconds per real second; settable."""
        return self._rate

    @rate.setter
    def rate(self, new_rate: float) -> None:
        new_rate = float(new_rate)
        if not new_rate >= 0:
            raise ValueError(f"rate must be a non-negative number, got {new_rate!r}")
        real = self._real_clock()
        self._virtual_base = self._virtual_base + self._rate * (real - self._real_base)
        self._real_base = real
        self._rate = new_rate

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of all-tasks-blocked before the clock jumps; settable,
        also during a run (takes effect at once)."""
        return self._autojump_threshold

    @autojump_threshold.setter
    def autojump_threshold(self, new: float) -> None:
        new = float(new)
        if not new >= 0:
            raise ValueError(f"autojump_threshold must be a non-negative number, got {new!r}")
        self._autojump_threshold = new
        runner = None if self._runner_ref is None else self._runner_ref()
        if runner is not None and runner.clock is self:
            # The loop may be asleep with a timeout computed from the old
            # threshold. (Waking a finished run is a harmless no-op.)
            runner.force_wakeup()

    def start_clock(self) -> None:
        runner = STATE.runner
        self._runner_ref = None if runner is None else weakref.ref(runner)

    def current_time(self) -> float:
        return self._virtual_base + self._rate * (self._real_clock() - self._real_base)

    def deadline_to_sleep_time(self, deadline: float) -> float:
        virtual = deadline - self.current_time()
        if virtual <= 0:
            return 0.0
        if self._rate > 0:
            return virtual / self._rate
        return 999999999.0

    def jump(self, seconds: float) -> None:
        """Move the clock forward by *seconds* (not backwards)."""
        seconds = float(seconds)
        if not seconds >= 0:
            raise ValueError(f"time can't go backwards: jump({seconds!r})")
        self._virtual_base += seconds

    def _autojump(self, runner) -> None:
        target = runner.timers.next_deadline()
        if target != inf:
            gap = target - self.current_time()
            if gap > 0:
                self._virtual_base += gap

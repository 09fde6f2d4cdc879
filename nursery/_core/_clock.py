"""Clocks: where the kernel gets the time, and how it turns deadlines into
waits.

The run loop only ever asks a clock three things, so that a test clock
(:class:`~nursery.testing.MockClock`) can stand in for real time.
"""

from __future__ import annotations

import abc
import time

__all__ = ["Clock", "SystemClock"]


class Clock(abc.ABC):
    """The interface of a clock that :func:`nursery.run` accepts."""

    __slots__ = ()

    @abc.abstractmethod
    def start_clock(self) -> None:
        """Called once, when the run starts."""

    @abc.abstractmethod
    def current_time(self) -> float:
        """Return the clock's current time in seconds."""

    @abc.abstractmethod
    def deadline_to_sleep_time(self, deadline: float) -> float:
        """How many real seconds the run loop may sleep to wake at *deadline*."""


class SystemClock(Clock):
    """The default clock: :func:`time.monotonic`, so that it agrees with
    asyncio's ``loop.time()``."""

    __slots__ = ()

    def start_clock(self) -> None:
        pass

    # The run loop calls this once per tick; binding the builtin directly
    # saves a Python frame on that path.
    current_time = staticmethod(time.monotonic)  # type: ignore[assignment]

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()

"""Event: a flag that tasks can wait for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable

from ._core import STATE, ParkingLot, checkpoint, no_run_error

__all__ = ["Event", "EventStatistics"]


@dataclass(frozen=True)
class EventStatistics:
    """``tasks_waiting``: tasks blocked in :meth:`Event.wait`."""

    tasks_waiting: int


class Event:
    """A one-shot flag: starts unset, :meth:`set` sets it for good and wakes
    every waiting task. (To wait again, make a new Event.)"""

    __slots__ = ("_flag", "_lot")

    def __init__(self) -> None:
        self._flag = False
        self._lot = ParkingLot()

    def is_set(self) -> bool:
        """Whether :meth:`set` has been called."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter. Idempotent; not a checkpoint."""
        if not self._flag:
            self._flag = True
            self._lot.unpark_all()

    # Hot path (benchmarks: pingpong, memory): a plain function returning
    # the awaitable, so a waiting task carries no extra coroutine frame.
    def wait(self) -> Awaitable[None]:
        """Wait until the flag is set; return at once (after a checkpoint)
        if it already is. A checkpoint: use as ``await event.wait()``."""
        if STATE.runner is None:
            raise no_run_error("Event.wait()")
        if self._flag:
            return checkpoint()
        return self._lot.park()

    def statistics(self) -> EventStatistics:
        return EventStatistics(tasks_waiting=len(self._lot))

    def __repr__(self) -> str:
        return f"<Event at {id(self):#x}, {'set' if self._flag else 'unset'}>"

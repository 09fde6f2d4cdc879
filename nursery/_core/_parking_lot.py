"""ParkingLot: a FIFO queue of blocked tasks, the building block of every
synchronization primitive."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any, Generator, Iterator

from ._state import STATE, no_run_error

__all__ = ["ParkingLot", "ParkingLotStatistics"]


@dataclass(frozen=True)
class ParkingLotStatistics:
    """``tasks_waiting``: how many tasks are parked in the lot."""

    tasks_waiting: int


class ParkingLot:
    """A fair (FIFO) queue of parked tasks. Tasks park with :meth:`park`;
    other code wakes them with :meth:`unpark` and :meth:`unpark_all`, or
    moves them to another lot with :meth:`repark`. A parked task that is
    cancelled leaves the lot.

    ``len(lot)`` and ``bool(lot)`` tell how many tasks are parked.
    """

    __slots__ = ("_parked",)

    def __init__(self) -> None:
        # Insertion-ordered dict as a FIFO with O(1) removal from the middle
        # (when a parked task is cancelled).
        self._parked: dict[Any, None] = {}

    def __len__(self) -> int:
        return len(self._parked)

    def __bool__(self) -> bool:
        return bool(self._parked)

    # Hot path (Event.wait, every blocking primitive). Benchmarks: pingpong,
    # memory. A generator, not an async def, and the abort function is a
    # method of the task rather than a closure: a parked task then holds one
    # frame and one small object for its wait.
    @types.coroutine
    def park(self) -> Generator[Any, Any, Any]:
        """Park the current task until unparked (returns None) or cancelled.
        Not a checkpoint before blocking: callers check cancellation."""
        runner = STATE.runner
        if runner is None:
            raise no_run_error("ParkingLot.park()")
        task = runner.current_task
        task.custom_sleep_data = self
        self._parked[task] = None
        return (yield task._leave_parking_lot)

    def _pop_several(self, count: float) -> Iterator[Any]:
        parked = self._parked
        while count > 0 and parked:
            task = next(iter(parked))
            del parked[task]
            count -= 1
            yield task

    def unpark(self, *, count: float = 1) -> list[Any]:
        """Wake up to *count* parked tasks, oldest first; return them. Not a
        checkpoint."""
        if count != math.inf and (not isinstance(count, int) or count < 0):
            raise ValueError(f"count must be a non-negative int or math.inf, got {count!r}")
        tasks = list(self._pop_several(count))
        for task in tasks:
            task._runner.reschedule(task)
        return tasks

    def unpark_all(self) -> list[Any]:
        """Wake every parked task; return them."""
        parked = self._parked
        if not parked:
            return []
        self._parked = {}
        tasks = list(parked)
        for task in tasks:
            task._runner.reschedule(task)
        return tasks

    def repark(self, new_lot: ParkingLot, *, count: float = 1) -> None:
        """Move up to *count* parked tasks, oldest first, to the end of
        *new_lot*, without waking them."""
        if not isinstance(new_lot, ParkingLot):
            raise TypeError(f"repark() needs a ParkingLot, got {new_lot!r}")
        if count != math.inf and (not isinstance(count, int) or count < 0):
            raise ValueError(f"count must be a non-negative int or math.inf, got {count!r}")
        for task in self._pop_several(count):
            new_lot._parked[task] = None
            task.custom_sleep_data = new_lot

    def repark_all(self, new_lot: ParkingLot) -> None:
        """Move every parked task to *new_lot*."""
        self.repark(new_lot, count=math.inf)

    def statistics(self) -> ParkingLotStatistics:
        return ParkingLotStatistics(tasks_waiting=len(self._parked))

    def __repr__(self) -> str:
        return f"<ParkingLot at {id(self):#x}, {len(self._parked)} parked>"

"""The deadline registry: a binary heap with lazy deletion.

Anything with a deadline (a cancel scope, a timed callback) registers here.
Objects carry a ``_timer_seq`` slot: the sequence number of their live heap
entry, or 0 when they have none. Removing a deadline only clears that slot;
the stale heap entry is skipped when it reaches the top, or dropped when the
heap is compacted. This keeps insert at O(log n) and removal at O(1), which
is what the ``timeouts`` benchmark (a scope entered and exited around every
checkpoint) needs: with a sorted mapping every exit would pay a search.

When the object's deadline fires, its ``_expire()`` method is called.
Entries with equal deadlines fire in the order they were registered.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from math import inf

__all__ = ["Timers"]

# Rebuild the heap once stale entries outnumber live ones by this much, so
# that memory stays proportional to the live deadlines.
_COMPACT_MIN = 256


class Timers:
    __slots__ = ("_heap", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, object]] = []
        self._seq = 0
        self._stale = 0

    def add(self, when: float, obj) -> None:
        """Register *obj* to expire at *when* (replacing any earlier entry)."""
        if obj._timer_seq:
            self._stale += 1
        self._seq = seq = self._seq + 1
        obj._timer_seq = seq
        heappush(self._heap, (when, seq, obj))

    def discard(self, obj) -> None:
        """Forget *obj*'s deadline, if it has one."""
        if obj._timer_seq:
            obj._timer_seq = 0
            self._stale = stale = self._stale + 1
            if stale > _COMPACT_MIN and stale > len(self._heap) >> 1:
                self._compact()

    def _compact(self) -> None:
        heap = [entry for entry in self._heap if entry[2]._timer_seq == entry[1]]
        heapify(heap)
        self._heap = heap
        self._stale = 0

    def next_deadline(self) -> float:
        heap = self._heap
        while heap:
            when, seq, obj = heap[0]
            if obj._timer_seq == seq:
                return when
            heappop(heap)
            self._stale -= 1
        return inf

    def expire(self, now: float) -> bool:
        """Fire every deadline at or before *now*; return whether any fired."""
        heap = self._heap
        fired = False
        while heap and heap[0][0] <= now:
            when, seq, obj = heappop(heap)
            if obj._timer_seq == seq:
                obj._timer_seq = 0
                obj._expire()
                fired = True
            else:
                self._stale -= 1
        return fired

    def __len__(self) -> int:
        return len(self._heap) - self._stale

"""ConflictDetector: turns two tasks using one resource at once into a
clear BusyResourceError instead of interleaved, corrupted I/O."""

from __future__ import annotations

from types import TracebackType

from ._core import BusyResourceError

__all__ = ["ConflictDetector"]


class ConflictDetector:
    """``with detector:`` around an operation that one task at a time may
    run (a stream's ``send_all``, its ``receive_some``). A second task that
    enters while the first is inside gets :exc:`BusyResourceError` with
    *message*; the first is not disturbed.

    Not a lock: nobody waits. Two tasks overlapping on one direction of a
    stream is a bug in the caller, and reporting it is the only safe choice
    (waiting would interleave their data).
    """

    __slots__ = ("_held", "_message")

    def __init__(self, message: str) -> None:
        self._held = False
        self._message = message

    @property
    def held(self) -> bool:
        """Whether a task is inside the detector right now."""
        return self._held

    def __enter__(self) -> None:
        if self._held:
            raise BusyResourceError(self._message)
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False

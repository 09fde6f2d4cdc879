"""Exceptions raised by the kernel.

One class per condition a user can act on, with built-in bases where they fit,
so that code written for asyncio or the standard library keeps working.
"""

from __future__ import annotations

from asyncio import CancelledError as _AsyncioCancelledError

__all__ = [
    "Cancelled",
    "TooSlowError",
    "RunFinishedError",
    "WouldBlock",
    "BusyResourceError",
    "ClosedResourceError",
    "BrokenResourceError",
    "EndOfChannel",
    "NurseryInternalError",
]


class Cancelled(_AsyncioCancelledError):
    """Raised at a checkpoint inside a cancel scope that has been cancelled.

    Let it propagate: the scope that was cancelled catches it on exit. The
    scope keeps raising it at every checkpoint inside it until it is exited
    (cancellation is level-triggered), so code that catches and swallows it is
    simply cancelled again at its next checkpoint.

    It subclasses :class:`asyncio.CancelledError`, so asyncio-style
    ``except CancelledError: cleanup(); raise`` blocks keep working.

    You cannot create one yourself; use :meth:`CancelScope.cancel`.
    """

    __slots__ = ()

    def __init__(self, *args: object) -> None:
        raise TypeError(
            "Cancelled is raised by the kernel and cannot be created directly; "
            "to cancel something, call cancel() on a CancelScope around it"
        )

    @classmethod
    def _create(cls) -> "Cancelled":
        # BaseException.__new__ builds a complete exception without running
        # __init__, which is the guard against user construction.
        return BaseException.__new__(cls)

    def __str__(self) -> str:
        return "Cancelled"

    def __reduce__(self):  # pragma: no cover - pickling is a rarity
        return (Cancelled._create, ())


class TooSlowError(TimeoutError):
    """Raised by :func:`fail_after` and :func:`fail_at` when the deadline
    expires before the block finishes."""


class RunFinishedError(RuntimeError):
    """Raised when something tries to use a run that has already finished
    (for example, calling into it from another thread)."""


class WouldBlock(Exception):
    """Raised by ``*_nowait`` operations that would have had to wait."""


class BusyResourceError(Exception):
    """Raised when a task tries to use a resource that another task is
    already using in a way that cannot be shared (for example, two tasks
    waiting for the same socket to become readable)."""


class ClosedResourceError(Exception):
    """Raised when using a resource that you closed yourself, or when a
    resource is closed while you are waiting on it."""


class BrokenResourceError(Exception):
    """Raised when a resource fails because of something outside your
    control (the other side went away, a previous operation was cancelled
    half-way through)."""


class EndOfChannel(Exception):
    """Raised by a receive operation when the sending side has been closed
    and everything sent has been received."""


class NurseryInternalError(Exception):
    """Raised by :func:`nursery.run` when the kernel itself failed, or a
    system task crashed. This should never happen in correct code; the
    original error is attached as ``__cause__``."""


def _asyncio_cancelled(msg: object = None) -> BaseException:
    """The exception an asyncio-style Task.cancel(msg) throws."""
    return _AsyncioCancelledError() if msg is None else _AsyncioCancelledError(msg)

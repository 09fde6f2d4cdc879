"""asyncio.timeout / timeout_at / Timeout on the compat loop.

asyncio's timeouts are edge-triggered: when the deadline passes, the task is
cancelled once with ``Task.cancel()``, and on the way out the timeout turns
that ``CancelledError`` into ``TimeoutError`` only if it caused it (the
task's ``cancelling()`` count, taken on entry, tells). A nursery cancel scope
is a different mechanism: the kernel's ``Cancelled`` it raises is never
turned into ``TimeoutError`` here, so the scope catches it as usual.
"""

from __future__ import annotations

import enum
import sys
from asyncio import events
from asyncio import tasks as _asyncio_tasks
from types import TracebackType
from typing import Any, final

from .. import Cancelled
from asyncio import CancelledError

__all__ = ["Timeout", "timeout", "timeout_at"]

# 3.11 and 3.12 convert only a plain CancelledError; 3.13 also a subclass,
# and inserts a TimeoutError into the context chain of another exception
# that escapes an expired timeout.
_PY313 = sys.version_info >= (3, 13)

_current_task = _asyncio_tasks.current_task


class _State(enum.Enum):
    CREATED = "created"
    ENTERED = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    EXITED = "finished"


def _from_this_timeout(exc_type: type[BaseException]) -> bool:
    # Could this exception be the cancellation our deadline delivered?
    if _PY313:
        return issubclass(exc_type, CancelledError) and not issubclass(exc_type, Cancelled)
    return exc_type is CancelledError


@final
class Timeout:
    """An asynchronous context manager that cancels its block at a deadline
    on the loop's clock and raises :exc:`TimeoutError` instead
    (``asyncio.Timeout``). Make one with :func:`timeout` or
    :func:`timeout_at`. *when* None means no deadline."""

    def __init__(self, when: float | None) -> None:
        self._state = _State.CREATED
        self._timeout_handler: Any = None
        self._task: Any = None
        self._when = when

    def when(self) -> float | None:
        """The deadline (loop time), or None."""
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to *when* (loop time; None: no deadline). Only
        while the block runs and the timeout has not expired."""
        if self._state is not _State.ENTERED:
            if self._state is _State.CREATED:
                raise RuntimeError("Timeout has not been entered")
            raise RuntimeError(f"Cannot change state of {self._state.value} Timeout")
        self._when = when
        if self._timeout_handler is not None:
            self._timeout_handler.cancel()
        if when is None:
            self._timeout_handler = None
            return
        loop = events.get_running_loop()
        if when <= loop.time():
            self._timeout_handler = loop.call_soon(self._on_timeout)
        else:
            self._timeout_handler = loop.call_at(when, self._on_timeout)

    def expired(self) -> bool:
        """Whether the deadline passed while the block ran."""
        return self._state is _State.EXPIRING or self._state is _State.EXPIRED

    def __repr__(self) -> str:
        info = ""
        if self._state is _State.ENTERED:
            when = round(self._when, 3) if self._when is not None else None
            info = f" when={when}"
        return f"<Timeout [{self._state.value}]{info}>"

    async def __aenter__(self) -> Timeout:
        if self._state is not _State.CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = _current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._state = _State.ENTERED
        self._task = task
        self._cancelling = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        if self._timeout_handler is not None:
            self._timeout_handler.cancel()
            self._timeout_handler = None
        if self._state is _State.EXPIRING:
            self._state = _State.EXPIRED
            # Withdraw our cancel request; if no one else's is pending, the
            # CancelledError was ours.
            if self._task.uncancel() <= self._cancelling and exc_type is not None:
                if _from_this_timeout(exc_type):
                    raise TimeoutError from exc_val
                if _PY313 and exc_val is not None:
                    _insert_timeout_error(exc_val)
                    if isinstance(exc_val, ExceptionGroup):
                        for exc in exc_val.exceptions:
                            _insert_timeout_error(exc)
        elif self._state is _State.ENTERED:
            self._state = _State.EXITED
        return None

    def _on_timeout(self) -> None:
        # The deadline passed (a loop callback).
        self._task.cancel()
        self._state = _State.EXPIRING
        self._timeout_handler = None


def _insert_timeout_error(exc: BaseException) -> None:
    # 3.13: an exception raised while handling our cancellation gets a
    # TimeoutError between it and the CancelledError in its context chain.
    while exc.__context__ is not None:
        if isinstance(exc.__context__, CancelledError):
            te = TimeoutError()
            te.__context__ = te.__cause__ = exc.__context__
            exc.__context__ = te
            return
        exc = exc.__context__


def timeout(delay: float | None) -> Timeout:
    """A :class:`Timeout` *delay* seconds from now (None: never)
    (``asyncio.timeout``)::

        async with compat.timeout(10):
            await long_running()
    """
    loop = events.get_running_loop()
    return Timeout(loop.time() + delay if delay is not None else None)


def timeout_at(when: float | None) -> Timeout:
    """A :class:`Timeout` at the absolute loop time *when* (None: never)
    (``asyncio.timeout_at``)."""
    return Timeout(when)

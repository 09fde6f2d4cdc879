"""Receiving Unix signals as an async iterator: ``open_signal_receiver``.

Python runs signal handlers in the main thread between two bytecodes, which
may be in the middle of kernel code. So our handler only posts the signal
number to the run with its token (the thread-safe callback queue, which
also wakes an idle run loop); the receiver is updated by that callback, in
the run, where nothing is half done.
"""

from __future__ import annotations

import operator
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ._core import (
    Abort,
    BusyResourceError,
    ClosedResourceError,
    RunFinishedError,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    current_token,
    wait_task_rescheduled,
)
from .lowlevel import reschedule

__all__ = ["SignalReceiver", "open_signal_receiver"]


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _as_signal(signum: int) -> int:
    # Signals members where there is one (a readable repr), plain ints for
    # the others (real-time signals beyond SIGRTMIN/SIGRTMAX).
    try:
        return signal.Signals(signum)
    except ValueError:
        return signum


class SignalReceiver:
    """What :func:`open_signal_receiver` yields: an async iterator of the
    signals received, each at most once while it is pending."""

    __slots__ = ("_pending", "_task", "_busy", "_closed")

    def __init__(self) -> None:
        # Insertion-ordered set: signals in the order they first arrived,
        # each once however often it arrived before it was read.
        self._pending: dict[int, None] = {}
        self._task: Task | None = None
        self._busy = False
        self._closed = False

    def pending_signal_count(self) -> int:
        """How many distinct signals arrived and were not read yet. Not a
        checkpoint."""
        return len(self._pending)

    # -- in the run, called back from the signal handler

    def _deliver(self, signum: int) -> None:
        if self._closed:
            # It arrived after the block ended but before the handler was
            # taken away: hand it to whoever handles it now.
            signal.raise_signal(signum)
            return
        self._pending[signum] = None
        task = self._task
        if task is not None:
            self._task = None
            reschedule(task)

    def _redeliver_pending(self) -> None:
        # Signals received but never read are not lost: raise them again,
        # for the handlers in place once the block has ended. Each one is
        # raised even if an earlier one's handler raised an exception.
        self._closed = True
        pending = self._pending
        if pending:
            signum = next(iter(pending))
            del pending[signum]
            try:
                signal.raise_signal(signum)
            finally:
                self._redeliver_pending()

    # -- iteration

    def __aiter__(self) -> SignalReceiver:
        return self

    async def __anext__(self) -> int:
        if self._busy:
            raise BusyResourceError("another task is already iterating over this signal receiver")
        if self._closed:
            raise ClosedResourceError("this signal receiver's 'with' block has ended")
        self._busy = True
        try:
            if self._pending:
                await checkpoint_if_cancelled()
                await cancel_shielded_checkpoint()
            else:
                self._task = current_task()

                def abort(raise_cancel: Any) -> Abort:
                    self._task = None
                    return Abort.SUCCEEDED

                await wait_task_rescheduled(abort)
            signum = next(iter(self._pending))
            del self._pending[signum]
            return _as_signal(signum)
        finally:
            self._busy = False


def _check_signals(signals: tuple[Any, ...]) -> list[int]:
    if not signals:
        raise TypeError("open_signal_receiver() needs at least one signal, e.g. open_signal_receiver(signal.SIGTERM)")
    numbers: list[int] = []
    for sig in signals:
        if isinstance(sig, bool):
            raise TypeError(f"open_signal_receiver() expected signal numbers, got {sig!r}")
        try:
            signum = operator.index(sig)
        except TypeError:
            raise TypeError(
                f"open_signal_receiver() expected signal numbers (like signal.SIGTERM), got {sig!r}"
            ) from None
        if signum not in numbers:
            numbers.append(signum)
    return numbers


@contextmanager
def open_signal_receiver(*signals: int) -> Iterator[SignalReceiver]:
    """Catch *signals* for the duration of a ``with`` block, which gets an
    async iterator of the signals as they arrive::

        with nursery.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                ...

    Each item is a signal number (a :class:`signal.Signals` member where
    there is one). A signal that arrives again before it is read is
    reported once (the receiver coalesces repeats: signals are
    notifications, not a queue). The receiver's ``pending_signal_count()``
    says how many distinct signals wait to be read. Only one task may
    iterate at a time (:exc:`~nursery.BusyResourceError`); after the block,
    iterating raises :exc:`~nursery.ClosedResourceError`.

    On exit, even when the block raised, the previous handlers of the
    signals are put back, and signals that arrived but were never read are
    raised again (:func:`signal.raise_signal`), so that those handlers see
    them: a SIGTERM received and not read still terminates a program whose
    previous SIGTERM handler was the default one.

    Must be used in the main thread (only it runs signal handlers in
    Python; :exc:`RuntimeError` otherwise), inside a run. :exc:`TypeError`
    without signals or for something that is not a signal number;
    :exc:`ValueError` for a signal that cannot be caught (SIGKILL, SIGSTOP)
    or does not exist. Opening two receivers for the same signal at once:
    the inner one gets it until its block ends. Not a checkpoint.
    """
    numbers = _check_signals(signals)
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "open_signal_receiver() only works in the main thread: Python runs signal handlers "
            f"there only, and this is thread {threading.current_thread().name!r}"
        )
    token = current_token()
    receiver = SignalReceiver()

    def handler(signum: int, frame: Any) -> None:
        try:
            token.run_sync_soon(receiver._deliver, signum)
        except RunFinishedError:
            pass  # too late to read it, and the block has ended anyway

    previous: dict[int, Callable[..., Any] | int | None] = {}
    try:
        for signum in numbers:
            try:
                previous[signum] = signal.signal(signum, handler)
            except (OSError, ValueError) as exc:
                reason = "it does not exist" if isinstance(exc, ValueError) else "it cannot be caught"
                raise ValueError(
                    f"open_signal_receiver() cannot catch {_signal_name(signum)} ({signum}): {reason} ({exc})"
                ) from exc
        yield receiver
    finally:
        try:
            for signum, old in previous.items():
                # None: the previous handler was not installed from Python
                # and cannot be put back; the default is the closest we can.
                signal.signal(signum, signal.SIG_DFL if old is None else old)
        finally:
            receiver._redeliver_pending()

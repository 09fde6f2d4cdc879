"""Tokens: a handle on a run that other threads can use to call into it."""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._state import current_runner

__all__ = ["Token", "current_token"]

# The key of a run's token in its run_vars (any hashable object would do; a
# private one cannot collide with a user's RunVar).
_TOKEN_KEY = object()


class Token:
    """A handle on one :func:`nursery.run`, for use from other threads.

    Get it inside the run with :func:`current_token`; hand it to another
    thread, which can then schedule calls into the run with
    :meth:`run_sync_soon` or pass it as ``token=`` to
    :func:`nursery.from_thread.run` and :func:`nursery.from_thread.run_sync`.
    A run has exactly one token: every call to :func:`current_token` in the
    same run returns the same object, and tokens of two runs never compare
    equal.
    """

    __slots__ = ("_runner", "_thread_ident", "__weakref__")

    def __init__(self, runner: Any, thread_ident: int) -> None:
        self._runner = runner
        # The thread that drives the run (the host thread, for a guest run):
        # blocking calls into the run from this thread would deadlock.
        self._thread_ident = thread_ident

    def run_sync_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn(*args)`` to be called in the run's thread, as soon
        as possible, and return at once.

        Safe to call from any thread, and from signal handlers. If the run
        loop is idle (waiting for I/O or a deadline) it wakes up at once.
        Calls are made in the order they were scheduled, in the context the
        run was started in. An exception escaping ``fn`` is a bug: it
        crashes the run with :exc:`~nursery.NurseryInternalError`, so catch
        what ``fn`` may raise and deliver it where it belongs.

        Raises :exc:`~nursery.RunFinishedError` if the run has finished.
        """
        self._runner.run_sync_soon_threadsafe(fn, args)

    def _run_finished(self) -> bool:
        # Once true, nothing scheduled with run_sync_soon will ever run.
        return self._runner.closed

    def __repr__(self) -> str:
        state = "finished" if self._runner.closed else "running"
        return f"<nursery.lowlevel.Token for a {state} run at {id(self._runner):#x}>"


def current_token() -> Token:
    """The :class:`Token` of the current run. Not a checkpoint."""
    runner = current_runner("current_token()")
    token = runner.run_vars.get(_TOKEN_KEY)
    if token is None:
        token = runner.run_vars[_TOKEN_KEY] = Token(runner, threading.get_ident())
    return token

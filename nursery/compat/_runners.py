"""``run`` and ``Runner``: the entry points of an asyncio program, on the
kernel.

They behave as the running interpreter's ``asyncio.run`` and
``asyncio.Runner`` do (same errors and messages, same shutdown sequence, same
Ctrl-C handling), except that the loop they make by default is compat's
:class:`~nursery.compat.EventLoop`. For virtual time pass a loop factory:
``Runner(loop_factory=lambda: compat.new_event_loop(clock=MockClock(...)))``.
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import sys
import threading
from asyncio import events
from typing import Any, Callable, Coroutine, TypeVar

from ._loop import new_event_loop

__all__ = ["Runner", "run"]

T = TypeVar("T")

# How long a runner waits for the default executor's threads when it closes
# (3.12+ gives shutdown_default_executor a timeout; 3.11 waits for ever).
_EXECUTOR_JOIN_TIMEOUT: float | None = getattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", None)

_NEW, _OPEN, _CLOSED = "new", "open", "closed"


class Runner:
    """Runs coroutines on one event loop, and shuts it down at the end.

    ``with Runner() as runner: runner.run(main())`` is what :func:`run` does;
    a runner may run several coroutines in turn on the same loop (and the same
    :mod:`contextvars` context). The loop comes from ``loop_factory`` or, by
    default, is a new compat :class:`~nursery.compat.EventLoop` that also
    becomes the current event loop (``asyncio.get_event_loop()``) until the
    runner closes. ``debug`` sets the loop's debug mode when not ``None``.

    While :meth:`run` waits in the main thread, the first Ctrl-C cancels the
    coroutine's task (it sees ``CancelledError``; if it finishes cancelled,
    :meth:`run` raises :exc:`KeyboardInterrupt`), and a second one raises
    :exc:`KeyboardInterrupt` at once, as with ``asyncio.Runner``.
    """

    def __init__(self, *, debug: bool | None = None, loop_factory: Callable[[], Any] | None = None) -> None:
        self._state = _NEW
        self._debug = debug
        self._loop_factory = loop_factory
        self._loop: Any = None
        self._context: contextvars.Context | None = None
        self._interrupts = 0
        self._made_current = False

    def __enter__(self) -> Runner:
        self._open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_loop(self) -> Any:
        """The runner's event loop (made now if it was not yet)."""
        self._open()
        return self._loop

    def close(self) -> None:
        """Cancel the tasks still running, finalize async generators, shut
        down the default executor and close the loop. Does nothing unless the
        runner is open."""
        if self._state != _OPEN:
            return
        loop = self._loop
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if _EXECUTOR_JOIN_TIMEOUT is None:
                loop.run_until_complete(loop.shutdown_default_executor())
            else:
                loop.run_until_complete(loop.shutdown_default_executor(_EXECUTOR_JOIN_TIMEOUT))
        finally:
            if self._made_current:
                events.set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = _CLOSED

    def run(self, coro: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None) -> T:
        """Run ``coro`` as a task on the runner's loop until it finishes, and
        return its result (or raise its exception). ``context`` is the
        :class:`contextvars.Context` to run it in; by default the runner's own
        one, shared by every :meth:`run` of this runner."""
        if not asyncio.iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if events._get_running_loop() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._open()
        loop = self._loop
        task = loop.create_task(coro, context=self._context if context is None else context)

        on_sigint = self._catch_sigint(task)
        self._interrupts = 0
        try:
            return loop.run_until_complete(task)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            uncancel = getattr(task, "uncancel", None)  # (a task factory's task may lack it)
            if self._interrupts and uncancel is not None and uncancel() == 0:
                # Cancelled by our Ctrl-C and nobody else: report the Ctrl-C.
                raise KeyboardInterrupt() from None
            raise
        finally:
            if on_sigint is not None and signal.getsignal(signal.SIGINT) is on_sigint:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    # ------------------------------------------------------------------

    def _open(self) -> None:
        if self._state == _CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state == _OPEN:
            return
        if self._loop_factory is not None:
            self._loop = self._loop_factory()
        else:
            self._loop = new_event_loop()
            if not self._made_current:
                events.set_event_loop(self._loop)
                self._made_current = True
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        self._context = contextvars.copy_context()
        self._state = _OPEN

    def _catch_sigint(self, task: Any) -> Any:
        # Only where Python's own Ctrl-C handling is in force, as asyncio does.
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None

        def on_sigint(signum: int, frame: Any) -> None:
            self._interrupts += 1
            if self._interrupts == 1 and not task.done():
                task.cancel()
                # Wake the loop if it sleeps waiting for I/O or a timer.
                self._loop.call_soon_threadsafe(_nothing)
                return
            raise KeyboardInterrupt()

        try:
            signal.signal(signal.SIGINT, on_sigint)
        except ValueError:
            # An embedded interpreter whose main thread takes no signals.
            return None
        return on_sigint


def _nothing() -> None:
    pass


def _cancel_leftover_tasks(loop: Any) -> None:
    leftover = asyncio.all_tasks(loop)
    if not leftover:
        return
    for task in leftover:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    for task in leftover:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": exc,
                    "task": task,
                }
            )


if sys.version_info >= (3, 12):

    def run(
        main: Coroutine[Any, Any, T], *, debug: bool | None = None, loop_factory: Callable[[], Any] | None = None
    ) -> T:
        """Run the coroutine ``main`` on a new event loop (compat's, unless
        ``loop_factory`` makes another), shut the loop down and return
        ``main``'s result: ``asyncio.run`` on the kernel.

        Not allowed while an event loop runs in this thread (also inside
        ``nursery.run``): ``RuntimeError``, as with ``asyncio.run``."""
        if events._get_running_loop() is not None:
            raise RuntimeError("asyncio.run() cannot be called from a running event loop")
        with Runner(debug=debug, loop_factory=loop_factory) as runner:
            return runner.run(main)

else:

    def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:  # type: ignore[misc]
        """Run the coroutine ``main`` on a new compat event loop, shut the
        loop down and return ``main``'s result: ``asyncio.run`` on the kernel
        (Python 3.12+ also takes ``loop_factory``).

        Not allowed while an event loop runs in this thread (also inside
        ``nursery.run``): ``RuntimeError``, as with ``asyncio.run``."""
        if events._get_running_loop() is not None:
            raise RuntimeError("asyncio.run() cannot be called from a running event loop")
        with Runner(debug=debug) as runner:
            return runner.run(main)

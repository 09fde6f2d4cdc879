"""Child processes and Unix signals for compat's event loop.

:class:`SubprocessSignalMixin` is a mixin of :class:`nursery.compat.EventLoop`
(it must come before the asyncio base loop class in the bases, so that its
``close()`` runs). It gives the loop what asyncio's Unix loop has and
``BaseEventLoop`` lacks:

* ``_make_subprocess_transport``, which ``loop.subprocess_exec`` and
  ``loop.subprocess_shell`` call: the transport is asyncio's own Unix
  subprocess transport (so ``Popen`` options, pipes, ``send_signal`` and
  ``close`` behave as the running interpreter's asyncio does), but no
  asyncio child watcher is involved: a task of the loop's kernel run waits
  for the child with :func:`nursery.lowlevel.wait_child_exited` (a pidfd in
  the kernel's I/O wait, or a worker thread where there are no pidfds);
* ``add_signal_handler`` / ``remove_signal_handler`` with asyncio's
  contract (checks, exceptions and messages; the callback runs as a loop
  callback). The kernel keeps its own wake-up fd (``signal.set_wakeup_fd``)
  for the duration of a run, so these do not touch it: the Python-level
  handler posts the signal to the run with
  ``KernelRun.run_sync_soon_threadsafe``, which also wakes an idle run. The
  handler that was installed before is put back on removal (and when the
  loop closes), not asyncio's blanket ``SIG_DFL``: a nursery run's Ctrl-C
  handler or a ``nursery.open_signal_receiver`` survives a loop's handler
  coming and going.

The mixin relies on the loop's ``_kernel_run`` (a
:class:`nursery.lowlevel.KernelRun`) and on asyncio's ``BaseEventLoop``
(``create_future``, ``call_soon``, ``_check_closed``,
``call_exception_handler``).
"""

from __future__ import annotations

import errno
import signal
import sys
import threading
import warnings
from asyncio import coroutines, unix_events
from typing import Any, Callable

from .. import RunFinishedError, lowlevel
from ._handles import Handle

__all__ = ["SubprocessSignalMixin"]

# The message asyncio's add_signal_handler gives outside the main thread (it
# is the one signal.set_wakeup_fd raises there, which asyncio passes on).
_NOT_MAIN_THREAD = "set_wakeup_fd only works in main thread of the main interpreter"


class SubprocessSignalMixin:
    """Subprocess transports and signal handlers for :class:`EventLoop`."""

    _kernel_run: lowlevel.KernelRun

    #: The one Python-level handler this loop installs (made on first use).
    _signal_trampoline: Callable[[int, Any], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # asyncio's Unix loop keeps the handlers in ``_signal_handlers``
        # (signal number -> Handle); code and tests look there.
        self._signal_handlers: dict[int, Handle] = {}
        #: signal number -> the handler installed before ours.
        self._signal_previous: dict[int, Any] = {}
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------
    # subprocesses

    async def _make_subprocess_transport(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Any = None,
        **kwargs: Any,
    ) -> Any:
        waiter = self.create_future()  # type: ignore[attr-defined]
        # asyncio's transport: Popen, then its pipes connected through the
        # loop's connect_read_pipe/connect_write_pipe in a task.
        transport = unix_events._UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter=waiter, extra=extra, **kwargs
        )
        self._kernel_run.spawn_detached(
            self._watch_child(transport, transport._proc), name=f"compat child watcher (pid {transport.get_pid()})"
        )
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            # The pipes could not be connected (or we were cancelled): kill
            # the child, wait until it is reaped, then fail.
            transport.close()
            await transport._wait()
            raise
        return transport

    async def _watch_child(self, transport: Any, popen: Any) -> None:
        # Belongs to the run, not to the task that started the child: it
        # outlives that task, and is cancelled only when the run shuts down
        # (the child is then left running, as asyncio leaves it when its
        # loop closes).
        try:
            returncode = await lowlevel.wait_child_exited(popen)
        except Exception as exc:
            # Not expected (waiting for our own child), but an error here
            # must not crash the whole run: the loop's handler reports it.
            if not self.is_closed():  # type: ignore[attr-defined]
                self.call_exception_handler(  # type: ignore[attr-defined]
                    {"message": f"waiting for child process {popen.pid} failed", "exception": exc, "transport": transport}
                )
            return
        if self.is_closed():  # type: ignore[attr-defined]
            return
        # Reported in a callback, as asyncio's child watchers do (they post
        # the exit status with call_soon_threadsafe).
        self.call_soon(transport._process_exited, returncode)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------
    # signals

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` as a loop callback whenever signal *sig*
        arrives, replacing this loop's previous handler for *sig*. Main
        thread only (:exc:`RuntimeError`); :exc:`TypeError` for a coroutine
        function or a non-int *sig*, :exc:`ValueError` for an invalid signal
        number, :exc:`RuntimeError` for one that cannot be caught."""
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        self._check_closed()  # type: ignore[attr-defined]
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(_NOT_MAIN_THREAD)
        handlers = self._signal_handler_table()
        handle = Handle(callback, args, self, None)
        trampoline = self._signal_trampoline
        if trampoline is None:
            trampoline = self._signal_trampoline = self._make_signal_trampoline()
        try:
            previous = signal.signal(sig, trampoline)
            # As asyncio does: restart interrupted system calls rather than
            # failing them with EINTR.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        if sig not in handlers:
            self._signal_previous[sig] = previous
        handlers[sig] = handle

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove this loop's handler for *sig* and put back the handler
        that was installed before it. True if there was one, else False."""
        _check_signal(sig)
        handlers = self._signal_handler_table()
        if handlers.pop(sig, None) is None:
            return False
        previous = self._signal_previous.pop(sig, None)
        if signal.getsignal(sig) is not self._signal_trampoline:
            # Someone replaced our handler since (a run ending puts its own
            # predecessor back): theirs stays.
            return True
        if previous is None:
            # Not installed from Python: it cannot be put back. asyncio's
            # defaults are the closest.
            previous = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, previous)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        return True

    def _signal_handler_table(self) -> dict[int, Handle]:
        try:
            return self._signal_handlers
        except AttributeError:
            # A loop class that puts this mixin after a base whose __init__
            # does not call super().__init__().
            self._signal_handlers = {}
            self._signal_previous = {}
            return self._signal_handlers

    def _make_signal_trampoline(self) -> Callable[[int, Any], None]:
        # Runs in the main thread between two bytecodes, possibly in the
        # middle of kernel code: only post the signal to the run (which is
        # safe from signal handlers and wakes the run's I/O wait).
        post = self._kernel_run.run_sync_soon_threadsafe
        handle_signal = self._handle_signal

        def trampoline(signum: int, frame: Any) -> None:
            try:
                post(handle_signal, signum)
            except RunFinishedError:
                pass  # the loop is closed: nobody to call

        return trampoline

    def _handle_signal(self, sig: int) -> None:
        # In the run, soon after the signal arrived.
        handle = self._signal_handler_table().get(sig)
        if handle is None or self.is_closed():  # type: ignore[attr-defined]
            return  # removed meanwhile
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._kernel_run.enqueue(handle)

    # ------------------------------------------------------------------

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        handlers = getattr(self, "_signal_handlers", None)
        if not handlers:
            return
        if sys.is_finalizing():
            warnings.warn(
                f"Closing the loop {self!r} on interpreter shutdown stage, skipping signal handlers removal",
                ResourceWarning,
                source=self,
            )
            handlers.clear()
            return
        for sig in list(handlers):
            self.remove_signal_handler(sig)


def _check_signal(sig: Any) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


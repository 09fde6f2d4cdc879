"""The wake-up channel: how another thread (or a signal handler) interrupts
the run loop's idle wait."""

from __future__ import annotations

import os
import signal
import socket
import threading


class WakeupSocketpair:
    """A non-blocking socket pair; writing a byte to one end makes the other
    end readable, which ends the I/O wait it is registered in."""

    __slots__ = ("_read", "_write", "fd", "_previous_signal_fd")

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self.fd = self._read.fileno()
        self._previous_signal_fd: int | None = None

    def wake_on_signals(self) -> None:
        """Make every signal end the I/O wait, for the duration of a run.

        Python runs signal handlers in the main thread, but the OS may
        deliver a process-directed signal to any thread; without a wake-up
        fd, a handler (Ctrl-C, ``open_signal_receiver``) could wait until the
        main thread's epoll happened to return. Only in the main thread, and
        only if nobody else (a host loop in guest mode) set one already."""
        if threading.current_thread() is not threading.main_thread():
            return
        global _installed_signal_fd
        previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        if previous != -1:
            # Someone else's: keep theirs.
            signal.set_wakeup_fd(previous)
            return
        self._previous_signal_fd = previous
        _installed_signal_fd = self._write.fileno()

    def stop_waking_on_signals(self) -> None:
        global _installed_signal_fd
        if self._previous_signal_fd is not None:
            signal.set_wakeup_fd(self._previous_signal_fd)
            self._previous_signal_fd = None
            _installed_signal_fd = None

    def wakeup(self) -> None:
        """Safe from any thread and from signal handlers."""
        try:
            self._write.send(b"\x00")
        except OSError:
            # The buffer is full (so a wake-up is pending anyway) or the
            # channel is closed (the run is over): nothing to do either way.
            pass

    def drain(self) -> None:
        try:
            while True:
                self._read.recv(2**16)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._read.close()
        self._write.close()


# The signal wake-up fd a run of this process installed (there is one per
# process), or None.
_installed_signal_fd: int | None = None


def _drop_parents_signal_fd_in_child() -> None:
    # A child forked during a run inherits the wake-up fd, which is the
    # parent run's socket: the child's signals would wake the parent, and
    # the child's own runs would take it for someone else's and not set
    # theirs. Clear it (if it is still ours).
    global _installed_signal_fd
    fd, _installed_signal_fd = _installed_signal_fd, None
    if fd is None:
        return
    try:
        current = signal.set_wakeup_fd(-1)
        if current != fd:
            signal.set_wakeup_fd(current)
    except ValueError:  # not the main thread (cannot happen after fork)
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_parents_signal_fd_in_child)

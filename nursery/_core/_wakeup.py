"""The wake-up channel: how another thread (or a signal handler) interrupts
the run loop's idle wait."""

from __future__ import annotations

import socket


class WakeupSocketpair:
    """A non-blocking socket pair; writing a byte to one end makes the other
    end readable, which ends the I/O wait it is registered in."""

    __slots__ = ("_read", "_write", "fd")

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self.fd = self._read.fileno()

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

"""A byte stream over a file descriptor: the pipes to and from a subprocess,
or any other pipe, FIFO or character device that supports non-blocking I/O."""

from __future__ import annotations

import errno
import operator
import os
from typing import NoReturn

from ._abc import Stream
from ._core import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    ClosedResourceError,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

__all__ = ["FdStream"]

#: What ``receive_some()`` reads when given no ``max_bytes``: the size of a
#: Linux pipe's buffer, so one call usually drains a full pipe.
DEFAULT_RECEIVE_SIZE = 65536

# The errors that mean the other end of the pipe is gone (EPIPE) or the
# descriptor cannot do this I/O any more. Anything else is reported as is.
_BROKEN_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.EIO})


def _raise_io_error(exc: OSError) -> NoReturn:
    """Report a failed read or write: BrokenResourceError (caused by *exc*)
    when the pipe is broken, else *exc* itself."""
    if exc.errno in _BROKEN_ERRNOS:
        raise BrokenResourceError(f"the pipe is broken: {exc.strerror or exc}") from exc
    raise exc


class FdStream(Stream):
    """A :class:`~nursery.Stream` over a file descriptor, such as one end of
    :func:`os.pipe`.

    The stream takes ownership of *fd*: :meth:`aclose` closes it. It puts the
    descriptor in non-blocking mode, and back in blocking mode when it closes
    it if it was blocking before (the mode belongs to the open file, which
    another process may share: a terminal, an inherited pipe).

    Pipes are one-way, so on a pipe only one direction works: the other one
    fails with an :exc:`OSError` from the operating system (``EBADF``).

    Errors: :exc:`~nursery.BusyResourceError` if two tasks send (or two
    receive) at once, :exc:`~nursery.ClosedResourceError` after
    :meth:`aclose` (also to a task blocked in the stream when another task
    closes it), :exc:`~nursery.BrokenResourceError` when the reading end of
    the pipe was closed (``EPIPE``). A ``send_all`` cancelled after it sent
    part of its data leaves the stream broken. A cancelled ``receive_some``
    loses nothing.

    Unix only. Not for regular files, which are always "ready" to the
    kernel's readiness wait; use :func:`nursery.to_thread.run_sync` for
    those.
    """

    __slots__ = ("_fd", "_restore_blocking", "_sending", "_receiving", "_send_broken")

    def __init__(self, fd: int) -> None:
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"FdStream() expected a file descriptor (an int), got {fd!r}")
        if fd < 0:
            raise ValueError(f"FdStream() expected a file descriptor >= 0, got {fd}")
        # Raises OSError (EBADF) for a descriptor that is not open.
        was_blocking = os.get_blocking(fd)
        if was_blocking:
            os.set_blocking(fd, False)
        self._fd = fd
        self._restore_blocking = was_blocking
        self._sending = False
        self._receiving = False
        self._send_broken = False

    def fileno(self) -> int:
        """The file descriptor, or -1 once the stream is closed."""
        return self._fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` (or :meth:`close`) was called."""
        return self._fd < 0

    # -- sending

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of *data* to the descriptor, waiting whenever the pipe
        is full. A checkpoint. See the class docstring for the errors;
        :exc:`TypeError` if *data* is not bytes-like."""
        if self._sending:
            raise BusyResourceError("another task is already sending on this FdStream")
        fd = self._fd
        if fd < 0:
            raise ClosedResourceError("this FdStream was closed")
        if self._send_broken:
            raise BrokenResourceError("this FdStream is broken: an earlier send_all failed or was cancelled part way")
        if data.__class__ is not bytes and data.__class__ is not bytearray:
            try:
                data = memoryview(data).cast("B")
            except TypeError:
                raise TypeError(
                    f"send_all() expected bytes, bytearray or memoryview, got {type(data).__name__}"
                ) from None
        self._sending = True
        try:
            await checkpoint_if_cancelled()
            total = len(data)
            # Fast path (bulk transfers): one write usually takes it all.
            try:
                sent = os.write(fd, data) if total else 0
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._send_failed(exc)
            if sent == total:
                await cancel_shielded_checkpoint()
                return
            view = memoryview(data)
            try:
                while sent < total:
                    try:
                        await wait_writable(fd)
                    except Cancelled:
                        if sent:
                            self._send_broken = True
                        raise
                    try:
                        with view[sent:] as rest:
                            sent += os.write(fd, rest)
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        self._send_failed(exc)
            finally:
                view.release()
        finally:
            self._sending = False

    def _send_failed(self, exc: OSError) -> NoReturn:
        if exc.errno in _BROKEN_ERRNOS:
            self._send_broken = True
        _raise_io_error(exc)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the pipe has room for more data. A checkpoint. Errors
        as for :meth:`send_all`."""
        if self._sending:
            raise BusyResourceError("another task is already sending on this FdStream")
        if self._fd < 0:
            raise ClosedResourceError("this FdStream was closed")
        if self._send_broken:
            raise BrokenResourceError("this FdStream is broken: an earlier send_all failed or was cancelled part way")
        self._sending = True
        try:
            await checkpoint_if_cancelled()
            # Ends at once if the pipe has room, or if the reader is gone (a
            # broken pipe counts as writable: the next send_all reports it).
            await wait_writable(self._fd)
        finally:
            self._sending = False

    # -- receiving

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Read at least one byte and at most *max_bytes* (64 KiB if
        ``None``), waiting until some arrive; ``b""`` at end of file (every
        writer closed its end). A checkpoint. :exc:`TypeError` if
        *max_bytes* is not an int, :exc:`ValueError` if it is < 1; other
        errors as in the class docstring."""
        if self._receiving:
            raise BusyResourceError("another task is already receiving on this FdStream")
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        else:
            try:
                max_bytes = operator.index(max_bytes)
            except TypeError:
                raise TypeError(f"max_bytes must be an int >= 1 or None, got {max_bytes!r}") from None
            if max_bytes < 1:
                raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        fd = self._fd
        if fd < 0:
            raise ClosedResourceError("this FdStream was closed")
        self._receiving = True
        try:
            await checkpoint_if_cancelled()
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                _raise_io_error(exc)
            else:
                await cancel_shielded_checkpoint()
                return data
            # Nothing is read until the descriptor is readable, and the read
            # that follows never blocks: a cancellation can only land in the
            # wait, so it never loses data.
            while True:
                await wait_readable(fd)
                try:
                    return os.read(fd, max_bytes)
                except BlockingIOError:
                    pass  # a spurious wake-up (or someone else read first)
                except OSError as exc:
                    _raise_io_error(exc)
        finally:
            self._receiving = False

    # -- closing

    def close(self) -> None:
        """Close the descriptor at once (the synchronous form of
        :meth:`aclose`); tasks blocked in the stream get
        :exc:`~nursery.ClosedResourceError`. Idempotent. Not a checkpoint;
        must be called from inside the run when a task may be blocked in the
        stream."""
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        if self._sending or self._receiving:
            # Wake them before the number can be reused by a new descriptor.
            notify_closing(fd)
        try:
            if self._restore_blocking:
                os.set_blocking(fd, True)
        except OSError:
            pass  # closing matters more than the mode
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        """Close the stream (see :meth:`close`). Idempotent; a checkpoint."""
        self.close()
        await checkpoint()

    def __del__(self) -> None:
        # A stream dropped without being closed: release the descriptor (no
        # task can be blocked in a stream nobody references).
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<nursery.lowlevel.FdStream fd={self._fd}>" if self._fd >= 0 else "<nursery.lowlevel.FdStream closed>"

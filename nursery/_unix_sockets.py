"""Unix domain stream sockets: ``open_unix_socket`` connects to one,
``open_unix_listener`` listens on one.

A Unix socket lives at a path in the file system, and that file outlives
the socket: when a server exits without removing it (a crash, a kill), the
next ``bind()`` on that path fails with "address in use" although nobody
listens. ``open_unix_listener`` therefore checks what is at the path before
giving up: a socket file that refuses connections is stale and is replaced;
a socket something is listening on, or any other kind of file, is left
alone and reported. Checking and replacing are two steps, so two servers
starting on the same path at the same instant can race; run one server per
path (a lock file, a service manager) if that matters.

On Linux a path starting with a NUL character (``"\\0name"``) is an
*abstract* address: no file is involved, so nothing is checked, changed or
removed.
"""

from __future__ import annotations

import errno
import os
import socket as _stdlib_socket
import stat
from typing import Union

from . import socket as _nsocket
from ._highlevel_socket import SocketListener, SocketStream

__all__ = ["open_unix_socket", "open_unix_listener", "UnixSocketListener"]

HAS_UNIX = hasattr(_stdlib_socket, "AF_UNIX")

# The largest backlog listen() accepts everywhere; the kernel caps it at its
# own maximum.
_MAX_BACKLOG = 0xFFFF

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _check_path(path: object, fn_name: str) -> str | bytes:
    if not HAS_UNIX:
        raise RuntimeError(f"{fn_name}: this platform has no Unix domain sockets (AF_UNIX)")
    try:
        return os.fspath(path)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{fn_name} needs a file system path (str, bytes or os.PathLike), got {path!r}") from None


def _is_abstract(path: str | bytes) -> bool:
    return path[:1] in ("\0", b"\0")


async def open_unix_socket(filename: StrOrBytesPath) -> SocketStream:
    """Connect to the Unix domain stream socket at *filename* and return the
    connection as a :class:`SocketStream` (half-closeable, like TCP).

    You need write permission on the socket file. A checkpoint.

    Raises:
      TypeError: *filename* is not a path.
      FileNotFoundError: nothing is at *filename*.
      ConnectionRefusedError: the file is a socket that nobody listens on.
      OSError: another failure; the message names the path.
      RuntimeError: the platform has no Unix sockets.
    """
    path = _check_path(filename, "open_unix_socket()")
    sock = _nsocket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
    try:
        await sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return SocketStream(sock)


class UnixSocketListener(SocketListener):
    """A :class:`SocketListener` on a Unix socket that
    :func:`open_unix_listener` created. Closing it removes the socket file,
    but only if the path still refers to this listener's socket (and not,
    say, to the socket of a newer server that replaced it)."""

    __slots__ = ("path", "_inode")

    def __init__(self, socket: _nsocket.SocketType, path: str | bytes, inode: tuple[int, int] | None) -> None:
        super().__init__(socket)
        #: The path the listener is bound to.
        self.path = path
        # (st_dev, st_ino) of the socket file we created; None for an
        # abstract address, or once the file has been removed. While our
        # socket is open, its file's inode cannot be freed and its number
        # reused, so a file at the path with this identity is ours.
        self._inode = inode

    async def aclose(self) -> None:
        """Remove the socket file (if it is still ours), then close the
        listener as :meth:`SocketListener.aclose` does. A checkpoint."""
        inode, self._inode = self._inode, None
        try:
            if inode is not None:
                # Unlink before closing: once closed, our claim to the path
                # is over, and a new server may already have bound it.
                _unlink_if_ours(self.path, inode)
        finally:
            await super().aclose()


def _is_stale(path: str | bytes) -> bool:
    """Whether *path* is a socket file nobody listens on. Raises OSError
    (EADDRINUSE) with a message if it is something else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True  # gone meanwhile: binding again will do
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(
            errno.EADDRINUSE,
            f"cannot listen on {path!r}: a file that is not a socket is in the way; remove it or choose another path",
        )
    probe = _stdlib_socket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
    try:
        # Non-blocking: EAGAIN means a listener with a full queue, which is
        # just as alive as one that accepts.
        probe.setblocking(False)
        probe.connect(path)
    except ConnectionRefusedError:
        return True
    except BlockingIOError:
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"cannot listen on {path!r}: another socket is already listening there")


async def open_unix_listener(
    path: StrOrBytesPath, *, mode: int | None = None, backlog: int | None = None
) -> UnixSocketListener:
    """Listen for connections on a Unix domain stream socket at *path* and
    return the listener (a :class:`SocketListener`; accept with ``accept()``
    or serve with :func:`serve_listeners`).

    If a socket file is already at *path* and nothing listens on it (left
    behind by a server that did not clean up), it is replaced. Raises
    :exc:`OSError` with ``errno.EADDRINUSE`` if something does listen there,
    or if the file at *path* is not a socket (it is never removed).

    *mode* (for example ``0o660``) sets the permissions of the socket file,
    which decide who may connect; it is applied before the socket starts
    listening, so no connection gets in under looser permissions. ``None``
    leaves them to the process's umask. *backlog* is the length of the
    queue of connections waiting for ``accept()``; ``None`` means the
    largest the system allows.

    Closing the listener removes the socket file, if the path still refers
    to this listener's socket. A path starting with ``"\\0"`` is a Linux
    abstract address: no file, nothing to check or remove, and *mode* does
    not apply.

    A checkpoint. Raises :exc:`TypeError` for a *path* that is not a path,
    *mode* or *backlog* that is not an int, :exc:`ValueError` for a negative
    *backlog*, :exc:`RuntimeError` where there are no Unix sockets, and
    :exc:`OSError` if the socket cannot be created or bound (the message
    names the path).
    """
    path = _check_path(path, "open_unix_listener()")
    if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool)):
        raise TypeError(f"open_unix_listener() mode must be an int such as 0o660, or None, got {mode!r}")
    if backlog is not None and (not isinstance(backlog, int) or isinstance(backlog, bool)):
        raise TypeError(f"open_unix_listener() backlog must be an int or None, got {backlog!r}")
    if backlog is not None and backlog < 0:
        raise ValueError(
            f"open_unix_listener() backlog must be >= 0 (or None for the system's maximum), got {backlog}"
        )
    abstract = _is_abstract(path)
    if abstract and mode is not None:
        raise ValueError("open_unix_listener() mode does not apply to an abstract address (a path starting with NUL)")

    sock = _nsocket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
    inode = None
    try:
        try:
            await sock.bind(path)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or abstract or not _is_stale(path):
                raise _bind_error(path, exc) from exc
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            try:
                await sock.bind(path)
            except OSError as exc:
                raise _bind_error(path, exc) from exc
        if not abstract:
            st = os.stat(path)
            inode = (st.st_dev, st.st_ino)
            if mode is not None:
                os.chmod(path, mode)
        sock.listen(_MAX_BACKLOG if backlog is None else min(backlog, _MAX_BACKLOG))
        return UnixSocketListener(sock, path, inode)
    except BaseException:
        sock.close()
        if inode is not None:
            _unlink_if_ours(path, inode)
        raise


def _bind_error(path: str | bytes, exc: OSError) -> OSError:
    return OSError(exc.errno, f"cannot listen on {path!r}: {exc.strerror or exc}")


def _unlink_if_ours(path: str | bytes, inode: tuple[int, int]) -> None:
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass  # removed by someone else already

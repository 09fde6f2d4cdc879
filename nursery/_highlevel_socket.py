"""SocketStream and SocketListener: the stream and listener interfaces over
:mod:`nursery.socket` sockets.

Hot paths: ``send_all`` and ``receive_some`` are what every TCP server and
client spends its time in (benchmarks: echo_tcp, echo_bulk). They call the
stdlib socket directly instead of going through the async
:class:`~nursery.socket.SocketType` methods, use the kernel's traps without
intermediate coroutines, and touch the I/O poller only when a system call
would block.
"""

from __future__ import annotations

import errno
import operator
import types
from typing import Any, Generator

from . import socket as nsocket
from ._abc import HalfCloseableStream, Listener
from ._core import STATE, BrokenResourceError, BusyResourceError, ClosedResourceError, no_run_error
from ._core._traps import _SHIELDED
from .lowlevel import checkpoint, notify_closing, wait_readable, wait_writable

__all__ = ["SocketStream", "SocketListener"]

#: What ``receive_some()`` asks the OS for when given no ``max_bytes``.
DEFAULT_RECEIVE_SIZE = 65536

#: How many bytes a TCP stream lets wait, unsent, in the kernel's send
#: buffer (``TCP_NOTSENT_LOWAT``), where the platform supports it. Without a
#: limit, the send buffer grows to megabytes: ``send_all`` returns long
#: before the data leaves, ``wait_send_all_might_not_block`` means little,
#: and a bulk sender runs far ahead of its receiver, through memory that no
#: longer fits in the CPU's caches. With 16 KiB, echo_bulk runs twice as
#: fast, and echo_tcp (small messages) is unaffected.
NOTSENT_LOWAT = 16384
# The socket module names the option where the platform has it.
_TCP_NOTSENT_LOWAT = getattr(nsocket, "TCP_NOTSENT_LOWAT", None)

# accept() errors that concern only the connection being accepted (it died
# before we got it, a firewall refused it, ...): skip it and accept the next.
# Running out of descriptors (EMFILE, ENFILE) or memory is not transient in
# that sense and is raised, so the caller can decide.
_IGNORED_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)


def _closed(what: str) -> ClosedResourceError:
    return ClosedResourceError(f"{what} on a closed SocketStream")


def _busy(what: str) -> BusyResourceError:
    return BusyResourceError(f"another task is already in {what} on this SocketStream")


def _broken(exc: OSError) -> BrokenResourceError:
    error = BrokenResourceError(f"the socket connection broke: {exc}")
    error.__cause__ = exc
    return error


class SocketStream(HalfCloseableStream):
    """A :class:`~nursery.HalfCloseableStream` over a connected
    ``SOCK_STREAM`` socket (TCP or a Unix stream socket).

    *socket* must be a :class:`nursery.socket.SocketType`; the stream owns it
    from now on and closes it in :meth:`aclose`. For TCP sockets the stream
    turns Nagle's algorithm off (``TCP_NODELAY``), since a stream's users
    send whole messages and want them to go out at once, and, where the
    platform supports it, keeps at most 16 KiB of unsent data in the kernel
    (``TCP_NOTSENT_LOWAT``), so that ``send_all`` returns when the data is
    about to leave rather than when it was queued behind megabytes of
    earlier data, and :meth:`wait_send_all_might_not_block` is meaningful.

    Errors: :exc:`~nursery.ClosedResourceError` after :meth:`aclose` (also
    to a task blocked in the stream when another task closes it),
    :exc:`~nursery.BusyResourceError` if two tasks send (or two receive) at
    once, :exc:`~nursery.BrokenResourceError` when the connection failed
    (reset by the peer, a broken pipe, ...), with the :exc:`OSError` as its
    ``__cause__``.
    """

    __slots__ = ("socket", "_sock", "_closed", "_sending", "_receiving", "_drained", "_broken")

    def __init__(self, socket: nsocket.SocketType) -> None:
        if not isinstance(socket, nsocket.SocketType):
            raise TypeError(
                f"SocketStream needs a nursery.socket.SocketType, got {socket!r} "
                "(wrap a stdlib socket with nursery.socket.from_stdlib_socket())"
            )
        if socket.type != nsocket.SOCK_STREAM:
            raise ValueError(f"SocketStream needs a SOCK_STREAM socket, got {socket!r}")
        #: The :class:`nursery.socket.SocketType` this stream runs over.
        self.socket = socket
        # The stdlib socket, for the hot paths.
        self._sock = socket._sock
        self._closed = False
        self._sending = False
        self._receiving = False
        # Whether the last receive emptied the socket's receive buffer.
        self._drained = False
        # The OSError or reason that broke the sending side, or None.
        self._broken: str | None = None
        if socket.family in (nsocket.AF_INET, nsocket.AF_INET6):
            try:
                self._sock.setsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NODELAY, True)
            except OSError:
                pass  # not TCP after all (SCTP, say): nothing to turn off
            if _TCP_NOTSENT_LOWAT is not None:
                try:
                    self._sock.setsockopt(nsocket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
                except OSError:
                    pass

    # -- sending ---------------------------------------------------------

    # Hot path (echo_tcp, echo_bulk): a generator-based coroutine, so that the
    # fast path costs no coroutine objects beyond this one, and a blocked
    # sender parks with the kernel trap directly.
    @types.coroutine
    def send_all(self, data: bytes | bytearray | memoryview) -> Generator[Any, Any, None]:
        """Send all of *data* (any bytes-like object), waiting for room in
        the send buffer as needed.

        A checkpoint. If it is cancelled before any byte went out, nothing
        was sent and the stream is intact; if it is cancelled after part of
        *data* was sent, the stream is marked broken and every later
        ``send_all`` raises :exc:`~nursery.BrokenResourceError`, rather than
        sending the rest of a message whose start went missing. Raises
        :exc:`TypeError` for data that is not bytes-like (a ``str``, say).
        """
        runner = STATE.runner
        if runner is None:
            raise no_run_error("SocketStream.send_all()")
        if self._sending:
            raise _busy("send_all()")
        if self._closed:
            raise _closed("send_all()")
        if self._broken is not None:
            raise BrokenResourceError(f"the stream is broken: {self._broken}; no more data can be sent on it")
        if runner.current_task._cancel_scope._effectively_cancelled:
            yield  # a checkpoint in a cancelled scope: raises Cancelled
        if type(data) is bytes:
            # The common case needs no memoryview: bytes can be sent as
            # they are, and a view is made only if the send comes up short.
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise self._send_error(exc)
            if sent == len(data):
                yield _SHIELDED  # sent; a cancellation must not claim otherwise
                return
            with memoryview(data) as view:
                yield from self._send_rest(runner, view, sent)
            return
        try:
            view = memoryview(data)
        except TypeError:
            raise TypeError(
                f"send_all() needs a bytes-like object (bytes, bytearray, memoryview), "
                f"got {type(data).__name__}; encode text first, e.g. data.encode()"
            ) from None
        # Released on the way out, so that a bytearray can be resized again.
        with view:
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise self._send_error(exc)
            if sent == len(view):
                yield _SHIELDED
                return
            yield from self._send_rest(runner, view, sent)

    def _send_rest(self, runner: Any, view: memoryview, sent: int) -> Generator[Any, Any, None]:
        """The slow path of send_all: wait for room and send the rest of
        *view*, of which *sent* bytes are gone."""
        total = len(view)
        sock = self._sock
        self._sending = True
        try:
            while True:
                try:
                    yield from runner.io.wait_writable(sock)
                except BaseException as exc:
                    if isinstance(exc, ClosedResourceError):
                        raise _closed("send_all()") from None
                    if sent:
                        self._broken = (
                            f"send_all() was interrupted ({type(exc).__name__}) after {sent} of {total} bytes"
                        )
                    raise
                try:
                    sent += sock.send(view[sent:])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise self._send_error(exc)
                if sent == total:
                    return
        finally:
            self._sending = False

    def _send_error(self, exc: OSError) -> Exception:
        if self._closed or exc.errno == errno.EBADF:
            return _closed("send_all()")
        # Checked here rather than up front, to keep the hot path short: a
        # send after shutdown(SHUT_WR) fails with EPIPE.
        if self.socket._did_shutdown_SHUT_WR:
            return ClosedResourceError("send_all() after send_eof() on this SocketStream")
        self._broken = str(exc)
        return _broken(exc)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket's send buffer has room. A checkpoint."""
        if self._sending:
            raise _busy("send_all()")
        if self._closed:
            raise _closed("wait_send_all_might_not_block()")
        self._sending = True
        try:
            await wait_writable(self._sock)
        except ClosedResourceError:
            raise _closed("wait_send_all_might_not_block()") from None
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Shut the sending direction down (``shutdown(SHUT_WR)``): the peer
        receives end of file once it has read everything sent before. Calling
        it again does nothing. A checkpoint."""
        if self._sending:
            raise _busy("send_all()")
        if self._closed:
            raise _closed("send_eof()")
        self._sending = True
        try:
            await checkpoint()
            if self.socket.did_shutdown_SHUT_WR:
                return
            try:
                self.socket.shutdown(nsocket.SHUT_WR)
            except OSError as exc:
                if exc.errno == errno.ENOTCONN:
                    return  # the peer already went away; EOF is moot
                raise _broken(exc) from None
        finally:
            self._sending = False

    # -- receiving -------------------------------------------------------

    # Hot path (echo_tcp, echo_bulk); see send_all.
    @types.coroutine
    def receive_some(self, max_bytes: int | None = None) -> Generator[Any, Any, bytes]:
        """Receive at least one byte and at most *max_bytes* (64 KiB when
        ``None``); ``b""`` once the peer sent end of file.

        A checkpoint. A cancelled ``receive_some`` received nothing: no byte
        is lost. Raises :exc:`ValueError` for ``max_bytes < 1``.
        """
        runner = STATE.runner
        if runner is None:
            raise no_run_error("SocketStream.receive_some()")
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif type(max_bytes) is not int:
            max_bytes = _check_max_bytes(max_bytes)
        if max_bytes < 1:
            raise ValueError(f"receive_some() max_bytes must be at least 1, got {max_bytes}")
        if self._receiving:
            raise _busy("receive_some()")
        if self._closed:
            raise _closed("receive_some()")
        if runner.current_task._cancel_scope._effectively_cancelled:
            yield  # a checkpoint in a cancelled scope: raises Cancelled
        sock = self._sock
        if not self._drained:
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._receive_error(exc)
            else:
                # A short read emptied the socket's buffer: the next call
                # most likely finds it still empty, so it waits first
                # instead of paying for a recv() that fails.
                self._drained = 0 < len(data) < max_bytes
                yield _SHIELDED  # the data is ours; a cancellation must not lose it
                return data
        self._receiving = True
        try:
            while True:
                try:
                    yield from runner.io.wait_readable(sock)
                except ClosedResourceError:
                    raise _closed("receive_some()") from None
                try:
                    data = sock.recv(max_bytes)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise self._receive_error(exc)
                self._drained = 0 < len(data) < max_bytes
                return data
        finally:
            self._receiving = False

    def _receive_error(self, exc: OSError) -> Exception:
        if self._closed or exc.errno == errno.EBADF:
            return _closed("receive_some()")
        return _broken(exc)

    # -- the rest --------------------------------------------------------

    def setsockopt(self, level: int, option: int, value: int | bytes | None, length: int | None = None) -> None:
        """Set an option on the underlying socket (see
        :meth:`nursery.socket.SocketType.setsockopt`)."""
        self.socket.setsockopt(level, option, value, length)

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> int | bytes:
        """Read an option of the underlying socket."""
        if buffersize == 0:
            return self.socket.getsockopt(level, option)
        return self.socket.getsockopt(level, option, buffersize)

    async def aclose(self) -> None:
        """Close the stream and its socket. Tasks blocked in this stream get
        :exc:`~nursery.ClosedResourceError`. Closing twice does nothing. A
        checkpoint (the socket is closed even if it is cancelled)."""
        if not self._closed:
            self._closed = True
            self.socket.close()
        await checkpoint()

    def __repr__(self) -> str:
        return f"<nursery.SocketStream {self.socket!r}>"


def _check_max_bytes(max_bytes: Any) -> int:
    try:
        return operator.index(max_bytes)
    except TypeError:
        raise TypeError(f"receive_some() needs max_bytes to be an int or None, got {max_bytes!r}") from None


class SocketListener(Listener[SocketStream]):
    """A :class:`~nursery.Listener` that accepts connections on a listening
    ``SOCK_STREAM`` socket and hands each out as a :class:`SocketStream`.

    *socket* must be a :class:`nursery.socket.SocketType` on which
    ``listen()`` was already called; the listener owns it from now on.
    """

    __slots__ = ("socket", "_closed")

    def __init__(self, socket: nsocket.SocketType) -> None:
        if not isinstance(socket, nsocket.SocketType):
            raise TypeError(
                f"SocketListener needs a nursery.socket.SocketType, got {socket!r} "
                "(wrap a stdlib socket with nursery.socket.from_stdlib_socket())"
            )
        if socket.type != nsocket.SOCK_STREAM:
            raise ValueError(f"SocketListener needs a SOCK_STREAM socket, got {socket!r}")
        try:
            listening = socket.getsockopt(nsocket.SOL_SOCKET, nsocket.SO_ACCEPTCONN)
        except OSError:
            listening = True  # the platform cannot tell; trust the caller
        if not listening:
            raise ValueError(f"SocketListener needs a listening socket (call listen() first), got {socket!r}")
        #: The listening :class:`nursery.socket.SocketType`.
        self.socket = socket
        self._closed = False

    async def accept(self) -> SocketStream:
        """Wait for the next connection and return it as a
        :class:`SocketStream`. Connections that fail while being accepted
        (reset by the client, refused by a firewall, ...) are skipped. Running
        out of file descriptors (``EMFILE``, ``ENFILE``) or memory raises the
        :exc:`OSError`. A checkpoint."""
        while True:
            if self._closed:
                raise ClosedResourceError("accept() on a closed SocketListener")
            try:
                sock, _ = await self.socket.accept()
            except ClosedResourceError:
                raise ClosedResourceError("accept() on a closed SocketListener") from None
            except OSError as exc:
                if exc.errno == errno.EBADF and self._closed:
                    raise ClosedResourceError("accept() on a closed SocketListener") from None
                if exc.errno in _IGNORED_ACCEPT_ERRNOS:
                    continue
                raise
            return SocketStream(sock)

    async def aclose(self) -> None:
        """Close the listener and its socket; a task blocked in
        :meth:`accept` gets :exc:`~nursery.ClosedResourceError`. A
        checkpoint."""
        if not self._closed:
            self._closed = True
            self.socket.close()
        await checkpoint()

    def __repr__(self) -> str:
        return f"<nursery.SocketListener {self.socket!r}>"

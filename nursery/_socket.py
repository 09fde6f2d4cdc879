"""The async socket object behind :mod:`nursery.socket`.

A :class:`SocketType` wraps a standard library socket that is always in
non-blocking mode. Every I/O method tries the system call first and only
parks the task (``wait_readable`` / ``wait_writable``) when the call raises
:exc:`BlockingIOError`; the common case, data already there or room in the
send buffer, costs one system call and no trip through the I/O poller.

Checkpoints follow the kernel's rule for operations with a side effect: check
for cancellation *before* the system call, and after a call that did not
block, yield with a cancel-shielded checkpoint, so that a cancellation can
never arrive after bytes were sent or received and lose them.
"""

from __future__ import annotations

import errno
import os
import select
import socket as _stdlib_socket
from typing import Any, Callable, Iterable

from . import to_thread
from .lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    in_run,
    notify_closing,
    wait_readable,
    wait_writable,
)

__all__ = [
    "SocketType",
    "socket",
    "socketpair",
    "from_stdlib_socket",
    "fromfd",
    "getaddrinfo",
    "getnameinfo",
]

_stdlib_socket_class = _stdlib_socket.socket

AddressFormat = Any

# ---------------------------------------------------------------------------
# name resolution


def _is_numeric_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    for family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6):
        try:
            _stdlib_socket.inet_pton(family, host.partition("%")[0] if family == _stdlib_socket.AF_INET6 else host)
        except (OSError, ValueError):
            continue
        return True
    return False


def _is_numeric_port(port: Any) -> bool:
    if port is None or isinstance(port, int):
        return True
    if isinstance(port, bytes):
        port = port.decode("ascii", "replace")
    return isinstance(port, str) and port.isdigit()


async def getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[tuple[Any, Any, int, str, Any]]:
    """Look up *host* and *port* like :func:`socket.getaddrinfo`, without
    blocking the run.

    A numeric host (``"127.0.0.1"``, ``"::1"``, ``None``) with a numeric port
    is answered at once, without a thread. Anything else is looked up in a
    worker thread (:func:`nursery.to_thread.run_sync`); if the call is
    cancelled, the lookup is abandoned and left to finish in the background,
    and :exc:`~nursery.Cancelled` is raised at once.

    Returns the same list of ``(family, type, proto, canonname, sockaddr)``
    tuples as the standard library; raises :exc:`socket.gaierror` for a name
    that does not resolve. Always a checkpoint.
    """
    if _is_numeric_host(host) and _is_numeric_port(port):
        await checkpoint_if_cancelled()
        try:
            result = _stdlib_socket.getaddrinfo(
                host,
                port,
                family,
                type,
                proto,
                flags | _stdlib_socket.AI_NUMERICHOST | _stdlib_socket.AI_NUMERICSERV,
            )
        finally:
            await cancel_shielded_checkpoint()
        return result
    return await to_thread.run_sync(
        _stdlib_socket.getaddrinfo, host, port, family, type, proto, flags, abandon_on_cancel=True
    )


async def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    """Turn *sockaddr* into a ``(host, port)`` pair of strings like
    :func:`socket.getnameinfo`, without blocking the run.

    With both ``NI_NUMERICHOST`` and ``NI_NUMERICSERV`` in *flags* the answer
    is computed at once; otherwise the lookup runs in a worker thread and is
    abandoned if the call is cancelled. Always a checkpoint.
    """
    numeric = _stdlib_socket.NI_NUMERICHOST | _stdlib_socket.NI_NUMERICSERV
    if flags & numeric == numeric:
        await checkpoint_if_cancelled()
        try:
            result = _stdlib_socket.getnameinfo(sockaddr, flags)
        finally:
            await cancel_shielded_checkpoint()
        return result
    return await to_thread.run_sync(_stdlib_socket.getnameinfo, sockaddr, flags, abandon_on_cancel=True)


# ---------------------------------------------------------------------------
# construction


def from_stdlib_socket(sock: _stdlib_socket.socket) -> SocketType:
    """Wrap a standard library socket in a :class:`SocketType`.

    The nursery socket takes the stdlib socket over: it is switched to
    non-blocking mode, and closing either closes both. Raises
    :exc:`TypeError` if *sock* is not a :class:`socket.socket`. Not a
    checkpoint."""
    return SocketType(sock)


def socket(
    family: int = _stdlib_socket.AF_INET,
    type: int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
    fileno: int | None = None,
) -> SocketType:
    """Create a new socket, like :func:`socket.socket`, as a
    :class:`SocketType`. With *fileno*, wrap that descriptor instead (its
    family, type and protocol are detected when left at their defaults).
    Not a checkpoint."""
    if fileno is not None and (family, type, proto) == (_stdlib_socket.AF_INET, _stdlib_socket.SOCK_STREAM, 0):
        # Let the stdlib detect what the descriptor is.
        return SocketType(_stdlib_socket.socket(fileno=fileno))
    return SocketType(_stdlib_socket.socket(family, type, proto, fileno))


def socketpair(
    family: int | None = None,
    type: int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
) -> tuple[SocketType, SocketType]:
    """A pair of connected sockets, like :func:`socket.socketpair` (a Unix
    domain pair where the platform has them). Not a checkpoint."""
    if family is None:
        a, b = _stdlib_socket.socketpair(type=type, proto=proto)
    else:
        a, b = _stdlib_socket.socketpair(family, type, proto)
    return SocketType(a), SocketType(b)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> SocketType:
    """Duplicate the descriptor *fd* and wrap the duplicate, like
    :func:`socket.fromfd`. *fd* itself stays open and yours. Not a
    checkpoint."""
    return SocketType(_stdlib_socket.fromfd(fd, family, type, proto))


# ---------------------------------------------------------------------------
# the socket


def _address_error(what: str, family: int, address: Any) -> TypeError:
    shape = {
        _stdlib_socket.AF_INET: "a (host, port) tuple",
        _stdlib_socket.AF_INET6: "a (host, port[, flowinfo[, scope_id]]) tuple",
    }[family]
    name = _stdlib_socket.AddressFamily(family).name
    return TypeError(f"{what}: an address for family {name} must be {shape}, got {address!r}")


class SocketType:
    """An async socket: the standard library's :class:`socket.socket` with
    its blocking methods turned into ``async`` ones.

    Make one with :func:`nursery.socket.socket`, :func:`socketpair`,
    :func:`from_stdlib_socket` or :func:`fromfd`. The underlying socket is
    always in non-blocking mode; ``settimeout`` and ``setblocking`` are not
    offered (use cancel scopes for timeouts).

    Every ``async`` method is a checkpoint. It checks for cancellation, tries
    the operation, and waits only if the operation would block. A method
    that is cancelled before its system call succeeded has done nothing
    (except ``connect``, see there). Two tasks waiting on the same direction
    of one socket at once (two ``recv``, say) get
    :exc:`~nursery.BusyResourceError`; closing a socket while another task
    waits on it raises :exc:`~nursery.ClosedResourceError` in that task.
    Errors from the operating system are raised as the :exc:`OSError`
    subclass the standard library raises.

    Usable as a (plain, synchronous) context manager that closes the socket.
    """

    __slots__ = ("_sock", "_did_shutdown_SHUT_WR", "__weakref__")

    def __init__(self, sock: _stdlib_socket.socket) -> None:
        if not isinstance(sock, _stdlib_socket_class):
            raise TypeError(
                f"expected a socket.socket from the standard library, got {sock!r} "
                "(use nursery.socket.socket() to make a new socket)"
            )
        self._sock = sock
        self._did_shutdown_SHUT_WR = False
        sock.setblocking(False)

    # -- plain attributes and methods ------------------------------------

    @property
    def family(self) -> int:
        """The address family (``AF_INET``, ``AF_INET6``, ``AF_UNIX``, ...)."""
        return self._sock.family

    @property
    def type(self) -> int:
        """The socket type (``SOCK_STREAM``, ``SOCK_DGRAM``, ...)."""
        return self._sock.type

    @property
    def proto(self) -> int:
        """The protocol number."""
        return self._sock.proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        """Whether :meth:`shutdown` was called with ``SHUT_WR`` or
        ``SHUT_RDWR`` on this socket."""
        return self._did_shutdown_SHUT_WR

    def fileno(self) -> int:
        """The file descriptor, or -1 once the socket is closed."""
        return self._sock.fileno()

    def getsockname(self) -> AddressFormat:
        """The socket's own address."""
        return self._sock.getsockname()

    def getpeername(self) -> AddressFormat:
        """The address of the connected peer."""
        return self._sock.getpeername()

    def setsockopt(self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None) -> None:
        """Set a socket option, like :meth:`socket.socket.setsockopt`."""
        if optlen is None:
            if value is None:
                raise TypeError("setsockopt() needs optlen when value is None")
            self._sock.setsockopt(level, optname, value)
        else:
            if value is not None:
                raise TypeError("setsockopt() takes either a value or value=None with an optlen, not both")
            self._sock.setsockopt(level, optname, None, optlen)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Read a socket option, like :meth:`socket.socket.getsockopt`."""
        if buflen is None:
            return self._sock.getsockopt(level, optname)
        return self._sock.getsockopt(level, optname, buflen)

    def listen(self, backlog: int | None = None) -> None:
        """Start listening for connections (the OS's default backlog if
        *backlog* is not given). Not a checkpoint."""
        if backlog is None:
            self._sock.listen()
        else:
            self._sock.listen(backlog)

    def shutdown(self, how: int) -> None:
        """Shut down one or both directions of the connection (``SHUT_RD``,
        ``SHUT_WR``, ``SHUT_RDWR``). Not a checkpoint."""
        self._sock.shutdown(how)
        if how in (_stdlib_socket.SHUT_WR, _stdlib_socket.SHUT_RDWR):
            self._did_shutdown_SHUT_WR = True

    def is_readable(self) -> bool:
        """Whether a ``recv`` would return at once (data, end of file or an
        error is pending) or, for a listening socket, a connection is
        waiting. Not a checkpoint."""
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        return bool(poller.poll(0))

    async def wait_writable(self) -> None:
        """Wait until the socket is writable. Blocks at least until the next
        turn of the run loop."""
        await wait_writable(self._sock)

    def get_inheritable(self) -> bool:
        """Whether child processes inherit the descriptor (by default they
        do not)."""
        return self._sock.get_inheritable()

    def set_inheritable(self, inheritable: bool) -> None:
        """Let child processes inherit the descriptor, or not."""
        self._sock.set_inheritable(inheritable)

    def dup(self) -> SocketType:
        """A new :class:`SocketType` on a duplicate of the descriptor."""
        return SocketType(self._sock.dup())

    def detach(self) -> int:
        """Give up the descriptor without closing it and return it; the
        socket object is then closed. Tasks waiting on the socket get
        :exc:`~nursery.ClosedResourceError`."""
        if in_run() and self._sock.fileno() != -1:
            notify_closing(self._sock)
        return self._sock.detach()

    def close(self) -> None:
        """Close the socket. Tasks waiting on it get
        :exc:`~nursery.ClosedResourceError`. Closing twice does nothing. Not
        a checkpoint; may be called outside a run."""
        if self._sock.fileno() != -1:
            if in_run():
                notify_closing(self._sock)
            self._sock.close()

    def __enter__(self) -> SocketType:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._sock).replace("socket.socket", "nursery.socket.SocketType", 1)

    # -- addresses ---------------------------------------------------------

    async def _resolve_address(self, address: Any, *, local: bool, what: str) -> Any:
        """Turn a user's address into the one the system call needs: host
        names are looked up (in a thread); numeric addresses are returned as
        they are, without waiting. Only AF_INET and AF_INET6 are resolved."""
        family = self._sock.family
        if family == _stdlib_socket.AF_INET:
            if not isinstance(address, tuple) or len(address) != 2:
                raise _address_error(what, family, address)
        elif family == _stdlib_socket.AF_INET6:
            if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
                raise _address_error(what, family, address)
        else:
            return address
        host, port, *rest = address
        # The stdlib treats these host strings specially itself, without a
        # lookup: "" is INADDR_ANY and "<broadcast>" INADDR_BROADCAST.
        if host in ("", "<broadcast>") and _is_numeric_port(port):
            return address
        if _is_numeric_host(host) and isinstance(port, int):
            return address
        flags = 0
        if local:
            flags |= _stdlib_socket.AI_PASSIVE
        if family == _stdlib_socket.AF_INET6 and not self._sock.getsockopt(
            _stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY
        ):
            # An IPv4 name may be used on a dual-stack socket.
            flags |= _stdlib_socket.AI_V4MAPPED
        infos = await getaddrinfo(host, port, family, self._sock.type, self._sock.proto, flags)
        sockaddr = infos[0][-1]
        if family == _stdlib_socket.AF_INET6 and rest:
            # Keep the flowinfo / scope_id the caller gave.
            sockaddr = (*sockaddr[:2], *rest)
        return sockaddr

    # -- async operations --------------------------------------------------

    async def bind(self, address: AddressFormat) -> None:
        """Bind the socket to *address*. A host name is looked up first (see
        :func:`getaddrinfo`); ``""`` means every interface. A checkpoint."""
        await checkpoint()
        address = await self._resolve_address(address, local=True, what="bind()")
        self._sock.bind(address)

    async def connect(self, address: AddressFormat) -> None:
        """Connect to *address*, looking a host name up first.

        Raises the :exc:`OSError` subclass for the failure (such as
        :exc:`ConnectionRefusedError`) with the address in its message. If
        cancelled while the connection is being made, the socket is closed,
        since it can no longer be used for anything. A checkpoint."""
        await checkpoint_if_cancelled()
        resolved = await self._resolve_address(address, local=False, what="connect()")
        sock = self._sock
        # connect_ex reports the usual failures as an errno (it raises only
        # for a malformed address, which is best reported as it is).
        err = sock.connect_ex(resolved)
        if err == 0:
            await cancel_shielded_checkpoint()
            return
        if err not in _CONNECT_IN_PROGRESS:
            raise _connect_error(err, address)
        try:
            await wait_writable(sock)
        except BaseException:
            # Cancelled (or closed under us) half way through a connect: the
            # socket's state is unknowable, so it is of no further use.
            self.close()
            raise
        err = sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
        if err:
            raise _connect_error(err, address)

    async def accept(self) -> tuple[SocketType, AddressFormat]:
        """Wait for a connection and return ``(socket, address)``, the new
        connection as a :class:`SocketType`. A checkpoint."""
        sock, addr = await self._nonblocking(self._sock.accept, (), wait_readable)
        return SocketType(sock), addr

    async def _nonblocking(self, fn: Callable[..., Any], args: tuple[Any, ...], wait: Any) -> Any:
        await checkpoint_if_cancelled()
        try:
            result = fn(*args)
        except BlockingIOError:
            pass
        else:
            await cancel_shielded_checkpoint()
            return result
        sock = self._sock
        while True:
            await wait(sock)
            try:
                return fn(*args)
            except BlockingIOError:
                pass

    async def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Receive up to *bufsize* bytes; ``b""`` at end of file. A
        checkpoint; a cancelled ``recv`` received nothing."""
        return await self._nonblocking(self._sock.recv, (bufsize, flags), wait_readable)

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into *buffer* and return the number of bytes written. A
        checkpoint."""
        return await self._nonblocking(self._sock.recv_into, (buffer, nbytes, flags), wait_readable)

    async def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, AddressFormat]:
        """Receive up to *bufsize* bytes and the sender's address. A
        checkpoint."""
        return await self._nonblocking(self._sock.recvfrom, (bufsize, flags), wait_readable)

    async def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, AddressFormat]:
        """Receive into *buffer*; return the byte count and the sender's
        address. A checkpoint."""
        return await self._nonblocking(self._sock.recvfrom_into, (buffer, nbytes, flags), wait_readable)

    async def send(self, data: Any, flags: int = 0) -> int:
        """Send some of *data* and return how many bytes were sent (at least
        one). A checkpoint; a cancelled ``send`` sent nothing."""
        return await self._nonblocking(self._sock.send, (data, flags), wait_writable)

    async def sendto(self, data: Any, *args: Any) -> int:
        """``sendto(data[, flags], address)``: send a datagram to *address*,
        looking a host name up first. A checkpoint."""
        if len(args) == 1:
            flags, address = 0, args[0]
        elif len(args) == 2:
            flags, address = args
        else:
            raise TypeError(f"sendto() takes (data, address) or (data, flags, address), got {len(args) + 1} arguments")
        address = await self._resolve_address(address, local=False, what="sendto()")
        return await self._nonblocking(self._sock.sendto, (data, flags, address), wait_writable)

    if hasattr(_stdlib_socket_class, "sendmsg"):

        async def sendmsg(
            self,
            buffers: Iterable[Any],
            ancdata: Iterable[tuple[int, int, Any]] = (),
            flags: int = 0,
            address: AddressFormat | None = None,
        ) -> int:
            """Send the data in *buffers* with ancillary data (for example
            ``SCM_RIGHTS`` descriptors), like :meth:`socket.socket.sendmsg`.
            Returns the number of bytes sent. A checkpoint."""
            buffers = list(buffers)
            ancdata = list(ancdata)
            if address is None:
                return await self._nonblocking(self._sock.sendmsg, (buffers, ancdata, flags), wait_writable)
            address = await self._resolve_address(address, local=False, what="sendmsg()")
            return await self._nonblocking(self._sock.sendmsg, (buffers, ancdata, flags, address), wait_writable)

    if hasattr(_stdlib_socket_class, "recvmsg"):

        async def recvmsg(
            self, bufsize: int, ancbufsize: int = 0, flags: int = 0
        ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
            """Receive data and ancillary data, like
            :meth:`socket.socket.recvmsg`: ``(data, ancdata, msg_flags,
            address)``. A checkpoint."""
            return await self._nonblocking(self._sock.recvmsg, (bufsize, ancbufsize, flags), wait_readable)

    if hasattr(_stdlib_socket_class, "recvmsg_into"):

        async def recvmsg_into(
            self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0
        ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
            """Receive into *buffers* with ancillary data, like
            :meth:`socket.socket.recvmsg_into`: ``(nbytes, ancdata,
            msg_flags, address)``. A checkpoint."""
            buffers = list(buffers)
            return await self._nonblocking(self._sock.recvmsg_into, (buffers, ancbufsize, flags), wait_readable)


# What connect_ex returns for a connection that is on its way.
_CONNECT_IN_PROGRESS = frozenset(
    getattr(errno, name) for name in ("EINPROGRESS", "EWOULDBLOCK", "EAGAIN") if hasattr(errno, name)
)


def _connect_error(err: int, address: Any) -> OSError:
    # OSError(errno, message) builds the matching subclass
    # (ConnectionRefusedError for ECONNREFUSED, and so on).
    return OSError(err, f"Error connecting to {address!r}: {os.strerror(err)}")

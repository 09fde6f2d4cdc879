"""``open_tcp_listeners`` and ``serve_tcp``: TCP servers on every address of
a host."""

from __future__ import annotations

import errno
import socket as _stdlib_socket
import sys
from typing import Any, Awaitable, Callable

from . import socket as _nsocket
from ._addresses import check_backlog, check_host, check_port, format_sockaddr
from ._core import TASK_STATUS_IGNORED, TaskStatus
from ._highlevel_socket import SocketListener, SocketStream
from ._serve_listeners import check_handler, serve_listeners

__all__ = ["open_tcp_listeners", "serve_tcp"]

# The largest backlog listen() accepts everywhere; the kernel silently caps
# it at its own limit (net.core.somaxconn on Linux), so asking for this
# means "as many as the system allows".
_MAX_BACKLOG = 0xFFFF

# With port 0 and several addresses, the first address gets a port from the
# kernel and the others are bound to the same number; if another program
# holds that number on one of the other addresses, start over this many
# times before falling back to one kernel-chosen port per address.
_SAME_PORT_ATTEMPTS = 10


class _PortTaken(Exception):
    """The port chosen for the first address is taken on another one."""


def _new_listening_socket(family: int, type_: int, proto: int) -> Any:
    sock = _nsocket.socket(family, type_, proto)
    try:
        if sys.platform != "win32":
            # Restarting a server must not fail for the minute or two the
            # previous one's connections spend in TIME_WAIT. (On Windows
            # SO_REUSEADDR means something else: it lets another program
            # steal a port in use.)
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)
        if family == _stdlib_socket.AF_INET6:
            # An IPv6 wildcard socket would otherwise also take the IPv4
            # traffic (dual stack, depending on the OS setting) and clash
            # with the IPv4 listener opened beside it.
            sock.setsockopt(_stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


async def _open_all(targets: list[Any], backlog: int, share_port: bool) -> list[SocketListener]:
    """One listener per target. With *share_port* (port 0), every target
    after the first is bound to the port the first one got."""
    listeners: list[SocketListener] = []
    unsupported: list[OSError] = []
    chosen_port: int | None = None
    try:
        for family, type_, proto, _, sockaddr in targets:
            try:
                sock = _new_listening_socket(family, type_, proto)
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT:
                    # IPv6 compiled in but switched off, say: serve the
                    # families that work.
                    unsupported.append(exc)
                    continue
                raise
            try:
                if chosen_port is not None:
                    sockaddr = (sockaddr[0], chosen_port, *sockaddr[2:])
                try:
                    await sock.bind(sockaddr)
                except OSError as exc:
                    if chosen_port is not None and exc.errno == errno.EADDRINUSE:
                        raise _PortTaken from None
                    raise OSError(
                        exc.errno, f"could not listen on {format_sockaddr(family, sockaddr)}: {exc.strerror or exc}"
                    ) from exc
                if share_port and chosen_port is None:
                    chosen_port = sock.getsockname()[1]
                sock.listen(backlog)
                listeners.append(SocketListener(sock))
            except BaseException:
                sock.close()
                raise
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    if not listeners:
        message = "this system supports none of the address families that the host resolved to"
        exc = OSError(errno.EAFNOSUPPORT, message)
        exc.__cause__ = ExceptionGroup(message, unsupported)
        raise exc
    return listeners


async def open_tcp_listeners(
    port: int, *, host: str | bytes | None = None, backlog: int | None = None
) -> list[SocketListener]:
    """Listen for TCP connections on *port* and return one
    :class:`SocketListener` per local address.

    *host* is the local interface to listen on: ``None`` (the default) for
    every interface, both IPv4 (``0.0.0.0``) and IPv6 (``::``); an address
    such as ``"127.0.0.1"`` or ``"::1"``; or a name, which gets a listener on
    each of its addresses (``"localhost"``). Names are resolved with
    ``AI_PASSIVE`` (in a worker thread). IPv6 listeners are IPv6-only
    (``IPV6_V6ONLY``), so that they do not clash with their IPv4 siblings,
    and on Unix every listener sets ``SO_REUSEADDR``, so that a restarted
    server can bind again at once.

    *port* 0 lets the kernel pick a free port. With several addresses, every
    listener gets the same port: the first one's, which the others are bound
    to in turn (if that number is taken on another address, the whole set
    is opened again, up to 10 times, and after that each address gets a port
    of its own). Read it with ``listeners[0].socket.getsockname()[1]``.

    *backlog* is the length of the queue of connections waiting for
    ``accept()``; ``None`` means the largest the system allows.

    A checkpoint. Address families the system does not support (IPv6
    switched off) are skipped.

    Raises:
      TypeError, ValueError: *port* is not an int in 0-65535, *host* not a
        str, bytes or None, or *backlog* not an int >= 0 or None.
      socket.gaierror: *host* could not be resolved; the message names it.
      OSError: a socket could not be bound, for example because the port is
        in use (``errno.EADDRINUSE``); the message names the address. No
        listener is left open.
    """
    check_port(port, "open_tcp_listeners()")
    check_host(host, "open_tcp_listeners()", allow_none=True)
    check_backlog(backlog, "open_tcp_listeners()")
    backlog = _MAX_BACKLOG if backlog is None else min(backlog, _MAX_BACKLOG)

    try:
        resolved = await _nsocket.getaddrinfo(
            host, port, type=_stdlib_socket.SOCK_STREAM, flags=_stdlib_socket.AI_PASSIVE
        )
    except _stdlib_socket.gaierror as exc:
        raise _stdlib_socket.gaierror(
            exc.errno, f"could not resolve host {host!r} to listen on (port {port}): {exc.strerror or exc}"
        ) from exc
    targets: list[Any] = []
    seen: set[tuple[int, Any]] = set()
    for target in resolved:
        # A name listed twice in /etc/hosts must not make us bind twice.
        key = (target[0], target[4])
        if key not in seen:
            seen.add(key)
            targets.append(target)

    if port == 0 and len(targets) > 1:
        for _ in range(_SAME_PORT_ATTEMPTS):
            try:
                return await _open_all(targets, backlog, share_port=True)
            except _PortTaken:
                continue
    return await _open_all(targets, backlog, share_port=False)


async def serve_tcp(
    handler: Callable[[SocketStream], Awaitable[object]],
    port: int,
    *,
    host: str | bytes | None = None,
    backlog: int | None = None,
    handler_nursery: Any = None,
    task_status: TaskStatus[list[SocketListener]] = TASK_STATUS_IGNORED,
) -> None:
    """Listen on TCP *port* and run ``await handler(stream)`` in a new task
    for every connection, until cancelled.

    The listeners are opened with :func:`open_tcp_listeners` (*port*,
    *host* and *backlog* mean what they mean there) and served with
    :func:`serve_listeners` (*handler_nursery*, error handling and closing of
    streams as described there). With :meth:`Nursery.start
    <nursery.Nursery.start>` it returns the list of listeners once they are
    accepting; with port 0 that is how to find the port (``start()`` passes
    positional arguments only, so keyword options go in a
    :func:`functools.partial`)::

        listeners = await nursery.start(partial(serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

    An exception from *handler* stops the server (unless *handler_nursery*
    handles it); catch errors inside the handler to keep serving.

    Raises the errors of :func:`open_tcp_listeners`, and :exc:`TypeError`
    if *handler* is not callable (before any socket is opened).
    """
    problem = check_handler(handler, "serve_tcp()")
    if problem is not None:
        raise problem
    listeners = await open_tcp_listeners(port, host=host, backlog=backlog)
    await serve_listeners(handler, listeners, handler_nursery=handler_nursery, task_status=task_status)

"""TLS over TCP in one call: ``open_ssl_over_tcp_stream`` for clients,
``open_ssl_over_tcp_listeners`` and ``serve_ssl_over_tcp`` for servers.

Each is the TCP function of the same shape with an :class:`SSLStream` (or
:class:`SSLListener`) around its result.
"""

from __future__ import annotations

import ssl
from typing import Any, Awaitable, Callable

from ._abc import aclose_forcefully
from ._addresses import check_host
from ._core import TASK_STATUS_IGNORED, TaskStatus
from ._open_tcp_listeners import open_tcp_listeners
from ._open_tcp_stream import DEFAULT_HAPPY_EYEBALLS_DELAY, open_tcp_stream
from ._serve_listeners import check_handler, serve_listeners
from ._ssl import SSLListener, SSLStream, check_context_side

__all__ = ["open_ssl_over_tcp_stream", "open_ssl_over_tcp_listeners", "serve_ssl_over_tcp"]


def default_client_context() -> ssl.SSLContext:
    """The context :func:`open_ssl_over_tcp_stream` uses when given none:
    ``ssl.create_default_context()`` (the system's trusted certificates,
    certificate and hostname checking on, TLS 1.2 at least), refusing
    renegotiation."""
    context = ssl.create_default_context()
    # Renegotiation (TLS 1.2 and older) has been the way into several
    # attacks and is not needed by anything we do; with this option a
    # server's request for it is refused, which ends the connection.
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context


def _check_context(ssl_context: Any, fn_name: str, *, allow_none: bool = False) -> None:
    if isinstance(ssl_context, ssl.SSLContext) or (allow_none and ssl_context is None):
        return
    expected = "an ssl.SSLContext" + (" or None" if allow_none else "")
    raise TypeError(f"{fn_name} ssl_context must be {expected}, got {ssl_context!r}")


async def open_ssl_over_tcp_stream(
    host: str | bytes,
    port: int,
    *,
    https_compatible: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY,
) -> SSLStream:
    """Connect to *host* on TCP *port* (with :func:`~nursery.open_tcp_stream`,
    happy eyeballs and all) and return an :class:`SSLStream` over the
    connection, whose server certificate is checked against *host*.

    *ssl_context* defaults to a fresh ``ssl.create_default_context()``:
    the server's certificate must be signed by a certificate authority the
    system trusts and must match *host*, and renegotiation is refused. Pass
    your own context to trust another authority
    (``ssl.create_default_context(cafile=...)``), to offer ALPN protocols, or
    to present a client certificate. *https_compatible* is passed to the
    :class:`SSLStream`.

    The TLS handshake is not done here but at the stream's first use (call
    :meth:`SSLStream.do_handshake` to do it at once, and to see its errors
    at that point). A checkpoint.

    Raises the errors of :func:`~nursery.open_tcp_stream` (an :exc:`OSError`
    naming the address when nothing accepts the connection, a
    :exc:`socket.gaierror` for a name that does not resolve), and
    :exc:`TypeError` for an *ssl_context* that is not an
    :class:`ssl.SSLContext` (before connecting).
    """
    check_host(host, "open_ssl_over_tcp_stream()")
    _check_context(ssl_context, "open_ssl_over_tcp_stream()", allow_none=True)
    if ssl_context is None:
        ssl_context = default_client_context()
    server_hostname = host.decode("ascii") if isinstance(host, bytes) else host
    tcp_stream = await open_tcp_stream(host, port, happy_eyeballs_delay=happy_eyeballs_delay)
    try:
        return SSLStream(tcp_stream, ssl_context, server_hostname=server_hostname, https_compatible=https_compatible)
    except BaseException:
        await aclose_forcefully(tcp_stream)
        raise


async def open_ssl_over_tcp_listeners(
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: str | bytes | None = None,
    https_compatible: bool = False,
    backlog: int | None = None,
) -> list[SSLListener]:
    """Listen for TLS connections on TCP *port*: the listeners of
    :func:`~nursery.open_tcp_listeners` (*port*, *host* and *backlog* mean
    what they mean there), each wrapped in an :class:`SSLListener` with
    *ssl_context* (a server-side context with your certificate loaded, for
    example ``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)`` followed
    by ``load_cert_chain(...)``) and *https_compatible*.

    The port is ``listeners[0].transport_listener.socket.getsockname()[1]``.
    A checkpoint. Raises the errors of :func:`~nursery.open_tcp_listeners`,
    and, before opening any socket, :exc:`TypeError` if *ssl_context* is not
    an :class:`ssl.SSLContext` and :exc:`ValueError` if it is a client-only
    one (``PROTOCOL_TLS_CLIENT``).
    """
    _check_context(ssl_context, "open_ssl_over_tcp_listeners()")
    check_context_side(ssl_context, True, "open_ssl_over_tcp_listeners()")
    tcp_listeners = await open_tcp_listeners(port, host=host, backlog=backlog)
    return [SSLListener(listener, ssl_context, https_compatible=https_compatible) for listener in tcp_listeners]


async def serve_ssl_over_tcp(
    handler: Callable[[SSLStream], Awaitable[object]],
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: str | bytes | None = None,
    https_compatible: bool = False,
    backlog: int | None = None,
    handler_nursery: Any = None,
    task_status: TaskStatus[list[SSLListener]] = TASK_STATUS_IGNORED,
) -> None:
    """Serve TLS on TCP *port*: run ``await handler(stream)`` in a new task
    for every connection, with *stream* an :class:`SSLStream` (its
    handshake happens at its first use), until cancelled.

    The listeners come from :func:`open_ssl_over_tcp_listeners` (*port*,
    *ssl_context*, *host*, *https_compatible* and *backlog* mean what they
    mean there) and are served with :func:`~nursery.serve_listeners`
    (*handler_nursery*, errors, and the closing of each stream when its
    handler returns, as described there). With :meth:`Nursery.start
    <nursery.Nursery.start>` it returns the listeners once they accept
    connections; with port 0 that is how to learn the port::

        listeners = await nursery.start(serve_ssl_over_tcp, handler, 0, ssl_context, host="127.0.0.1")
        port = listeners[0].transport_listener.socket.getsockname()[1]

    A client that fails the handshake makes that connection's
    ``receive_some``/``send_all`` raise :exc:`~nursery.BrokenResourceError`
    in its handler: catch it there if it should not stop the server.

    Raises the errors of :func:`open_ssl_over_tcp_listeners`, and
    :exc:`TypeError` if *handler* is not callable (before any socket is
    opened).
    """
    problem = check_handler(handler, "serve_ssl_over_tcp()")
    if problem is not None:
        raise problem
    listeners = await open_ssl_over_tcp_listeners(
        port, ssl_context, host=host, https_compatible=https_compatible, backlog=backlog
    )
    await serve_listeners(handler, listeners, handler_nursery=handler_nursery, task_status=task_status)

"""Connecting a test's client to a server it started on a random port."""

from __future__ import annotations

import socket as _stdlib_socket

from .. import socket as _nsocket
from .._highlevel_socket import SocketListener, SocketStream

__all__ = ["open_stream_to_socket_listener"]

# A listener bound to a wildcard address accepts on every interface, but
# the wildcard is not an address one can connect to (portably): use the
# loopback address of the same family.
_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


async def open_stream_to_socket_listener(socket_listener: SocketListener) -> SocketStream:
    """Connect to the address *socket_listener* is bound to and return the
    client end as a :class:`~nursery.SocketStream`.

    Made for tests of servers started with ``nursery.start(serve_tcp,
    handler, 0)``: pass one of the listeners it returns. A listener bound to
    a wildcard address (``0.0.0.0``, ``::``) is reached through the loopback
    address of its family; a Unix socket listener through its path. A
    checkpoint.

    Raises :exc:`TypeError` if *socket_listener* is not a
    :class:`~nursery.SocketListener`, and the :exc:`OSError` of the failed
    connection otherwise (for example if the listener was closed).
    """
    if not isinstance(socket_listener, SocketListener):
        raise TypeError(
            f"open_stream_to_socket_listener() needs a nursery.SocketListener, got {socket_listener!r}"
        )
    listening = socket_listener.socket
    family = listening.family
    address = listening.getsockname()
    if family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6):
        host = _WILDCARD_TO_LOOPBACK.get(address[0], address[0])
        address = (host, *address[1:])
    sock = _nsocket.socket(family, listening.type, listening.proto)
    try:
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return SocketStream(sock)

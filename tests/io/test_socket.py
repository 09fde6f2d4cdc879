"""nursery.socket: the async socket object and its module functions."""

from __future__ import annotations

import errno
import socket as stdlib_socket

import pytest

import nursery
import nursery.socket as nsocket


async def test_socketpair_round_trip() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        assert await a.send(b"hello") == 5
        assert await b.recv(10) == b"hello"


async def test_connect_refused_message_names_the_address() -> None:
    # A port that was just free: bind, note it, close.
    probe = stdlib_socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with nsocket.socket() as sock:
        with pytest.raises(ConnectionRefusedError) as info:
            await sock.connect(("127.0.0.1", port))
    assert info.value.errno == errno.ECONNREFUSED
    assert str(info.value) == f"[Errno {errno.ECONNREFUSED}] Error connecting to ('127.0.0.1', {port}): Connection refused"

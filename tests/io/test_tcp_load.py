"""Load: many concurrent TCP connections on loopback, every byte echoed and
checked. The default run serves 100 connections; the slow marker serves
1,000. Real time (no MockClock): this is about the kernel and the OS. The
conftest leak check verifies that no descriptor is left open afterwards."""

from __future__ import annotations

import hashlib
import resource
from functools import partial

import pytest

import nursery
from nursery import serve_tcp
from nursery.testing import open_stream_to_socket_listener

# Descriptors per connection: the client's end and the server's end.
FDS_PER_CONNECTION = 2
FD_HEADROOM = 200


@pytest.fixture
def fd_limit():
    """Raise the soft descriptor limit for the test if it is too low, and put
    it back afterwards. Yields a function that asks for *n* descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def need(n: int) -> None:
        if soft != resource.RLIM_INFINITY and soft < n:
            if hard != resource.RLIM_INFINITY and hard < n:
                pytest.skip(f"needs {n} file descriptors; the hard limit is {hard}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def payload(client: int, message: int, size: int) -> bytes:
    """Distinct, checkable bytes for each client and message."""
    seed = hashlib.sha256(b"%d/%d" % (client, message)).digest()
    return (seed * (size // len(seed) + 1))[:size]


async def run_echo_load(clients: int, messages: int, size: int) -> dict[str, int]:
    active = 0
    peak = 0
    server_bytes = 0
    connected = 0
    all_connected = nursery.Event()
    all_accepted = nursery.Event()

    async def echo(stream):
        nonlocal active, peak, server_bytes
        active += 1
        peak = max(peak, active)
        if active == clients:
            all_accepted.set()
        try:
            # Every connection is open on both sides at once before any
            # byte is echoed.
            await all_accepted.wait()
            async for chunk in stream:
                server_bytes += len(chunk)
                await stream.send_all(chunk)
            # The client sent EOF: pass it on.
            await stream.send_eof()
        finally:
            active -= 1

    async def client(index: int, listener) -> None:
        nonlocal connected
        async with await open_stream_to_socket_listener(listener) as stream:
            connected += 1
            if connected == clients:
                all_connected.set()
            # Hold every connection open at the same time before talking.
            await all_connected.wait()
            for m in range(messages):
                data = payload(index, m, size)
                await stream.send_all(data)
                received = bytearray()
                while len(received) < size:
                    chunk = await stream.receive_some(size - len(received))
                    assert chunk, f"client {index}: connection closed after {len(received)} of {size} bytes"
                    received += chunk
                assert received == data, f"client {index}, message {m}: echo differs"
            await stream.send_eof()
            assert await stream.receive_some() == b"", f"client {index}: data after the end"

    with nursery.fail_after(60):
        async with nursery.open_nursery() as n:
            (listener,) = await n.start(partial(serve_tcp, echo, 0, host="127.0.0.1"))
            async with nursery.open_nursery() as client_nursery:
                for index in range(clients):
                    client_nursery.start_soon(client, index, listener)
            n.cancel_scope.cancel()
    return {"peak": peak, "server_bytes": server_bytes, "active_after": active}


async def test_100_concurrent_connections_echo_every_byte(fd_limit):
    clients, messages, size = 100, 5, 4096
    fd_limit(clients * FDS_PER_CONNECTION + FD_HEADROOM)
    stats = await run_echo_load(clients, messages, size)
    assert stats == {"peak": clients, "server_bytes": clients * messages * size, "active_after": 0}


@pytest.mark.slow
async def test_1000_concurrent_connections_echo_every_byte(fd_limit):
    clients, messages, size = 1000, 10, 16384
    fd_limit(clients * FDS_PER_CONNECTION + FD_HEADROOM)
    stats = await run_echo_load(clients, messages, size)
    assert stats == {"peak": clients, "server_bytes": clients * messages * size, "active_after": 0}

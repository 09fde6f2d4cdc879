"""compat's loop: servers (create_server, Server's API, Unix servers),
create_connection's options, datagram endpoints, connect_accepted_socket and
pipes; the same stock-asyncio programs on stock asyncio's loop, compat's own
loop and the loop of a nursery.run."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import pytest

from loop_io_support import same_three_ways


class Echo(asyncio.Protocol):
    """Echoes every chunk back; records what happened to it."""

    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        self.log.append("server eof")

    def connection_lost(self, exc: Any) -> None:
        self.log.append(("server lost", exc))


class Collect(asyncio.Protocol):
    """Collects what arrives; `done` resolves at connection_lost."""

    def __init__(self, loop: Any, until: int = 0) -> None:
        self.data = bytearray()
        self.until = until
        self.enough = loop.create_future()
        self.done = loop.create_future()
        self.events: list = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.until and len(self.data) >= self.until and not self.enough.done():
            self.enough.set_result(None)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Any) -> None:
        self.events.append(("lost", repr(exc)))
        self.done.set_result(None)


# ----------------------------------------------------------------------
# create_server and Server


async def _server_api() -> Any:
    loop = asyncio.get_running_loop()
    log: list = []
    server = await loop.create_server(
        lambda: Echo(log), "127.0.0.1", 0, reuse_address=True, reuse_port=True, backlog=5, start_serving=False
    )
    sock = server.sockets[0]
    port = sock.getsockname()[1]
    observed: list = [
        server.is_serving(),
        server.get_loop() is loop,
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0,
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0,
    ]
    await server.start_serving()
    observed.append(server.is_serving())
    transport, client = await loop.create_connection(lambda: Collect(loop, 5), "127.0.0.1", port)
    transport.write(b"hello")
    await client.enough
    observed.append(bytes(client.data))
    transport.close()
    await client.done
    server.close()
    observed.append(server.is_serving())
    await server.wait_closed()
    observed.append(server.sockets)
    observed.append(log)
    return observed


def test_create_server_options_and_server_api() -> None:
    assert same_three_ways(_server_api) == (
        "value",
        [False, True, True, True, True, b"hello", False, (), ["server eof", ("server lost", None)]],
    )


async def _serve_forever() -> Any:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
    async with server:
        serving = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        states = [server.is_serving()]
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"ping")
        states.append(await reader.readexactly(4))
        writer.close()
        await writer.wait_closed()
        serving.cancel()
        try:
            await serving
        except asyncio.CancelledError:
            states.append("serve_forever cancelled")
        states.append(server.is_serving())
    return states


def test_serve_forever_and_async_with() -> None:
    assert same_three_ways(_serve_forever) == ("value", [True, b"ping", "serve_forever cancelled", False])


async def _server_on_taken_port(port: int) -> Any:
    loop = asyncio.get_running_loop()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        try:
            await loop.create_server(Echo, "127.0.0.1", port)
        except OSError as exc:
            return exc.errno, str(exc)


def test_create_server_port_in_use_error_as_stock() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kind, (errno_, message) = same_three_ways(_server_on_taken_port, port)
    assert kind == "value"
    assert "address already in use" in message


# ----------------------------------------------------------------------
# create_connection's options


async def _connection_options() -> Any:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    results: list = []
    # Happy eyeballs over two addresses, the first refusing.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    transport, proto = await loop.create_connection(
        lambda: Collect(loop, 2),
        "localhost",
        port,
        happy_eyeballs_delay=0.05,
        interleave=1,
        local_addr=("127.0.0.1", local_port),
        family=socket.AF_INET,
    )
    results.append(transport.get_extra_info("sockname") == ("127.0.0.1", local_port))
    results.append(transport.get_extra_info("peername") == ("127.0.0.1", port))
    results.append(isinstance(transport.get_extra_info("socket"), asyncio.trsock.TransportSocket))
    transport.write(b"ok")
    await proto.enough
    results.append(bytes(proto.data))
    transport.close()
    await proto.done
    try:
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", refused_port, happy_eyeballs_delay=0.05)
    except OSError as exc:
        results.append((type(exc).__name__, exc.errno is not None))
    server.close()
    await server.wait_closed()
    return results


def test_create_connection_options() -> None:
    assert same_three_ways(_connection_options) == (
        "value",
        [True, True, True, b"ok", ("ConnectionRefusedError", True)],
    )


# ----------------------------------------------------------------------
# Unix sockets


async def _unix(path: str) -> Any:
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(Echo, path)
    transport, proto = await loop.create_unix_connection(lambda: Collect(loop, 4), path)
    transport.write(b"unix")
    await proto.enough
    data = bytes(proto.data)
    transport.close()
    await proto.done
    server.close()
    await server.wait_closed()
    reader, writer = None, None
    server = await asyncio.start_unix_server(lambda r, w: w.close(), path)
    reader, writer = await asyncio.open_unix_connection(path)
    eof = await reader.read()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return data, eof


def test_unix_server_and_connection(tmp_path: Any) -> None:
    path = str(tmp_path / "sock")
    assert same_three_ways(_unix, path) == ("value", (b"unix", b""))


# ----------------------------------------------------------------------
# datagrams


class DatagramEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data.upper(), addr)


class DatagramCollect(asyncio.DatagramProtocol):
    def __init__(self, loop: Any, n: int) -> None:
        self.got: list = []
        self.n = n
        self.enough = loop.create_future()
        self.closed = loop.create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)
        if len(self.got) == self.n:
            self.enough.set_result(None)

    def error_received(self, exc: Exception) -> None:
        self.got.append(type(exc).__name__)

    def connection_lost(self, exc: Any) -> None:
        self.closed.set_result(exc)


async def _datagrams() -> Any:
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(DatagramEcho, local_addr=("127.0.0.1", 0))
    address = server.get_extra_info("sockname")
    client, proto = await loop.create_datagram_endpoint(lambda: DatagramCollect(loop, 3), remote_addr=address)
    for word in (b"a", b"bb", b"ccc"):
        client.sendto(word)
    await proto.enough
    client.close()
    server.close()
    return sorted(proto.got), await proto.closed


def test_datagram_endpoint() -> None:
    assert same_three_ways(_datagrams) == ("value", ([b"A", b"BB", b"CCC"], None))


# ----------------------------------------------------------------------
# connect_accepted_socket


async def _accepted() -> Any:
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    listener.close()
    try:
        transport, _ = await loop.connect_accepted_socket(Echo, conn)
        client.setblocking(False)
        await loop.sock_sendall(client, b"accepted")
        got = b""
        while len(got) < 8:
            got += await loop.sock_recv(client, 100)
        transport.close()
        await asyncio.sleep(0)
        return got, await loop.sock_recv(client, 100)
    finally:
        client.close()


def test_connect_accepted_socket() -> None:
    assert same_three_ways(_accepted) == ("value", (b"accepted", b""))


# ----------------------------------------------------------------------
# pipes


async def _pipes() -> Any:
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    read_file = os.fdopen(r, "rb", 0)
    write_file = os.fdopen(w, "wb", 0)
    read_transport, reader = await loop.connect_read_pipe(lambda: Collect(loop), read_file)
    write_transport, writer = await loop.connect_write_pipe(asyncio.Protocol, write_file)
    payload = os.urandom(300_000)  # more than a pipe buffer holds
    write_transport.write(payload)
    buffered = write_transport.get_write_buffer_size() > 0
    write_transport.close()
    await reader.done
    read_transport.close()
    return bytes(reader.data) == payload, buffered, reader.events


def test_read_and_write_pipes() -> None:
    assert same_three_ways(_pipes) == ("value", (True, True, ["made", "eof", ("lost", "None")]))


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_servers_leave_no_fds() -> None:
    # (The autouse leak check covers every test; this one says it outright
    # for a server's whole life on compat's loop.)
    before = set(os.listdir("/proc/self/fd"))
    same_three_ways(_server_api)
    assert set(os.listdir("/proc/self/fd")) == before


async def _many_connections(n: int) -> Any:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=n)
    port = server.sockets[0].getsockname()[1]

    async def one(i: int) -> bytes:
        transport, proto = await loop.create_connection(lambda: Collect(loop, 8), "127.0.0.1", port)
        transport.write(b"%08d" % i)
        await proto.enough
        transport.close()
        await proto.done
        return bytes(proto.data)

    results = await asyncio.gather(*(one(i) for i in range(n)))
    server.close()
    await server.wait_closed()
    return results == [b"%08d" % i for i in range(n)]


def test_many_connections() -> None:
    assert same_three_ways(_many_connections, 100) == ("value", True)


@pytest.mark.slow
def test_thousand_concurrent_connections() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:
        pytest.skip(f"needs 2,500 fds (RLIMIT_NOFILE soft limit is {soft})")
    assert same_three_ways(_many_connections, 1000) == ("value", True)

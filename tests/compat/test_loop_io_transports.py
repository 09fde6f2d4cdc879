"""compat's loop: transports' contracts (flow control both ways,
BufferedProtocol, abort, write_eof, a peer's reset, sendfile) and TLS
(create_server/create_connection with ssl, server_hostname, a handshake
timeout, start_tls), with certificates from trustme; each stock-asyncio
program runs on stock asyncio's loop, compat's own loop and the loop of a
nursery.run, and all three must observe the same."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from typing import Any

import pytest
import trustme

from loop_io_support import run_way, same_three_ways

CA = trustme.CA()
SERVER_CERT = CA.issue_cert("example.org", "127.0.0.1")


def server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    SERVER_CERT.configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    CA.configure_trust(context)
    return context


class Sink(asyncio.Protocol):
    """Reads and records; can be told to stop reading."""

    def __init__(self, loop: Any) -> None:
        self.data = bytearray()
        self.lost = loop.create_future()
        self.eof = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> Any:
        self.eof = True

    def connection_lost(self, exc: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def _server(loop: Any, factory: Any, **kwargs: Any) -> tuple[Any, int]:
    server = await loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return server, server.sockets[0].getsockname()[1]


# ----------------------------------------------------------------------
# flow control


async def _write_flow_control() -> Any:
    loop = asyncio.get_running_loop()
    sinks: list = []

    def make_sink() -> Sink:
        sinks.append(Sink(loop))
        return sinks[-1]

    server, port = await _server(loop, make_sink)
    events: list = []

    class Writer(asyncio.Protocol):
        def pause_writing(self) -> None:
            events.append(("pause", transport.get_write_buffer_size() > 64 * 1024))

        def resume_writing(self) -> None:
            events.append(("resume", transport.get_write_buffer_size() <= 1024))

    transport, _ = await loop.create_connection(Writer, "127.0.0.1", port)
    transport.set_write_buffer_limits(high=64 * 1024, low=1024)
    limits = transport.get_write_buffer_limits()
    while not sinks:
        await asyncio.sleep(0)
    sink = sinks[0]
    sink.transport.pause_reading()
    was_reading = sink.transport.is_reading()
    chunk = b"x" * 65536
    for _ in range(100):  # 6.4 MB: more than the socket buffers hold
        transport.write(chunk)
    await asyncio.sleep(0.05)
    paused_events = list(events)
    sink.transport.resume_reading()
    while len(sink.data) < 100 * 65536:
        await asyncio.sleep(0.001)
    transport.close()
    await sink.lost
    server.close()
    await server.wait_closed()
    return limits, was_reading, paused_events, events[-1], len(sink.data)


def test_write_flow_control_and_pause_reading() -> None:
    assert same_three_ways(_write_flow_control) == (
        "value",
        ((1024, 65536), False, [("pause", True)], ("resume", True), 100 * 65536),
    )


async def _buffered_protocol() -> Any:
    loop = asyncio.get_running_loop()

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(100)
            self.got = bytearray()
            self.sizes: set = set()
            self.lost = loop.create_future()

        def get_buffer(self, sizehint: int) -> Any:
            return memoryview(self.buffer)[:7]  # small: many calls

        def buffer_updated(self, nbytes: int) -> None:
            self.sizes.add(nbytes <= 7)
            self.got += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.got += b"|eof"

        def connection_lost(self, exc: Any) -> None:
            self.lost.set_result(exc)

    protocols: list = []
    server, port = await _server(loop, lambda: protocols.append(Buffered()) or protocols[-1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"0123456789" * 10)
    writer.write_eof()
    await writer.drain()
    while not protocols:
        await asyncio.sleep(0)
    proto = protocols[0]
    while not proto.got.endswith(b"|eof"):
        await asyncio.sleep(0.001)
    writer.close()
    await writer.wait_closed()
    proto_exc = await proto.lost
    server.close()
    await server.wait_closed()
    return bytes(proto.got), proto.sizes, proto_exc


def test_buffered_protocol() -> None:
    assert same_three_ways(_buffered_protocol) == ("value", (b"0123456789" * 10 + b"|eof", {True}, None))


async def _write_eof_and_half_close() -> Any:
    loop = asyncio.get_running_loop()

    async def handle(reader: Any, writer: Any) -> None:
        data = await reader.read()  # to EOF
        writer.write(data[::-1])
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    can = writer.can_write_eof()
    writer.write(b"abc")
    writer.write_eof()
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return can, reply


def test_write_eof() -> None:
    assert same_three_ways(_write_eof_and_half_close) == ("value", (True, b"cba"))


async def _abort() -> Any:
    loop = asyncio.get_running_loop()
    sinks: list = []
    server, port = await _server(loop, lambda: sinks.append(Sink(loop)) or sinks[-1])
    client = Sink(loop)
    transport, _ = await loop.create_connection(lambda: client, "127.0.0.1", port)
    transport.pause_reading()
    while not sinks:
        await asyncio.sleep(0)
    sinks[0].transport.pause_reading()
    transport.write(b"y" * 10_000_000)  # stays buffered: the peer does not read
    buffered = transport.get_write_buffer_size() > 0
    transport.abort()
    closing = transport.is_closing()
    exc = await client.lost
    sinks[0].transport.resume_reading()
    peer_exc = await sinks[0].lost
    server.close()
    await server.wait_closed()
    return buffered, closing, exc, type(peer_exc).__name__


def test_abort_drops_buffer_and_closes_at_once() -> None:
    outcome = same_three_ways(_abort)
    assert outcome[0] == "value"
    assert outcome[1][:3] == (True, True, None)


async def _peer_reset() -> Any:
    loop = asyncio.get_running_loop()
    accepted = loop.create_future()

    async def handle(reader: Any, writer: Any) -> None:
        accepted.set_result(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    raw = socket.create_connection(server.sockets[0].getsockname())
    server_writer = await accepted
    # Close with linger 0: the peer gets an RST instead of a FIN.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    await asyncio.sleep(0.05)
    outcome = None
    try:
        for _ in range(10):
            server_writer.write(b"x" * 1000)
            await server_writer.drain()
            await asyncio.sleep(0.01)
    except ConnectionResetError as exc:
        outcome = (type(exc).__name__, str(exc))
    server_writer.close()
    server.close()
    await server.wait_closed()
    return outcome


def test_peer_reset_gives_connection_reset_error() -> None:
    kind, value = same_three_ways(_peer_reset)
    assert kind == "value"
    assert value[0] == "ConnectionResetError"


async def _reset_while_reading() -> Any:
    loop = asyncio.get_running_loop()
    accepted = loop.create_future()

    async def handle(reader: Any, writer: Any) -> None:
        accepted.set_result(None)
        try:
            await reader.read(100)
        except ConnectionResetError as exc:
            result.set_result(type(exc).__name__)
        else:
            result.set_result("no error")
        writer.close()

    result = loop.create_future()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    raw = socket.create_connection(server.sockets[0].getsockname())
    await accepted
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    got = await result
    server.close()
    await server.wait_closed()
    return got


def test_peer_reset_while_reading() -> None:
    assert same_three_ways(_reset_while_reading) == ("value", "ConnectionResetError")


async def _transport_sendfile(path: str) -> Any:
    loop = asyncio.get_running_loop()
    sinks: list = []
    server, port = await _server(loop, lambda: sinks.append(Sink(loop)) or sinks[-1])
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    with open(path, "rb") as f:
        sent = await loop.sendfile(transport, f, offset=5, count=500_000)
    transport.close()
    while not sinks or not sinks[0].lost.done():
        await asyncio.sleep(0.001)
    server.close()
    await server.wait_closed()
    return sent, bytes(sinks[0].data) == open(path, "rb").read()[5:500_005]


def test_transport_sendfile(tmp_path: Any) -> None:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(600_000))
    assert same_three_ways(_transport_sendfile, str(path)) == ("value", (500_000, True))


# ----------------------------------------------------------------------
# TLS


async def _tls_echo() -> Any:
    async def handle(reader: Any, writer: Any) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context(), ssl_handshake_timeout=5)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(), server_hostname="example.org", ssl_handshake_timeout=5
    )
    cert = writer.get_extra_info("peercert")
    ssl_object = writer.get_extra_info("ssl_object")
    writer.write(b"secret\n")
    line = await reader.readline()
    eof = await reader.read()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return line, eof, sorted(cert["subjectAltName"]), ssl_object.version() is not None


def test_tls_server_and_client() -> None:
    assert same_three_ways(_tls_echo) == (
        "value",
        (b"SECRET\n", b"", [("DNS", "example.org"), ("IP Address", "127.0.0.1")], True),
    )


async def _tls_bad_hostname() -> Any:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context())
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.open_connection("127.0.0.1", port, ssl=client_context(), server_hostname="wrong.example")
    except ssl.SSLCertVerificationError as exc:
        outcome = (type(exc).__name__, exc.verify_message)
    server.close()
    await server.wait_closed()
    return outcome


def test_tls_wrong_hostname_fails_verification() -> None:
    assert same_three_ways(_tls_bad_hostname) == (
        "value",
        ("SSLCertVerificationError", "Hostname mismatch, certificate is not valid for 'wrong.example'."),
    )


async def _tls_handshake_timeout() -> Any:
    # The server accepts TCP but never speaks TLS.
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    try:
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        start = loop.time()
        try:
            await asyncio.open_connection(
                *listener.getsockname(), ssl=client_context(), server_hostname="example.org", ssl_handshake_timeout=0.2
            )
        except ConnectionAbortedError as exc:
            outcome = (type(exc).__name__, str(exc), 0.15 < loop.time() - start < 3)
        conn, _ = await accepting
        conn.close()
    finally:
        listener.close()
    return outcome


def test_tls_handshake_timeout() -> None:
    assert same_three_ways(_tls_handshake_timeout) == (
        "value",
        ("ConnectionAbortedError", "SSL handshake is taking longer than 0.2 seconds: aborting the connection", True),
    )


async def _start_tls() -> Any:
    async def handle(reader: Any, writer: Any) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"go ahead\n")
        await writer.drain()
        await writer.start_tls(server_context())
        writer.write(b"over tls: " + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    writer.write(b"STARTTLS\n")
    first = await reader.readline()
    plain = writer.get_extra_info("ssl_object")
    await writer.start_tls(client_context(), server_hostname="example.org")
    writer.write(b"hi\n")
    second = await reader.readline()
    tls = writer.get_extra_info("ssl_object") is not None
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return first, plain, second, tls


def test_start_tls() -> None:
    assert same_three_ways(_start_tls) == ("value", (b"go ahead\n", None, b"over tls: hi\n", True))


async def _loop_start_tls() -> Any:
    loop = asyncio.get_running_loop()
    sinks: list = []

    def make() -> Sink:
        sinks.append(Sink(loop))
        return sinks[-1]

    server, port = await _server(loop, make)
    transport, proto = await loop.create_connection(lambda: Sink(loop), "127.0.0.1", port)
    while not sinks:
        await asyncio.sleep(0)
    server_side = asyncio.ensure_future(
        loop.start_tls(sinks[0].transport, sinks[0], server_context(), server_side=True)
    )
    tls_transport = await loop.start_tls(transport, proto, client_context(), server_hostname="example.org")
    server_tls = await server_side
    tls_transport.write(b"payload")
    while bytes(sinks[0].data) != b"payload":
        await asyncio.sleep(0.001)
    tls_transport.close()
    await proto.lost
    server_tls.close()
    server.close()
    await server.wait_closed()
    return bytes(sinks[0].data), tls_transport.get_extra_info("sslcontext") is not None


def test_loop_start_tls_both_sides() -> None:
    assert same_three_ways(_loop_start_tls) == ("value", (b"payload", True))


@pytest.mark.parametrize("way", ["compat"])
def test_tls_bulk_transfer(way: str) -> None:
    # A few MB through TLS, both directions under flow control.
    async def main() -> Any:
        async def handle(reader: Any, writer: Any) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context())
        reader, writer = await asyncio.open_connection(
            *server.sockets[0].getsockname(), ssl=client_context(), server_hostname="example.org"
        )
        payload = os.urandom(3 * 1024 * 1024)

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof() if writer.can_write_eof() else None

        sender = asyncio.ensure_future(send())
        got = await reader.readexactly(len(payload))
        await sender
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got == payload

    assert run_way(way, main) == ("value", True)

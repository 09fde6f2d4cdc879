"""compat's socket transport (nursery/compat/_socket_transport.py): its
short read and write paths must behave exactly as asyncio's transport, in
every case they take or hand back to asyncio's code. Each stock-asyncio
program runs on stock asyncio's loop, compat's own loop and the loop of a
nursery.run, and all three must observe the same."""

from __future__ import annotations

import asyncio
from asyncio import selector_events
from typing import Any

from loop_io_support import run_way, same_three_ways

from nursery.compat._socket_transport import SocketTransport


class Sink(asyncio.Protocol):
    def __init__(self, loop: Any) -> None:
        self.data = bytearray()
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def _until(done: Any) -> None:
    """Wait (a few seconds at most: a broken path fails, not hangs) until
    done() is true."""
    async with asyncio.timeout(10):
        while not done():
            await asyncio.sleep(0.001)


async def _connected_pair(loop: Any, client: Any) -> tuple[Any, Any, Any]:
    """A server whose first connection's protocol is a Sink, and a client
    transport for *client*; returns (server, client transport, server sink)."""
    sinks: list = []
    server = await loop.create_server(lambda: sinks.append(Sink(loop)) or sinks[-1], "127.0.0.1", 0)
    transport, _ = await loop.create_connection(lambda: client, *server.sockets[0].getsockname())
    await _until(lambda: sinks)
    return server, transport, sinks[0]


async def _close(server: Any, transport: Any) -> None:
    transport.close()
    server.close()
    await server.wait_closed()


async def _transport_class() -> Any:
    loop = asyncio.get_running_loop()
    server, transport, _ = await _connected_pair(loop, Sink(loop))
    kinds = (
        type(transport) is SocketTransport,
        isinstance(transport, selector_events._SelectorSocketTransport),
        isinstance(transport, asyncio.Transport),
    )
    await _close(server, transport)
    return kinds


def test_compat_loop_makes_its_transport_a_subclass_of_asyncios() -> None:
    assert run_way("stock", _transport_class) == ("value", (False, True, True))
    for way in ("compat", "nursery"):
        assert run_way(way, _transport_class) == ("value", (True, True, True))


async def _writes_keep_their_order() -> Any:
    """Bytes that go out at once, a write too big for the socket (the rest
    queued), and writes of every bytes-like type behind it: the peer must get
    them all, in order."""
    loop = asyncio.get_running_loop()
    client = Sink(loop)
    server, transport, sink = await _connected_pair(loop, client)
    sink.transport.pause_reading()
    big = bytes(range(256)) * 16_384  # 4 MiB: more than loopback buffers hold
    pieces = [b"head", big, b"tail", bytearray(b"-bytearray"), memoryview(b"-memoryview"), b"", b"-end"]
    queued = []
    for piece in pieces:
        transport.write(piece)
        queued.append(transport.get_write_buffer_size() > 0)
    sink.transport.resume_reading()
    expected = b"".join(bytes(p) for p in pieces)
    await _until(lambda: len(sink.data) >= len(expected))
    await _close(server, transport)
    return bytes(sink.data) == expected, queued


def test_writes_keep_their_order_through_a_full_socket() -> None:
    assert same_three_ways(_writes_keep_their_order) == ("value", (True, [False, True, True, True, True, True, True]))


async def _write_misuse() -> Any:
    loop = asyncio.get_running_loop()
    errors = []
    server, transport, sink = await _connected_pair(loop, Sink(loop))
    for data in ("text", 42, None):
        try:
            transport.write(data)
        except TypeError as exc:
            errors.append(str(exc))
    transport.write_eof()
    try:
        transport.write(b"after eof")
    except RuntimeError as exc:
        errors.append(str(exc))
    await _close(server, transport)
    return errors


def test_write_misuse_raises_asyncios_errors() -> None:
    assert same_three_ways(_write_misuse) == (
        "value",
        [
            "data argument must be a bytes-like object, not 'str'",
            "data argument must be a bytes-like object, not 'int'",
            "data argument must be a bytes-like object, not 'NoneType'",
            "Cannot call write() after write_eof()",
        ],
    )


async def _write_after_connection_lost() -> Any:
    loop = asyncio.get_running_loop()
    client = Sink(loop)
    server, transport, sink = await _connected_pair(loop, client)
    transport.abort()
    await client.lost
    transport.write(b"dropped")  # asyncio drops it (and counts it), silently
    size = transport.get_write_buffer_size()
    await _close(server, transport)
    return size, bytes(sink.data)


def test_write_after_connection_lost_is_dropped() -> None:
    assert same_three_ways(_write_after_connection_lost) == ("value", (0, b""))


async def _data_received_raises() -> Any:
    loop = asyncio.get_running_loop()
    reported: list = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))

    class Failing(Sink):
        def data_received(self, data: bytes) -> None:
            raise ValueError(f"cannot take {data!r}")

    client = Failing(loop)
    server, transport, sink = await _connected_pair(loop, client)
    sink.transport.write(b"boom")
    async with asyncio.timeout(10):
        lost = await client.lost
    await _close(server, transport)
    loop.set_exception_handler(None)
    return (
        [(c["message"], type(c["exception"]).__name__, str(c["exception"])) for c in reported],
        type(lost).__name__,
        transport.is_closing(),
    )


def test_data_received_error_is_reported_and_closes_the_transport() -> None:
    assert same_three_ways(_data_received_raises) == (
        "value",
        (
            [("Fatal error: protocol.data_received() call failed.", "ValueError", "cannot take b'boom'")],
            "ValueError",
            True,
        ),
    )


async def _switch_to_buffered_protocol() -> Any:
    """set_protocol() on a live transport, from a plain Protocol to a
    BufferedProtocol (what start_tls does): later reads go to the new one."""
    loop = asyncio.get_running_loop()
    switched = loop.create_future()

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(64)
            self.got = bytearray()

        def get_buffer(self, sizehint: int) -> Any:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buffer[:nbytes]

        def connection_lost(self, exc: Any) -> None:
            pass

    buffered = Buffered()

    class Plain(Sink):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.transport.set_protocol(buffered)
            switched.set_result(None)

    client = Plain(loop)
    server, transport, sink = await _connected_pair(loop, client)
    sink.transport.write(b"first")
    async with asyncio.timeout(10):
        await switched
    sink.transport.write(b"second")
    await _until(lambda: len(buffered.got) >= len(b"second"))
    await _close(server, transport)
    return bytes(client.data), bytes(buffered.got)


def test_set_protocol_to_a_buffered_protocol_midstream() -> None:
    assert same_three_ways(_switch_to_buffered_protocol) == ("value", (b"first", b"second"))

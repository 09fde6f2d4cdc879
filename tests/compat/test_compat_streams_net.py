"""compat's streams over real loopback connections, against stock asyncio's.

Each scenario is ``async def scenario(aio)`` using ``aio``'s streams
(``aio`` is stock ``asyncio`` or ``nursery.compat``). The reference is stock
asyncio's streams on stock asyncio's loop; the scenario must give the same
result with compat's streams on stock asyncio's loop, on compat's loop and
inside ``nursery.run``, and with stock asyncio's streams on compat's loop.
Results include exception types, messages and errnos, what the loop's
exception handler was called with, and the bytes that arrived.

Reliability: a cancelled read() or drain() loses no data; a peer that resets
the connection gives asyncio's ConnectionResetError everywhere asyncio gives
it; 50 concurrent connections by default, 1,000 in the slow run; every test
is checked for leaked fds (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import socket
import ssl
import struct
import sys
import tempfile
import weakref
from typing import Any, Awaitable, Callable

import pytest

import nursery
from nursery import compat
from test_compat_streams_support import PY313, describe, new_loop

Scenario = Callable[[Any], Awaitable[Any]]

#: (where, whose streams): the runs compared with the reference.
COMBOS = [
    ("stock-loop", "compat"),
    ("compat-loop", "compat"),
    ("nursery.run", "compat"),
    ("compat-loop", "asyncio"),
]


combos = pytest.mark.parametrize(
    ("where", "impl"), [pytest.param(where, impl, id=f"{impl}-streams-on-{where}") for where, impl in COMBOS]
)


def run_scenario(where: str, impl: str, scenario: Scenario, *, timeout: float = 10.0) -> Any:
    aio = asyncio if impl == "asyncio" else compat

    async def main() -> Any:
        return await asyncio.wait_for(scenario(aio), timeout)

    if where == "nursery.run":
        return nursery.run(main)
    loop = new_loop(where)
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def same_as_stock(where: str, impl: str, scenario: Scenario) -> Any:
    """Run the scenario as asked and as the reference; they must agree."""
    expected = run_scenario("stock-loop", "asyncio", scenario)
    got = run_scenario(where, impl, scenario)
    assert got == expected
    return got


def record_handler_calls() -> list[str]:
    """Record the running loop's exception-handler calls as
    ``"message: ExceptionType"``."""
    calls: list[str] = []

    def handler(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = re.split(r"\(| <", context["message"])[0]
        calls.append(f"{message}: {type(exc).__name__ if exc else None}")

    asyncio.get_running_loop().set_exception_handler(handler)
    return calls


async def serve(aio: Any, handler: Any, **kwds: Any) -> tuple[Any, int]:
    server = await aio.start_server(handler, "127.0.0.1", 0, **kwds)
    return server, server.sockets[0].getsockname()[1]


async def close_server(server: Any) -> None:
    server.close()
    await server.wait_closed()


# ----------------------------------------------------------------------
# the basics


@combos
def test_echo_lines_and_eof(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        seen: list[Any] = []

        async def handler(reader: Any, writer: Any) -> None:
            seen.append(writer.get_extra_info("peername")[0])
            async for line in reader:
                writer.write(line.upper())
                await writer.drain()
            seen.append(("server at eof", reader.at_eof(), writer.can_write_eof()))
            writer.write(b"bye\n")
            writer.close()
            await writer.wait_closed()

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        out = [writer.get_extra_info("sockname")[0], writer.get_extra_info("peername") == ("127.0.0.1", port)]
        writer.write(b"hello\n")
        writer.writelines([b"wor", b"ld\n", b"a\nb\n"])
        await writer.drain()
        out += [await reader.readline() for _ in range(4)]
        out.append(writer.can_write_eof())
        writer.write_eof()
        out.append(await reader.read())
        out.append((reader.at_eof(), writer.is_closing()))
        writer.close()
        out.append(writer.is_closing())
        await writer.wait_closed()
        await close_server(server)
        return out, seen

    out, seen = same_as_stock(where, impl, scenario)
    assert out == [
        "127.0.0.1",
        True,
        b"HELLO\n",
        b"WORLD\n",
        b"A\n",
        b"B\n",
        True,
        b"bye\n",
        (True, False),
        True,
    ]
    assert seen == ["127.0.0.1", ("server at eof", True, True)]


@combos
def test_read_patterns_over_the_wire(where: str, impl: str) -> None:
    # readexactly, readuntil and the limit across chunks as TCP delivers
    # them (the sender writes in small pieces with pauses in between).
    async def scenario(aio: Any) -> Any:
        async def handler(reader: Any, writer: Any) -> None:
            for piece in (b"HEAD", b"ER:12", b"34|body", b"-one;", b"x" * 40, b";tail"):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.005)
            writer.close()

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port, limit=16)
        out: list[Any] = [await reader.readexactly(6), await reader.readuntil(b"|"), await reader.readuntil(b";")]
        try:
            await reader.readuntil(b";")
        except asyncio.LimitOverrunError as exc:
            out.append(describe(exc))
        out.append(await reader.readexactly(41))
        try:
            await reader.readuntil(b"!")
        except asyncio.IncompleteReadError as exc:
            out.append(describe(exc))
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return out

    out = same_as_stock(where, impl, scenario)
    assert out[:3] == [b"HEADER", b":1234|", b"body-one;"]
    assert out[3][0] == "LimitOverrunError"
    assert out[4] == b"x" * 40 + b";"
    assert out[5] == (
        "IncompleteReadError",
        "4 bytes read on a total of undefined expected bytes",
        ("4 bytes read on a total of undefined expected bytes",),
        {"partial": b"tail", "expected": None},
    )


@combos
def test_connection_refused(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: refused
            try:
                await aio.open_connection("127.0.0.1", port)
            except OSError as exc:
                return describe(exc)[0], describe(exc)[1].replace(str(port), "PORT"), exc.errno

    assert same_as_stock(where, impl, scenario) == (
        "ConnectionRefusedError",
        "[Errno 111] Connect call failed ('127.0.0.1', PORT)",
        111,
    )


@combos
def test_unix_sockets(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sock")

            async def handler(reader: Any, writer: Any) -> None:
                writer.write(b"got " + await reader.readexactly(5))
                await writer.drain()
                writer.close()
                await writer.wait_closed()

            server = await aio.start_unix_server(handler, path)
            reader, writer = await aio.open_unix_connection(path)
            writer.write(b"12345")
            out = [await reader.read(), writer.get_extra_info("peername") == path]
            writer.close()
            await writer.wait_closed()
            await close_server(server)
            return out

    assert same_as_stock(where, impl, scenario) == [b"got 12345", True]


@combos
def test_drain_after_close_is_connection_lost(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        server_writers: list[Any] = []
        server, port = await serve(aio, lambda r, w: server_writers.append(w))
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.close()
        out = []
        try:
            await writer.drain()
        except ConnectionResetError as exc:
            out.append(describe(exc))
        await writer.wait_closed()
        for w in server_writers:
            w.close()
        await close_server(server)
        return out

    assert same_as_stock(where, impl, scenario) == [
        ("ConnectionResetError", "Connection lost", ("Connection lost",), {"errno": None})
    ]


# ----------------------------------------------------------------------
# reliability: cancellation loses nothing, resets are reported


@combos
def test_cancelled_read_loses_no_data(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        go_on = asyncio.Event()

        async def handler(reader: Any, writer: Any) -> None:
            writer.write(b"first-half|")
            await writer.drain()
            await go_on.wait()
            writer.write(b"second-half")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        out = []
        # A read waiting for more than has arrived, cancelled: what arrived
        # stays buffered.
        task = asyncio.ensure_future(reader.readexactly(1000))
        while len(reader._buffer) < len(b"first-half|"):
            await asyncio.sleep(0.001)
        task.cancel()
        out.append(await asyncio.gather(task, return_exceptions=True))
        # A read cancelled while waiting with nothing buffered.
        out.append(await reader.readuntil(b"|"))
        task = asyncio.ensure_future(reader.read(100))
        await asyncio.sleep(0.01)
        task.cancel()
        out.append(await asyncio.gather(task, return_exceptions=True))
        go_on.set()
        out.append(await reader.read())
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        # (A cancelled task's CancelledError is CancelledError() or
        # CancelledError('') depending on whether it was waiting or about to
        # run when cancelled, a race with the network in every combination.)
        return [[type(e).__name__ for e in x] if isinstance(x, list) else x for x in out]

    assert same_as_stock(where, impl, scenario) == [
        ["CancelledError"],
        b"first-half|",
        ["CancelledError"],
        b"second-half",
    ]


@combos
def test_cancelled_drain_loses_no_data(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        start_reading = asyncio.Event()
        received = bytearray()

        async def handler(reader: Any, writer: Any) -> None:
            await start_reading.wait()
            received.extend(await reader.read())
            writer.close()
            await writer.wait_closed()

        server, port = await serve(aio, handler, limit=2**16)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.transport.set_write_buffer_limits(high=2**16)
        sent = 0
        block = bytes(range(256)) * 256  # 64 KiB
        # Write until the transport pauses us (the server does not read):
        # drain() then waits; cancel it several times.
        cancelled = 0
        while cancelled < 3:
            writer.write(block)
            sent += len(block)
            task = asyncio.ensure_future(writer.drain())
            await asyncio.sleep(0.01)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                cancelled += 1
        start_reading.set()
        await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return sent == len(received), received == block * (sent // len(block)), cancelled

    assert same_as_stock(where, impl, scenario) == (True, True, 3)


def _reset(writer: Any) -> None:
    # Close with an RST instead of a FIN.
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@combos
def test_peer_reset_while_reading(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        calls = record_handler_calls()

        async def handler(reader: Any, writer: Any) -> None:
            await reader.readexactly(4)
            _reset(writer)

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        waiting = asyncio.ensure_future(reader.read(100))
        writer.write(b"ping")
        out: list[Any] = []
        for awaitable in (waiting, reader.readline(), writer.drain(), writer.wait_closed()):
            try:
                out.append(("value", await awaitable))
            except ConnectionResetError as exc:
                out.append(describe(exc))
        out.append(type(reader.exception()).__name__)
        out.append(writer.is_closing())
        await close_server(server)
        return out, calls

    out, calls = same_as_stock(where, impl, scenario)
    reset = ("ConnectionResetError", "[Errno 104] Connection reset by peer", (104, "Connection reset by peer"), {"errno": 104})
    assert out == [reset, reset, reset, reset, "ConnectionResetError", True]
    assert calls == []


@combos
def test_peer_reset_while_writing(where: str, impl: str) -> None:
    # A writer that keeps writing to a peer that reset gets
    # ConnectionResetError from drain() (the reader's exception first).
    async def scenario(aio: Any) -> Any:
        async def handler(reader: Any, writer: Any) -> None:
            await reader.readexactly(1)
            _reset(writer)

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        error = None
        for _ in range(1000):
            try:
                writer.write(b"data" * 1024)
                await writer.drain()
            except ConnectionResetError as exc:
                error = describe(exc)
                break
            await asyncio.sleep(0.001)
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionResetError:
            pass
        await close_server(server)
        return error

    error = same_as_stock(where, impl, scenario)
    assert error is not None and error[0] == "ConnectionResetError"


# ----------------------------------------------------------------------
# the server side


@combos
def test_handler_exception_is_reported_and_closes(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        calls = record_handler_calls()

        async def handler(reader: Any, writer: Any) -> None:
            await reader.readline()
            raise KeyError("handler failed")

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.write(b"go\n")
        out = [await reader.read()]
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return out, calls

    assert same_as_stock(where, impl, scenario) == ([b""], ["Unhandled exception in client_connected_cb: KeyError"])


@combos
def test_plain_function_handler(where: str, impl: str) -> None:
    async def scenario(aio: Any) -> Any:
        writers: list[Any] = []

        def handler(reader: Any, writer: Any) -> None:
            writer.write(b"sync handler\n")
            writers.append(writer)

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        line = await reader.readline()
        for w in writers + [writer]:
            w.close()
            await w.wait_closed()
        await close_server(server)
        return line

    assert same_as_stock(where, impl, scenario) == b"sync handler\n"


@combos
def test_cancelled_handler(where: str, impl: str) -> None:
    # 3.13: the connection is closed; before: the done-callback fails (the
    # loop reports it) and the connection stays open until closed.
    async def scenario(aio: Any) -> Any:
        calls = record_handler_calls()
        tasks: list[Any] = []
        writers: list[Any] = []

        async def handler(reader: Any, writer: Any) -> None:
            tasks.append(asyncio.current_task())
            writers.append(writer)
            await asyncio.sleep(3600)

        server, port = await serve(aio, handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        while not tasks:
            await asyncio.sleep(0.001)
        tasks[0].cancel()
        try:
            got = await asyncio.wait_for(reader.read(), 0.3)
        except TimeoutError:
            got = "still open"
        for w in writers + [writer]:
            w.close()
            await w.wait_closed()
        await close_server(server)
        return got, calls

    got, calls = same_as_stock(where, impl, scenario)
    if PY313:
        assert (got, calls) == (b"", [])
    else:
        assert got == "still open"
        assert calls == ["Exception in callback StreamReaderProtocol.connection_made.<locals>.callback: CancelledError"]


@combos
def test_dropped_server_writer(where: str, impl: str) -> None:
    # A handler that returns without closing its writer: 3.13 closes the
    # transport when the writer is collected, with a ResourceWarning;
    # before 3.13 the protocol keeps the writer and the connection stays.
    async def scenario(aio: Any) -> Any:
        import warnings

        writers: list[Any] = []

        async def handler(reader: Any, writer: Any) -> None:
            writer.write(b"hi")
            writers.append(weakref.ref(writer))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            server, port = await serve(aio, handler)
            reader, writer = await aio.open_connection("127.0.0.1", port)
            first = await reader.readexactly(2)
            for _ in range(5):
                gc.collect()
                await asyncio.sleep(0.01)
            try:
                rest = await asyncio.wait_for(reader.read(), 0.2)
            except TimeoutError:
                rest = "still open"
            writer.close()
            await writer.wait_closed()
            for ref in writers:
                server_writer = ref()
                if server_writer is not None:
                    server_writer.close()
                del server_writer
            await close_server(server)
            gc.collect()
        unclosed = [str(w.message).split(" transport=")[0] for w in caught if "StreamWriter" in str(w.message)]
        return first, rest, unclosed

    first, rest, unclosed = same_as_stock(where, impl, scenario)
    assert first == b"hi"
    if PY313:
        assert (rest, unclosed) == (b"", ["unclosed <StreamWriter"])
    else:
        assert rest == "still open"


# ----------------------------------------------------------------------
# TLS


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@combos
def test_tls_connection_and_start_tls(where: str, impl: str, tls_contexts: Any) -> None:
    server_ctx, client_ctx = tls_contexts

    async def scenario(aio: Any) -> Any:
        async def tls_handler(reader: Any, writer: Any) -> None:
            writer.write(b"secure " + await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        async def starttls_handler(reader: Any, writer: Any) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"go ahead\n")
            await writer.start_tls(server_ctx)
            writer.write(b"upgraded " + await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        out: list[Any] = []
        server, port = await serve(aio, tls_handler, ssl=server_ctx)
        reader, writer = await aio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"hello\n")
        out.append(await reader.readline())
        out.append(writer.get_extra_info("ssl_object") is not None)
        writer.close()
        await writer.wait_closed()
        await close_server(server)

        server, port = await serve(aio, starttls_handler)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        plain = writer.transport
        writer.write(b"STARTTLS\n")
        out.append(await reader.readline())
        await writer.start_tls(client_ctx, server_hostname="localhost")
        out.append((writer.transport is not plain, writer.get_extra_info("ssl_object") is not None))
        writer.write(b"world\n")
        out.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return out

    assert same_as_stock(where, impl, scenario) == [
        b"secure hello\n",
        True,
        b"go ahead\n",
        (True, True),
        b"upgraded world\n",
    ]


# ----------------------------------------------------------------------
# many connections


async def _many(aio: Any, clients: int, rounds: int) -> Any:
    async def handler(reader: Any, writer: Any) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await aio.start_server(handler, "127.0.0.1", 0, backlog=clients)
    port = server.sockets[0].getsockname()[1]

    connected = 0
    all_connected = asyncio.Event()

    async def client(i: int) -> bool:
        nonlocal connected
        reader, writer = await aio.open_connection("127.0.0.1", port)
        # Every connection is open at once before any talks.
        connected += 1
        if connected == clients:
            all_connected.set()
        await all_connected.wait()
        ok = True
        for n in range(rounds):
            message = f"client {i} message {n}\n".encode()
            writer.write(message)
            await writer.drain()
            ok &= await reader.readline() == message
        writer.write_eof()
        ok &= await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        return ok

    results = await asyncio.gather(*(client(i) for i in range(clients)))
    await close_server(server)
    return sum(results)


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@combos
def test_50_concurrent_connections(where: str, impl: str) -> None:
    before = _fd_count()
    assert run_scenario(where, impl, lambda aio: _many(aio, 50, 20)) == 50
    assert _fd_count() == before


@pytest.mark.slow
@combos
def test_1000_concurrent_connections(where: str, impl: str) -> None:
    before = _fd_count()
    assert run_scenario(where, impl, lambda aio: _many(aio, 1000, 10), timeout=120) == 1000
    assert _fd_count() == before


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_fd_count_helper_sees_sockets() -> None:
    before = _fd_count()
    with socket.socket():
        assert _fd_count() == before + 1


# ----------------------------------------------------------------------
# nursery scopes around compat's streams


def test_scope_cancelled_read_and_drain_lose_nothing() -> None:
    # Inside nursery.run a nursery cancel scope (level-triggered, not
    # Task.cancel) interrupts a read and a drain: what arrived stays
    # buffered, what was written is still sent.
    async def main() -> Any:
        received = bytearray()
        start_reading = compat.Event()

        async def handler(reader: Any, writer: Any) -> None:
            writer.write(b"partial")
            await writer.drain()
            await start_reading.wait()
            received.extend(await reader.read())
            writer.write(b"-rest")
            writer.close()
            await writer.wait_closed()

        server = await compat.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await compat.open_connection("127.0.0.1", port)
        with nursery.move_on_after(0.2) as read_scope:
            await reader.readexactly(100)
        writer.transport.set_write_buffer_limits(high=2**16)
        block = b"z" * 2**16
        sent = 0
        with nursery.move_on_after(0.2) as drain_scope:
            while True:
                writer.write(block)
                sent += len(block)
                await writer.drain()
        start_reading.set()
        writer.write_eof()
        rest = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return read_scope.cancelled_caught, drain_scope.cancelled_caught, rest, len(received) == sent

    assert nursery.run(main) == (True, True, b"partial-rest", True)


@combos
def test_dropped_client_writer(where: str, impl: str) -> None:
    # An open writer that is garbage collected closes its transport and
    # says so with a ResourceWarning (where the running version's stock
    # writer does: 3.11.7+, 3.12.1+, 3.13).
    async def scenario(aio: Any) -> Any:
        import warnings

        eof = asyncio.Event()
        server_writers: list[Any] = []

        async def handler(reader: Any, writer: Any) -> None:
            server_writers.append(writer)
            await reader.read()
            eof.set()

        server, port = await serve(aio, handler)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            reader, writer = await aio.open_connection("127.0.0.1", port)
            del writer
            gc.collect()
        await asyncio.wait_for(eof.wait(), 5)
        for w in server_writers:
            w.close()
        await close_server(server)
        return sorted(str(w.message).split(" transport=")[0] for w in caught)

    expected = ["unclosed <StreamWriter"] if hasattr(asyncio.StreamWriter, "__del__") else []
    assert same_as_stock(where, impl, scenario) == expected


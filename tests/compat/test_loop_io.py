"""compat's event loop does asyncio's I/O: fd callbacks, the sock_* methods,
name resolution and streams, on its own loop, on the loop of a nursery.run
and on a MockClock; stock asyncio code, compared with stock asyncio's loop."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

import pytest

import nursery
from nursery import compat, lowlevel
from nursery.testing import MockClock

from loop_io_support import WAYS, run_way, same_three_ways


def test_loop_is_a_selector_event_loop() -> None:
    loop = compat.new_event_loop()
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        # No selector, no self-pipe of its own: the kernel polls.
        assert loop._ssock is None and loop._csock is None
        with pytest.raises(NotImplementedError, match=r"use loop\.add_reader\(\)"):
            loop._selector.select(0)
    finally:
        loop.close()


def test_loop_makes_no_fds_of_its_own() -> None:
    # The kernel run's poller and wake-up channel, nothing more.
    before = len(os.listdir("/proc/self/fd"))
    loop = compat.new_event_loop()
    try:
        assert len(os.listdir("/proc/self/fd")) - before <= 3
    finally:
        loop.close()
    assert len(os.listdir("/proc/self/fd")) == before


# ----------------------------------------------------------------------
# add_reader & co.


async def _fd_callbacks() -> Any:
    log: list = []
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        got = asyncio.Event()

        def on_readable(tag: str) -> None:
            log.append((tag, a.recv(100)))
            got.set()

        assert loop.remove_reader(a.fileno()) is False
        loop.add_reader(a.fileno(), on_readable, "first")
        # A second reader replaces the first.
        loop.add_reader(a, on_readable, "second")
        b.send(b"ping")
        await got.wait()
        got.clear()
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False

        written = asyncio.Event()

        def on_writable() -> None:
            log.append("writable")
            assert loop.remove_writer(a.fileno()) is True
            written.set()

        loop.add_writer(a.fileno(), on_writable)
        await written.wait()
        assert loop.remove_writer(a.fileno()) is False
        # Removed: data arriving now calls nothing.
        b.send(b"late")
        await asyncio.sleep(0.01)
        log.append(a.recv(100))
        for bad in (-1, "x", object()):
            try:
                loop.add_reader(bad, on_readable, "bad")
            except ValueError as exc:
                log.append(str(exc).split(":")[0])
    finally:
        a.close()
        b.close()
    return log


def test_add_reader_writer_like_stock() -> None:
    outcome = same_three_ways(_fd_callbacks)
    assert outcome == (
        "value",
        [
            ("second", b"ping"),
            "writable",
            b"late",
            "Invalid file descriptor",
            "Invalid file object",
            "Invalid file object",
        ],
    )


async def _reader_on_transport_fd() -> Any:
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    fd = writer.get_extra_info("socket").fileno()
    errors = []
    for method in (loop.add_reader, loop.add_writer):
        try:
            method(fd, print)
        except RuntimeError as exc:
            errors.append(str(exc).split(" is used by transport")[0] == f"File descriptor {fd}")
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return errors


def test_add_reader_refuses_a_transports_fd() -> None:
    assert same_three_ways(_reader_on_transport_fd) == ("value", [True, True])


def test_add_reader_on_fd_a_nursery_task_waits_on() -> None:
    # The kernel gives one fd and direction to a task or a callback.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:
            async with nursery.open_nursery() as n:
                n.start_soon(lowlevel.wait_readable, a)
                await nursery.testing.wait_all_tasks_blocked()
                with pytest.raises(nursery.BusyResourceError, match="a callback cannot also watch it"):
                    loop.add_reader(a.fileno(), print)
                # The other direction is free.
                done = asyncio.Event()
                loop.add_writer(a.fileno(), done.set)
                await done.wait()
                loop.remove_writer(a.fileno())
                b.send(b"x")
        finally:
            a.close()
            b.close()

    nursery.run(main)


def test_reader_callback_exception_goes_to_exception_handler() -> None:
    async def main() -> list:
        loop = asyncio.get_running_loop()
        seen: list = []
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        a, b = socket.socketpair()
        try:
            def boom() -> None:
                loop.remove_reader(a.fileno())
                raise ZeroDivisionError("in reader")

            loop.add_reader(a.fileno(), boom)
            b.send(b"x")
            await asyncio.sleep(0.01)
        finally:
            a.close()
            b.close()
        return [(c["message"].split(" ")[:3], repr(c["exception"])) for c in seen]

    expected = ("value", [(["Exception", "in", "callback"], "ZeroDivisionError('in reader')")])
    assert run_way("stock", main) == expected
    assert run_way("compat", main) == expected


def test_call_soon_threadsafe_wakes_loop_waiting_on_io() -> None:
    # The loop sleeps in the kernel's poll (a reader registered, nothing
    # ready); another thread's call_soon_threadsafe must end that sleep.
    async def main() -> str:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:
            loop.add_reader(a.fileno(), print)
            fut = loop.create_future()
            threading.Timer(0.05, loop.call_soon_threadsafe, (fut.set_result, "woken")).start()
            return await asyncio.wait_for(fut, 5)
        finally:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()

    for way in WAYS:
        assert run_way(way, main) == ("value", "woken")


# ----------------------------------------------------------------------
# sock_* methods


async def _sock_methods() -> Any:
    loop = asyncio.get_running_loop()
    log: list = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    client = socket.socket()
    client.setblocking(False)
    try:
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, address = await accept
        log.append(address == client.getsockname())
        try:
            # More than the socket buffers hold: sock_sendall must wait for
            # the reader.
            payload = os.urandom(4 * 1024 * 1024)
            sending = asyncio.ensure_future(loop.sock_sendall(client, payload))
            got = bytearray()
            buf = bytearray(65536)
            while len(got) < len(payload):
                if len(got) % 2:
                    got += await loop.sock_recv(conn, 65536)
                else:
                    n = await loop.sock_recv_into(conn, buf)
                    got += buf[:n]
            log.append(await sending)
            log.append(bytes(got) == payload)
            # A recv waiting when the peer closes gets b"".
            recv = asyncio.ensure_future(loop.sock_recv(conn, 10))
            await asyncio.sleep(0)
            client.close()
            log.append(await recv)
        finally:
            conn.close()
        # sock_connect to a closed port.
        refused = socket.socket()
        refused.setblocking(False)
        port = listener.getsockname()[1]
        listener.close()
        try:
            await loop.sock_connect(refused, ("127.0.0.1", port))
        except ConnectionRefusedError as exc:
            log.append(type(exc).__name__)
        finally:
            refused.close()
    finally:
        listener.close()
        client.close()
    return log


def test_sock_tcp_methods() -> None:
    assert same_three_ways(_sock_methods) == ("value", [True, None, True, b"", "ConnectionRefusedError"])


async def _sock_udp() -> Any:
    loop = asyncio.get_running_loop()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    try:
        log: list = []
        # The receiver waits first: the datagram arrives while it waits.
        receiving = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await asyncio.sleep(0)
        log.append(await loop.sock_sendto(a, b"one", b.getsockname()))
        data, addr = await receiving
        log.append((data, addr == a.getsockname()))
        buf = bytearray(10)
        receiving = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf, 2))
        await asyncio.sleep(0)
        await loop.sock_sendto(a, b"two", b.getsockname())
        n, addr = await receiving
        log.append((n, bytes(buf[:n]), addr == a.getsockname()))
        return log
    finally:
        a.close()
        b.close()


def test_sock_udp_methods() -> None:
    assert same_three_ways(_sock_udp) == ("value", [3, (b"one", True), (2, b"tw", True)])


async def _sock_sendfile(path: str) -> Any:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        with open(path, "rb") as f:
            sending = asyncio.ensure_future(loop.sock_sendfile(a, f, 10, 200_000))
            got = bytearray()
            while len(got) < 200_000:
                got += await loop.sock_recv(b, 65536)
            sent = await sending
            return sent, bytes(got) == open(path, "rb").read()[10:200_010], f.tell()
    finally:
        a.close()
        b.close()


def test_sock_sendfile(tmp_path: Any) -> None:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(300_000))
    assert same_three_ways(_sock_sendfile, str(path)) == ("value", (200_000, True, 200_010))


def test_cancelled_sock_recv_leaves_no_reader_and_loses_nothing() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            recv = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            recv.cancel()
            try:
                await recv
            except asyncio.CancelledError:
                pass
            b.send(b"kept")
            # The data is still there for the next receive.
            return await loop.sock_recv(a, 10), loop.remove_reader(a.fileno())
        finally:
            a.close()
            b.close()

    assert same_three_ways(main) == ("value", (b"kept", False))


# ----------------------------------------------------------------------
# name resolution


async def _resolve() -> Any:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    name = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    try:
        await loop.getaddrinfo("no-such-host.invalid", 80)
    except socket.gaierror as exc:
        error = type(exc).__name__
    return infos, name, error


def test_getaddrinfo_getnameinfo() -> None:
    outcome = same_three_ways(_resolve)
    assert outcome[1][1] == ("127.0.0.1", "80")
    assert outcome[1][2] == "gaierror"


# ----------------------------------------------------------------------
# streams, the three ways


async def _echo_streams(n_clients: int, rounds: int) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()

    async def client(i: int) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        total = 0
        for r in range(rounds):
            message = f"{i}:{r}:".encode() * 50
            writer.write(message)
            await writer.drain()
            got = await reader.readexactly(len(message))
            assert got == message
            total += len(got)
        writer.close()
        await writer.wait_closed()
        return total

    async with server:
        totals = await asyncio.gather(*(client(i) for i in range(n_clients)))
    return totals


def test_streams_echo_three_ways() -> None:
    outcome = same_three_ways(_echo_streams, 10, 20)
    assert outcome[0] == "value"
    assert len(outcome[1]) == 10


def test_open_connection_inside_nursery_run_mixed_with_nursery_tasks() -> None:
    # Stock asyncio streams and nursery sockets in one run.
    async def main() -> Any:
        async def handle(reader: Any, writer: Any) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with nursery.open_nursery() as n:
            results: list = []

            async def nursery_client() -> None:
                stream = await nursery.open_tcp_stream("127.0.0.1", port)
                await stream.send_all(b"from nursery\n")
                results.append(await stream.receive_some(100))
                await stream.aclose()

            n.start_soon(nursery_client)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"from asyncio\n")
            results.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return sorted(results)

    assert nursery.run(main) == [b"FROM ASYNCIO\n", b"FROM NURSERY\n"]


def test_timeouts_on_virtual_time_with_real_sockets() -> None:
    # A MockClock loop: an hour-long read timeout passes at once (autojump)
    # while data on a real socket still arrives.
    async def main() -> Any:
        loop = asyncio.get_running_loop()

        async def handle(reader: Any, writer: Any) -> None:
            await reader.read()  # until the client closes
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        start = loop.time()
        try:
            await asyncio.wait_for(reader.read(10), 3600)
        except TimeoutError:
            waited = loop.time() - start
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return waited

    import time

    real = time.monotonic()
    with asyncio.Runner(loop_factory=lambda: compat.new_event_loop(clock=MockClock(autojump_threshold=0))) as runner:
        waited = runner.run(main())
    assert waited == pytest.approx(3600)
    assert time.monotonic() - real < 5


def test_asyncio_run_with_loop_factory_serves() -> None:
    import sys

    if sys.version_info < (3, 12):
        pytest.skip("asyncio.run(loop_factory=) is 3.12+")
    totals = asyncio.run(_echo_streams(3, 5), loop_factory=compat.new_event_loop)
    assert len(totals) == 3


def test_call_soon_threadsafe_keeps_order_with_call_soon() -> None:
    # A callback scheduled from another thread before a call_soon in the
    # loop's thread runs first, as on stock asyncio.
    async def main() -> list:
        loop = asyncio.get_running_loop()
        results: list = []
        thread = threading.Thread(target=loop.call_soon_threadsafe, args=(results.append, "hello"))
        thread.start()
        thread.join()
        loop.call_soon(results.append, "world")
        loop.call_soon_threadsafe(results.append, "again")
        await asyncio.sleep(0.01)
        return results

    assert same_three_ways(main) == ("value", ["hello", "world", "again"])


def test_nursery_scope_cancels_sock_recv_and_reader_goes() -> None:
    # A cancel scope around loop.sock_recv in a plain nursery task: the
    # wait ends, the loop's reader is removed, and data sent later is kept.
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            with nursery.move_on_after(0.01) as scope:
                await loop.sock_recv(a, 10)
            stats = lowlevel.current_statistics().io_statistics
            b.send(b"kept")
            return scope.cancelled_caught, stats["reader_callbacks"], await loop.sock_recv(a, 10)
        finally:
            a.close()
            b.close()

    assert nursery.run(main) == (True, 0, b"kept")


def test_selector_view_and_transport_repr() -> None:
    # asyncio's transports ask loop._selector whether they are polling (in
    # their repr); compat's view answers from the kernel's fd callbacks.
    async def main() -> Any:
        import re
        import selectors

        loop = asyncio.get_running_loop()

        handled = loop.create_future()

        async def handle(reader: Any, writer: Any) -> None:
            await reader.read()
            writer.close()
            await writer.wait_closed()
            handled.set_result(None)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        transport = writer.transport
        fd = transport.get_extra_info("socket").fileno()
        key = loop._selector.get_key(fd)
        observed = [
            key.events == selectors.EVENT_READ,
            key.data[0] is not None and key.data[1] is None,
            fd in loop._selector.get_map(),
            re.sub(r"fd=\d+|0x[0-9a-f]+", "", repr(transport)).split(" ", 1)[1],
        ]
        transport.pause_reading()
        observed.append(re.search(r"read=\w+", repr(transport)).group())
        try:
            loop._selector.get_key(fd)
        except KeyError:
            observed.append("not watched")
        writer.close()
        await writer.wait_closed()
        await handled
        server.close()
        await server.wait_closed()
        return observed

    assert same_three_ways(main) == (
        "value",
        [True, True, True, " read=polling write=<idle, bufsize=0>>", "read=idle", "not watched"],
    )

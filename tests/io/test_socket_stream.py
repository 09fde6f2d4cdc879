"""SocketStream and SocketListener: nursery's streams over sockets."""

from __future__ import annotations

import array
import errno
import hashlib
import os
import socket as stdlib_socket
import struct
from typing import Any

import pytest

import nursery
import nursery.socket as nsocket
from nursery import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    SocketListener,
    SocketStream,
)
from nursery.testing import (
    assert_checkpoints,
    check_half_closeable_stream,
    check_one_way_stream,
    wait_all_tasks_blocked,
)


async def stream_pair() -> tuple[SocketStream, SocketStream]:
    a, b = nsocket.socketpair()
    return SocketStream(a), SocketStream(b)


def fill_send_buffer(stream: SocketStream) -> int:
    """Write into the stream's socket until it would block; return the count."""
    sent = 0
    sock = stream.socket._sock
    try:
        while True:
            sent += sock.send(b"\0" * 65536)
    except BlockingIOError:
        return sent


async def clogged_stream_pair() -> tuple[SocketStream, SocketStream]:
    """A pair whose first stream cannot send until the second receives."""
    a, b = await stream_pair()
    fill_send_buffer(a)
    return a, b


async def test_socket_stream_passes_check_half_closeable_stream() -> None:
    # The clogged properties are checked one way only (below): a pair clogged
    # in both directions leaves unread data in the sender's receive buffer,
    # and closing a socket with unread data resets the connection (the
    # peer's receive_some then raises BrokenResourceError instead of seeing
    # the end of the stream), as the OS means it to.
    await check_half_closeable_stream(stream_pair, None)


async def test_socket_stream_passes_check_one_way_stream_clogged() -> None:
    await check_one_way_stream(stream_pair, clogged_stream_pair)


async def tcp_stream_pair() -> tuple[SocketStream, SocketStream]:
    """Client and server streams of one loopback TCP connection."""
    listen_sock = nsocket.socket()
    await listen_sock.bind(("127.0.0.1", 0))
    listen_sock.listen()
    async with SocketListener(listen_sock) as listener:
        client_sock = nsocket.socket()
        await client_sock.connect(listen_sock.getsockname())
        server = await listener.accept()
    return SocketStream(client_sock), server


# --------------------------------------------------------------------------
# construction


async def test_socket_stream_needs_a_nursery_stream_socket() -> None:
    raw = stdlib_socket.socket()
    try:
        with pytest.raises(TypeError) as info:
            SocketStream(raw)  # type: ignore[arg-type]
        assert str(info.value).startswith("SocketStream needs a nursery.socket.SocketType, got <socket.socket")
        assert str(info.value).endswith("(wrap a stdlib socket with nursery.socket.from_stdlib_socket())")
    finally:
        raw.close()
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError) as info:
            SocketStream(udp)
        assert str(info.value) == f"SocketStream needs a SOCK_STREAM socket, got {udp!r}"


async def test_tcp_streams_turn_nagle_off_and_limit_unsent_data() -> None:
    client, server = await tcp_stream_pair()
    async with client, server:
        assert client.getsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NODELAY)
        assert server.getsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NODELAY)
        if hasattr(nsocket, "TCP_NOTSENT_LOWAT"):
            assert client.getsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NOTSENT_LOWAT) == 16384
        client.setsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NODELAY, False)
        assert not client.getsockopt(nsocket.IPPROTO_TCP, nsocket.TCP_NODELAY)
        assert len(client.getsockopt(nsocket.SOL_SOCKET, nsocket.SO_LINGER, 8)) == 8


async def test_socket_stream_repr_and_socket_attribute() -> None:
    a, b = await stream_pair()
    async with a, b:
        assert isinstance(a.socket, nsocket.SocketType)
        assert repr(a) == f"<nursery.SocketStream {a.socket!r}>"


# --------------------------------------------------------------------------
# data


async def test_tcp_round_trip_both_ways() -> None:
    client, server = await tcp_stream_pair()
    async with client, server:
        await client.send_all(b"hello")
        assert await server.receive_some() == b"hello"
        await server.send_all(bytearray(b"world"))
        assert await client.receive_some(3) == b"wor"
        assert await client.receive_some(3) == b"ld"
        await client.send_all(memoryview(b"0123456789")[2:5])
        assert await server.receive_some() == b"234"


async def test_send_all_accepts_multi_dimensional_buffers() -> None:
    a, b = await stream_pair()
    async with a, b:
        numbers = array.array("i", [1, 2, 3])
        await a.send_all(numbers)
        assert await b.receive_some() == numbers.tobytes()
        await a.send_all(memoryview(bytes(range(6))).cast("B", (2, 3)))
        assert await b.receive_some() == bytes(range(6))


async def test_send_eof_half_closes() -> None:
    client, server = await tcp_stream_pair()
    async with client, server:
        await client.send_all(b"request")
        with assert_checkpoints():
            await client.send_eof()
        await client.send_eof()  # again: nothing happens
        assert client.socket.did_shutdown_SHUT_WR
        assert await server.receive_some() == b"request"
        assert await server.receive_some() == b""
        with pytest.raises(ClosedResourceError) as info:
            await client.send_all(b"more")
        assert str(info.value) == "send_all() after send_eof() on this SocketStream"
        # The other direction still works.
        await server.send_all(b"response")
        assert await client.receive_some() == b"response"


async def test_receive_some_argument_checks() -> None:
    a, b = await stream_pair()
    async with a, b:
        with pytest.raises(ValueError) as info:
            await b.receive_some(0)
        assert str(info.value) == "receive_some() max_bytes must be at least 1, got 0"
        with pytest.raises(ValueError) as info:
            await b.receive_some(-5)
        assert str(info.value) == "receive_some() max_bytes must be at least 1, got -5"
        with pytest.raises(TypeError) as info:
            await b.receive_some("10")  # type: ignore[arg-type]
        assert str(info.value) == "receive_some() needs max_bytes to be an int or None, got '10'"
        await a.send_all(b"abc")
        assert await b.receive_some(numpy_like_int(2)) == b"ab"


class numpy_like_int:
    """An integer type that is not int (like numpy.int64)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


async def test_send_all_rejects_text_with_a_clear_message() -> None:
    a, b = await stream_pair()
    async with a, b:
        with pytest.raises(TypeError) as info:
            await a.send_all("text")  # type: ignore[arg-type]
        assert str(info.value) == (
            "send_all() needs a bytes-like object (bytes, bytearray, memoryview), got str; "
            "encode text first, e.g. data.encode()"
        )
        with pytest.raises(TypeError) as info:
            await a.send_all(12)  # type: ignore[arg-type]
        assert "got int" in str(info.value)
        # The stream is still usable.
        await a.send_all(b"ok")
        assert await b.receive_some() == b"ok"


async def test_use_after_aclose_raises_closed_resource_error() -> None:
    a, b = await stream_pair()
    await a.aclose()
    await a.aclose()  # twice: a no-op
    assert a.socket.fileno() == -1
    with pytest.raises(ClosedResourceError) as info:
        await a.send_all(b"x")
    assert str(info.value) == "send_all() on a closed SocketStream"
    with pytest.raises(ClosedResourceError) as info:
        await a.receive_some()
    assert str(info.value) == "receive_some() on a closed SocketStream"
    with pytest.raises(ClosedResourceError) as info:
        await a.send_eof()
    assert str(info.value) == "send_eof() on a closed SocketStream"
    with pytest.raises(ClosedResourceError) as info:
        await a.wait_send_all_might_not_block()
    assert str(info.value) == "wait_send_all_might_not_block() on a closed SocketStream"
    assert await b.receive_some() == b""
    await b.aclose()


async def test_aclose_is_a_checkpoint_and_closes_even_when_cancelled() -> None:
    a, b = await stream_pair()
    with assert_checkpoints():
        await a.aclose()
    with nursery.CancelScope() as scope:
        scope.cancel()
        await b.aclose()
    assert b.socket.fileno() == -1


async def test_aclose_wakes_a_blocked_receiver_with_closed_resource_error() -> None:
    a, b = await stream_pair()
    async with a:
        async with nursery.open_nursery() as n:

            async def receiver() -> None:
                with pytest.raises(ClosedResourceError) as info:
                    await b.receive_some()
                assert str(info.value) == "receive_some() on a closed SocketStream"

            n.start_soon(receiver)
            await wait_all_tasks_blocked()
            await b.aclose()


async def test_aclose_wakes_a_blocked_sender_with_closed_resource_error() -> None:
    a, b = await stream_pair()
    async with b:
        fill_send_buffer(a)
        async with nursery.open_nursery() as n:

            async def sender() -> None:
                with pytest.raises(ClosedResourceError) as info:
                    await a.send_all(b"x" * 100)
                assert str(info.value) == "send_all() on a closed SocketStream"

            n.start_soon(sender)
            await wait_all_tasks_blocked()
            await a.aclose()


async def test_send_to_a_closed_peer_is_broken_resource_error() -> None:
    a, b = await stream_pair()
    await b.aclose()
    async with a:
        with pytest.raises(BrokenResourceError) as info:
            for _ in range(100):
                await a.send_all(b"x" * 65536)
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.EPIPE
        assert str(info.value) == f"the socket connection broke: {info.value.__cause__}"
        # Broken for good.
        with pytest.raises(BrokenResourceError) as info:
            await a.send_all(b"y")
        assert str(info.value).startswith("the stream is broken: ")


async def test_receive_after_a_reset_is_broken_resource_error() -> None:
    client, server = await tcp_stream_pair()
    async with client:
        # Closing with unread data makes the kernel reset the connection.
        await client.send_all(b"unread")
        await wait_until_readable(server)
        server.socket.setsockopt(nsocket.SOL_SOCKET, nsocket.SO_LINGER, struct.pack("ii", 1, 0))
        await server.aclose()
        with pytest.raises(BrokenResourceError) as info:
            while await client.receive_some():
                pass
        assert info.value.__cause__.errno == errno.ECONNRESET


async def wait_until_readable(stream: SocketStream) -> None:
    while not stream.socket.is_readable():
        await nursery.sleep(0.001)


async def test_concurrent_use_is_busy_resource_error() -> None:
    a, b = await stream_pair()
    async with a, b:
        fill_send_buffer(a)
        async with nursery.open_nursery() as n:
            n.start_soon(a.send_all, b"x")
            n.start_soon(b.receive_some)  # a's filler is waiting: returns at once
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError) as info:
                await a.send_all(b"y")
            assert str(info.value) == "another task is already in send_all() on this SocketStream"
            with pytest.raises(BusyResourceError):
                await a.wait_send_all_might_not_block()
            with pytest.raises(BusyResourceError):
                await a.send_eof()
            while (await b.receive_some()) != b"x" and not b.socket.is_readable():
                pass
            n.cancel_scope.cancel()
    c, d = await stream_pair()
    async with c, d:
        async with nursery.open_nursery() as n:
            n.start_soon(d.receive_some)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError) as info:
                await d.receive_some()
            assert str(info.value) == "another task is already in receive_some() on this SocketStream"
            await c.send_all(b"x")


async def test_send_all_and_receive_some_are_checkpoints_without_waiting() -> None:
    a, b = await stream_pair()
    async with a, b:
        with assert_checkpoints():
            await a.send_all(b"x")
        with assert_checkpoints():
            await a.send_all(b"")
        with assert_checkpoints():
            assert await b.receive_some() == b"x"


async def test_cancelled_receive_some_loses_nothing() -> None:
    a, b = await stream_pair()
    async with a, b:
        with nursery.move_on_after(0.01) as scope:
            await b.receive_some()
        assert scope.cancelled_caught
        await a.send_all(b"first")
        # Cancelled before it looked: the data stays for the next call.
        with nursery.CancelScope() as scope:
            scope.cancel()
            await b.receive_some()
        assert scope.cancelled_caught
        assert await b.receive_some() == b"first"


async def test_receive_some_after_a_short_read_sees_later_data() -> None:
    a, b = await stream_pair()
    async with a, b:
        await a.send_all(b"12")
        assert await b.receive_some(10) == b"12"  # a short read
        await a.send_all(b"34")
        assert await b.receive_some(10) == b"34"
        await a.send_all(b"5678")
        assert await b.receive_some(2) == b"56"  # a full read
        assert await b.receive_some(2) == b"78"
        await a.aclose()
        assert await b.receive_some(2) == b""
        assert await b.receive_some(2) == b""


async def test_send_all_cancelled_part_way_breaks_the_stream() -> None:
    a, b = await stream_pair()
    async with a, b:
        payload = b"m" * (4 << 20)  # far more than the socket buffers hold
        with nursery.move_on_after(0.05) as scope:
            await a.send_all(payload)
        assert scope.cancelled_caught
        with pytest.raises(BrokenResourceError) as info:
            await a.send_all(b"next message")
        message = str(info.value)
        assert message.startswith("the stream is broken: send_all() was interrupted (Cancelled) after ")
        assert message.endswith(f" of {len(payload)} bytes; no more data can be sent on it")
        # What did go out is intact and is all the peer gets.
        sent = int(message.split(" after ")[1].split(" of ")[0])
        await a.aclose()
        got = 0
        while True:
            chunk = await b.receive_some()
            if not chunk:
                break
            assert chunk == b"m" * len(chunk)
            got += len(chunk)
        assert got == sent


async def test_send_all_cancelled_before_sending_leaves_the_stream_intact() -> None:
    a, b = await stream_pair()
    async with a, b:
        filled = fill_send_buffer(a)
        with nursery.move_on_after(0.01) as scope:
            await a.send_all(b"not sent")
        assert scope.cancelled_caught
        async with nursery.open_nursery() as n:
            n.start_soon(a.send_all, b"sent")
            got = 0
            while got < filled + 4:
                got += len(await b.receive_some())


async def test_wait_send_all_might_not_block() -> None:
    a, b = await stream_pair()
    async with a, b:
        with assert_checkpoints():
            await a.wait_send_all_might_not_block()
        fill_send_buffer(a)
        woke = []
        async with nursery.open_nursery() as n:

            async def waiter() -> None:
                await a.wait_send_all_might_not_block()
                woke.append(True)

            n.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert woke == []
            while not woke:
                await b.receive_some()
        assert woke == [True]


async def _transfer_with_checksum(size: int) -> None:
    client, server = await tcp_stream_pair()
    chunk = os.urandom(1 << 16)
    sent_digest = hashlib.sha256()
    received_digest = hashlib.sha256()
    received = 0
    async with client, server:

        async def sender() -> None:
            remaining = size
            offset = 0
            while remaining:
                # Varying sizes and offsets, so that chunk boundaries move.
                n = min(remaining, 1 + (offset * 7919) % len(chunk))
                piece = chunk[offset % 1024 : offset % 1024 + n]
                sent_digest.update(piece)
                await client.send_all(piece)
                remaining -= len(piece)
                offset += 1
            await client.send_eof()

        async with nursery.open_nursery() as n:
            n.start_soon(sender)
            while True:
                data = await server.receive_some()
                if not data:
                    break
                received_digest.update(data)
                received += len(data)
    assert received == size
    assert received_digest.hexdigest() == sent_digest.hexdigest()


async def test_large_transfer_arrives_intact() -> None:
    await _transfer_with_checksum(32 << 20)


@pytest.mark.slow
async def test_huge_transfer_arrives_intact() -> None:
    await _transfer_with_checksum(512 << 20)


# --------------------------------------------------------------------------
# SocketListener


async def test_socket_listener_checks_its_socket() -> None:
    with pytest.raises(TypeError) as info:
        SocketListener("not a socket")  # type: ignore[arg-type]
    assert str(info.value) == (
        "SocketListener needs a nursery.socket.SocketType, got 'not a socket' "
        "(wrap a stdlib socket with nursery.socket.from_stdlib_socket())"
    )
    with nsocket.socket() as sock:
        with pytest.raises(ValueError) as info:
            SocketListener(sock)
        assert str(info.value) == f"SocketListener needs a listening socket (call listen() first), got {sock!r}"
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as sock:
        with pytest.raises(ValueError) as info:
            SocketListener(sock)
        assert str(info.value) == f"SocketListener needs a SOCK_STREAM socket, got {sock!r}"


async def test_socket_listener_accepts_streams_and_closes() -> None:
    sock = nsocket.socket()
    await sock.bind(("127.0.0.1", 0))
    sock.listen()
    listener = SocketListener(sock)
    assert listener.socket is sock
    assert repr(listener) == f"<nursery.SocketListener {sock!r}>"
    with nsocket.socket() as client:
        await client.connect(sock.getsockname())
        with assert_checkpoints():
            stream = await listener.accept()
        async with stream:
            assert isinstance(stream, SocketStream)
            assert stream.socket.getpeername() == client.getsockname()
    async with nursery.open_nursery() as n:

        async def acceptor() -> None:
            with pytest.raises(ClosedResourceError) as info:
                await listener.accept()
            assert str(info.value) == "accept() on a closed SocketListener"

        n.start_soon(acceptor)
        await wait_all_tasks_blocked()
        with assert_checkpoints():
            await listener.aclose()
    await listener.aclose()
    assert sock.fileno() == -1
    with pytest.raises(ClosedResourceError):
        await listener.accept()


class FakeListeningSocket(nsocket.SocketType):
    """A listening socket whose accept() fails as scripted, then accepts."""

    def __init__(self, script: list[Any]) -> None:
        a, b = stdlib_socket.socketpair()
        self._peer = b
        super().__init__(a)
        self.script = script
        self.accept_calls = 0

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        if (level, optname) == (nsocket.SOL_SOCKET, nsocket.SO_ACCEPTCONN):
            return 1
        return super().getsockopt(level, optname, buflen)

    async def accept(self) -> Any:
        self.accept_calls += 1
        await nursery.sleep(0)
        step = self.script.pop(0)
        if isinstance(step, OSError):
            raise step
        return step, None

    def close(self) -> None:
        super().close()
        self._peer.close()


async def test_socket_listener_skips_transient_accept_errors() -> None:
    good_a, good_b = nsocket.socketpair()
    transient = [errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.EHOSTUNREACH]
    fake = FakeListeningSocket([OSError(code, os.strerror(code)) for code in transient] + [good_a])
    async with SocketListener(fake) as listener:
        stream = await listener.accept()
        assert fake.accept_calls == len(transient) + 1
        async with stream:
            assert stream.socket is good_a
            await stream.send_all(b"hi")
            assert await good_b.recv(2) == b"hi"
    good_b.close()


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM])
async def test_socket_listener_raises_resource_exhaustion(code: int) -> None:
    fake = FakeListeningSocket([OSError(code, os.strerror(code))])
    async with SocketListener(fake) as listener:
        with pytest.raises(OSError) as info:
            await listener.accept()
        assert info.value.errno == code
        assert fake.accept_calls == 1

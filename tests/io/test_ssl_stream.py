"""SSLStream and SSLListener: TLS over any nursery stream.

Certificates come from trustme, made fresh for this module: a CA, and a
server certificate for ``example.org`` and ``127.0.0.1`` signed by it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import random
import ssl
from typing import Any

import pytest
import trustme

import nursery
from nursery import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    NeedHandshakeError,
    SSLListener,
    SSLStream,
    Stream,
)
from nursery.testing import (
    MemoryReceiveStream,
    MemorySendStream,
    assert_checkpoints,
    check_two_way_stream,
    lockstep_stream_pair,
    memory_stream_pair,
    memory_stream_pump,
    wait_all_tasks_blocked,
)

CA = trustme.CA()
SERVER_CERT = CA.issue_cert("example.org", "127.0.0.1")


def server_context(*, tls12: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    SERVER_CERT.configure_cert(context)
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_context() -> ssl.SSLContext:
    # What ssl.create_default_context() makes (certificate and hostname
    # checks on), minus the loading of the system's trust store, which
    # takes longer than the handshake itself.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    CA.configure_trust(context)
    return context


def ssl_pair(
    transports: tuple[Stream, Stream],
    *,
    client_ctx: ssl.SSLContext | None = None,
    server_ctx: ssl.SSLContext | None = None,
    server_hostname: str = "example.org",
    client_compatible: bool = False,
    server_compatible: bool = False,
) -> tuple[SSLStream, SSLStream]:
    client_transport, server_transport = transports
    client = SSLStream(
        client_transport,
        client_ctx or client_context(),
        server_hostname=server_hostname,
        https_compatible=client_compatible,
    )
    server = SSLStream(
        server_transport, server_ctx or server_context(), server_side=True, https_compatible=server_compatible
    )
    return client, server


async def handshake_both(client: SSLStream, server: SSLStream) -> None:
    async with nursery.open_nursery() as n:
        n.start_soon(client.do_handshake)
        n.start_soon(server.do_handshake)


async def tcp_transports() -> tuple[nursery.SocketStream, nursery.SocketStream]:
    """Client and server ends of one loopback TCP connection."""
    (listener,) = await nursery.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = await nursery.open_tcp_stream("127.0.0.1", port)
        server = await listener.accept()
    return client, server


async def close_all(*streams: Any) -> None:
    for stream in streams:
        await nursery.aclose_forcefully(stream)


def frozen_memory_pair() -> tuple[Stream, Stream, MemorySendStream, MemoryReceiveStream]:
    """A memory stream pair whose first-to-second direction moves only when
    the test pumps it (memory_stream_pump); the other direction is live."""
    first, second = memory_stream_pair()
    first.send_stream.send_all_hook = None
    second.receive_stream.receive_some_hook = None
    return first, second, first.send_stream, second.receive_stream


async def pump_until_quiet(send: MemorySendStream, receive: MemoryReceiveStream) -> None:
    """Let every task run until blocked, pump the frozen direction, and
    repeat until nothing moves."""
    while True:
        await wait_all_tasks_blocked()
        if not memory_stream_pump(send, receive):
            return


# --------------------------------------------------------------------------
# conformance


async def test_ssl_stream_passes_check_two_way_stream_over_memory_streams() -> None:
    async def stream_maker() -> tuple[SSLStream, SSLStream]:
        return ssl_pair(memory_stream_pair())

    async def clogged_stream_maker() -> tuple[SSLStream, SSLStream]:
        # A lockstep transport has no buffer at all. The handshake is done
        # up front: otherwise a receive_some() meant to unclog the other
        # side would first have to send its own handshake message, and
        # block on that.
        client, server = ssl_pair(lockstep_stream_pair())
        await handshake_both(client, server)
        return client, server

    await check_two_way_stream(stream_maker, clogged_stream_maker)


async def test_https_compatible_ssl_stream_passes_check_two_way_stream_over_lockstep_streams() -> None:
    # Every property, run over a transport without buffers, so that every
    # send waits for the matching receive and the TLS layer's send and
    # receive paths interleave in every way the properties provoke. Graceful
    # TLS closing cannot work without buffers (both ends would send
    # close_notify and neither would read), so these streams are
    # https_compatible: closing ends the transport, which the peer takes for
    # the end of stream.
    async def stream_maker() -> tuple[SSLStream, SSLStream]:
        client, server = ssl_pair(lockstep_stream_pair(), client_compatible=True, server_compatible=True)
        await handshake_both(client, server)
        return client, server

    await check_two_way_stream(stream_maker, stream_maker)


# --------------------------------------------------------------------------
# the handshake


async def test_handshake_both_sides_and_what_it_tells() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    assert client.version() == server.version() == "TLSv1.3"
    assert client.cipher() == server.cipher()
    assert client.cipher()[2] >= 128
    assert ("DNS", "example.org") in client.getpeercert()["subjectAltName"]
    assert isinstance(client.getpeercert(binary_form=True), bytes)
    assert server.getpeercert() is None  # the client presented no certificate
    assert client.session_reused is False
    assert client.compression() is None
    assert isinstance(client.get_channel_binding("tls-unique"), (bytes, type(None)))
    assert server.shared_ciphers()
    assert client.server_side is False and server.server_side is True
    assert client.server_hostname == "example.org" and server.server_hostname is None
    assert isinstance(client.context, ssl.SSLContext)
    assert client.pending() == 0
    await client.send_all(b"hello")
    assert await server.receive_some() == b"hello"
    await server.send_all(b"there")
    assert await client.receive_some() == b"there"
    await close_all(client, server)


async def test_handshake_happens_implicitly_on_first_send_and_receive() -> None:
    client, server = ssl_pair(memory_stream_pair())
    async with nursery.open_nursery() as n:
        n.start_soon(client.send_all, b"first")
        assert await server.receive_some() == b"first"
    assert client.version() == "TLSv1.3"
    await close_all(client, server)


async def test_do_handshake_is_idempotent_and_a_checkpoint() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    with assert_checkpoints():
        await client.do_handshake()
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(nursery.Cancelled):
            await client.do_handshake()
    await client.send_all(b"still fine")
    assert await server.receive_some() == b"still fine"
    await close_all(client, server)


async def test_concurrent_do_handshake_calls_share_one_handshake() -> None:
    client, server = ssl_pair(memory_stream_pair())
    async with nursery.open_nursery() as n:
        for _ in range(3):
            n.start_soon(client.do_handshake)
            n.start_soon(server.do_handshake)
        n.start_soon(client.send_all, b"during")
        assert await server.receive_some() == b"during"
    assert client.version() == "TLSv1.3"
    await close_all(client, server)


async def test_need_handshake_error_before_the_handshake() -> None:
    client, server = ssl_pair(memory_stream_pair())
    for name, call in [
        ("getpeercert()", client.getpeercert),
        ("cipher()", client.cipher),
        ("shared_ciphers()", client.shared_ciphers),
        ("compression()", client.compression),
        ("get_channel_binding()", client.get_channel_binding),
        ("selected_alpn_protocol()", client.selected_alpn_protocol),
        ("version()", client.version),
        ("session_reused", lambda: client.session_reused),
    ]:
        with pytest.raises(NeedHandshakeError, match=rf"call do_handshake\(\) before asking for {name}"):
            call()
    # What is known before the handshake is available.
    assert client.server_hostname == "example.org"
    assert client.session is None
    assert client.pending() == 0
    await handshake_both(client, server)
    assert client.version() == "TLSv1.3"
    assert client.session is not None
    await close_all(client, server)


async def test_session_resumption_through_the_session_attribute() -> None:
    # TLS 1.2, where the session is known when the handshake ends (a TLS 1.3
    # ticket arrives with the server's first data).
    server_ctx = server_context(tls12=True)
    client_ctx = client_context()
    client, server = ssl_pair(memory_stream_pair(), client_ctx=client_ctx, server_ctx=server_ctx)
    await handshake_both(client, server)
    session = client.session
    assert session is not None and client.session_reused is False
    await close_all(client, server)

    client, server = ssl_pair(memory_stream_pair(), client_ctx=client_ctx, server_ctx=server_ctx)
    client.session = session
    await handshake_both(client, server)
    assert client.session_reused is True and server.session_reused is True
    await close_all(client, server)


async def test_alpn_is_negotiated_through_the_contexts() -> None:
    server_ctx = server_context()
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    client_ctx = client_context()
    client_ctx.set_alpn_protocols(["http/1.1", "spdy/3"])
    client, server = ssl_pair(memory_stream_pair(), client_ctx=client_ctx, server_ctx=server_ctx)
    await handshake_both(client, server)
    assert client.selected_alpn_protocol() == server.selected_alpn_protocol() == "http/1.1"
    await close_all(client, server)

    # A client that offers nothing gets nothing.
    client, server = ssl_pair(memory_stream_pair(), server_ctx=server_ctx)
    await handshake_both(client, server)
    assert client.selected_alpn_protocol() is None and server.selected_alpn_protocol() is None
    await close_all(client, server)


async def expect_handshake_failure(
    client: SSLStream, server: SSLStream
) -> tuple[BrokenResourceError, BrokenResourceError]:
    errors: dict[str, BrokenResourceError] = {}

    async def side(name: str, stream: SSLStream) -> None:
        with pytest.raises(BrokenResourceError) as info:
            await stream.do_handshake()
        errors[name] = info.value

    async with nursery.open_nursery() as n:
        n.start_soon(side, "client", client)
        n.start_soon(side, "server", server)
    return errors["client"], errors["server"]


async def test_hostname_mismatch_names_the_reason() -> None:
    client, server = ssl_pair(memory_stream_pair(), server_hostname="wrong.example")
    client_error, server_error = await expect_handshake_failure(client, server)
    message = str(client_error)
    assert message.startswith("TLS handshake with 'wrong.example' failed: [SSL: CERTIFICATE_VERIFY_FAILED]"), message
    assert "Hostname mismatch" in message and "wrong.example" in message
    assert isinstance(client_error.__cause__, ssl.SSLCertVerificationError)
    # The server hears about it through the client's alert.
    assert str(server_error).startswith("TLS handshake failed: [SSL: "), server_error
    assert isinstance(server_error.__cause__, ssl.SSLError)
    # The stream stays broken, and says why.
    broken = r"send_all\(\) on a broken SSLStream: TLS handshake .*Hostname mismatch"
    with pytest.raises(BrokenResourceError, match=broken) as info:
        await client.send_all(b"x")
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    with pytest.raises(BrokenResourceError, match="on a broken SSLStream"):
        await client.receive_some()
    with pytest.raises(BrokenResourceError, match="on a broken SSLStream"):
        await client.do_handshake()
    # NeedHandshakeError still: the handshake never finished.
    with pytest.raises(NeedHandshakeError):
        client.getpeercert()
    await close_all(client, server)


async def test_untrusted_certificate_names_certificate_verify_failed() -> None:
    # The system's trust store does not know our test CA.
    client, server = ssl_pair(memory_stream_pair(), client_ctx=ssl.create_default_context())
    client_error, _ = await expect_handshake_failure(client, server)
    message = str(client_error)
    assert "CERTIFICATE_VERIFY_FAILED" in message, message
    assert "unable to get local issuer certificate" in message, message
    assert isinstance(client_error.__cause__, ssl.SSLCertVerificationError)
    assert client_error.__cause__.verify_message == "unable to get local issuer certificate"
    await close_all(client, server)


async def test_handshake_cancelled_while_waiting_for_the_peer_resumes_later() -> None:
    client, server = ssl_pair(memory_stream_pair())
    # The server is not running yet: the client's handshake waits for it.
    with nursery.move_on_after(0.05) as scope:
        await client.do_handshake()
    assert scope.cancelled_caught
    # Nothing was lost: the server answers now, and the client carries on
    # from where it stopped.
    await handshake_both(client, server)
    await client.send_all(b"after")
    assert await server.receive_some() == b"after"
    await close_all(client, server)


async def test_handshake_cancelled_part_way_through_a_send_breaks_the_stream() -> None:
    # Over a lockstep transport the ClientHello cannot go out until the
    # server receives it; cancelled then, an unknown part of it was sent.
    client, server = ssl_pair(lockstep_stream_pair())
    with nursery.move_on_after(0.05) as scope:
        await client.do_handshake()
    assert scope.cancelled_caught
    with pytest.raises(BrokenResourceError, match="cancelled part way through a TLS record"):
        await client.do_handshake()
    with pytest.raises(BrokenResourceError, match="cancelled part way through a TLS record"):
        await client.send_all(b"x")
    await close_all(client, server)


async def test_a_handshake_waiter_takes_over_from_a_cancelled_runner() -> None:
    client, server = ssl_pair(memory_stream_pair())
    runner_scope = nursery.CancelScope()
    results: list[str] = []

    async def runner() -> None:
        with runner_scope:
            await client.do_handshake()
        results.append(f"runner cancelled={runner_scope.cancelled_caught}")

    async def waiter() -> None:
        await client.do_handshake()
        results.append("waiter done")

    async with nursery.open_nursery() as n:
        n.start_soon(runner)
        await wait_all_tasks_blocked()
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        runner_scope.cancel()
        await wait_all_tasks_blocked()
        assert results == ["runner cancelled=True"]
        await server.do_handshake()
    assert results == ["runner cancelled=True", "waiter done"]
    await close_all(client, server)


async def test_bad_constructor_arguments() -> None:
    a, b = memory_stream_pair()
    with pytest.raises(TypeError, match=r"SSLStream needs a nursery.Stream to run over, got b'bytes'"):
        SSLStream(b"bytes", client_context(), server_hostname="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SSLStream needs an ssl.SSLContext, got 'context'"):
        SSLStream(a, "context", server_hostname="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"SSLStream needs server_hostname=\.\.\.: ssl_context checks hostnames"):
        SSLStream(a, client_context())
    with pytest.raises(ValueError, match="SSLStream needs a server-side ssl.SSLContext, got a client-only one"):
        SSLStream(b, client_context(), server_side=True)
    with pytest.raises(ValueError, match="SSLStream got a server-only ssl.SSLContext"):
        SSLStream(a, server_context(), server_hostname="x")
    # Without hostname checking, no hostname is needed.
    context = client_context()
    context.check_hostname = False
    client, server = SSLStream(a, context), SSLStream(b, server_context(), server_side=True)
    await handshake_both(client, server)
    assert client.version() == "TLSv1.3"
    await close_all(client, server)


# --------------------------------------------------------------------------
# data


async def test_receive_some_gathers_several_records_up_to_max_bytes() -> None:
    client, server = ssl_pair(memory_stream_pair())
    data = random.Random(1).randbytes(200_000)
    await handshake_both(client, server)
    await client.send_all(data)
    # One TLS record holds at most 16 KiB; what is already there is gathered.
    first = await server.receive_some(50_000)
    assert 16384 < len(first) <= 50_000
    second = await server.receive_some()
    assert 16384 < len(second) <= 65536  # the default maximum
    rest = bytearray()
    while len(first) + len(second) + len(rest) < len(data):
        rest += await server.receive_some()
    assert first + second + rest == data
    await close_all(client, server)


async def test_receive_some_of_buffered_data_is_a_checkpoint() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    await client.send_all(b"abcdef")
    assert await server.receive_some(3) == b"abc"
    assert server.pending() == 3
    with assert_checkpoints():
        assert await server.receive_some(3) == b"def"
    with assert_checkpoints():
        await client.send_all(b"")
    await close_all(client, server)


async def test_bad_arguments_to_send_all_and_receive_some() -> None:
    client, server = ssl_pair(memory_stream_pair())
    with pytest.raises(ValueError, match=r"receive_some\(\) max_bytes must be at least 1, got 0"):
        await client.receive_some(0)
    with pytest.raises(ValueError, match=r"receive_some\(\) max_bytes must be at least 1, got -5"):
        await client.receive_some(-5)
    with pytest.raises(TypeError, match=r"receive_some\(\) needs max_bytes to be an int or None, got 1.5"):
        await client.receive_some(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"send_all\(\) expected a bytes-like object .*, got str"):
        await client.send_all("text")  # type: ignore[arg-type]
    # None of that started the handshake or broke anything.
    await handshake_both(client, server)
    await close_all(client, server)


async def test_multi_byte_memoryview_payloads_are_sent_as_bytes() -> None:
    import array

    client, server = ssl_pair(memory_stream_pair())
    numbers = array.array("i", range(1000))
    async with nursery.open_nursery() as n:
        n.start_soon(client.send_all, memoryview(numbers))
        got = bytearray()
        while len(got) < len(numbers.tobytes()):
            got += await server.receive_some()
    assert bytes(got) == numbers.tobytes()
    await close_all(client, server)


async def transfer_both_ways(a: SSLStream, b: SSLStream, size: int, seed: int) -> None:
    """Send *size* random bytes each way at the same time, in random
    chunks, and check what arrives by its SHA-256."""
    rng = random.Random(seed)
    payloads = {id(a): rng.randbytes(size), id(b): rng.randbytes(size)}

    async def sender(stream: SSLStream, chunk_seed: int) -> None:
        chunk_rng = random.Random(chunk_seed)
        view = memoryview(payloads[id(stream)])
        while view:
            n = chunk_rng.randrange(1, 200_000)
            await stream.send_all(view[:n])
            view = view[n:]

    async def receiver(stream: SSLStream, peer: SSLStream, chunk_seed: int) -> None:
        chunk_rng = random.Random(chunk_seed)
        digest = hashlib.sha256()
        received = 0
        while received < size:
            chunk = await stream.receive_some(chunk_rng.randrange(1, 100_000))
            assert chunk, f"end of stream after {received} of {size} bytes"
            digest.update(chunk)
            received += len(chunk)
        assert received == size
        assert digest.digest() == hashlib.sha256(payloads[id(peer)]).digest()

    async with nursery.open_nursery() as n:
        n.start_soon(sender, a, seed + 1)
        n.start_soon(sender, b, seed + 2)
        n.start_soon(receiver, a, b, seed + 3)
        n.start_soon(receiver, b, a, seed + 4)


async def test_full_duplex_over_tcp() -> None:
    client, server = ssl_pair(await tcp_transports(), server_hostname="127.0.0.1")
    # The handshake starts from all four tasks at once.
    await transfer_both_ways(client, server, 4 << 20, seed=10)
    await close_all(client, server)


async def test_full_duplex_over_lockstep_streams_with_an_implicit_handshake() -> None:
    # No buffering anywhere: every send waits for its receive, so the
    # sending and receiving tasks of each side drive the one TLS engine in
    # every order, the handshake included.
    client, server = ssl_pair(lockstep_stream_pair())
    await transfer_both_ways(client, server, 300_000, seed=20)
    await close_all(client, server)


async def test_server_that_only_receives_after_the_handshake_does_not_deadlock() -> None:
    # A TLS 1.3 server writes session tickets at the end of its handshake.
    # Sent right then, over a transport without buffers, they would block
    # the server (the client is sending, not receiving) while the client
    # blocks sending to the server. They are held back until the server
    # sends something.
    client, server = ssl_pair(lockstep_stream_pair())
    data = random.Random(3).randbytes(100_000)
    async with nursery.open_nursery() as n:
        n.start_soon(client.send_all, data)
        got = bytearray()
        while len(got) < len(data):
            got += await server.receive_some()
    assert got == data
    # The tickets go out in front of the server's first data.
    async with nursery.open_nursery() as n:
        n.start_soon(server.send_all, b"reply")
        assert await client.receive_some() == b"reply"
    await close_all(client, server)


async def test_large_transfer_over_tcp_arrives_intact() -> None:
    await large_transfer(32 << 20)


@pytest.mark.slow
async def test_very_large_transfer_over_tcp_arrives_intact() -> None:
    await large_transfer(300 << 20)


async def large_transfer(size: int) -> None:
    client, server = ssl_pair(await tcp_transports(), server_hostname="127.0.0.1")
    block = random.Random(5).randbytes(1 << 20)
    expected = hashlib.sha256()
    for i in range(size // len(block)):
        expected.update(block[i % 256 :] + block[: i % 256])

    async def send() -> None:
        for i in range(size // len(block)):
            await client.send_all(block[i % 256 :] + block[: i % 256])
        await client.aclose()

    async with nursery.open_nursery() as n:
        n.start_soon(send)
        digest = hashlib.sha256()
        received = 0
        async for chunk in server:
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == expected.hexdigest()
    await server.aclose()


# --------------------------------------------------------------------------
# errors after the handshake


class FailingStream(Stream):
    """A transport that passes everything to *inner* until told to fail."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.failure: Exception | None = None

    async def send_all(self, data: Any) -> None:
        if self.failure is not None:
            raise self.failure
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> Any:
        data = await self.inner.receive_some(max_bytes)
        if self.failure is not None:
            raise self.failure
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_transport_failure_breaks_the_stream_with_the_cause() -> None:
    a, b = memory_stream_pair()
    failing = FailingStream(a)
    client, server = ssl_pair((failing, b))
    await handshake_both(client, server)
    failing.failure = BrokenResourceError("the wire was cut")
    with pytest.raises(BrokenResourceError, match="^the transport stream failed: the wire was cut$") as info:
        await client.send_all(b"x")
    assert info.value.__cause__ is failing.failure
    with pytest.raises(BrokenResourceError, match="broken SSLStream: the transport stream failed: the wire was cut"):
        await client.receive_some()
    await close_all(client, server)


async def test_transport_failure_while_receiving() -> None:
    a, b = memory_stream_pair()
    failing = FailingStream(a)
    client, server = ssl_pair((failing, b))
    await handshake_both(client, server)
    failing.failure = OSError(104, "Connection reset by peer")
    async with nursery.open_nursery() as n:
        n.start_soon(server.send_all, b"data")
        with pytest.raises(BrokenResourceError, match=r"transport stream failed: \[Errno 104\] Connection reset"):
            await client.receive_some()
    await close_all(client, server)


async def test_garbage_on_the_wire_is_a_tls_error() -> None:
    first, second, frozen_send, frozen_receive = frozen_memory_pair()
    client, server = ssl_pair((first, second))
    async with nursery.open_nursery() as n:
        n.start_soon(handshake_both, client, server)
        await pump_until_quiet(frozen_send, frozen_receive)
    frozen_receive.put_data(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)  # an application record that does not decrypt
    with pytest.raises(BrokenResourceError, match=r"^TLS error: \[SSL: ") as info:
        await server.receive_some()
    assert isinstance(info.value.__cause__, ssl.SSLError)
    await close_all(client, server)


# --------------------------------------------------------------------------
# cancellation and concurrency


async def test_cancelled_send_all_breaks_the_stream() -> None:
    client, server = ssl_pair(lockstep_stream_pair())
    await handshake_both(client, server)
    with nursery.move_on_after(0.05) as scope:
        await client.send_all(b"x" * 100_000)  # nobody receives
    assert scope.cancelled_caught
    with pytest.raises(BrokenResourceError, match="broken SSLStream: a send to the transport stream was cancelled"):
        await client.send_all(b"more")
    await close_all(client, server)


async def test_send_all_cancelled_before_it_starts_sends_nothing() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    with nursery.CancelScope() as scope:
        scope.cancel()
        await client.send_all(b"lost")
    assert scope.cancelled_caught
    await client.send_all(b"kept")
    assert await server.receive_some() == b"kept"
    await close_all(client, server)


async def test_concurrent_calls_raise_busy_resource_error() -> None:
    client, server = ssl_pair(lockstep_stream_pair())
    await handshake_both(client, server)
    async with nursery.open_nursery() as n:
        # Nobody receives the client's data.
        n.start_soon(client.send_all, b"x" * 100_000)
        await wait_all_tasks_blocked()
        busy = r"another task is already in send_all\(\) or wait_send_all_might_not_block\(\) on this SSLStream"
        with pytest.raises(BusyResourceError, match=busy):
            await client.send_all(b"y")
        with pytest.raises(BusyResourceError, match="another task is already in send_all"):
            await client.wait_send_all_might_not_block()
        with pytest.raises(BusyResourceError, match=r"unwrap\(\) while another task is sending or receiving"):
            await client.unwrap()
        n.cancel_scope.cancel()
    await close_all(client, server)

    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    async with nursery.open_nursery() as n:
        # Nobody sends to the server.
        n.start_soon(server.receive_some)
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError, match=r"another task is already in receive_some\(\) on this SSLStream"):
            await server.receive_some()
        with pytest.raises(BusyResourceError, match=r"unwrap\(\) while another task is sending or receiving"):
            await server.unwrap()
        n.cancel_scope.cancel()
    await close_all(client, server)


async def test_aclose_wakes_a_blocked_receiver_with_closed_resource_error() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)

    async def receiver() -> None:
        with pytest.raises(ClosedResourceError, match="the SSLStream was closed while this task was using it"):
            await client.receive_some()

    async with nursery.open_nursery() as n:
        n.start_soon(receiver)
        await wait_all_tasks_blocked()
        await client.aclose()
    await server.aclose()


async def test_wait_send_all_might_not_block_waits_for_the_peer_over_lockstep() -> None:
    client, server = ssl_pair(lockstep_stream_pair())
    await handshake_both(client, server)
    order: list[str] = []

    async def waiter() -> None:
        await client.wait_send_all_might_not_block()
        order.append("may send")

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        order.append("receiving")
        n.start_soon(server.receive_some)
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert order == ["receiving", "may send"]
    await close_all(client, server)


# --------------------------------------------------------------------------
# closing


async def test_aclose_sends_close_notify_and_the_peer_sees_end_of_stream() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    await client.send_all(b"last words")
    await client.aclose()
    assert await server.receive_some() == b"last words"
    for _ in range(3):
        assert await server.receive_some() == b""
    # The peer can answer with its own close.
    await server.aclose()


async def test_aclose_does_not_wait_for_the_peer() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    # The server never reads: the client's aclose sends close_notify and
    # closes without waiting for an answer.
    with nursery.fail_after(5):
        await client.aclose()
    await server.aclose()


async def test_aclose_before_the_handshake_just_closes_the_transport() -> None:
    client, server = ssl_pair(memory_stream_pair())
    with nursery.fail_after(5):
        await client.aclose()
    # The strict server sees the connection end during its handshake...
    with pytest.raises(BrokenResourceError, match="TLS handshake failed") as info:
        await server.receive_some()
    assert isinstance(info.value.__cause__, (ssl.SSLEOFError, ssl.SSLSyscallError))
    await server.aclose()
    # ...and an https_compatible one sees an ordinary end of stream.
    client, server = ssl_pair(memory_stream_pair(), server_compatible=True)
    await client.aclose()
    assert await server.receive_some() == b""
    assert await server.receive_some() == b""
    await server.aclose()


async def test_missing_close_notify_is_broken_unless_https_compatible() -> None:
    # The client is https_compatible: its aclose() sends no close_notify.
    client, server = ssl_pair(memory_stream_pair(), client_compatible=True)
    await handshake_both(client, server)
    await client.send_all(b"data")
    await client.aclose()
    assert await server.receive_some() == b"data"
    truncated = "without sending a TLS close_notify, so the data may have been truncated"
    with pytest.raises(BrokenResourceError, match=truncated) as info:
        await server.receive_some()
    assert isinstance(info.value.__cause__, ssl.SSLEOFError)
    with pytest.raises(BrokenResourceError, match="on a broken SSLStream: the peer closed the connection without"):
        await server.receive_some()
    await server.aclose()


async def test_connection_cut_in_the_middle_of_a_record_is_broken() -> None:
    first, second, frozen_send, frozen_receive = frozen_memory_pair()
    client, server = ssl_pair((first, second))
    async with nursery.open_nursery() as n:
        n.start_soon(handshake_both, client, server)
        await pump_until_quiet(frozen_send, frozen_receive)
    await client.send_all(b"a message that will be cut short")
    record = frozen_send.get_data_nowait()
    frozen_receive.put_data(record[:20])
    frozen_receive.put_eof()
    with pytest.raises(BrokenResourceError, match="without sending a TLS close_notify") as info:
        await server.receive_some()
    assert isinstance(info.value.__cause__, ssl.SSLEOFError)
    await close_all(client, server)


async def test_missing_close_notify_is_end_of_stream_when_https_compatible() -> None:
    client, server = ssl_pair(memory_stream_pair(), client_compatible=True, server_compatible=True)
    await handshake_both(client, server)
    await client.send_all(b"data")
    await client.aclose()
    assert await server.receive_some() == b"data"
    assert await server.receive_some() == b""
    assert await server.receive_some() == b""
    # Sending is over, though: the peer is gone.
    with pytest.raises(BrokenResourceError, match="the peer closed the connection without"):
        await server.send_all(b"anyone?")
    await server.aclose()


async def test_missing_close_notify_is_detected_even_if_the_context_ignores_it() -> None:
    # With OP_IGNORE_UNEXPECTED_EOF OpenSSL itself reports a bare end of the
    # transport as a clean close; the strict stream still calls it broken.
    server_ctx = server_context()
    server_ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    client, server = ssl_pair(memory_stream_pair(), client_compatible=True, server_ctx=server_ctx)
    await handshake_both(client, server)
    await client.aclose()
    with pytest.raises(BrokenResourceError, match="without sending a TLS close_notify") as info:
        await server.receive_some()
    assert info.value.__cause__ is None
    await server.aclose()


async def test_strict_aclose_after_receiving_close_notify() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    await server.aclose()
    assert await client.receive_some() == b""
    await client.aclose()


async def test_operations_after_aclose_raise_closed_resource_error() -> None:
    client, server = ssl_pair(memory_stream_pair())
    await handshake_both(client, server)
    await client.aclose()
    with assert_checkpoints():
        await client.aclose()  # idempotent
    for what, call in [
        (r"send_all\(\)", lambda: client.send_all(b"x")),
        (r"receive_some\(\)", client.receive_some),
        (r"do_handshake\(\)", client.do_handshake),
        (r"wait_send_all_might_not_block\(\)", client.wait_send_all_might_not_block),
        (r"unwrap\(\)", client.unwrap),
    ]:
        with pytest.raises(ClosedResourceError, match=f"^{what} on a closed SSLStream$"):
            await call()
    await server.aclose()


async def test_cancelled_aclose_still_closes_the_transport() -> None:
    client, server = ssl_pair(lockstep_stream_pair())
    await handshake_both(client, server)
    # Over lockstep, sending close_notify waits for a receiver; cancelled,
    # the transport is closed forcefully.
    with nursery.move_on_after(0.05) as scope:
        await client.aclose()
    assert scope.cancelled_caught
    with pytest.raises(ClosedResourceError):
        await client.transport_stream.send_all(b"x")
    await server.aclose()


# --------------------------------------------------------------------------
# unwrap


async def test_unwrap_returns_the_transport_and_the_bytes_after_close_notify() -> None:
    first, second, frozen_send, frozen_receive = frozen_memory_pair()
    client, server = ssl_pair((first, second))

    async with nursery.open_nursery() as n:
        n.start_soon(handshake_both, client, server)
        await pump_until_quiet(frozen_send, frozen_receive)
    async with nursery.open_nursery() as n:
        n.start_soon(client.send_all, b"switching to plain text")
        await pump_until_quiet(frozen_send, frozen_receive)
        assert await server.receive_some() == b"switching to plain text"

    result: list[Any] = []

    async def server_unwrap() -> None:
        result.append(await server.unwrap())

    async with nursery.open_nursery() as n:
        # The server sends close_notify, then waits for the client's.
        n.start_soon(server_unwrap)
        await wait_all_tasks_blocked()
        assert await client.receive_some() == b""
        raw, trailing = await client.unwrap()
        assert raw is first and trailing == b""
        # Plain text right behind the client's close_notify: both reach the
        # server in one piece, so the server's TLS layer has read the plain
        # text too, and hands it back.
        await raw.send_all(b"PLAIN")
        await pump_until_quiet(frozen_send, frozen_receive)
    ((server_raw, server_trailing),) = result
    assert server_raw is second
    assert server_trailing == b"PLAIN"
    assert server.transport_stream is None and client.transport_stream is None
    # The transports now carry plain text both ways.
    await server_raw.send_all(b"plain reply")
    assert await raw.receive_some() == b"plain reply"
    # The SSLStreams are closed; closing them again leaves the transports alone.
    with pytest.raises(ClosedResourceError, match=r"send_all\(\) on a closed SSLStream"):
        await server.send_all(b"x")
    await server.aclose()
    await raw.send_all(b"still open")
    memory_stream_pump(frozen_send, frozen_receive)
    assert await server_raw.receive_some() == b"still open"
    await close_all(raw, server_raw)


async def test_unwrap_when_the_peer_closes_the_transport_instead_is_broken() -> None:
    client, server = ssl_pair(memory_stream_pair(), client_compatible=True)
    await handshake_both(client, server)

    async def client_goes_away() -> None:
        await wait_all_tasks_blocked()
        await client.aclose()  # no close_notify

    async with nursery.open_nursery() as n:
        n.start_soon(client_goes_away)
        with pytest.raises(BrokenResourceError, match="TLS error: .*EOF") as info:
            await server.unwrap()
    assert isinstance(info.value.__cause__, ssl.SSLEOFError)
    await server.aclose()


# --------------------------------------------------------------------------
# renegotiation (TLS 1.2), started through OpenSSL itself


def _openssl(stream: SSLStream) -> tuple[Any, int]:
    """libssl (through ctypes) and the SSL* of *stream*: Python has no API
    to start a renegotiation, so the tests call OpenSSL directly. CPython's
    _ssl object keeps the SSL* right after its PyObject header and its
    socket pointer; the pointer is checked (SSL_is_server must agree with
    the stream, and with a client stream) before use, and the test is
    skipped where that fails."""
    name = ctypes.util.find_library("ssl")
    if name is None:
        pytest.skip("libssl not found for ctypes")
    lib = ctypes.CDLL(name)
    if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        pytest.skip("ctypes found a different libssl than the ssl module uses")
    lib.SSL_is_server.argtypes = lib.SSL_renegotiate.argtypes = [ctypes.c_void_p]
    lib.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.SSL_ctrl.restype = ctypes.c_long

    def pointer_of(stream: SSLStream) -> int:
        sslobj = stream._ssl_object._sslobj  # the _ssl._SSLSocket
        return ctypes.c_void_p.from_address(id(sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value or 0

    client = SSLStream(memory_stream_pair()[0], client_context(), server_hostname="x")
    pointer = pointer_of(stream)
    if (
        not pointer
        or lib.SSL_is_server(pointer) != int(stream.server_side)
        or lib.SSL_is_server(pointer_of(client)) != 0
    ):
        pytest.skip("could not find the SSL* in this Python's _ssl objects")
    return lib, pointer


def renegotiate(stream: SSLStream) -> None:
    lib, pointer = _openssl(stream)
    assert lib.SSL_renegotiate(pointer) == 1


def total_renegotiations(stream: SSLStream) -> int:
    lib, pointer = _openssl(stream)
    SSL_CTRL_GET_TOTAL_RENEGOTIATIONS = 12  # from openssl/ssl.h
    return int(lib.SSL_ctrl(pointer, SSL_CTRL_GET_TOTAL_RENEGOTIATIONS, 0, None))


async def test_renegotiation_is_refused_by_default_contexts_and_ends_the_stream() -> None:
    from nursery._ssl_helpers import default_client_context

    client_ctx = default_client_context()
    assert client_ctx.options & ssl.OP_NO_RENEGOTIATION
    CA.configure_trust(client_ctx)
    client, server = ssl_pair(memory_stream_pair(), client_ctx=client_ctx, server_ctx=server_context(tls12=True))
    await handshake_both(client, server)
    assert client.version() == "TLSv1.2"
    renegotiate(server)
    # The server asks (its next write carries the request), the client
    # refuses, and the server gives up on the connection.
    await server.send_all(b"data")
    assert await client.receive_some() == b"data"
    with pytest.raises(BrokenResourceError, match=r"TLS error: \[SSL: NO_RENEGOTIATION\]"):
        await server.receive_some()
    with pytest.raises(BrokenResourceError, match=r"TLS error: \[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE\]"):
        await client.receive_some()
    assert total_renegotiations(client) == 0
    await close_all(client, server)


async def test_client_initiated_renegotiation_is_refused_by_servers() -> None:
    client, server = ssl_pair(memory_stream_pair(), server_ctx=server_context(tls12=True))
    await handshake_both(client, server)
    renegotiate(client)

    async def client_sends() -> None:
        # The server answers the ClientHello with a no_renegotiation alert;
        # the client's write, which waits for the new handshake, fails.
        with pytest.raises(BrokenResourceError, match=r"TLS error: \[SSL: NO_RENEGOTIATION\]"):
            await client.send_all(b"data")

    async with nursery.open_nursery() as n:
        n.start_soon(client_sends)
        with pytest.raises(BrokenResourceError, match=r"TLS error: \[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE\]"):
            await server.receive_some()
    await close_all(client, server)


async def test_renegotiation_allowed_by_both_sides_is_carried_out() -> None:
    # (OpenSSL cannot renegotiate while both directions carry data at once,
    # so the traffic here takes turns, as NSS and others advise.)
    client, server = ssl_pair(memory_stream_pair(), server_ctx=server_context(tls12=True))
    assert not client.context.options & ssl.OP_NO_RENEGOTIATION
    await handshake_both(client, server)
    renegotiate(server)
    await server.send_all(b"ping")  # carries the renegotiation request
    # The client's receive answers the request (it sends its ClientHello).
    assert await client.receive_some() == b"ping"
    # Now the client's send_all must receive to finish the handshake,
    # while the server's receive_some must send its part of it.
    async with nursery.open_nursery() as n:
        n.start_soon(client.send_all, b"pong")
        assert await server.receive_some() == b"pong"
    assert total_renegotiations(client) == 1
    for i in range(20):
        async with nursery.open_nursery() as n:
            n.start_soon(server.send_all, b"%d" % i * 1000)
            got = bytearray()
            while len(got) < len(b"%d" % i) * 1000:
                got += await client.receive_some()
        assert got == b"%d" % i * 1000
    await close_all(client, server)


async def test_renegotiation_driven_by_a_sender_and_a_receiver_at_once() -> None:
    # The client has a task blocked in receive_some() when its send_all()
    # finds that it must receive (the rest of the new handshake) before it
    # can write. The two take turns at the transport; each must notice
    # what the other fed to the TLS engine instead of waiting for more from
    # a peer that sends nothing until it gets the client's data.
    client, server = ssl_pair(memory_stream_pair(), server_ctx=server_context(tls12=True))
    await handshake_both(client, server)
    renegotiate(server)
    await server.send_all(b"ping")
    assert await client.receive_some() == b"ping"

    async def client_receiver() -> None:
        assert await client.receive_some() == b"after pong"

    with nursery.fail_after(5):
        async with nursery.open_nursery() as n:
            n.start_soon(client_receiver)
            await wait_all_tasks_blocked()
            n.start_soon(client.send_all, b"pong")
            assert await server.receive_some() == b"pong"
            await server.send_all(b"after pong")
    assert total_renegotiations(client) == 1
    await close_all(client, server)


# --------------------------------------------------------------------------
# SSLListener


class OneShotListener(nursery.Listener[Stream]):
    def __init__(self, stream: Stream) -> None:
        self.stream: Stream | None = stream
        self.closed = False

    async def accept(self) -> Stream:
        assert self.stream is not None
        stream, self.stream = self.stream, None
        return stream

    async def aclose(self) -> None:
        self.closed = True


async def test_ssl_listener_wraps_accepted_streams_without_handshaking() -> None:
    a, b = memory_stream_pair()
    transport_listener = OneShotListener(b)
    listener = SSLListener(transport_listener, server_context(), https_compatible=True)
    assert listener.transport_listener is transport_listener
    server = await listener.accept()
    assert isinstance(server, SSLStream) and server.server_side and server.transport_stream is b
    with pytest.raises(NeedHandshakeError):
        server.version()
    client = SSLStream(a, client_context(), server_hostname="example.org")
    await handshake_both(client, server)
    # https_compatible reached the stream: its aclose sends no close_notify.
    await server.aclose()
    with pytest.raises(BrokenResourceError, match="without sending a TLS close_notify"):
        await client.receive_some()
    await client.aclose()
    async with listener:
        pass
    assert transport_listener.closed
    assert "SSLListener" in repr(listener)


async def test_ssl_listener_bad_arguments() -> None:
    with pytest.raises(TypeError, match="SSLListener needs a nursery.Listener to accept from, got 'x'"):
        SSLListener("x", server_context())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SSLListener needs an ssl.SSLContext, got None"):
        SSLListener(OneShotListener(memory_stream_pair()[0]), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SSLListener needs a server-side ssl.SSLContext"):
        SSLListener(OneShotListener(memory_stream_pair()[0]), client_context())


async def test_repr() -> None:
    client, server = ssl_pair(memory_stream_pair())
    assert repr(client).startswith("<nursery.SSLStream client ok over <StapledStream")
    await client.aclose()
    assert repr(server).startswith("<nursery.SSLStream server ok")
    assert "closed" in repr(client)
    await server.aclose()

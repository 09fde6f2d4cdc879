"""open_ssl_over_tcp_stream, open_ssl_over_tcp_listeners and
serve_ssl_over_tcp: TLS over real loopback TCP connections.

Certificates come from trustme, made fresh for this module.
"""

from __future__ import annotations

import hashlib
import random
import socket
import ssl
from functools import partial

import pytest
import trustme

import nursery
from nursery import (
    BrokenResourceError,
    SocketListener,
    SSLListener,
    SSLStream,
    open_ssl_over_tcp_listeners,
    open_ssl_over_tcp_stream,
    serve_ssl_over_tcp,
)
from nursery.testing import wait_all_tasks_blocked

CA = trustme.CA()
SERVER_CERT = CA.issue_cert("localhost", "127.0.0.1")


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    SERVER_CERT.configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    CA.configure_trust(context)
    return context


# What the echo handlers' connections failed with, for the tests to check.
SERVER_ERRORS: list[BrokenResourceError] = []


async def echo(stream: SSLStream) -> None:
    async with stream:
        try:
            async for chunk in stream:
                await stream.send_all(chunk)
        except BrokenResourceError as exc:
            # One client's bad handshake must not stop the server.
            SERVER_ERRORS.append(exc)


def port_of(listeners: list[SSLListener]) -> int:
    return listeners[0].transport_listener.socket.getsockname()[1]


async def test_serve_and_connect_with_a_trusted_context() -> None:
    server_ctx = server_context()
    server_ctx.set_alpn_protocols(["echo/1"])
    client_ctx = client_context()
    client_ctx.set_alpn_protocols(["echo/1"])
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_ssl_over_tcp, echo, 0, server_ctx, host="127.0.0.1"))
        (listener,) = listeners
        assert isinstance(listener, SSLListener)
        assert isinstance(listener.transport_listener, SocketListener)
        for host in ("127.0.0.1", "localhost"):
            async with await open_ssl_over_tcp_stream(host, port_of(listeners), ssl_context=client_ctx) as client:
                assert isinstance(client, SSLStream)
                assert client.server_hostname == host
                await client.send_all(b"hello " + host.encode())
                assert await client.receive_some() == b"hello " + host.encode()
                assert client.selected_alpn_protocol() == "echo/1"
                assert client.version() == "TLSv1.3"
        n.cancel_scope.cancel()
    # serve_ssl_over_tcp owned the listener and closed it.
    assert listener.transport_listener.socket.fileno() == -1


async def test_default_context_verifies_against_the_system_trust_store(monkeypatch: pytest.MonkeyPatch) -> None:
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_ssl_over_tcp, echo, 0, server_context(), host="127.0.0.1"))
        port = port_of(listeners)

        # Our test CA is not in the system's store: the certificate does
        # not verify, and the error says so.
        client = await open_ssl_over_tcp_stream("127.0.0.1", port)
        context = client.context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.options & ssl.OP_NO_RENEGOTIATION
        SERVER_ERRORS.clear()
        with pytest.raises(BrokenResourceError, match="CERTIFICATE_VERIFY_FAILED") as info:
            await client.do_handshake()
        assert "unable to get local issuer certificate" in str(info.value)
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        await client.aclose()
        # The client's alert told the server why.
        while not SERVER_ERRORS:
            await nursery.sleep(0.01)
        assert "TLSV1_ALERT_UNKNOWN_CA" in str(SERVER_ERRORS[0])

        # Made part of the "system" store (OpenSSL reads SSL_CERT_FILE), the
        # same call connects.
        with CA.cert_pem.tempfile() as ca_file:
            monkeypatch.setenv("SSL_CERT_FILE", ca_file)
            async with await open_ssl_over_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(b"trusted")
                assert await client.receive_some() == b"trusted"
        n.cancel_scope.cancel()


async def test_hostname_mismatch_is_reported_at_the_first_use() -> None:
    other_cert = CA.issue_cert("example.org")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    other_cert.configure_cert(context)
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_ssl_over_tcp, echo, 0, context, host="127.0.0.1"))
        client = await open_ssl_over_tcp_stream("127.0.0.1", port_of(listeners), ssl_context=client_context())
        mismatch = r"TLS handshake with '127.0.0.1' failed: .*CERTIFICATE_VERIFY_FAILED.*IP address mismatch"
        with pytest.raises(BrokenResourceError, match=mismatch):
            await client.send_all(b"x")
        await client.aclose()
        n.cancel_scope.cancel()


async def test_https_compatible_reaches_both_ends() -> None:
    results: list[object] = []

    async def handler(stream: SSLStream) -> None:
        try:
            results.append(await stream.receive_some())
            results.append(await stream.receive_some())
        except BrokenResourceError as exc:
            results.append(exc)

    for compatible in (True, False):
        results.clear()
        async with nursery.open_nursery() as n:
            listeners = await n.start(
                partial(serve_ssl_over_tcp, handler, 0, server_context(), host="127.0.0.1", https_compatible=compatible)
            )
            client = await open_ssl_over_tcp_stream(
                "127.0.0.1", port_of(listeners), ssl_context=client_context(), https_compatible=True
            )
            await client.send_all(b"request")
            # An https_compatible client closes without close_notify...
            await client.aclose()
            while len(results) < 2:
                await wait_all_tasks_blocked()
                await nursery.sleep(0.01)
            n.cancel_scope.cancel()
        assert results[0] == b"request"
        if compatible:
            # ...which an https_compatible server takes for the end...
            assert results[1] == b""
        else:
            # ...and a strict one for a possible truncation attack.
            assert isinstance(results[1], BrokenResourceError)
            assert "without sending a TLS close_notify" in str(results[1])


async def test_open_ssl_over_tcp_listeners() -> None:
    listeners = await open_ssl_over_tcp_listeners(0, server_context(), host="127.0.0.1", backlog=5)
    (listener,) = listeners
    async with listener:
        assert isinstance(listener, SSLListener)
        port = port_of(listeners)

        async def client_side() -> None:
            async with await open_ssl_over_tcp_stream("localhost", port, ssl_context=client_context()) as client:
                await client.send_all(b"over a listener")

        async with nursery.open_nursery() as n:
            n.start_soon(client_side)
            server = await listener.accept()
            assert server.server_side
            async with server:
                assert await server.receive_some() == b"over a listener"
                assert await server.receive_some() == b""


async def test_many_clients_at_once_each_echoed() -> None:
    async def client(port: int, seed: int) -> None:
        data = random.Random(seed).randbytes(100_000)
        async with await open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=client_ctx) as stream:
            async with nursery.open_nursery() as n:
                n.start_soon(stream.send_all, data)
                got = bytearray()
                while len(got) < len(data):
                    got += await stream.receive_some()
            assert got == data

    client_ctx = client_context()
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_ssl_over_tcp, echo, 0, server_context(), host="127.0.0.1"))
        async with nursery.open_nursery() as clients:
            for seed in range(20):
                clients.start_soon(client, port_of(listeners), seed)
        n.cancel_scope.cancel()


async def test_echo_of_a_large_transfer_is_intact() -> None:
    size = 16 << 20
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_ssl_over_tcp, echo, 0, server_context(), host="127.0.0.1"))
        port = port_of(listeners)
        async with await open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=client_context()) as stream:
            block = random.Random(7).randbytes(1 << 20)
            sent = hashlib.sha256()

            async def sender() -> None:
                for i in range(size // len(block)):
                    piece = block[i:] + block[:i]
                    sent.update(piece)
                    await stream.send_all(piece)

            received = hashlib.sha256()
            count = 0
            async with nursery.open_nursery() as inner:
                inner.start_soon(sender)
                while count < size:
                    chunk = await stream.receive_some()
                    received.update(chunk)
                    count += len(chunk)
            assert count == size and received.digest() == sent.digest()
        n.cancel_scope.cancel()


async def test_handler_nursery_is_used() -> None:
    tasks_in: list[object] = []

    async def handler(stream: SSLStream) -> None:
        tasks_in.append(nursery.lowlevel.current_task().parent_nursery)
        await stream.do_handshake()
        await stream.aclose()

    async with nursery.open_nursery() as handlers:
        async with nursery.open_nursery() as n:
            listeners = await n.start(
                partial(serve_ssl_over_tcp, handler, 0, server_context(), host="127.0.0.1", handler_nursery=handlers)
            )
            client = await open_ssl_over_tcp_stream("127.0.0.1", port_of(listeners), ssl_context=client_context())
            await client.do_handshake()
            assert await client.receive_some() == b""
            await client.aclose()
            n.cancel_scope.cancel()
    assert tasks_in == [handlers]


async def test_bad_arguments() -> None:
    bad_context = r"open_ssl_over_tcp_stream\(\) ssl_context must be an ssl.SSLContext or None, got 'ctx'"
    with pytest.raises(TypeError, match=bad_context):
        await open_ssl_over_tcp_stream("127.0.0.1", 1, ssl_context="ctx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"open_ssl_over_tcp_stream\(\) host must be a host name or IP address"):
        await open_ssl_over_tcp_stream(1234, 443)  # type: ignore[arg-type]
    bad_context = r"open_ssl_over_tcp_listeners\(\) ssl_context must be an ssl.SSLContext, got None"
    with pytest.raises(TypeError, match=bad_context):
        await open_ssl_over_tcp_listeners(0, None)  # type: ignore[arg-type]
    client_only = r"open_ssl_over_tcp_listeners\(\) needs a server-side ssl.SSLContext, got a client-only one"
    with pytest.raises(ValueError, match=client_only):
        await open_ssl_over_tcp_listeners(0, ssl.create_default_context(), host="127.0.0.1")
    with pytest.raises(TypeError, match=r"serve_ssl_over_tcp\(\) handler must be an async function"):
        await serve_ssl_over_tcp("not callable", 0, server_context())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a server-side ssl.SSLContext"):
        await serve_ssl_over_tcp(echo, 0, client_context(), host="127.0.0.1")


async def test_connecting_to_a_closed_port_names_the_address() -> None:
    # A port that was free a moment ago: bound, then closed without listening.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        await open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=client_context())

"""open_tcp_listeners: which addresses get a listener, socket options,
port 0, backlog, errors for bad input and ports in use; and
open_stream_to_socket_listener."""

from __future__ import annotations

import errno
import socket as stdlib_socket

import pytest

import nursery
import nursery._open_tcp_listeners as otl
from nursery import SocketListener, open_tcp_listeners
from nursery.testing import open_stream_to_socket_listener

AF_INET = stdlib_socket.AF_INET
AF_INET6 = stdlib_socket.AF_INET6


async def close_all(listeners):
    for listener in listeners:
        await listener.aclose()


def sockname(listener):
    return listener.socket.getsockname()


async def test_loopback_ipv4():
    listeners = await open_tcp_listeners(0, host="127.0.0.1")
    try:
        (listener,) = listeners
        assert isinstance(listener, SocketListener)
        host, port = sockname(listener)
        assert host == "127.0.0.1" and port > 0
        sock = listener.socket
        assert sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR)
        assert sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ACCEPTCONN)
        # Connect and talk, both ways.
        client = await open_stream_to_socket_listener(listener)
        server = await listener.accept()
        async with client, server:
            await client.send_all(b"hello")
            assert await server.receive_some() == b"hello"
            await server.send_all(b"back")
            assert await client.receive_some() == b"back"
    finally:
        await close_all(listeners)


async def test_loopback_ipv6_is_v6only():
    (listener,) = await open_tcp_listeners(0, host="::1")
    async with listener:
        assert sockname(listener)[0] == "::1"
        assert listener.socket.getsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY)
        async with await open_stream_to_socket_listener(listener) as client, await listener.accept() as server:
            await client.send_eof()
            assert await server.receive_some() == b""


async def test_wildcard_listens_on_both_families_with_one_port():
    listeners = await open_tcp_listeners(0)
    try:
        families = sorted(listener.socket.family for listener in listeners)
        assert families == sorted([AF_INET, AF_INET6])
        hosts = {listener.socket.family: sockname(listener)[0] for listener in listeners}
        assert hosts == {AF_INET: "0.0.0.0", AF_INET6: "::"}
        # Port 0: the kernel picked one port, and both listeners have it.
        ports = {sockname(listener)[1] for listener in listeners}
        assert len(ports) == 1 and ports.pop() > 0
        # Each is reachable through its family's loopback address.
        for listener in listeners:
            async with await open_stream_to_socket_listener(listener) as client:
                peer = await listener.accept()
                async with peer:
                    assert client.socket.getpeername()[0] in ("127.0.0.1", "::1")
                    assert peer.socket.family == listener.socket.family
    finally:
        await close_all(listeners)


async def test_port_0_falls_back_to_a_port_per_address_when_the_shared_one_is_taken(monkeypatch):
    # Hold every port the first address might get on the second address:
    # simulate it by making each bind of a later address fail as in use.
    real_open_all = otl._open_all
    calls = []

    async def open_all(targets, backlog, share_port):
        calls.append(share_port)
        if share_port:
            raise otl._PortTaken
        return await real_open_all(targets, backlog, share_port)

    monkeypatch.setattr(otl, "_open_all", open_all)
    listeners = await open_tcp_listeners(0)
    try:
        assert calls == [True] * otl._SAME_PORT_ATTEMPTS + [False]
        assert len(listeners) == 2
        assert all(sockname(listener)[1] > 0 for listener in listeners)
    finally:
        await close_all(listeners)


async def test_shared_port_taken_on_the_second_address_starts_over():
    # Occupy, on ::, the port the kernel will give 0.0.0.0 first: we cannot
    # predict it, so check the retry path directly with a port we hold.
    with stdlib_socket.socket(AF_INET6) as blocker:
        blocker.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
        blocker.bind(("::", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        targets = [
            (AF_INET, stdlib_socket.SOCK_STREAM, 6, "", ("0.0.0.0", 0)),
            (AF_INET6, stdlib_socket.SOCK_STREAM, 6, "", ("::", 0, 0, 0)),
        ]
        # Bind the IPv4 one to the blocked port as if the kernel had chosen it.
        targets[0] = (AF_INET, stdlib_socket.SOCK_STREAM, 6, "", ("0.0.0.0", port))
        with pytest.raises(otl._PortTaken):
            await otl._open_all(targets, 5, share_port=True)
    # Nothing is left open (the leak check verifies the descriptors).


async def test_localhost_name_and_backlog():
    listeners = await open_tcp_listeners(0, host="localhost", backlog=3)
    try:
        expected = {info[4][0] for info in stdlib_socket.getaddrinfo("localhost", 0, type=stdlib_socket.SOCK_STREAM)}
        assert {sockname(listener)[0] for listener in listeners} == expected
    finally:
        await close_all(listeners)


async def test_bytes_host():
    (listener,) = await open_tcp_listeners(0, host=b"127.0.0.1")
    async with listener:
        assert sockname(listener)[0] == "127.0.0.1"


async def test_fixed_port_and_restart_reuses_it():
    (first,) = await open_tcp_listeners(0, host="127.0.0.1")
    port = sockname(first)[1]
    # A connection leaves the server's end in TIME_WAIT once closed by the
    # server first; SO_REUSEADDR lets the restarted server bind anyway.
    client = await open_stream_to_socket_listener(first)
    server = await first.accept()
    await server.aclose()
    await client.aclose()
    await first.aclose()
    (second,) = await open_tcp_listeners(port, host="127.0.0.1")
    async with second:
        assert sockname(second) == ("127.0.0.1", port)


async def test_port_in_use_names_the_address():
    with stdlib_socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError) as info:
            await open_tcp_listeners(port, host="127.0.0.1")
    assert info.value.errno == errno.EADDRINUSE
    assert str(info.value) == (
        f"[Errno {errno.EADDRINUSE}] could not listen on 127.0.0.1:{port}: Address already in use"
    )
    assert info.value.__cause__.errno == errno.EADDRINUSE


async def test_port_in_use_on_one_address_closes_the_others():
    with stdlib_socket.socket(AF_INET6) as holder:
        holder.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
        holder.bind(("::", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=rf"could not listen on \[::\]:{port}: Address already in use"):
            # 0.0.0.0 binds first, then :: fails: the IPv4 listener is closed.
            await open_tcp_listeners(port)
    # The leak check fails the test if the IPv4 socket stayed open; and the
    # port is free again on IPv4:
    (listener,) = await open_tcp_listeners(port, host="0.0.0.0")
    await listener.aclose()


async def test_unsupported_family_is_skipped(monkeypatch):
    real = otl._new_listening_socket

    def no_ipv6(family, type_, proto):
        if family == AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, type_, proto)

    monkeypatch.setattr(otl, "_new_listening_socket", no_ipv6)
    listeners = await open_tcp_listeners(0)
    try:
        assert [listener.socket.family for listener in listeners] == [AF_INET]
    finally:
        await close_all(listeners)

    with pytest.raises(OSError) as info:
        await open_tcp_listeners(0, host="::1")
    assert info.value.errno == errno.EAFNOSUPPORT
    assert str(info.value) == (
        f"[Errno {errno.EAFNOSUPPORT}] this system supports none of the address families that the host resolved to"
    )
    assert isinstance(info.value.__cause__, ExceptionGroup)


async def test_host_that_does_not_resolve():
    with pytest.raises(stdlib_socket.gaierror) as info:
        await open_tcp_listeners(0, host="no-such-host.invalid")
    assert str(info.value).startswith(
        f"[Errno {info.value.errno}] could not resolve host 'no-such-host.invalid' to listen on (port 0): "
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "exc_type", "message"),
    [
        (("80",), {}, TypeError, "open_tcp_listeners() port must be an int, got '80' (did you mean 80?)"),
        ((None,), {}, TypeError, "open_tcp_listeners() port must be an int, got None"),
        ((65536,), {}, ValueError, "open_tcp_listeners() port must be in the range 0-65535, got 65536"),
        (
            (0,),
            {"host": 0},
            TypeError,
            "open_tcp_listeners() host must be a host name or IP address (str or bytes), "
            "or None for every local interface, got 0",
        ),
        ((0,), {"backlog": "10"}, TypeError, "open_tcp_listeners() backlog must be an int or None, got '10'"),
        (
            (0,),
            {"backlog": -1},
            ValueError,
            "open_tcp_listeners() backlog must be >= 0 (or None for the system's maximum), got -1",
        ),
    ],
)
async def test_bad_arguments(args, kwargs, exc_type, message):
    with pytest.raises(exc_type) as info:
        await open_tcp_listeners(*args, **kwargs)
    assert str(info.value) == message


async def test_is_a_checkpoint():
    with nursery.CancelScope() as scope:
        scope.cancel()
        await open_tcp_listeners(0, host="127.0.0.1")
    assert scope.cancelled_caught


# ----------------------------------------------------------------------
# open_stream_to_socket_listener


async def test_open_stream_to_socket_listener_bad_argument():
    with pytest.raises(TypeError) as info:
        await open_stream_to_socket_listener(("127.0.0.1", 80))
    assert str(info.value) == (
        "open_stream_to_socket_listener() needs a nursery.SocketListener, got ('127.0.0.1', 80)"
    )


async def test_open_stream_to_a_closed_listener():
    (listener,) = await open_tcp_listeners(0, host="127.0.0.1")
    await listener.aclose()
    with pytest.raises(OSError):
        # The listener's socket is closed: there is no address to read.
        await open_stream_to_socket_listener(listener)

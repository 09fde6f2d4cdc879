"""nursery.socket: the async socket object and its module functions."""

from __future__ import annotations

import array
import errno
import os
import socket as stdlib_socket
import threading
from typing import Any

import pytest

import nursery
import nursery._socket as socket_impl
import nursery.socket as nsocket
from nursery import BusyResourceError, ClosedResourceError
from nursery.testing import assert_checkpoints, wait_all_tasks_blocked


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    probe = stdlib_socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def tcp_pair() -> tuple[nsocket.SocketType, nsocket.SocketType]:
    """A connected pair of loopback TCP sockets (client, server side)."""
    with nsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = nsocket.socket()
        await client.connect(listener.getsockname())
        server, _ = await listener.accept()
    return client, server


def fill(sock: nsocket.SocketType) -> int:
    sent = 0
    try:
        while True:
            sent += sock._sock.send(b"\0" * 65536)
    except BlockingIOError:
        return sent


def drain(sock: nsocket.SocketType) -> int:
    got = 0
    try:
        while True:
            data = sock._sock.recv(65536)
            if not data:
                return got
            got += len(data)
    except BlockingIOError:
        return got


# --------------------------------------------------------------------------
# the module


def test_constants_and_exceptions_are_the_stdlib_ones() -> None:
    for name in ("AF_INET", "AF_INET6", "AF_UNIX", "SOCK_STREAM", "SOCK_DGRAM", "SOL_SOCKET", "SO_REUSEADDR",
                 "IPPROTO_TCP", "TCP_NODELAY", "SHUT_WR", "MSG_PEEK", "AI_PASSIVE", "NI_NUMERICHOST", "SCM_RIGHTS"):
        assert getattr(nsocket, name) == getattr(stdlib_socket, name), name
        assert name in nsocket.__all__
    assert nsocket.gaierror is stdlib_socket.gaierror
    assert nsocket.herror is stdlib_socket.herror
    assert nsocket.timeout is stdlib_socket.timeout
    assert nsocket.error is OSError
    assert nsocket.inet_pton is stdlib_socket.inet_pton
    assert nsocket.htons(1) == stdlib_socket.htons(1)
    # The blocking stdlib lookups are not offered as they are.
    assert not hasattr(nsocket, "gethostbyname")
    assert not hasattr(nsocket, "create_connection")


def test_public_names_belong_to_nursery_socket() -> None:
    assert nsocket.SocketType.__module__ == "nursery.socket"
    assert nsocket.socketpair.__module__ == "nursery.socket"
    assert nursery.socket is nsocket


def test_socket_defaults_and_properties() -> None:
    with nsocket.socket() as sock:
        assert sock.family == stdlib_socket.AF_INET
        assert sock.type == stdlib_socket.SOCK_STREAM
        assert sock.proto == 0
        assert sock.fileno() >= 0
        # Always non-blocking underneath.
        assert sock._sock.getblocking() is False
        assert repr(sock).startswith("<nursery.socket.SocketType fd=")
    assert sock.fileno() == -1
    sock.close()  # twice: nothing happens


def test_udp_and_ipv6_sockets() -> None:
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as sock:
        assert sock.type == nsocket.SOCK_DGRAM
    if nsocket.has_ipv6:
        with nsocket.socket(nsocket.AF_INET6) as sock:
            assert sock.family == nsocket.AF_INET6


def test_from_stdlib_socket_takes_the_socket_over() -> None:
    raw = stdlib_socket.socket()
    assert raw.getblocking()
    sock = nsocket.from_stdlib_socket(raw)
    assert raw.getblocking() is False
    assert sock.fileno() == raw.fileno()
    sock.close()
    assert raw.fileno() == -1


def test_from_stdlib_socket_rejects_other_objects() -> None:
    with pytest.raises(TypeError) as info:
        nsocket.from_stdlib_socket(3)  # type: ignore[arg-type]
    assert str(info.value) == (
        "expected a socket.socket from the standard library, got 3 "
        "(use nursery.socket.socket() to make a new socket)"
    )


def test_fromfd_duplicates_and_leaves_the_fd_open() -> None:
    raw = stdlib_socket.socket()
    with nsocket.fromfd(raw.fileno(), stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM) as sock:
        assert sock.fileno() != raw.fileno()
    os.fstat(raw.fileno())  # still open
    raw.close()


def test_socket_with_fileno_detects_the_kind() -> None:
    raw = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    with nsocket.socket(fileno=raw.detach()) as sock:
        assert sock.family == stdlib_socket.AF_INET
        assert sock.type == stdlib_socket.SOCK_DGRAM


def test_dup_detach_and_inheritable() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        c = a.dup()
        assert isinstance(c, nsocket.SocketType) and c.fileno() != a.fileno()
        assert a.get_inheritable() is False
        a.set_inheritable(True)
        assert a.get_inheritable() is True
        fd = c.detach()
        assert c.fileno() == -1
        os.close(fd)


def test_close_outside_a_run_is_fine() -> None:
    a, b = nsocket.socketpair()
    a.close()
    b.close()
    assert a.fileno() == b.fileno() == -1


# --------------------------------------------------------------------------
# name resolution


async def test_getaddrinfo_numeric_needs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_threads(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a numeric address was looked up in a thread")

    monkeypatch.setattr(nursery.to_thread, "run_sync", no_threads)
    with assert_checkpoints():
        infos = await nsocket.getaddrinfo("127.0.0.1", 80, type=nsocket.SOCK_STREAM)
    assert infos == stdlib_socket.getaddrinfo("127.0.0.1", 80, type=stdlib_socket.SOCK_STREAM)
    with assert_checkpoints():
        infos = await nsocket.getaddrinfo("::1", "443", nsocket.AF_INET6, nsocket.SOCK_STREAM)
    assert infos[0][4][:2] == ("::1", 443)
    infos = await nsocket.getaddrinfo(None, 0, nsocket.AF_INET, nsocket.SOCK_STREAM, 0, nsocket.AI_PASSIVE)
    assert infos[0][4] == ("0.0.0.0", 0)


async def test_getaddrinfo_of_a_name_runs_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    real = stdlib_socket.getaddrinfo
    threads = []

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(stdlib_socket, "getaddrinfo", recording)
    infos = await nsocket.getaddrinfo("localhost", 80, nsocket.AF_INET, nsocket.SOCK_STREAM)
    assert ("127.0.0.1", 80) in [info[4] for info in infos]
    assert threads and threads[-1] is not threading.current_thread()


async def test_getaddrinfo_of_an_unknown_name_raises_gaierror(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine may have no resolver: answer as one would for a name that
    # does not exist.
    real = stdlib_socket.getaddrinfo

    def resolver(host: Any, *args: Any) -> Any:
        if host == "no-such-host.invalid":
            raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")
        return real(host, *args)

    monkeypatch.setattr(stdlib_socket, "getaddrinfo", resolver)
    with pytest.raises(nsocket.gaierror) as info:
        await nsocket.getaddrinfo("no-such-host.invalid", 80)
    assert info.value.errno == stdlib_socket.EAI_NONAME


async def test_cancelled_getaddrinfo_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(*args: Any) -> Any:
        started.set()
        release.wait(10)
        return []

    monkeypatch.setattr(stdlib_socket, "getaddrinfo", slow)
    with nursery.move_on_after(0.05) as scope:
        await nsocket.getaddrinfo("example.test", 80)
    assert scope.cancelled_caught
    assert started.is_set()
    release.set()  # let the abandoned thread finish


async def test_getnameinfo_numeric_and_by_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = nsocket.NI_NUMERICHOST | nsocket.NI_NUMERICSERV
    with assert_checkpoints():
        assert await nsocket.getnameinfo(("127.0.0.1", 1234), flags) == ("127.0.0.1", "1234")
    real = stdlib_socket.getnameinfo
    threads = []

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(stdlib_socket, "getnameinfo", recording)
    host, port = await nsocket.getnameinfo(("127.0.0.1", 1234), nsocket.NI_NUMERICSERV)
    assert port == "1234" and host
    assert threads and threads[-1] is not threading.current_thread()


# --------------------------------------------------------------------------
# bind, listen, connect, accept


async def test_bind_numeric_is_a_checkpoint_and_needs_no_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_lookups(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a numeric address was looked up")

    monkeypatch.setattr(socket_impl, "getaddrinfo", no_lookups)
    with nsocket.socket() as sock:
        with assert_checkpoints():
            await sock.bind(("127.0.0.1", 0))
        assert sock.getsockname()[0] == "127.0.0.1"
    with nsocket.socket() as sock:
        await sock.bind(("", 0))
        assert sock.getsockname()[0] == "0.0.0.0"


async def test_bind_by_name() -> None:
    with nsocket.socket() as sock:
        await sock.bind(("localhost", 0))
        assert sock.getsockname()[0] == "127.0.0.1"


async def test_bind_a_port_in_use_raises() -> None:
    with nsocket.socket() as first, nsocket.socket() as second:
        await first.bind(("127.0.0.1", 0))
        first.listen()
        with pytest.raises(OSError) as info:
            await second.bind(first.getsockname())
        assert info.value.errno == errno.EADDRINUSE


async def test_bind_unix_path(tmp_path: Any) -> None:
    path = str(tmp_path / "sock")
    with nsocket.socket(nsocket.AF_UNIX) as sock:
        await sock.bind(path)
        assert sock.getsockname() == path


async def test_bad_address_shapes_are_type_errors() -> None:
    with nsocket.socket() as sock:
        with pytest.raises(TypeError) as info:
            await sock.bind("127.0.0.1")
        assert str(info.value) == "bind(): an address for family AF_INET must be a (host, port) tuple, got '127.0.0.1'"
        with pytest.raises(TypeError) as info:
            await sock.connect(("127.0.0.1", 1, 2))
        assert str(info.value) == (
            "connect(): an address for family AF_INET must be a (host, port) tuple, got ('127.0.0.1', 1, 2)"
        )
    with nsocket.socket(nsocket.AF_INET6) as sock:
        with pytest.raises(TypeError) as info:
            await sock.bind(("::1",))
        assert str(info.value) == (
            "bind(): an address for family AF_INET6 must be a (host, port[, flowinfo[, scope_id]]) tuple, got ('::1',)"
        )


async def test_connect_and_accept() -> None:
    with nsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        with nsocket.socket() as client:
            with assert_checkpoints():
                await client.connect(listener.getsockname())
            with assert_checkpoints():
                server, addr = await listener.accept()
            with server:
                assert isinstance(server, nsocket.SocketType)
                assert server._sock.getblocking() is False
                assert addr == client.getsockname()
                assert server.getpeername() == client.getsockname()
                await client.send(b"ping")
                assert await server.recv(10) == b"ping"


async def test_connect_by_name() -> None:
    with nsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with nsocket.socket() as client:
            await client.connect(("localhost", port))
            assert client.getpeername() == ("127.0.0.1", port)
            server, _ = await listener.accept()
            server.close()


async def test_connect_refused_message_names_the_address() -> None:
    port = free_port()
    with nsocket.socket() as sock:
        with pytest.raises(ConnectionRefusedError) as info:
            await sock.connect(("127.0.0.1", port))
    assert info.value.errno == errno.ECONNREFUSED
    assert str(info.value) == (
        f"[Errno {errno.ECONNREFUSED}] Error connecting to ('127.0.0.1', {port}): Connection refused"
    )


async def test_connect_refused_unix_names_the_path(tmp_path: Any) -> None:
    path = str(tmp_path / "nobody-listens")
    with nsocket.socket(nsocket.AF_UNIX) as sock:
        with pytest.raises(FileNotFoundError) as info:
            await sock.connect(path)
    assert f"Error connecting to {path!r}" in str(info.value)


async def test_cancelled_connect_closes_the_socket() -> None:
    # A listener with a backlog of 0 whose queue is full: the kernel drops
    # further SYNs, so the next connect stays in progress.
    with nsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        queued = []
        blocked = None
        try:
            for _ in range(8):
                sock = nsocket.socket()
                with nursery.move_on_after(0.2) as scope:
                    await sock.connect(address)
                if scope.cancelled_caught:
                    blocked = sock
                    break
                queued.append(sock)
            assert blocked is not None, "every connect succeeded; could not fill the backlog"
            assert blocked.fileno() == -1
        finally:
            for sock in queued:
                sock.close()


async def test_accept_waiter_gets_closed_resource_error_when_listener_closes() -> None:
    listener = nsocket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    async with nursery.open_nursery() as n:

        async def acceptor() -> None:
            with pytest.raises(ClosedResourceError):
                await listener.accept()

        n.start_soon(acceptor)
        await wait_all_tasks_blocked()
        listener.close()


# --------------------------------------------------------------------------
# data


async def test_recv_into_send_and_shutdown() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        assert await a.send(b"hello world") == 11
        buf = bytearray(5)
        assert await b.recv_into(buf) == 5
        assert buf == b"hello"
        assert await b.recv_into(buf, 3) == 3
        assert buf[:3] == b" wo"
        a.shutdown(nsocket.SHUT_WR)
        assert a.did_shutdown_SHUT_WR
        assert await b.recv(10) == b"rld"
        assert await b.recv(10) == b""


async def test_udp_sendto_and_recvfrom() -> None:
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as a, nsocket.socket(
        nsocket.AF_INET, nsocket.SOCK_DGRAM
    ) as b:
        await a.bind(("127.0.0.1", 0))
        await b.bind(("127.0.0.1", 0))
        with assert_checkpoints():
            assert await a.sendto(b"one", b.getsockname()) == 3
        with assert_checkpoints():
            data, addr = await b.recvfrom(100)
        assert (data, addr) == (b"one", a.getsockname())
        # sendto(data, flags, address), and a host name as the address.
        await a.sendto(b"two", 0, ("localhost", b.getsockname()[1]))
        buf = bytearray(10)
        nbytes, addr = await b.recvfrom_into(buf)
        assert (bytes(buf[:nbytes]), addr) == (b"two", a.getsockname())
        await a.sendto(b"three", b.getsockname())
        nbytes, addr = await b.recvfrom_into(buf, 2)
        assert bytes(buf[:nbytes]) == b"th"  # a datagram is cut, not split


async def test_sendto_argument_count() -> None:
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as sock:
        with pytest.raises(TypeError) as info:
            await sock.sendto(b"x")
        assert str(info.value) == "sendto() takes (data, address) or (data, flags, address), got 1 arguments"


async def test_recvfrom_waits_for_a_datagram() -> None:
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as a, nsocket.socket(
        nsocket.AF_INET, nsocket.SOCK_DGRAM
    ) as b:
        await a.bind(("127.0.0.1", 0))
        await b.bind(("127.0.0.1", 0))
        got = []
        async with nursery.open_nursery() as n:

            async def receiver() -> None:
                got.append(await b.recvfrom(10))

            n.start_soon(receiver)
            await wait_all_tasks_blocked()
            assert got == []
            await a.sendto(b"late", b.getsockname())
        assert got == [(b"late", a.getsockname())]


@pytest.mark.skipif(not hasattr(stdlib_socket.socket, "sendmsg"), reason="no sendmsg/recvmsg here")
async def test_sendmsg_and_recvmsg_pass_a_file_descriptor() -> None:
    a, b = nsocket.socketpair()
    read_end, write_end = os.pipe()
    try:
        with a, b:
            fds = array.array("i", [write_end])
            with assert_checkpoints():
                sent = await a.sendmsg([b"fd", b"!"], [(nsocket.SOL_SOCKET, nsocket.SCM_RIGHTS, fds.tobytes())])
            assert sent == 3
            with assert_checkpoints():
                data, ancdata, flags, _ = await b.recvmsg(10, nsocket.CMSG_SPACE(fds.itemsize))
            assert data == b"fd!"
            assert flags == 0
            [(level, kind, payload)] = ancdata
            assert (level, kind) == (nsocket.SOL_SOCKET, nsocket.SCM_RIGHTS)
            received = array.array("i")
            received.frombytes(payload[: fds.itemsize])
            passed_fd = received[0]
            assert passed_fd != write_end
            # The passed descriptor is the pipe's write end.
            os.write(passed_fd, b"through the copy")
            os.close(passed_fd)
            assert os.read(read_end, 100) == b"through the copy"
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(not hasattr(stdlib_socket.socket, "recvmsg_into"), reason="no recvmsg_into here")
async def test_recvmsg_into_waits_and_fills_the_buffers() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        first, second = bytearray(2), bytearray(10)
        result = []
        async with nursery.open_nursery() as n:

            async def receiver() -> None:
                result.append(await b.recvmsg_into([first, second]))

            n.start_soon(receiver)
            await wait_all_tasks_blocked()
            await a.sendmsg([b"hello"])
        [(nbytes, ancdata, flags, _)] = result
        assert (nbytes, ancdata, flags) == (5, [], 0)
        assert first == b"he" and second[:3] == b"llo"


async def test_sendmsg_to_an_address() -> None:
    with nsocket.socket(nsocket.AF_INET, nsocket.SOCK_DGRAM) as a, nsocket.socket(
        nsocket.AF_INET, nsocket.SOCK_DGRAM
    ) as b:
        await b.bind(("127.0.0.1", 0))
        assert await a.sendmsg([b"via ", b"sendmsg"], [], 0, b.getsockname()) == 11
        assert (await b.recvfrom(100))[0] == b"via sendmsg"


async def test_send_waits_for_room_in_the_buffer() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        fill(a)
        sent = []
        async with nursery.open_nursery() as n:

            async def sender() -> None:
                sent.append(await a.send(b"more"))

            n.start_soon(sender)
            await wait_all_tasks_blocked()
            assert sent == []
            drain(b)
        assert sent == [4]


# --------------------------------------------------------------------------
# checkpoints, cancellation, closing, conflicts


async def test_recv_with_data_waiting_is_still_a_checkpoint() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        await a.send(b"ready")
        with assert_checkpoints():
            assert await b.recv(10) == b"ready"
        with assert_checkpoints():
            assert await a.send(b"x") == 1


async def test_recv_in_a_cancelled_scope_takes_nothing() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        await a.send(b"keep me")
        with nursery.CancelScope() as scope:
            scope.cancel()
            await b.recv(10)
        assert scope.cancelled_caught
        with nursery.CancelScope() as scope:
            scope.cancel()
            await a.send(b"never")
        assert scope.cancelled_caught
        assert await b.recv(100) == b"keep me"


async def test_cancelled_blocked_recv_loses_nothing() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        with nursery.move_on_after(0.01) as scope:
            await b.recv(10)
        assert scope.cancelled_caught
        await a.send(b"after")
        assert await b.recv(10) == b"after"


async def test_closing_a_socket_wakes_its_waiter_with_closed_resource_error() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        async with nursery.open_nursery() as n:

            async def reader() -> None:
                with pytest.raises(ClosedResourceError):
                    await b.recv(10)

            n.start_soon(reader)
            await wait_all_tasks_blocked()
            b.close()


async def test_two_receivers_on_one_socket_is_busy_resource_error() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        async with nursery.open_nursery() as n:
            n.start_soon(b.recv, 10)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await b.recv(10)
            await a.send(b"x")


async def test_two_senders_on_one_clogged_socket_is_busy_resource_error() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        fill(a)
        async with nursery.open_nursery() as n:
            n.start_soon(a.send, b"x")
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await a.send(b"y")
            drain(b)


async def test_is_readable_and_wait_writable() -> None:
    a, b = nsocket.socketpair()
    with a, b:
        assert not b.is_readable()
        await a.send(b"x")
        assert b.is_readable()
        await a.wait_writable()  # room in the buffer: returns
        fill(a)
        woke = []
        async with nursery.open_nursery() as n:

            async def waiter() -> None:
                await a.wait_writable()
                woke.append(True)

            n.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert woke == []
            drain(b)
        assert woke == [True]


async def test_listening_socket_is_readable_with_a_pending_connection() -> None:
    with nsocket.socket() as listener, nsocket.socket() as client:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not listener.is_readable()
        await client.connect(listener.getsockname())
        assert listener.is_readable()
        server, _ = await listener.accept()
        server.close()


async def test_socket_options() -> None:
    with nsocket.socket() as sock:
        sock.setsockopt(nsocket.SOL_SOCKET, nsocket.SO_REUSEADDR, 1)
        assert sock.getsockopt(nsocket.SOL_SOCKET, nsocket.SO_REUSEADDR) == 1
        assert len(sock.getsockopt(nsocket.SOL_SOCKET, nsocket.SO_LINGER, 8)) == 8
        with pytest.raises(TypeError) as info:
            sock.setsockopt(nsocket.SOL_SOCKET, nsocket.SO_REUSEADDR, None)
        assert str(info.value) == "setsockopt() needs optlen when value is None"
        with pytest.raises(TypeError) as info:
            sock.setsockopt(nsocket.SOL_SOCKET, nsocket.SO_REUSEADDR, 1, 4)
        assert str(info.value) == "setsockopt() takes either a value or value=None with an optlen, not both"


async def test_tcp_round_trip_of_a_megabyte() -> None:
    client, server = await tcp_pair()
    payload = os.urandom(1 << 20)
    with client, server:
        got = bytearray()
        async with nursery.open_nursery() as n:

            async def sender() -> None:
                view = memoryview(payload)
                while view:
                    view = view[await client.send(view) :]
                client.shutdown(nsocket.SHUT_WR)

            n.start_soon(sender)
            while True:
                chunk = await server.recv(65536)
                if not chunk:
                    break
                got += chunk
    assert got == payload

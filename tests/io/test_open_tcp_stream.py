"""open_tcp_stream: happy eyeballs (RFC 8305) timed on the MockClock with a
fake resolver and fake sockets, then real connections on loopback and the
errors for bad input."""

from __future__ import annotations

import errno
import math
import os
import socket as stdlib_socket
from typing import Any

import pytest

import nursery
import nursery._open_tcp_stream as ots
from nursery import open_tcp_stream
from nursery.testing import check_half_closeable_stream

AF_INET = stdlib_socket.AF_INET
AF_INET6 = stdlib_socket.AF_INET6
SOCK_STREAM = stdlib_socket.SOCK_STREAM


# ----------------------------------------------------------------------
# a fake network: each address connects after a delay, fails after a
# delay, or never answers


class FakeNetwork:
    def __init__(self, addresses: list[str], behaviour: dict[str, tuple[float, Any]]) -> None:
        self.addresses = addresses
        # address -> (seconds, outcome): outcome "ok", an errno, or "hang"
        self.behaviour = behaviour
        self.sockets: list[FakeSocket] = []
        self.resolved: list[tuple[Any, ...]] = []
        self.start = 0.0

    async def getaddrinfo(self, host: Any, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        self.resolved.append((host, port, family, type, proto, flags))
        await nursery.lowlevel.checkpoint()
        return [
            (AF_INET6 if ":" in ip else AF_INET, SOCK_STREAM, 6, "", (ip, port, 0, 0) if ":" in ip else (ip, port))
            for ip in self.addresses
        ]

    def socket(self, family: int, type: int, proto: int) -> FakeSocket:
        sock = FakeSocket(self, family, type, proto)
        self.sockets.append(sock)
        return sock

    def attempts(self) -> list[tuple[float, str]]:
        """(start time relative to the test's start, address) of each connect."""
        return [(round(s.connect_time - self.start, 6), s.sockaddr[0]) for s in self.sockets if s.sockaddr]


class FakeSocket:
    def __init__(self, net: FakeNetwork, family: int, type: int, proto: int) -> None:
        self.net = net
        self.family, self.type, self.proto = family, type, proto
        self.sockaddr: Any = None
        self.connect_time: float | None = None
        self.closed = False
        self.bound: Any = None
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))

    async def bind(self, address: Any) -> None:
        await nursery.lowlevel.checkpoint()
        if self.family == AF_INET6 and "." in address[0]:
            raise stdlib_socket.gaierror(-9, "Address family for hostname not supported")
        self.bound = address

    async def connect(self, sockaddr: Any) -> None:
        assert not self.closed
        self.sockaddr = sockaddr
        self.connect_time = nursery.current_time()
        seconds, outcome = self.net.behaviour[sockaddr[0]]
        if outcome == "hang":
            await nursery.sleep_forever()
        await nursery.sleep(seconds)
        if outcome != "ok":
            raise OSError(outcome, f"Error connecting to {sockaddr!r}: {errno.errorcode[outcome]}")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_network(monkeypatch: pytest.MonkeyPatch):
    """Install a FakeNetwork in open_tcp_stream; the test fills it in."""
    net = FakeNetwork([], {})
    monkeypatch.setattr(ots, "_getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(ots, "_new_socket", net.socket)
    monkeypatch.setattr(ots, "_wrap_stream", lambda sock: ("stream", sock))
    return net


def setup(net: FakeNetwork, addresses: list[str], behaviour: dict[str, tuple[float, Any]]) -> None:
    net.addresses = addresses
    net.behaviour = behaviour
    net.start = nursery.current_time()


# ----------------------------------------------------------------------
# happy eyeballs


async def test_single_address_connects(fake_network, autojump_clock):
    setup(fake_network, ["1.1.1.1"], {"1.1.1.1": (0.1, "ok")})
    kind, sock = await open_tcp_stream("example.com", 80)
    assert kind == "stream"
    assert sock is fake_network.sockets[0]
    assert not sock.closed
    assert fake_network.resolved == [("example.com", 80, 0, SOCK_STREAM, 0, 0)]
    assert (sock.family, sock.type, sock.proto) == (AF_INET, SOCK_STREAM, 6)
    assert fake_network.attempts() == [(0.0, "1.1.1.1")]
    assert nursery.current_time() - fake_network.start == pytest.approx(0.1)


async def test_families_interleave_starting_with_the_first_returned(fake_network, autojump_clock):
    addresses = ["::1", "::2", "::3", "1.1.1.1", "2.2.2.2"]
    setup(fake_network, addresses, {ip: (0.0, errno.ECONNREFUSED) for ip in addresses})
    with pytest.raises(OSError):
        await open_tcp_stream("example.com", 80)
    assert [ip for _, ip in fake_network.attempts()] == ["::1", "1.1.1.1", "::2", "2.2.2.2", "::3"]

    setup(fake_network, ["1.1.1.1", "::1", "::2"], {ip: (0.0, errno.ECONNREFUSED) for ip in ["1.1.1.1", "::1", "::2"]})
    fake_network.sockets.clear()
    with pytest.raises(OSError):
        await open_tcp_stream("example.com", 80)
    assert [ip for _, ip in fake_network.attempts()] == ["1.1.1.1", "::1", "::2"]


async def test_duplicate_addresses_are_tried_once(fake_network, autojump_clock):
    setup(fake_network, ["1.1.1.1", "1.1.1.1", "2.2.2.2"], {"1.1.1.1": (0, errno.ECONNREFUSED), "2.2.2.2": (0, "ok")})
    await open_tcp_stream("example.com", 80)
    assert [ip for _, ip in fake_network.attempts()] == ["1.1.1.1", "2.2.2.2"]


async def test_next_attempt_starts_after_the_delay_and_the_losers_are_closed(fake_network, autojump_clock):
    setup(
        fake_network,
        ["::1", "1.1.1.1", "::2", "2.2.2.2"],
        {"::1": (0, "hang"), "1.1.1.1": (0, "hang"), "::2": (0.1, "ok"), "2.2.2.2": (0, "ok")},
    )
    _, winner = await open_tcp_stream("example.com", 80)
    # One attempt every 0.25 s while they hang; the third connected 0.1 s
    # after it started, before the fourth was due.
    assert fake_network.attempts() == [(0.0, "::1"), (0.25, "1.1.1.1"), (0.5, "::2")]
    assert winner.sockaddr[0] == "::2"
    assert nursery.current_time() - fake_network.start == pytest.approx(0.6)
    assert [s.closed for s in fake_network.sockets] == [True, True, False]


async def test_a_failure_starts_the_next_attempt_at_once(fake_network, autojump_clock):
    setup(
        fake_network,
        ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
        {"1.1.1.1": (0.1, errno.ECONNREFUSED), "2.2.2.2": (0.05, errno.EHOSTUNREACH), "3.3.3.3": (1.0, "ok")},
    )
    _, winner = await open_tcp_stream("example.com", 80)
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (0.1, "2.2.2.2"), (0.15, "3.3.3.3")]
    assert winner.sockaddr[0] == "3.3.3.3"
    # The failed attempts' sockets are closed as well.
    assert [s.closed for s in fake_network.sockets] == [True, True, False]


async def test_only_the_latest_attempt_failing_starts_the_next(fake_network, autojump_clock):
    # The first attempt fails while the second is pending: the third still
    # waits for the second's delay (RFC 8305: the timer or the previous
    # attempt's failure).
    setup(
        fake_network,
        ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
        {"1.1.1.1": (0.3, errno.ECONNREFUSED), "2.2.2.2": (0, "hang"), "3.3.3.3": (0, "ok")},
    )
    await open_tcp_stream("example.com", 80)
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (0.25, "2.2.2.2"), (0.5, "3.3.3.3")]


async def test_custom_delay_and_infinite_delay(fake_network, autojump_clock):
    behaviour = {"1.1.1.1": (5.0, errno.ETIMEDOUT), "2.2.2.2": (1.0, "ok")}
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], behaviour)
    await open_tcp_stream("example.com", 80, happy_eyeballs_delay=2)
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (2.0, "2.2.2.2")]

    fake_network.sockets.clear()
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], behaviour)
    await open_tcp_stream("example.com", 80, happy_eyeballs_delay=math.inf)
    # One at a time: the second only after the first gave up.
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (5.0, "2.2.2.2")]

    fake_network.sockets.clear()
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], behaviour)
    await open_tcp_stream("example.com", 80, happy_eyeballs_delay=None)
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (0.25, "2.2.2.2")]

    fake_network.sockets.clear()
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], behaviour)
    await open_tcp_stream("example.com", 80, happy_eyeballs_delay=0)
    # Delay 0: all at once, still in order.
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (0.0, "2.2.2.2")]


async def test_two_attempts_connecting_at_once_keep_one(fake_network, autojump_clock):
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], {"1.1.1.1": (0.5, "ok"), "2.2.2.2": (0.25, "ok")})
    _, winner = await open_tcp_stream("example.com", 80)
    first, second = fake_network.sockets
    # Both connect at t=0.5; the one that finished first in that batch wins.
    assert nursery.current_time() - fake_network.start == pytest.approx(0.5)
    assert winner in (first, second)
    assert sorted([first.closed, second.closed]) == [False, True]
    assert not winner.closed


async def test_all_attempts_fail_with_one_errno(fake_network, autojump_clock):
    addresses = ["::1", "1.1.1.1"]
    setup(fake_network, addresses, {ip: (0.1, errno.ECONNREFUSED) for ip in addresses})
    with pytest.raises(ConnectionRefusedError) as info:
        await open_tcp_stream("example.com", 443)
    exc = info.value
    assert exc.errno == errno.ECONNREFUSED
    assert str(exc) == (
        f"[Errno {errno.ECONNREFUSED}] could not connect to example.com:443: tried "
        "[::1]:443 (Connection refused); 1.1.1.1:443 (Connection refused)"
    )
    group = exc.__cause__
    assert isinstance(group, ExceptionGroup)
    assert group.message == "connection attempts to example.com:443"
    assert [e.errno for e in group.exceptions] == [errno.ECONNREFUSED] * 2
    assert [e.__notes__ for e in group.exceptions] == [
        ["while connecting to [::1]:443"],
        ["while connecting to 1.1.1.1:443"],
    ]
    assert exc.__suppress_context__
    assert all(s.closed for s in fake_network.sockets)


async def test_all_attempts_fail_with_different_errnos(fake_network, autojump_clock):
    setup(
        fake_network,
        ["1.1.1.1", "2.2.2.2"],
        {"1.1.1.1": (0.1, errno.ENETUNREACH), "2.2.2.2": (0.1, errno.ECONNREFUSED)},
    )
    with pytest.raises(OSError) as info:
        await open_tcp_stream(b"example.com", 80)
    assert type(info.value) is OSError
    assert info.value.errno is None
    assert str(info.value) == (
        "could not connect to example.com:80: tried "
        f"1.1.1.1:80 ({os.strerror(errno.ENETUNREACH)}); "
        "2.2.2.2:80 (Connection refused)"
    )
    assert len(info.value.__cause__.exceptions) == 2


async def test_a_socket_that_cannot_be_created_counts_as_a_failed_attempt(fake_network, autojump_clock, monkeypatch):
    setup(fake_network, ["::1", "1.1.1.1"], {"1.1.1.1": (0.1, "ok")})
    make = fake_network.socket

    def no_ipv6(family, type, proto):
        if family == AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return make(family, type, proto)

    monkeypatch.setattr(ots, "_new_socket", no_ipv6)
    _, winner = await open_tcp_stream("example.com", 80)
    # The IPv4 attempt started at once, not after the delay.
    assert fake_network.attempts() == [(0.0, "1.1.1.1")]
    assert winner.sockaddr == ("1.1.1.1", 80)


async def test_cancelled_from_outside_closes_every_socket(fake_network, autojump_clock):
    addresses = ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    setup(fake_network, addresses, {ip: (0, "hang") for ip in addresses})
    with nursery.move_on_after(0.6) as scope:
        await open_tcp_stream("example.com", 80)
    assert scope.cancelled_caught
    assert fake_network.attempts() == [(0.0, "1.1.1.1"), (0.25, "2.2.2.2"), (0.5, "3.3.3.3")]
    assert all(s.closed for s in fake_network.sockets)


async def test_the_winner_is_closed_if_wrapping_it_fails(fake_network, autojump_clock, monkeypatch):
    setup(fake_network, ["1.1.1.1", "2.2.2.2"], {"1.1.1.1": (0, "hang"), "2.2.2.2": (0, "ok")})

    def wrap(sock):
        raise RuntimeError("wrap failed")

    monkeypatch.setattr(ots, "_wrap_stream", wrap)
    with pytest.raises(RuntimeError, match="wrap failed"):
        await open_tcp_stream("example.com", 80)
    assert len(fake_network.sockets) == 2
    assert all(s.closed for s in fake_network.sockets)


async def test_local_address_is_bound_before_connecting(fake_network, autojump_clock):
    setup(fake_network, ["1.1.1.1"], {"1.1.1.1": (0.1, "ok")})
    _, sock = await open_tcp_stream("example.com", 80, local_address="10.0.0.7")
    assert sock.bound == ("10.0.0.7", 0)
    assert sock.options == [(stdlib_socket.IPPROTO_IP, ots._IP_BIND_ADDRESS_NO_PORT, 1)]


async def test_local_address_of_the_wrong_family_fails_that_attempt(fake_network, autojump_clock):
    setup(fake_network, ["::1", "1.1.1.1"], {"::1": (0, "ok"), "1.1.1.1": (0.1, "ok")})
    _, sock = await open_tcp_stream("example.com", 80, local_address="10.0.0.7")
    # The IPv6 attempt failed at bind(), so the IPv4 one started at once.
    assert fake_network.attempts() == [(0.0, "1.1.1.1")]
    assert sock.bound == ("10.0.0.7", 0)

    setup(fake_network, ["::1"], {"::1": (0, "ok")})
    with pytest.raises(OSError) as info:
        await open_tcp_stream("example.com", 80, local_address="10.0.0.7")
    assert str(info.value) == (
        "could not connect to example.com:80: tried [::1]:80 (cannot bind "
        "local_address='10.0.0.7': Address family for hostname not supported)"
    )


async def test_resolver_failure_names_the_host(fake_network, autojump_clock, monkeypatch):
    async def fail(*args, **kwargs):
        raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(ots, "_getaddrinfo", fail)
    with pytest.raises(stdlib_socket.gaierror) as info:
        await open_tcp_stream("no.such.host", 80)
    assert info.value.errno == stdlib_socket.EAI_NONAME
    assert str(info.value) == (
        f"[Errno {stdlib_socket.EAI_NONAME}] could not resolve host 'no.such.host' (port 80): Name or service not known"
    )
    assert isinstance(info.value.__cause__, stdlib_socket.gaierror)


async def test_resolver_returning_nothing(fake_network, autojump_clock):
    setup(fake_network, [], {})
    with pytest.raises(OSError, match=r"^could not connect to example\.com:80: resolving the host gave no addresses$"):
        await open_tcp_stream("example.com", 80)


# ----------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        (
            {"host": None, "port": 80},
            TypeError,
            "open_tcp_stream() host must be a host name or IP address (str or bytes), got None",
        ),
        (
            {"host": 127, "port": 80},
            TypeError,
            "open_tcp_stream() host must be a host name or IP address (str or bytes), got 127",
        ),
        (
            {"host": "localhost", "port": "80"},
            TypeError,
            "open_tcp_stream() port must be an int, got '80' (did you mean 80?)",
        ),
        ({"host": "localhost", "port": 8.0}, TypeError, "open_tcp_stream() port must be an int, got 8.0"),
        ({"host": "localhost", "port": True}, TypeError, "open_tcp_stream() port must be an int, got True"),
        (
            {"host": "localhost", "port": 70000},
            ValueError,
            "open_tcp_stream() port must be in the range 0-65535, got 70000",
        ),
        ({"host": "localhost", "port": -1}, ValueError, "open_tcp_stream() port must be in the range 0-65535, got -1"),
        (
            {"host": "localhost", "port": 80, "happy_eyeballs_delay": -0.5},
            ValueError,
            "open_tcp_stream() happy_eyeballs_delay must be a number of seconds >= 0 "
            "(math.inf tries one address at a time), got -0.5",
        ),
        (
            {"host": "localhost", "port": 80, "happy_eyeballs_delay": math.nan},
            ValueError,
            "open_tcp_stream() happy_eyeballs_delay must be a number of seconds >= 0 "
            "(math.inf tries one address at a time), got nan",
        ),
        (
            {"host": "localhost", "port": 80, "happy_eyeballs_delay": "0.3"},
            TypeError,
            "open_tcp_stream() happy_eyeballs_delay must be a number of seconds >= 0 "
            "(math.inf tries one address at a time), got '0.3'",
        ),
        (
            {"host": "localhost", "port": 80, "local_address": ("127.0.0.1", 0)},
            TypeError,
            "open_tcp_stream() local_address must be an IP address or host name (str or bytes) or None, "
            "got ('127.0.0.1', 0)",
        ),
    ],
)
async def test_bad_arguments(kwargs, exc_type, message):
    with pytest.raises(exc_type) as info:
        await open_tcp_stream(**kwargs)
    assert str(info.value) == message


# ----------------------------------------------------------------------
# real sockets on loopback


async def test_connects_to_a_real_listener_ipv4_and_ipv6():
    for family, host in [(AF_INET, "127.0.0.1"), (AF_INET6, "::1")]:
        with stdlib_socket.socket(family) as server:
            server.bind((host, 0))
            server.listen()
            port = server.getsockname()[1]
            async with await open_tcp_stream(host, port) as stream:
                peer, _ = server.accept()
                with peer:
                    assert stream.socket.getpeername()[:2] == (host, port)
                    await stream.send_all(b"ping")
                    assert peer.recv(10) == b"ping"
                    peer.sendall(b"pong")
                    assert await stream.receive_some(10) == b"pong"
                # TCP_NODELAY is on, as for every SocketStream.
                assert stream.socket.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY)


async def test_connects_by_name():
    with stdlib_socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        async with await open_tcp_stream("localhost", port) as stream:
            peer, _ = server.accept()
            peer.close()
            assert await stream.receive_some(10) == b""


async def test_local_address_on_loopback():
    with stdlib_socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        async with await open_tcp_stream("127.0.0.1", port, local_address="127.0.0.1") as stream:
            peer, (peer_host, peer_port) = server.accept()
            peer.close()
            assert stream.socket.getsockname() == ("127.0.0.1", peer_port)


def _closed_port(family: int = AF_INET, host: str = "127.0.0.1") -> int:
    """A port nobody listens on: bound (so that nobody else gets it during
    the test) but not listening, which refuses connections."""
    sock = stdlib_socket.socket(family)
    sock.bind((host, 0))
    return sock


async def test_connecting_to_a_closed_port_names_the_address():
    with _closed_port() as placeholder:
        port = placeholder.getsockname()[1]
        with pytest.raises(ConnectionRefusedError) as info:
            await open_tcp_stream("127.0.0.1", port)
    assert str(info.value) == (
        f"[Errno {errno.ECONNREFUSED}] could not connect to 127.0.0.1:{port}: tried "
        f"127.0.0.1:{port} (Connection refused)"
    )
    (cause,) = info.value.__cause__.exceptions
    assert isinstance(cause, ConnectionRefusedError)


async def test_a_name_that_does_not_resolve():
    # .invalid never resolves (RFC 2606).
    with pytest.raises(stdlib_socket.gaierror) as info:
        await open_tcp_stream("no-such-host.invalid", 80)
    assert str(info.value).startswith(f"[Errno {info.value.errno}] could not resolve host 'no-such-host.invalid' (port 80): ")


async def test_real_happy_eyeballs_falls_back_to_the_next_address(monkeypatch):
    # "localhost" with a refusing IPv6 address first and a listening IPv4
    # address second: the failure starts the next attempt at once.
    with stdlib_socket.socket() as server, stdlib_socket.socket(AF_INET6) as v6:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        v6.bind(("::1", port))  # the same port, refusing on IPv6

        async def resolve(host, port, family=0, type=0, proto=0, flags=0):
            return await nursery.socket.getaddrinfo("::1", port, type=type) + await nursery.socket.getaddrinfo(
                "127.0.0.1", port, type=type
            )

        monkeypatch.setattr(ots, "_getaddrinfo", resolve)
        start = nursery.current_time()
        async with await open_tcp_stream("dual.example", port) as stream:
            assert stream.socket.getpeername() == ("127.0.0.1", port)
            server.accept()[0].close()
        # No 0.25 s wait: the refused attempt released the next one.
        assert nursery.current_time() - start < 0.2


async def test_is_a_checkpoint():
    with stdlib_socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with nursery.CancelScope() as scope:
            scope.cancel()
            await open_tcp_stream("127.0.0.1", server.getsockname()[1])
        assert scope.cancelled_caught
    # No socket was left open (the leak check verifies the descriptors).


async def tcp_stream_pair():
    (listener,) = await nursery.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        client = await open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
        server = await listener.accept()
    return client, server


async def test_tcp_streams_pass_the_conformance_check():
    await check_half_closeable_stream(tcp_stream_pair, None)

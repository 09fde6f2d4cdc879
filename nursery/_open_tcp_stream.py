"""``open_tcp_stream``: connect to a host and port, trying its addresses with
the "happy eyeballs" algorithm of RFC 8305.

A host name often resolves to several addresses (IPv6 and IPv4, several
mirrors), and some of them may be unreachable. Trying them one after the
other can wait a long time on a black-holed first address (TCP gives up
after tens of seconds); trying them all at once loads the network and the
server. Happy eyeballs takes the middle road: start with the first address;
start the next one when the previous attempt fails, or when it is still
pending after ``happy_eyeballs_delay`` seconds; the first connection to
succeed wins and every other attempt is cancelled and its socket closed.

The order follows RFC 8305 section 4: the resolver's order within each
address family, with the families interleaved, starting with the family of
the first address returned (IPv6, IPv4, IPv6, IPv4, ... for a typical
dual-stack host). That way a broken IPv6 path costs one delay, not one delay
per IPv6 address. There is no cache of past results (RFC 8305 allows one;
getting it right means tracking network changes, and getting it wrong breaks
connections), and no AI_ADDRCONFIG (it filters inconsistently across
platforms, and hides loopback addresses on hosts without external IPv6).
"""

from __future__ import annotations

import math
import os
import socket as _stdlib_socket
import sys
from itertools import zip_longest
from typing import Any

from . import socket as _nsocket
from ._addresses import check_host, check_port, format_host_port, format_sockaddr
from ._core import open_nursery
from ._event import Event
from ._highlevel_socket import SocketStream
from ._timeouts import move_on_after

__all__ = ["open_tcp_stream", "DEFAULT_HAPPY_EYEBALLS_DELAY"]

#: Seconds to wait for one connection attempt before starting the next one
#: in parallel (RFC 8305 recommends 250 ms).
DEFAULT_HAPPY_EYEBALLS_DELAY = 0.25

# What open_tcp_stream needs from the OS, looked up through these module
# attributes at call time so that the tests can replace them: a fake
# resolver and fake sockets, under the MockClock, make the timing of the
# attempts deterministic. Not public API.
_getaddrinfo = _nsocket.getaddrinfo
_new_socket = _nsocket.socket
_wrap_stream = SocketStream

# Linux: bind() only the local IP and let connect() pick the port, so that
# binding a local address does not use up a port per connection. The value
# is the same on every Linux architecture; older Pythons lack the constant.
_IP_BIND_ADDRESS_NO_PORT = getattr(
    _stdlib_socket, "IP_BIND_ADDRESS_NO_PORT", 24 if sys.platform.startswith("linux") else None
)


def _interleave_families(targets: list[Any]) -> list[Any]:
    """RFC 8305 section 4: keep the resolver's order within each family,
    alternate between the families, starting with the first one returned.
    Drops exact duplicates (a host listed twice in /etc/hosts)."""
    by_family: dict[int, list[Any]] = {}
    seen: set[tuple[int, Any]] = set()
    for target in targets:
        family, sockaddr = target[0], target[4]
        if (family, sockaddr) in seen:
            continue
        seen.add((family, sockaddr))
        # dicts keep insertion order: the families come out in the order
        # their first address was returned.
        by_family.setdefault(family, []).append(target)
    missing = object()
    return [t for row in zip_longest(*by_family.values(), fillvalue=missing) for t in row if t is not missing]


def _check_delay(delay: Any) -> float:
    if delay is None:
        return DEFAULT_HAPPY_EYEBALLS_DELAY
    message = (
        "open_tcp_stream() happy_eyeballs_delay must be a number of seconds >= 0 "
        f"(math.inf tries one address at a time), got {delay!r}"
    )
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(message)
    if math.isnan(delay) or delay < 0:
        raise ValueError(message)
    return float(delay)


class _LocalAddressError(OSError):
    """Binding *local_address* failed for one attempt (private: callers see
    it only inside the ExceptionGroup of a failed ``open_tcp_stream``)."""


async def _bind_local_address(sock: Any, local_address: str | bytes) -> None:
    if _IP_BIND_ADDRESS_NO_PORT is not None:
        try:
            sock.setsockopt(_stdlib_socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass  # an old kernel: bind() picks the port, which still works
    try:
        await sock.bind((local_address, 0))
    except OSError as exc:
        # Typically an IPv4 local address for an IPv6 target or the other
        # way round: this attempt fails, the others may still work.
        raise _LocalAddressError(
            exc.errno, f"cannot bind local_address={local_address!r}: {exc.strerror or exc}"
        ) from exc


async def open_tcp_stream(
    host: str | bytes,
    port: int,
    *,
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY,
    local_address: str | bytes | None = None,
) -> SocketStream:
    """Connect to *host* (a name or an IP address) on TCP *port* and return
    the connection as a :class:`SocketStream`.

    *host* is resolved with :func:`nursery.socket.getaddrinfo` (in a worker
    thread). If it has several addresses, they are tried with the "happy
    eyeballs" algorithm (RFC 8305): one after the other, in the resolver's
    order but alternating between IPv6 and IPv4 (starting with the family of
    the first address); the next attempt starts as soon as the previous one
    fails, or after *happy_eyeballs_delay* seconds if it is still pending. The
    first connection to succeed is returned; every other attempt is cancelled
    and its socket closed. ``happy_eyeballs_delay=math.inf`` tries one address
    at a time, like :func:`socket.create_connection`; ``None`` means the
    default, 0.25 seconds.

    *local_address* (an IP address or host name) is bound as the source
    address of the connection before connecting (on Linux with
    ``IP_BIND_ADDRESS_NO_PORT``, so that the kernel still picks the source
    port per destination). An IPv4 *local_address* can only reach IPv4
    addresses and an IPv6 one only IPv6 addresses: pass ``"0.0.0.0"`` or
    ``"::"`` to force a family without choosing an address.

    There is no timeout of its own: put the call in a
    :func:`~nursery.fail_after` or :func:`~nursery.move_on_after` block.
    Cancelling it closes every socket it opened. A checkpoint.

    Raises:
      TypeError, ValueError: *host* is not a str or bytes, *port* is not an
        int in 0-65535, *happy_eyeballs_delay* is not a number >= 0, or
        *local_address* is not a str, bytes or None.
      socket.gaierror: *host* could not be resolved; the message names it.
      OSError: every address failed. The message names *host* and *port*
        and lists each address tried with its error; ``__cause__`` is an
        :exc:`ExceptionGroup` of the individual errors (each with a note
        naming its address). If they all failed with the same errno, the
        exception carries it and so is the matching subclass: connecting to
        a closed port raises :exc:`ConnectionRefusedError`.
    """
    check_host(host, "open_tcp_stream()")
    check_port(port, "open_tcp_stream()")
    delay = _check_delay(happy_eyeballs_delay)
    if local_address is not None and not isinstance(local_address, (str, bytes)):
        raise TypeError(
            f"open_tcp_stream() local_address must be an IP address or host name (str or bytes) or None, "
            f"got {local_address!r}"
        )

    try:
        resolved = await _getaddrinfo(host, port, type=_stdlib_socket.SOCK_STREAM)
    except _stdlib_socket.gaierror as exc:
        raise _stdlib_socket.gaierror(
            exc.errno, f"could not resolve host {host!r} (port {port}): {exc.strerror or exc}"
        ) from exc
    targets = _interleave_families(list(resolved))
    hostport = format_host_port(host, port)
    if not targets:
        # getaddrinfo raises rather than return nothing, but a custom
        # resolver might not.
        raise OSError(f"could not connect to {hostport}: resolving the host gave no addresses")

    # Every socket opened, so that all but the winner are closed whatever
    # happens (failure, a lost race, cancellation from outside).
    sockets: list[Any] = []
    errors: list[OSError | None] = [None] * len(targets)
    winner: Any = None
    stream: SocketStream | None = None

    async def attempt(index: int, target: Any, failed: Event, cancel_all: Any) -> None:
        nonlocal winner
        family, type_, proto, _, sockaddr = target
        try:
            sock = _new_socket(family, type_, proto)
            sockets.append(sock)
            if local_address is not None:
                await _bind_local_address(sock, local_address)
            await sock.connect(sockaddr)
        except OSError as exc:
            exc.add_note(f"while connecting to {format_sockaddr(family, sockaddr)}")
            errors[index] = exc
            failed.set()
            return
        if winner is None:
            winner = sock
            cancel_all()
        # else: another attempt finished first in the same batch; this
        # socket is closed below with the other losers.

    try:
        async with open_nursery() as attempts:
            for index, target in enumerate(targets):
                failed = Event()
                attempts.start_soon(attempt, index, target, failed, attempts.cancel_scope.cancel)
                if index + 1 < len(targets):
                    with move_on_after(delay):
                        await failed.wait()
        if winner is None:
            raise _all_failed(hostport, targets, errors)
        stream = _wrap_stream(winner)
        return stream
    finally:
        for sock in sockets:
            if stream is None or sock is not winner:
                sock.close()


def _reason(error: OSError) -> str:
    """What went wrong, without the address (the list of attempts names it):
    the errno's text where the error is a plain failed connect."""
    if isinstance(error, _LocalAddressError):
        return str(error.args[1])
    if isinstance(error.errno, int) and error.errno > 0:
        return os.strerror(error.errno)
    return str(error)


def _all_failed(hostport: str, targets: list[Any], errors: list[OSError | None]) -> OSError:
    failures = [(target, error) for target, error in zip(targets, errors) if error is not None]
    tried = "; ".join(f"{format_sockaddr(target[0], target[4])} ({_reason(error)})" for target, error in failures)
    message = f"could not connect to {hostport}: tried {tried}"
    group = ExceptionGroup(f"connection attempts to {hostport}", [error for _, error in failures])
    errnos = {error.errno if isinstance(error.errno, int) and error.errno > 0 else None for _, error in failures}
    # One errno for all: keep it, so that OSError() picks the subclass
    # (ConnectionRefusedError, ...) that callers may be catching.
    errno = errnos.pop() if len(errnos) == 1 else None
    exc = OSError(errno, message) if errno is not None else OSError(message)
    # As 'raise exc from group' would.
    exc.__cause__ = group
    exc.__suppress_context__ = True
    return exc

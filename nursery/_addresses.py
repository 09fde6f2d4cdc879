"""Checking the hosts and ports users pass to the networking functions, and
printing socket addresses in error messages.

Every function that takes a host and a port (``open_tcp_stream``,
``open_tcp_listeners``, ``serve_tcp``) checks them here, so that a mistake
gets the same clear message everywhere, before any name is resolved.
"""

from __future__ import annotations

import os
import socket as _stdlib_socket
from typing import Any


def check_host(host: Any, fn_name: str, *, allow_none: bool = False) -> None:
    """Raise TypeError unless *host* is a str or bytes (or None, if allowed)."""
    if isinstance(host, (str, bytes)) or (allow_none and host is None):
        return
    expected = "a host name or IP address (str or bytes)"
    if allow_none:
        expected += ", or None for every local interface"
    raise TypeError(f"{fn_name} host must be {expected}, got {host!r}")


def check_port(port: Any, fn_name: str) -> None:
    """Raise TypeError unless *port* is an int (not a bool), ValueError unless
    it is a TCP port number (0-65535)."""
    if not isinstance(port, int) or isinstance(port, bool):
        hint = ""
        if isinstance(port, str) and port.isdigit():
            hint = f" (did you mean {int(port)}?)"
        raise TypeError(f"{fn_name} port must be an int, got {port!r}{hint}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{fn_name} port must be in the range 0-65535, got {port}")


def check_backlog(backlog: Any, fn_name: str) -> None:
    if backlog is None:
        return
    if not isinstance(backlog, int) or isinstance(backlog, bool):
        raise TypeError(f"{fn_name} backlog must be an int or None, got {backlog!r}")
    if backlog < 0:
        raise ValueError(f"{fn_name} backlog must be >= 0 (or None for the system's maximum), got {backlog}")


def format_host_port(host: str | bytes, port: int) -> str:
    """``example.com:80``, ``[::1]:80``: how a host and port are written in
    messages (IPv6 addresses in brackets, as in URLs)."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "backslashreplace")
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def format_sockaddr(family: int, sockaddr: Any) -> str:
    """A socket address as users write it: ``127.0.0.1:80``, ``[::1]:80``,
    or the path (repr) of a Unix socket."""
    if family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6) and isinstance(sockaddr, tuple):
        return format_host_port(sockaddr[0], sockaddr[1])
    if isinstance(sockaddr, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(sockaddr) if isinstance(sockaddr, os.PathLike) else sockaddr)
    return repr(sockaddr)

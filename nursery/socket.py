"""Async sockets: the standard library's :mod:`socket` with its blocking
calls made ``async``. See the sockets guide.

Besides :class:`SocketType` and the functions that make one, this module
re-exports the standard library's constants (``AF_INET``, ``SOCK_STREAM``,
``SOL_SOCKET``, ...), its exceptions (``gaierror``, ``herror``, ``timeout``,
``error``) and its functions that never block (``inet_pton``, ``htons``,
``gethostname``, ...), so that ``from nursery import socket`` can stand in
for ``import socket``. The blocking lookups (``getaddrinfo``,
``getnameinfo``) are ``async`` here and run in worker threads.
"""

import socket as _stdlib_socket

from ._public import claim_public_names
from ._socket import (
    SocketType,
    from_stdlib_socket,
    fromfd,
    getaddrinfo,
    getnameinfo,
    socket,
    socketpair,
)

# The stdlib's exceptions, under the stdlib's names.
error = OSError
herror = _stdlib_socket.herror
gaierror = _stdlib_socket.gaierror
timeout = _stdlib_socket.timeout
AddressFamily = _stdlib_socket.AddressFamily
SocketKind = _stdlib_socket.SocketKind
has_ipv6 = _stdlib_socket.has_ipv6

# Functions that compute or read local state and never block.
_NONBLOCKING_FUNCTIONS = (
    "gethostname",
    "sethostname",
    "htonl",
    "htons",
    "ntohl",
    "ntohs",
    "inet_aton",
    "inet_ntoa",
    "inet_pton",
    "inet_ntop",
    "if_nameindex",
    "if_nametoindex",
    "if_indextoname",
    "CMSG_LEN",
    "CMSG_SPACE",
)

_names = [
    "SocketType",
    "socket",
    "socketpair",
    "from_stdlib_socket",
    "fromfd",
    "getaddrinfo",
    "getnameinfo",
    "error",
    "herror",
    "gaierror",
    "timeout",
    "AddressFamily",
    "SocketKind",
    "has_ipv6",
]
for _name in _NONBLOCKING_FUNCTIONS:
    if hasattr(_stdlib_socket, _name):
        globals()[_name] = getattr(_stdlib_socket, _name)
        _names.append(_name)
# Every constant the platform's socket module has (AF_*, SOCK_*, SO_*,
# IPPROTO_*, TCP_*, MSG_*, SCM_*, AI_*, NI_*, EAI_*, ...).
for _name in _stdlib_socket.__all__:
    if _name.isupper() and _name not in globals() and isinstance(getattr(_stdlib_socket, _name, None), int):
        globals()[_name] = getattr(_stdlib_socket, _name)
        _names.append(_name)

__all__ = _names

claim_public_names(globals(), "nursery.socket")

del _name, _names

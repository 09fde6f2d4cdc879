"""compat's TCP/Unix socket transport: asyncio's selector socket transport
with a shorter path for the two things a connection does most.

Everything but those two paths (flow control, closing, ``write_eof``,
``writelines``, ``sendfile``, the buffered-protocol read) is the running
interpreter's ``_SelectorSocketTransport``, unmodified; the class is a
subclass of it, so code that checks for asyncio's transport still finds it.

* Reading, for a plain :class:`asyncio.Protocol`: the readable fd's
  callback receives and hands the data to ``data_received`` itself. asyncio's
  goes through ``_read_ready_cb`` to another method, one Python call more per
  read (every request of an HTTP server, every message of a protocol echo).
* Writing bytes when nothing is queued: one ``send()`` and, if the socket
  took everything, done, without the type, EOF, sendfile and lost-connection
  checks' separate branches. A short send queues the rest exactly as
  asyncio's ``write()`` does.

Behaviour (exceptions, messages passed to the loop's exception handler,
ordering, flow control) is asyncio's; CPython's transport tests run against
this class through the loop (tests/cpython).
"""

from __future__ import annotations

import asyncio
from asyncio import selector_events
from typing import Any

__all__ = ["SocketTransport"]

_Stock = selector_events._SelectorSocketTransport
_stock_write = _Stock.write
_BufferedProtocol = asyncio.BufferedProtocol


class SocketTransport(_Stock):
    """The transport compat's loop makes for stream sockets."""

    # (Read per readable event: a class default, set per transport only for
    # a BufferedProtocol.)
    _buffered_protocol = False

    def set_protocol(self, protocol: Any) -> None:
        super().set_protocol(protocol)
        # The same test asyncio uses to choose its read callback (start_tls
        # swaps in a BufferedProtocol on a live transport).
        self._buffered_protocol = isinstance(protocol, _BufferedProtocol)

    def _read_ready(self) -> None:
        # Hot path: see the module docstring.
        if self._buffered_protocol:
            self._read_ready__get_buffer()
            return
        if self._conn_lost:
            return
        try:
            data = self._sock.recv(self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._read_ready__on_eof()
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def write(self, data: Any) -> None:
        # Hot path: see the module docstring. Anything unusual (not bytes,
        # empty, after write_eof, during sendfile, connection lost, data
        # already queued) takes asyncio's write().
        if (
            type(data) is not bytes
            or not data
            or self._buffer
            or self._conn_lost
            or self._eof
            or self._empty_waiter is not None
        ):
            _stock_write(self, data)
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        if sent == len(data):
            return
        # The socket is full: the rest waits for the write callback, as in
        # asyncio (whose buffer is a bytearray on 3.11, a deque of chunks
        # from 3.12 on).
        self._loop._add_writer(self._sock_fd, self._write_ready)
        rest = memoryview(data)[sent:]
        buffer = self._buffer
        if type(buffer) is bytearray:
            buffer.extend(rest)
        else:
            buffer.append(rest)
        self._maybe_pause_protocol()

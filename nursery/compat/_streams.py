"""asyncio's streams: :class:`StreamReader`, :class:`StreamWriter`,
:class:`StreamReaderProtocol`, and the connection helpers built on them.

These are compat's own classes, written to asyncio's documented contract and
checked against the stock classes of the running interpreter (outputs,
exception types, messages and attributes, ``LimitOverrunError.consumed``,
``IncompleteReadError.partial``/``expected``). They sit on any event loop's
transports: compat's :class:`~nursery.compat.EventLoop`, stock asyncio's
loops, uvloop.

Where 3.11, 3.12 and 3.13 differ, the running interpreter's behaviour is the
one followed (see ``docs/compat_reference.rst``):

* 3.13: ``readuntil()`` takes a tuple of separators; a server's
  ``client_connected_cb`` task that is cancelled closes its transport;
  the server-side protocol no longer keeps the writer alive, so a handler
  that drops an open writer gets asyncio's "unclosed" ResourceWarning.
* 3.12+: ``start_tls()`` takes ``ssl_shutdown_timeout``.

The reader keeps the unread bytes in one ``bytearray`` (``_buffer``, as
asyncio's does; code and tests look at it): appending is amortised O(1),
and removing a prefix is O(1) in CPython (the array start moves), so no read
pattern is quadratic.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import socket
import sys
import warnings
import weakref
from asyncio import coroutines, events, format_helpers, protocols
from asyncio.log import logger
from typing import Any, AsyncIterator, Awaitable, Callable, Union

from ._exceptions import IncompleteReadError, LimitOverrunError
from ._policy import get_event_loop
from ._sleep import sleep

__all__ = [
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "open_connection",
    "start_server",
]

#: The default ``limit`` (64 KiB), as asyncio's.
_DEFAULT_LIMIT = 2**16

#: 3.13: readuntil() accepts a tuple of separators.
_TUPLE_SEPARATORS = sys.version_info >= (3, 13)
#: 3.13: a cancelled client_connected_cb task closes its transport (before,
#: asking the cancelled task for its exception raised in the done-callback,
#: which the loop logs).
_CLOSE_ON_CANCELLED_HANDLER = sys.version_info >= (3, 13)
#: Up to 3.12 the server-side protocol holds its StreamWriter until the
#: connection is lost (and start_tls hands it over by ``_replace_writer``);
#: 3.13 keeps only the transport (``_replace_transport``). Read from the
#: stock class, so that a patch release that changes it is followed.
_PROTOCOL_KEEPS_WRITER = hasattr(asyncio.streams.StreamReaderProtocol, "_replace_writer")
#: Whether stock StreamWriter warns (ResourceWarning) and closes the
#: transport when an open writer is garbage collected.
_WRITER_WARNS_ON_DEL = hasattr(asyncio.streams.StreamWriter, "__del__")
#: 3.12+: start_tls() takes ssl_shutdown_timeout.
_TLS_SHUTDOWN_TIMEOUT = "ssl_shutdown_timeout" in inspect.signature(asyncio.streams.StreamWriter.start_tls).parameters

ClientConnectedCallback = Callable[["StreamReader", "StreamWriter"], Union[Awaitable[None], None]]


# ----------------------------------------------------------------------
# the connection helpers


async def open_connection(
    host: str | None = None, port: int | str | None = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
) -> tuple[StreamReader, StreamWriter]:
    """Connect to ``host``:``port`` and return a ``(reader, writer)`` pair,
    as ``asyncio.open_connection``.

    The keyword arguments are ``loop.create_connection()``'s (``ssl``,
    ``local_addr``, ``happy_eyeballs_delay``, ...); ``limit`` is the
    reader's buffer limit. Raises what ``create_connection()`` raises
    (``ConnectionRefusedError``, ``socket.gaierror``, ``OSError``)."""
    loop = events.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    return reader, StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | list[str] | None = None,
    port: int | str | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Any:
    """Start a TCP server that calls ``client_connected_cb(reader, writer)``
    for every client, and return the loop's ``Server``, as
    ``asyncio.start_server``.

    The callback may be a plain function or a coroutine function; a
    coroutine is run as a task. An exception that escapes it is reported to
    the loop's exception handler and the connection is closed. The keyword
    arguments are ``loop.create_server()``'s."""
    loop = events.get_running_loop()

    def factory() -> StreamReaderProtocol:
        return StreamReaderProtocol(StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)


if hasattr(socket, "AF_UNIX"):
    __all__ += ["open_unix_connection", "start_unix_server"]

    async def open_unix_connection(
        path: str | None = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
    ) -> tuple[StreamReader, StreamWriter]:
        """:func:`open_connection` for a Unix domain socket at ``path``, as
        ``asyncio.open_unix_connection``."""
        loop = events.get_running_loop()
        reader = StreamReader(limit=limit, loop=loop)
        protocol = StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
        return reader, StreamWriter(transport, protocol, reader, loop)

    async def start_unix_server(
        client_connected_cb: ClientConnectedCallback,
        path: str | None = None,
        *,
        limit: int = _DEFAULT_LIMIT,
        **kwds: Any,
    ) -> Any:
        """:func:`start_server` on a Unix domain socket at ``path``, as
        ``asyncio.start_unix_server``."""
        loop = events.get_running_loop()

        def factory() -> StreamReaderProtocol:
            return StreamReaderProtocol(StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop)

        return await loop.create_unix_server(factory, path, **kwds)


# ----------------------------------------------------------------------
# protocols


class FlowControlMixin(protocols.Protocol):
    """The write side's flow control for :meth:`StreamWriter.drain`
    (``asyncio.streams.FlowControlMixin``): it implements
    ``pause_writing``, ``resume_writing`` and ``connection_lost``; a
    subclass that overrides them calls these too. ``drain()`` waits in
    ``_drain_helper()`` while the transport has writing paused."""

    def __init__(self, loop: Any = None) -> None:
        self._loop = get_event_loop() if loop is None else loop
        self._paused = False
        self._drain_waiters: collections.deque[Any] = collections.deque()
        self._connection_lost = False

    def pause_writing(self) -> None:
        assert not self._paused
        self._paused = True
        if self._loop.get_debug():
            logger.debug("%r pauses writing", self)

    def resume_writing(self) -> None:
        assert self._paused
        self._paused = False
        if self._loop.get_debug():
            logger.debug("%r resumes writing", self)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connection_lost = True
        # Only a paused writer has drain() calls waiting.
        if self._paused:
            for waiter in self._drain_waiters:
                if not waiter.done():
                    if exc is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            # (Cancelled or not: the data stays in the transport's buffer.)
            self._drain_waiters.remove(waiter)

    def _get_close_waiter(self, stream: Any) -> Any:
        raise NotImplementedError


class StreamReaderProtocol(FlowControlMixin, protocols.Protocol):
    """The protocol between a transport and a :class:`StreamReader` (and
    its :class:`StreamWriter`), as ``asyncio.StreamReaderProtocol``.

    With a ``client_connected_cb`` (the server side), ``connection_made``
    makes the writer and calls ``client_connected_cb(reader, writer)``,
    running a coroutine it returns as a task."""

    _source_traceback = None

    def __init__(
        self,
        stream_reader: StreamReader | None,
        client_connected_cb: ClientConnectedCallback | None = None,
        loop: Any = None,
    ) -> None:
        super().__init__(loop=loop)
        # The reader is held weakly: a reader its user dropped is collected
        # (as asyncio's is), which a server keeps from happening until the
        # connection is made (below).
        if stream_reader is None:
            self._stream_reader_wr: weakref.ref[StreamReader] | None = None
        else:
            self._stream_reader_wr = weakref.ref(stream_reader)
            self._source_traceback = stream_reader._source_traceback
        if client_connected_cb is not None:
            self._strong_reader = stream_reader
        if _PROTOCOL_KEEPS_WRITER:
            self._stream_writer: StreamWriter | None = None
        self._task: Any = None
        self._transport: Any = None
        self._client_connected_cb = client_connected_cb
        self._over_ssl = False
        self._closed = self._loop.create_future()

    @property
    def _stream_reader(self) -> StreamReader | None:
        ref = self._stream_reader_wr
        return None if ref is None else ref()

    if _PROTOCOL_KEEPS_WRITER:

        def _replace_writer(self, writer: StreamWriter) -> None:
            transport = writer.transport
            self._stream_writer = writer
            self._transport = transport
            self._over_ssl = transport.get_extra_info("sslcontext") is not None

    else:

        def _replace_transport(self, transport: Any) -> None:
            self._transport = transport
            self._over_ssl = transport.get_extra_info("sslcontext") is not None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self._transport = transport
        reader = self._stream_reader
        if reader is not None:
            reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        callback = self._client_connected_cb
        if callback is None:
            return
        writer = StreamWriter(transport, self, reader, self._loop)
        if _PROTOCOL_KEEPS_WRITER:
            self._stream_writer = writer
        result = callback(reader, writer)  # type: ignore[arg-type]
        if coroutines.iscoroutine(result):
            loop = self._loop

            # (Named as asyncio's: the loop's report of a failing callback
            # names it.)
            def callback(task: Any) -> None:
                if _CLOSE_ON_CANCELLED_HANDLER and task.cancelled():
                    transport.close()
                    return
                # (Before 3.13, a cancelled task raises CancelledError here,
                # which the loop reports as a failing callback.)
                exc = task.exception()
                if exc is not None:
                    loop.call_exception_handler(
                        {
                            "message": "Unhandled exception in client_connected_cb",
                            "exception": exc,
                            "transport": transport,
                        }
                    )
                    transport.close()

            self._task = loop.create_task(result)
            self._task.add_done_callback(callback)
        self._strong_reader = None

    def connection_lost(self, exc: BaseException | None) -> None:
        reader = self._stream_reader
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        closed = self._closed
        if not closed.done():
            if exc is None:
                closed.set_result(None)
            else:
                closed.set_exception(exc)
        super().connection_lost(exc)
        self._stream_reader_wr = None
        if _PROTOCOL_KEEPS_WRITER:
            self._stream_writer = None
        self._task = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        ref = self._stream_reader_wr
        if ref is not None:
            reader = ref()
            if reader is not None:
                reader.feed_data(data)

    def eof_received(self) -> bool:
        reader = self._stream_reader
        if reader is not None:
            reader.feed_eof()
        # True keeps the transport open for writing after the peer's EOF; an
        # SSL transport ignores it and would warn about it.
        return not self._over_ssl

    def _get_close_waiter(self, stream: Any) -> Any:
        return self._closed

    def __del__(self) -> None:
        # A connection lost with an error leaves that error in _closed; if
        # no one awaited wait_closed(), that is not worth a "never
        # retrieved" report.
        closed = getattr(self, "_closed", None)
        if closed is not None and closed.done() and not closed.cancelled():
            closed.exception()


# ----------------------------------------------------------------------
# the writer


class StreamWriter:
    """The write side of a stream connection, as ``asyncio.StreamWriter``:
    it wraps the transport (:attr:`transport`) and adds :meth:`drain` (wait
    for the transport's buffer to drain below its high-water mark),
    :meth:`wait_closed` and :meth:`start_tls`.

    ``write()`` never blocks: the data goes into the transport's buffer, and
    nothing written is lost when a ``drain()`` is cancelled."""

    def __init__(self, transport: Any, protocol: Any, reader: StreamReader | None, loop: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        # drain() asks the reader for its exception.
        assert reader is None or isinstance(reader, StreamReader)
        self._reader = reader
        self._loop = loop
        #: Whether the protocol's flow control is FlowControlMixin's own, so
        #: drain() may read its state instead of calling _drain_helper().
        self._plain_drain = getattr(type(protocol), "_drain_helper", None) is FlowControlMixin._drain_helper

    def __repr__(self) -> str:
        info = [self.__class__.__name__, f"transport={self._transport!r}"]
        if self._reader is not None:
            info.append(f"reader={self._reader!r}")
        return "<{}>".format(" ".join(info))

    @property
    def transport(self) -> Any:
        """The underlying transport (after :meth:`start_tls`, the TLS one)."""
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to the transport's buffer (never blocks)."""
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        """Write an iterable of bytes-like objects."""
        self._transport.writelines(data)

    def write_eof(self) -> Any:
        """Close the write end after the buffered data is sent."""
        return self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the transport supports :meth:`write_eof`."""
        return self._transport.can_write_eof()  # type: ignore[no-any-return]

    def close(self) -> Any:
        """Close the transport (buffered data is still sent); then
        ``await`` :meth:`wait_closed`."""
        return self._transport.close()

    def is_closing(self) -> bool:
        """Whether the transport is closed or closing."""
        return self._transport.is_closing()  # type: ignore[no-any-return]

    async def wait_closed(self) -> None:
        """Wait until the connection is closed; raises the error the
        connection was lost with, if any."""
        await self._protocol._get_close_waiter(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's ``get_extra_info(name, default)`` (``peername``,
        ``sockname``, ``socket``, ``sslcontext``, ``ssl_object``, ...)."""
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water
        mark (at once if it is). Raises the reader's exception if the
        connection failed, ``ConnectionResetError`` once it is lost.

        Cancelling a waiting ``drain()`` drops nothing written."""
        # Hot path (bench streams echo/bulk: a drain() per write).
        reader = self._reader
        if reader is not None:
            exc = reader._exception
            if exc is not None:
                raise exc
        protocol = self._protocol
        if self._transport.is_closing():
            # Let connection_lost() run first, so that a
            # ``write(); await drain()`` loop on a closed connection sees
            # the error instead of spinning.
            await sleep(0)
        elif self._plain_drain and not protocol._paused and not protocol._connection_lost:
            # What _drain_helper() would do, without its coroutine.
            return
        await protocol._drain_helper()

    if _TLS_SHUTDOWN_TIMEOUT:

        async def start_tls(
            self,
            sslcontext: Any,
            *,
            server_hostname: str | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
        ) -> None:
            """Upgrade the connection to TLS in place (the reader and writer
            go on working over the new transport)."""
            await self._start_tls(
                sslcontext,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )

    else:

        async def start_tls(  # type: ignore[misc]
            self, sslcontext: Any, *, server_hostname: str | None = None, ssl_handshake_timeout: float | None = None
        ) -> None:
            """Upgrade the connection to TLS in place (the reader and writer
            go on working over the new transport)."""
            await self._start_tls(
                sslcontext, server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout
            )

    async def _start_tls(self, sslcontext: Any, **options: Any) -> None:
        protocol = self._protocol
        await self.drain()
        transport = await self._loop.start_tls(
            self._transport,
            protocol,
            sslcontext,
            server_side=protocol._client_connected_cb is not None,
            **options,
        )
        self._transport = transport
        if _PROTOCOL_KEEPS_WRITER:
            protocol._replace_writer(self)
        else:
            protocol._replace_transport(transport)

    if _WRITER_WARNS_ON_DEL:

        def __del__(self, warnings: Any = warnings) -> None:
            # An open writer that is dropped closes its transport, saying so.
            transport = getattr(self, "_transport", None)
            if transport is None or transport.is_closing():
                return
            if self._loop.is_closed():
                warnings.warn("loop is closed", ResourceWarning)
            else:
                self.close()
                warnings.warn(f"unclosed {self!r}", ResourceWarning)


# ----------------------------------------------------------------------
# the reader


class StreamReader:
    """The read side of a stream connection, as ``asyncio.StreamReader``.

    ``limit`` bounds what :meth:`readline` and :meth:`readuntil` return
    (``LimitOverrunError``/``ValueError`` beyond it) and, doubled, the
    buffer: above ``2 * limit`` unread bytes the transport's reading is
    paused until a read brings it back to ``limit``.

    Only one coroutine may wait for data at a time (``RuntimeError``
    otherwise). A read that is cancelled while waiting consumes nothing: the
    data stays buffered for the next read."""

    _source_traceback = None

    def __init__(self, limit: int = _DEFAULT_LIMIT, loop: Any = None) -> None:
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._limit = limit
        self._loop = get_event_loop() if loop is None else loop
        #: The unread bytes.
        self._buffer = bytearray()
        self._eof = False
        #: The future a read waits on for more data or EOF.
        self._waiter: Any = None
        self._exception: BaseException | None = None
        self._transport: Any = None
        #: Whether we paused the transport's reading (buffer over 2 * limit).
        self._paused = False
        if self._loop.get_debug():
            self._source_traceback = format_helpers.extract_stack(sys._getframe(1))

    def __repr__(self) -> str:
        info = ["StreamReader"]
        if self._buffer:
            info.append(f"{len(self._buffer)} bytes")
        if self._eof:
            info.append("eof")
        if self._limit != _DEFAULT_LIMIT:
            info.append(f"limit={self._limit}")
        if self._waiter:
            info.append(f"waiter={self._waiter!r}")
        if self._exception:
            info.append(f"exception={self._exception!r}")
        if self._transport:
            info.append(f"transport={self._transport!r}")
        if self._paused:
            info.append("paused")
        return "<{}>".format(" ".join(info))

    # -- the protocol's side

    def exception(self) -> BaseException | None:
        """The exception the stream failed with (set by
        :meth:`set_exception`), or ``None``."""
        return self._exception

    def set_exception(self, exc: BaseException) -> None:
        """Fail the stream: every later read raises ``exc`` (a read waiting
        now, too), even with data still buffered."""
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_exception(exc)

    def set_transport(self, transport: Any) -> None:
        """The transport whose reading is paused and resumed for flow
        control (set once)."""
        assert self._transport is None, "Transport already set"
        self._transport = transport

    def feed_eof(self) -> None:
        """No more data will come; a waiting read returns."""
        self._eof = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)

    def at_eof(self) -> bool:
        """Whether EOF was fed and every byte has been read."""
        return self._eof and not self._buffer

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the buffer and wake a waiting read."""
        # Hot path (per received chunk; bench streams echo/bulk).
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        buffer = self._buffer
        buffer += data
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        if not self._paused and self._transport is not None and len(buffer) > 2 * self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                # A transport that cannot pause: buffer everything, and stop
                # asking.
                self._transport = None
            else:
                self._paused = True

    def _maybe_resume_transport(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    def _new_waiter(self, func_name: str) -> Any:
        """The future a read waits on for more data or EOF, set as
        ``_waiter``; the caller awaits it and resets ``_waiter`` after.
        (Not a coroutine: the hot paths wait without one more frame.)"""
        # One waiter at a time: with two, which one gets the next data would
        # be arbitrary.
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        # Waiting while paused would wait forever (readexactly(n) with
        # n > limit needs more than the buffer may hold).
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        waiter = self._waiter = self._loop.create_future()
        return waiter

    async def _wait_for_data(self, func_name: str) -> None:
        # (asyncio's name for it; code that subclasses the reader calls it.)
        waiter = self._new_waiter(func_name)
        try:
            await waiter
        finally:
            self._waiter = None

    # -- reading

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, as soon as at least one is buffered; ``b''``
        at EOF. With ``n`` negative (the default): everything until EOF.
        ``n`` is not bounded by the limit."""
        # Hot path (bench streams echo/bulk).
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            return await self._read_to_eof()
        buffer = self._buffer
        if not buffer and not self._eof:
            waiter = self._new_waiter("read")
            try:
                await waiter
            finally:
                self._waiter = None
        if len(buffer) <= n:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(memoryview(buffer)[:n])
            del buffer[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    async def _read_to_eof(self) -> bytes:
        # Take what is buffered, at most ``limit`` at a time (as asyncio's
        # read(limit) loop does), so that a paused transport is resumed and
        # the buffer stays bounded however much arrives before EOF.
        blocks = []
        limit = self._limit
        buffer = self._buffer
        while True:
            if self._exception is not None:
                raise self._exception
            if not buffer:
                if self._eof:
                    break
                waiter = self._new_waiter("read")
                try:
                    await waiter
                finally:
                    self._waiter = None
                continue
            if len(buffer) <= limit:
                blocks.append(bytes(buffer))
                buffer.clear()
            else:
                blocks.append(bytes(memoryview(buffer)[:limit]))
                del buffer[:limit]
            if self._paused:
                self._maybe_resume_transport()
        return b"".join(blocks)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; at EOF before that, ``IncompleteReadError``
        with the bytes read as ``partial`` (consumed) and ``expected=n``.
        ``n`` is not bounded by the limit."""
        # Hot path (bench streams echo).
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        buffer = self._buffer
        while len(buffer) < n:
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(partial, n)
            waiter = self._new_waiter("readexactly")
            try:
                await waiter
            finally:
                self._waiter = None
        if len(buffer) == n:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(memoryview(buffer)[:n])
            del buffer[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    async def readline(self) -> bytes:
        """One line, ending with ``b'\\n'``; at EOF the incomplete last line
        (``b''`` if nothing is left).

        A line longer than the limit raises ``ValueError``: the line is
        dropped (with its newline) if the newline has arrived, otherwise the
        whole buffer is."""
        # Hot path (line protocols; bench streams echo): readuntil(b"\n")
        # inline, with its errors turned into readline's as asyncio's
        # readline does (an incomplete last line is returned, an overlong
        # line dropped with ValueError), without a coroutine per call.
        buffer = self._buffer
        if self._exception is not None:
            raise self._exception
        limit = self._limit
        try:
            # (bytearray.find is most of the cost of a buffered line: one
            # call per line, and none on an empty buffer.)
            end = buffer.find(b"\n") + 1 if buffer else 0
            if not end:
                # Bytes before ``offset`` hold no newline (see readuntil).
                offset = len(buffer)
                while True:
                    if offset > limit:
                        raise LimitOverrunError("Separator is not found, and chunk exceed the limit", offset)
                    if self._eof:
                        partial = bytes(buffer)
                        buffer.clear()
                        return partial
                    waiter = self._new_waiter("readuntil")
                    try:
                        await waiter
                    finally:
                        self._waiter = None
                    buflen = len(buffer)
                    if buflen > offset:
                        end = buffer.find(b"\n", offset) + 1
                        if end:
                            break
                        offset = buflen
            if end > limit + 1:
                raise LimitOverrunError("Separator is found, but chunk is longer than limit", end - 1)
        except LimitOverrunError as e:
            if buffer.startswith(b"\n", e.consumed):
                del buffer[: e.consumed + 1]
            else:
                buffer.clear()
            self._maybe_resume_transport()
            raise ValueError(e.args[0])
        line = bytes(memoryview(buffer)[:end])
        del buffer[:end]
        if self._paused:
            self._maybe_resume_transport()
        return line

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        """The data up to and including ``separator``.

        At EOF without it: ``IncompleteReadError`` (``partial`` is all that
        was buffered, now consumed; ``expected`` is ``None``). More than
        ``limit`` bytes before the separator: ``LimitOverrunError`` (nothing
        consumed; ``consumed`` says how many bytes are known to precede the
        separator). On 3.13+, ``separator`` may be a tuple: the shortest
        chunk ending in any of them is returned."""
        if _TUPLE_SEPARATORS and isinstance(separator, tuple):
            separators = sorted(separator, key=len)
            if not separators:
                raise ValueError("Separator should contain at least one element")
            if len(separators) > 1:
                return await self._readuntil_any(separators)
            separator = separators[0]
        seplen = len(separator)
        if seplen == 0:
            raise ValueError("Separator should be at least one-byte string")
        if self._exception is not None:
            raise self._exception
        buffer = self._buffer
        limit = self._limit
        # Bytes before ``offset`` are known to hold no separator start: each
        # search after new data begins at the last seplen - 1 old bytes (a
        # separator may straddle the old end), so a line arriving in many
        # small chunks is scanned once, not once per chunk.
        offset = 0
        while True:
            buflen = len(buffer)
            if buflen - offset >= seplen:
                start = buffer.find(separator, offset)
                if start != -1:
                    break
                offset = buflen + 1 - seplen
                if offset > limit:
                    raise LimitOverrunError("Separator is not found, and chunk exceed the limit", offset)
            # A separator completed by the last chunk counts even at EOF, so
            # EOF is looked at only after the buffer.
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(partial, None)  # type: ignore[arg-type]
            waiter = self._new_waiter("readuntil")
            try:
                await waiter
            finally:
                self._waiter = None
        if start > limit:
            raise LimitOverrunError("Separator is found, but chunk is longer than limit", start)
        end = start + seplen
        chunk = bytes(memoryview(buffer)[:end])
        del buffer[:end]
        if self._paused:
            self._maybe_resume_transport()
        return chunk

    async def _readuntil_any(self, separators: list[Any]) -> bytes:
        # 3.13's readuntil with several separators (sorted shortest first):
        # the match that ends first wins; on a tie, the shorter separator.
        shortest = len(separators[0])
        longest = len(separators[-1])
        if shortest == 0:
            raise ValueError("Separator should be at least one-byte string")
        if self._exception is not None:
            raise self._exception
        buffer = self._buffer
        limit = self._limit
        offset = 0
        while True:
            buflen = len(buffer)
            if buflen - offset >= shortest:
                match_start = match_end = -1
                for sep in separators:
                    start = buffer.find(sep, offset)
                    if start != -1:
                        end = start + len(sep)
                        if match_end == -1 or end < match_end:
                            match_start, match_end = start, end
                if match_end != -1:
                    break
                offset = max(0, buflen + 1 - longest)
                if offset > limit:
                    raise LimitOverrunError("Separator is not found, and chunk exceed the limit", offset)
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(partial, None)  # type: ignore[arg-type]
            waiter = self._new_waiter("readuntil")
            try:
                await waiter
            finally:
                self._waiter = None
        if match_start > limit:
            raise LimitOverrunError("Separator is found, but chunk is longer than limit", match_start)
        chunk = bytes(memoryview(buffer)[:match_end])
        del buffer[:match_end]
        if self._paused:
            self._maybe_resume_transport()
        return chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line

"""SSLStream and SSLListener: TLS over any nursery Stream.

The TLS state machine is the stdlib's :class:`ssl.SSLObject`, which reads
ciphertext from one :class:`ssl.MemoryBIO` and writes ciphertext to another;
this module moves those bytes between the BIOs and the transport stream. The
hard part is that several tasks may drive the one SSLObject at once (one
sending while another receives, a handshake started by whichever comes
first), and the SSLObject's calls never block: they either finish or say
"I need more input" (``SSLWantReadError``). The rules that keep that correct
are stated where they are enforced: :meth:`SSLStream._flush` (outgoing
order), :meth:`SSLStream._receive_more` (who reads the transport) and
:meth:`SSLStream._drive` (the loop that ties them together).
"""

from __future__ import annotations

import operator
import ssl
from enum import Enum
from typing import Any, Callable, TypeVar

from ._abc import Listener, Stream, aclose_forcefully
from ._conflict_detector import ConflictDetector
from ._core import BrokenResourceError, BusyResourceError, ClosedResourceError, WouldBlock
from ._event import Event
from ._sync import Lock
from .lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled

__all__ = ["SSLStream", "SSLListener", "NeedHandshakeError"]

#: What ``receive_some()`` returns at most when given no ``max_bytes``.
DEFAULT_RECEIVE_SIZE = 65536
# How much ciphertext one read from the transport asks for. Large enough that
# a bulk transfer costs few transport calls per TLS record batch.
TRANSPORT_RECEIVE_SIZE = 65536
# send_all() encrypts and sends a large payload in pieces of this size, so
# that its ciphertext is never held in memory all at once and the first
# bytes are on the wire while the rest is still being encrypted.
SEND_CHUNK_SIZE = 65536

T = TypeVar("T")


def check_context_side(ssl_context: ssl.SSLContext, server_side: bool, what: str) -> None:
    """Raise ValueError if *ssl_context* can only make the other end of a
    connection (the stdlib's own message says less)."""
    if server_side and ssl_context.protocol == ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError(
            f"{what} needs a server-side ssl.SSLContext, got a client-only one (PROTOCOL_TLS_CLIENT, which "
            "ssl.create_default_context() makes unless given ssl.Purpose.CLIENT_AUTH); use "
            "ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), "
            "then load_cert_chain() with the server's certificate"
        )
    if not server_side and ssl_context.protocol == ssl.PROTOCOL_TLS_SERVER:
        raise ValueError(
            f"{what} got a server-only ssl.SSLContext (PROTOCOL_TLS_SERVER) for the client side; pass "
            "server_side=True for the server end, or use ssl.create_default_context() for a client"
        )


class NeedHandshakeError(Exception):
    """Raised when you ask an :class:`SSLStream` for something that only
    exists once the TLS handshake has finished (the peer's certificate, the
    negotiated ALPN protocol, the cipher, ...). Call
    :meth:`SSLStream.do_handshake` first."""


class _State(Enum):
    OK = "ok"
    BROKEN = "broken"
    CLOSED = "closed"


_OK = _State.OK
_BROKEN = _State.BROKEN
_CLOSED = _State.CLOSED

# What a missing close_notify means, said once for every place that reports it.
_RAGGED_EOF = (
    "the peer closed the connection without sending a TLS close_notify, so the data may have "
    "been truncated by an attacker (pass https_compatible=True to treat this as a normal end "
    "of stream, as HTTPS clients and servers do)"
)


class SSLStream(Stream):
    """A TLS connection over *transport_stream* (any :class:`~nursery.Stream`:
    a :class:`~nursery.SocketStream`, a pipe pair, an in-memory stream,
    even another SSLStream).

    *ssl_context* decides everything TLS: protocol versions, certificates,
    verification, ALPN (``ssl_context.set_alpn_protocols([...])``). On the
    client side (the default) the server's certificate is checked against
    *server_hostname* when the context has ``check_hostname`` on, as
    ``ssl.create_default_context()`` does; pass ``server_side=True`` for the
    server end.

    The handshake runs when you call :meth:`do_handshake`, or otherwise
    implicitly at the first ``send_all``/``receive_some``. Any failure of the
    handshake or of the TLS layer afterwards (an untrusted certificate, a
    hostname mismatch, a protocol error, a refused renegotiation) raises
    :exc:`~nursery.BrokenResourceError` whose message names the reason and
    whose ``__cause__`` is the :exc:`ssl.SSLError`; the stream is then broken
    and every later operation but :meth:`aclose` raises
    :exc:`~nursery.BrokenResourceError` too. A failure of the transport
    stream also breaks the stream, with the transport's exception as
    ``__cause__``.

    Renegotiation (TLS 1.2 and older; TLS 1.3 has none) is not something
    you need: OpenSSL servers refuse client-initiated renegotiation, and the
    contexts :func:`~nursery.open_ssl_over_tcp_stream` creates refuse
    server-initiated renegotiation (``ssl.OP_NO_RENEGOTIATION``). A refused
    renegotiation ends the connection on both ends: each side's next
    operation raises :exc:`~nursery.BrokenResourceError` naming the alert
    (``NO_RENEGOTIATION``, ``SSLV3_ALERT_HANDSHAKE_FAILURE``). If both
    contexts allow it, a renegotiation is carried out transparently.

    *https_compatible* chooses how the connection ends. With the default
    ``False`` (what the TLS standard asks for), :meth:`aclose` sends a TLS
    ``close_notify`` before closing the transport, and a peer that closes
    the transport without sending one makes ``receive_some`` raise
    :exc:`~nursery.BrokenResourceError`, since the data may have been
    truncated by an attacker. With ``True`` (what HTTPS clients and servers
    do, where the HTTP framing detects truncation), :meth:`aclose` just
    closes the transport, and a missing ``close_notify`` reads as a normal
    end of stream (``b""``).

    Concurrency is as for any :class:`~nursery.Stream`: one task may send
    while another receives (both may need to drive the TLS layer, and this
    is safe), but two tasks sending at once, or two receiving at once, get
    :exc:`~nursery.BusyResourceError`.

    Things from :class:`ssl.SSLObject` that are available here:
    ``context``, ``server_side``, ``server_hostname``, ``session`` (settable
    before the handshake, for session resumption) and ``pending()`` at any
    time; ``session_reused``, ``getpeercert()``, ``cipher()``,
    ``shared_ciphers()``, ``compression()``, ``get_channel_binding()``,
    ``selected_alpn_protocol()`` and ``version()`` once the handshake is
    done (before that they raise :exc:`NeedHandshakeError`).
    """

    __slots__ = (
        "transport_stream",
        "_ssl_object",
        "_incoming",
        "_outgoing",
        "_https_compatible",
        "_state",
        "_broken_reason",
        "_broken_cause",
        "_handshake_done",
        "_handshake_running",
        "_send_lock",
        "_receive_lock",
        "_receive_generation",
        "_transport_eof",
        "_received_eof",
        "_read_error",
        "_send_conflict",
        "_receive_conflict",
    )

    def __init__(
        self,
        transport_stream: Stream,
        ssl_context: ssl.SSLContext,
        *,
        server_hostname: str | bytes | None = None,
        server_side: bool = False,
        https_compatible: bool = False,
    ) -> None:
        if not isinstance(transport_stream, Stream):
            raise TypeError(f"SSLStream needs a nursery.Stream to run over, got {transport_stream!r}")
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"SSLStream needs an ssl.SSLContext, got {ssl_context!r}")
        check_context_side(ssl_context, server_side, "SSLStream")
        if not server_side and server_hostname is None and ssl_context.check_hostname:
            raise ValueError(
                "SSLStream needs server_hostname=...: ssl_context checks hostnames (check_hostname=True), "
                "so it must know which name the server's certificate has to match"
            )
        #: The stream this one sends and receives its ciphertext on; ``None``
        #: once :meth:`unwrap` has handed it back.
        self.transport_stream: Stream | None = transport_stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl_object = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._https_compatible = https_compatible
        self._state = _OK
        # Why the stream broke, for the message of every later error.
        self._broken_reason = ""
        self._broken_cause: BaseException | None = None
        self._handshake_done = False
        # Set while a task drives the handshake; the others wait on it.
        self._handshake_running: Event | None = None
        self._send_lock = Lock()
        self._receive_lock = Lock()
        # Counts the chunks fed into the incoming BIO (see _receive_more).
        self._receive_generation = 0
        # The transport said end of file, and we told the incoming BIO.
        self._transport_eof = False
        # receive_some() has returned (or must now return) b"" for good.
        self._received_eof = False
        # A TLS error met while coalescing records in _read, after some data
        # was already read: raised by the next read, once the caller has the
        # data that came before it.
        self._read_error: ssl.SSLError | None = None
        # One task in send_all()/wait_send_all_might_not_block(), one in
        # receive_some(); unwrap() takes both.
        self._send_conflict = ConflictDetector(
            "another task is already in send_all() or wait_send_all_might_not_block() on this SSLStream"
        )
        self._receive_conflict = ConflictDetector("another task is already in receive_some() on this SSLStream")

    # -- errors and state -------------------------------------------------

    def _break(self, reason: str, cause: BaseException | None) -> BrokenResourceError:
        """Mark the stream broken (a closed stream stays closed) and return
        the error that reports it."""
        if self._state is _OK:
            self._state = _BROKEN
            self._broken_reason = reason
            self._broken_cause = cause
        error = BrokenResourceError(reason)
        error.__cause__ = cause
        return error

    def _tls_error(self, exc: ssl.SSLError | ssl.CertificateError) -> BrokenResourceError:
        if not self._handshake_done:
            peer = f" with {self._ssl_object.server_hostname!r}" if self._ssl_object.server_hostname else ""
            return self._break(f"TLS handshake{peer} failed: {exc}", exc)
        return self._break(f"TLS error: {exc}", exc)

    def _transport_error(self, exc: Exception) -> Exception:
        if self._state is _CLOSED:
            # Our own aclose() closed the transport under this task.
            error: Exception = ClosedResourceError("the SSLStream was closed while this task was using it")
            error.__cause__ = exc
            return error
        return self._break(f"the transport stream failed: {exc or repr(exc)}", exc)

    def _check_usable(self, what: str) -> None:
        if self._state is _CLOSED:
            raise ClosedResourceError(f"{what} on a closed SSLStream")
        if self._state is _BROKEN:
            raise BrokenResourceError(f"{what} on a broken SSLStream: {self._broken_reason}") from self._broken_cause

    # -- the engine ---------------------------------------------------------

    async def _flush(self, wait: bool) -> bool:
        """Send what the SSLObject wrote to the outgoing BIO. Returns whether
        this task blocked.

        ORDER INVARIANT: bytes leave the outgoing BIO only in _drain, and
        _drain runs only in the task that holds ``_send_lock``, which sends
        each piece before it takes the next one. So ciphertext reaches the
        transport in exactly the order the SSLObject produced it, whatever
        the order in which tasks get the lock (TLS records carry sequence
        numbers: one record out of order kills the connection). And the
        holder drains until the BIO is empty before it releases the lock
        (there is no await between its last emptiness check and the
        release), so bytes that arrive while another task holds the lock are
        certain to be sent by that task.

        With *wait* false, a task that finds the lock held leaves its bytes
        to the holder and goes on: receive_some() uses this so that it never
        waits behind a send_all() blocked on a full transport (two peers
        that both send and receive would otherwise deadlock). With *wait*
        true it waits for the lock, so the bytes are on the transport when
        it returns: send_all() promises that, and aclose()/unwrap() must
        send close_notify before letting go of the transport.
        """
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except WouldBlock:
            if not wait:
                return False
            await lock.acquire()
            blocked = True
        else:
            blocked = False
        try:
            return await self._drain() or blocked
        finally:
            lock.release()

    async def _drain(self) -> bool:
        """Send the outgoing BIO's contents until it is empty (the caller
        holds ``_send_lock``). Returns whether it sent anything."""
        outgoing = self._outgoing
        transport = self.transport_stream
        assert transport is not None
        sent = False
        # A broken stream sends nothing more: the peer could not make sense
        # of it after a torn record anyway.
        while outgoing.pending and self._state is not _BROKEN:
            data = outgoing.read()
            try:
                await transport.send_all(data)
            except Exception as exc:
                raise self._transport_error(exc) from exc
            except BaseException:
                # Cancelled (or interrupted) part way: an unknown part of a
                # TLS record went out, so the connection cannot go on.
                self._break("a send to the transport stream was cancelled part way through a TLS record", None)
                raise
            sent = True
        return sent

    async def _send_alert(self) -> None:
        """Best effort: send the alert OpenSSL wrote when it failed (the
        stream is broken already), so that the peer learns why (a bad
        certificate, say) instead of waiting for us forever."""
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except WouldBlock:
            return  # another task is sending; the stream is broken anyway
        try:
            transport = self.transport_stream
            assert transport is not None
            try:
                await transport.send_all(self._outgoing.read())
            except Exception:
                pass  # the peer will see the connection end instead
        finally:
            lock.release()

    async def _receive_more(self, seen_generation: int) -> bool:
        """Read from the transport into the incoming BIO, because an
        SSLObject call said it needs more input. *seen_generation* is
        ``_receive_generation`` as it was right after that call. Returns
        whether this task blocked.

        INPUT INVARIANT: a task reads the transport only if nothing was fed
        to the incoming BIO since its SSLObject call asked for more. If
        something was (another task read while we waited for the lock), the
        bytes our call needs may already be in the BIO, the peer may have
        nothing more to send until we act on them, and reading now could
        wait forever; so we return and the caller retries its call instead.
        ``_receive_lock`` makes sure only one task reads at a time, and the
        generation counter tells the waiters whether the reader fed the BIO.
        """
        lock = self._receive_lock
        try:
            lock.acquire_nowait()
        except WouldBlock:
            await lock.acquire()
            blocked = True
        else:
            blocked = False
        try:
            if self._receive_generation != seen_generation:
                return blocked
            if self._transport_eof:
                # The SSLObject wants more after the transport ended: the
                # peer closed in the middle of a TLS record.
                raise self._break("the transport stream ended in the middle of a TLS record", None)
            transport = self.transport_stream
            assert transport is not None
            try:
                data = await transport.receive_some(TRANSPORT_RECEIVE_SIZE)
            except Exception as exc:
                raise self._transport_error(exc) from exc
            # (A cancelled transport receive_some loses nothing, so a
            # cancellation here leaves the stream intact.)
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
                self._transport_eof = True
            self._receive_generation += 1
            return True
        finally:
            lock.release()

    async def _drive(
        self, operation: Callable[..., T], *args: Any, wait_flush: bool, handshake: bool = False
    ) -> tuple[T, bool]:
        """Call the SSLObject *operation* until it completes, sending what it
        writes and receiving what it asks for. Returns its result and whether
        this task blocked along the way.

        Each turn calls the operation, then awaits: nothing else touches the
        SSLObject or the BIOs between the call and the bookkeeping right
        after it (the generation it saw, whether it wrote anything), so that
        bookkeeping describes exactly what this call did.
        """
        outgoing = self._outgoing
        blocked = False
        while True:
            written_before = outgoing.pending
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                want_input = True
            except (ssl.SSLError, ssl.CertificateError) as exc:
                error = self._tls_error(exc)
                if outgoing.pending > written_before:
                    await self._send_alert()
                raise error from exc
            else:
                want_input = False
            seen_generation = self._receive_generation
            if outgoing.pending > written_before:
                ssl_object = self._ssl_object
                if handshake and not want_input and ssl_object.server_side and ssl_object.version() == "TLSv1.3":
                    # A TLS 1.3 server's last handshake step writes session
                    # tickets that the client is not waiting for. Sending
                    # them now can deadlock over a transport without buffers
                    # (the client may be blocked sending, not receiving), so
                    # they wait in the BIO and go out in front of whatever
                    # this side sends next (BoringSSL's behaviour; OpenSSL
                    # sends them at once).
                    pass
                elif await self._flush(wait_flush):
                    blocked = True
            if not want_input:
                return result, blocked
            if await self._receive_more(seen_generation):
                blocked = True

    async def _ensure_handshake(self) -> bool:
        """Run the handshake, or wait for the task that runs it. Returns
        whether this task blocked.

        Only one task drives the handshake at a time; others wait for it. A
        cancelled handshake is not fatal: while it waits for the peer, the
        SSLObject is simply waiting for more input, and the next call
        (another waiter, or a later operation) picks it up where it
        stopped. Only a cancellation part way through sending a record
        breaks the stream, as everywhere (see _drain).
        """
        blocked = False
        while not self._handshake_done:
            running = self._handshake_running
            if running is not None:
                await running.wait()
                blocked = True
                # The runner finished, failed (the stream is broken or
                # closed: say so) or was cancelled (take over: loop).
                self._check_usable("the TLS handshake (run by another task)")
                continue
            running = self._handshake_running = Event()
            try:
                _, drive_blocked = await self._drive(self._ssl_object.do_handshake, wait_flush=False, handshake=True)
                self._handshake_done = True
            finally:
                self._handshake_running = None
                running.set()
            blocked = blocked or drive_blocked
        return blocked

    # -- the public operations ----------------------------------------------

    async def do_handshake(self) -> None:
        """Perform the TLS handshake, if it has not been done yet; return at
        once (after a checkpoint) if it has. Sending or receiving does the
        handshake implicitly, so you only need this to look at the
        handshake's results (``getpeercert()``, ``selected_alpn_protocol()``,
        ...) before any data flows, or to control when it happens. Several
        tasks may call it at once: one runs the handshake, the others wait
        for it.

        A checkpoint. Raises :exc:`~nursery.BrokenResourceError` if the
        handshake fails (the message names the reason: for example
        ``CERTIFICATE_VERIFY_FAILED`` for an untrusted certificate or a
        hostname mismatch), :exc:`~nursery.ClosedResourceError` after
        :meth:`aclose`. If it is cancelled while waiting for the peer, the
        next call (or send or receive) carries on where it stopped; if it is
        cancelled part way through sending a handshake message, the stream
        is broken.
        """
        self._check_usable("do_handshake()")
        await checkpoint_if_cancelled()
        if not await self._ensure_handshake():
            await cancel_shielded_checkpoint()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send all of *data* (any bytes-like object); do the
        handshake first if it is not done yet.

        Returns once the ciphertext has been handed to the transport stream.
        A checkpoint. If it is cancelled after any of *data* went into the
        TLS layer, the stream is broken (later calls raise
        :exc:`~nursery.BrokenResourceError`) rather than leaving half a
        message to be sent silently. Raises :exc:`TypeError` for a payload
        that is not bytes-like, :exc:`~nursery.BusyResourceError` if another
        task is sending, :exc:`~nursery.ClosedResourceError` after
        :meth:`aclose`, :exc:`~nursery.BrokenResourceError` if the TLS layer
        or the transport failed.
        """
        try:
            view = memoryview(data)
        except TypeError:
            raise TypeError(
                f"send_all() expected a bytes-like object (bytes, bytearray, memoryview), got {type(data).__name__}"
            ) from None
        if view.ndim != 1 or view.format not in ("B", "b", "c"):
            view = view.cast("B")
        with self._send_conflict:
            self._check_usable("send_all()")
            await checkpoint_if_cancelled()
            blocked = await self._ensure_handshake()
            write = self._ssl_object.write
            total = view.nbytes
            start = 0
            try:
                while start < total:
                    if start:
                        # Another task may have closed the stream meanwhile.
                        self._check_usable("send_all()")
                    end = start + SEND_CHUNK_SIZE
                    _, chunk_blocked = await self._drive(write, view[start:end], wait_flush=True)
                    blocked = blocked or chunk_blocked
                    start = end
            except BaseException as exc:
                if not isinstance(exc, (BrokenResourceError, ClosedResourceError)):
                    self._break("a send_all() was cancelled part way; the peer got an unknown part of the data", None)
                raise
            if not blocked:
                await cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport would probably accept more data (see
        :meth:`nursery.SendStream.wait_send_all_might_not_block`). A
        checkpoint; same errors as :meth:`send_all`. Does not start the
        handshake."""
        with self._send_conflict:
            self._check_usable("wait_send_all_might_not_block()")
            transport = self.transport_stream
            assert transport is not None
            # Hold the send lock while waiting, so that no other task of
            # ours is in the transport's send_all at the same time (the
            # transport would call that a conflict). Bytes other tasks write
            # meanwhile are left to the holder: drain them before letting go.
            lock = self._send_lock
            await lock.acquire()
            try:
                try:
                    await transport.wait_send_all_might_not_block()
                except Exception as exc:
                    raise self._transport_error(exc) from exc
                await self._drain()
            finally:
                lock.release()

    def _read(self, max_bytes: int) -> bytes:
        """Read up to *max_bytes* of plaintext without blocking: what the
        first TLS record gives, plus as many more complete records as are
        already in the incoming BIO (OpenSSL returns one record per call, at
        most 16 KiB; gathering them costs far less than a trip through the
        event loop per record). Raises SSLWantReadError if nothing is there."""
        if self._read_error is not None:
            error, self._read_error = self._read_error, None
            raise error
        read = self._ssl_object.read
        data = read(max_bytes)
        if not data or len(data) >= max_bytes or not self._incoming.pending:
            return data
        parts = [data]
        total = len(data)
        while total < max_bytes:
            try:
                more = read(max_bytes - total)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError as exc:
                self._read_error = exc
                break
            if not more:
                break  # close_notify: the next read returns b"" again
            parts.append(more)
            total += len(more)
        return b"".join(parts)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive and decrypt at least one byte and at most *max_bytes*
        (64 KiB when ``None``); do the handshake first if it is not done yet.
        Returns ``b""`` once the peer has closed the TLS connection (sent
        ``close_notify``), and from then on.

        A checkpoint. A cancelled ``receive_some`` loses no data. Raises
        :exc:`ValueError` for ``max_bytes < 1``,
        :exc:`~nursery.BusyResourceError` if another task is receiving,
        :exc:`~nursery.ClosedResourceError` after :meth:`aclose`, and
        :exc:`~nursery.BrokenResourceError` if the TLS layer or the transport
        failed, or (unless *https_compatible*) if the peer closed the
        transport without sending ``close_notify``; with *https_compatible*
        that reads as ``b""``.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        else:
            try:
                max_bytes = operator.index(max_bytes)
            except TypeError:
                raise TypeError(f"receive_some() needs max_bytes to be an int or None, got {max_bytes!r}") from None
            if max_bytes < 1:
                raise ValueError(f"receive_some() max_bytes must be at least 1, got {max_bytes}")
        with self._receive_conflict:
            if self._state is _CLOSED:
                raise ClosedResourceError("receive_some() on a closed SSLStream")
            if self._received_eof:
                await checkpoint()
                return b""
            self._check_usable("receive_some()")
            await checkpoint_if_cancelled()
            try:
                blocked = await self._ensure_handshake()
                data, read_blocked = await self._drive(self._read, max_bytes, wait_flush=False)
            except BrokenResourceError as exc:
                cause = exc.__cause__
                if not self._handshake_done:
                    # The peer went away during the handshake (OpenSSL says
                    # "EOF", or sometimes "syscall error"): a client that
                    # connected and left, for an HTTPS server.
                    if self._https_compatible and isinstance(cause, (ssl.SSLEOFError, ssl.SSLSyscallError)):
                        self._received_eof = True
                        await cancel_shielded_checkpoint()
                        return b""
                    raise
                if isinstance(cause, ssl.SSLEOFError):
                    return await self._ragged_eof(cause)
                raise
            if not data:
                if self._transport_eof:
                    # The context has ssl.OP_IGNORE_UNEXPECTED_EOF, so OpenSSL
                    # took the bare end of the transport for a close_notify.
                    # A real close_notify is always read before we feed the
                    # BIO an EOF: the SSLObject asks for more input only once
                    # everything already received has been used up.
                    return await self._ragged_eof(None)
                self._received_eof = True
            if not (blocked or read_blocked):
                await cancel_shielded_checkpoint()
            return data

    async def _ragged_eof(self, cause: BaseException | None) -> bytes:
        if self._state is not _CLOSED:
            # (The TLS error that brought us here may have broken the stream
            # already, with a less helpful reason.)
            self._state = _BROKEN
            self._broken_reason = _RAGGED_EOF
            self._broken_cause = cause
        if not self._https_compatible:
            raise BrokenResourceError(_RAGGED_EOF) from cause
        # An ordinary end of stream for receiving; sending stays broken
        # (the peer has gone).
        self._received_eof = True
        await cancel_shielded_checkpoint()
        return b""

    async def unwrap(self) -> tuple[Stream, bytes]:
        """End TLS but keep the connection: send ``close_notify``, wait for
        the peer's, and return ``(transport_stream, trailing_bytes)``, where
        *trailing_bytes* is what the peer sent after its ``close_notify``
        (already read from the transport; it belongs to whatever protocol
        comes next). The peer must unwrap too (or answer ``close_notify``
        with its own). Afterwards this SSLStream is closed and the transport
        stream is yours.

        A checkpoint. Raises :exc:`~nursery.BusyResourceError` if another
        task is sending or receiving, :exc:`~nursery.ClosedResourceError`
        after :meth:`aclose`, :exc:`~nursery.BrokenResourceError` if the
        stream is broken or the peer closed the transport without
        ``close_notify``. A cancelled ``unwrap`` leaves the stream broken.
        """
        if self._send_conflict.held or self._receive_conflict.held:
            raise BusyResourceError("unwrap() while another task is sending or receiving on this SSLStream")
        with self._send_conflict, self._receive_conflict:
            self._check_usable("unwrap()")
            await checkpoint_if_cancelled()
            try:
                await self._ensure_handshake()
                await self._drive(self._ssl_object.unwrap, wait_flush=True)
            except BaseException as exc:
                if not isinstance(exc, (BrokenResourceError, ClosedResourceError)):
                    self._break("unwrap() was cancelled before the TLS shutdown finished", None)
                raise
            transport = self.transport_stream
            assert transport is not None
            self.transport_stream = None
            self._state = _CLOSED
            return transport, self._incoming.read()

    async def aclose(self) -> None:
        """Close the TLS connection and the transport stream. Idempotent.

        Unless *https_compatible*, first sends a ``close_notify`` (the TLS
        "end of data" message), without waiting for the peer's answer; not
        when the stream is broken, and not when the handshake has not
        finished: before it no data can have been sent, so there is nothing
        to protect from truncation, and finishing a handshake just to close
        could wait forever on a peer that is not reading. (Such a peer sees
        the connection end during the handshake: ``b""`` if it is
        *https_compatible*, :exc:`~nursery.BrokenResourceError` if not.)

        Tasks blocked in this stream get :exc:`~nursery.ClosedResourceError`.
        A checkpoint; if it is cancelled the transport is still closed,
        forcefully (see :func:`~nursery.aclose_forcefully`).
        """
        if self._state is _CLOSED:
            await checkpoint()
            return
        transport = self.transport_stream
        assert transport is not None
        graceful = self._state is _OK and self._handshake_done and not self._https_compatible
        # From here on every operation (and every task blocked in one, once
        # the transport is closed under it) reports ClosedResourceError.
        self._state = _CLOSED
        if not graceful:
            await transport.aclose()
            return
        try:
            try:
                # Writes close_notify; it then "wants to read" the peer's
                # answer, which we do not wait for.
                self._ssl_object.unwrap()
            except ssl.SSLWantReadError:
                pass
            await self._flush(wait=True)
        except (BrokenResourceError, ClosedResourceError, ssl.SSLError):
            # No graceful goodbye possible; closing the transport is all
            # that is left.
            pass
        except BaseException:
            await aclose_forcefully(transport)
            raise
        await transport.aclose()

    # -- what the SSLObject knows ------------------------------------------

    def _after_handshake(self, name: str) -> ssl.SSLObject:
        if not self._handshake_done:
            raise NeedHandshakeError(
                f"call do_handshake() before asking for {name}: it is not known before the handshake"
            )
        return self._ssl_object

    @property
    def context(self) -> ssl.SSLContext:
        """The :class:`ssl.SSLContext` the stream was created with."""
        return self._ssl_object.context

    @property
    def server_side(self) -> bool:
        """Whether this is the server end."""
        return self._ssl_object.server_side

    @property
    def server_hostname(self) -> str | None:
        """The hostname the server's certificate is checked against (client
        side), or ``None``."""
        return self._ssl_object.server_hostname

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session; set it before the handshake to resume an earlier
        session (client side)."""
        return self._ssl_object.session

    @session.setter
    def session(self, value: ssl.SSLSession) -> None:
        self._ssl_object.session = value

    def pending(self) -> int:
        """How many decrypted bytes are ready to be received without reading
        the transport (see :meth:`ssl.SSLObject.pending`)."""
        return self._ssl_object.pending()

    @property
    def session_reused(self) -> bool:
        """Whether the handshake resumed an earlier session.
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("session_reused").session_reused

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate (see :meth:`ssl.SSLSocket.getpeercert`).
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("getpeercert()").getpeercert(binary_form)

    def cipher(self) -> tuple[str, str, int] | None:
        """``(name, protocol, secret bits)`` of the negotiated cipher.
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("cipher()").cipher()

    def shared_ciphers(self) -> list[tuple[str, str, int]] | None:
        """The ciphers both ends offered (server side).
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("shared_ciphers()").shared_ciphers()

    def compression(self) -> str | None:
        """The compression in use, usually ``None``.
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("compression()").compression()

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        """Channel binding data (see :meth:`ssl.SSLSocket.get_channel_binding`).
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("get_channel_binding()").get_channel_binding(cb_type)

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN agreed on, or ``None`` (offer protocols with
        ``ssl_context.set_alpn_protocols``). :exc:`NeedHandshakeError` before
        the handshake."""
        return self._after_handshake("selected_alpn_protocol()").selected_alpn_protocol()

    def version(self) -> str | None:
        """The negotiated protocol version, such as ``"TLSv1.3"``.
        :exc:`NeedHandshakeError` before the handshake."""
        return self._after_handshake("version()").version()

    def __repr__(self) -> str:
        side = "server" if self._ssl_object.server_side else "client"
        return f"<nursery.SSLStream {side} {self._state.value} over {self.transport_stream!r}>"


class SSLListener(Listener[SSLStream]):
    """A :class:`~nursery.Listener` that wraps each connection its
    *transport_listener* accepts in a server-side :class:`SSLStream` with
    *ssl_context* and *https_compatible*. The handshake is not done by
    :meth:`accept`, but at the stream's first use (or its
    :meth:`~SSLStream.do_handshake`), so one slow or hostile client cannot
    hold up accepting the others."""

    __slots__ = ("transport_listener", "_ssl_context", "_https_compatible")

    def __init__(
        self, transport_listener: Listener[Stream], ssl_context: ssl.SSLContext, *, https_compatible: bool = False
    ) -> None:
        if not isinstance(transport_listener, Listener):
            raise TypeError(f"SSLListener needs a nursery.Listener to accept from, got {transport_listener!r}")
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"SSLListener needs an ssl.SSLContext, got {ssl_context!r}")
        check_context_side(ssl_context, True, "SSLListener")
        #: The listener whose connections are wrapped.
        self.transport_listener = transport_listener
        self._ssl_context = ssl_context
        self._https_compatible = https_compatible

    async def accept(self) -> SSLStream:
        """Accept the next connection and return it wrapped in a server-side
        :class:`SSLStream` (handshake not yet done). A checkpoint; errors are
        the transport listener's."""
        transport = await self.transport_listener.accept()
        return SSLStream(transport, self._ssl_context, server_side=True, https_compatible=self._https_compatible)

    async def aclose(self) -> None:
        """Close the transport listener. Idempotent; a checkpoint."""
        await self.transport_listener.aclose()

    def __repr__(self) -> str:
        return f"<nursery.SSLListener over {self.transport_listener!r}>"

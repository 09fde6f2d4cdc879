"""In-memory byte streams for tests: a send stream and a receive stream with
unbounded buffers, hooks to control what happens between them, and the
pairs built from them.

A ``MemorySendStream`` only buffers what is sent; a ``MemoryReceiveStream``
only returns what was put into it. Something has to move the bytes across:
:func:`memory_stream_pump`, called by hand in a test that wants to control
every step, or from the hooks, as :func:`memory_stream_one_way_pair` sets up
so that the two behave like a connected stream.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from .._abc import ReceiveStream, SendStream
from .._conflict_detector import ConflictDetector
from .._core import (
    BrokenResourceError,
    ClosedResourceError,
    ParkingLot,
    WouldBlock,
    checkpoint,
)
from .._stapled import StapledStream
from .._stream_args import check_max_bytes, check_payload

__all__ = [
    "MemorySendStream",
    "MemoryReceiveStream",
    "memory_stream_pump",
    "memory_stream_one_way_pair",
    "memory_stream_pair",
]

AsyncHook = Callable[[], Awaitable[object]]
SyncHook = Callable[[], object]


class _ByteQueue:
    """An unbounded FIFO of bytes with at most one waiting reader (the
    streams' conflict detectors make sure of that).

    ``take`` does not checkpoint when data is there: its callers have just
    checkpointed, and taking right after the wait, with no yield between,
    is what makes a cancelled read lose nothing (a read cancelled while
    parked took nothing; a read woken by ``put`` cannot be cancelled any
    more and takes the data at once).
    """

    __slots__ = ("data", "closed", "_lot")

    def __init__(self) -> None:
        self.data = bytearray()
        # No more data will come: readers get what is left, then b"".
        self.closed = False
        self._lot = ParkingLot()

    def put(self, data: bytes | bytearray | memoryview) -> None:
        # Callers check ``closed`` first, to raise with their own message.
        if data:
            # ``+=`` copies, so the sender may reuse its buffer at once.
            self.data += data
            self._lot.unpark_all()

    def close(self) -> None:
        self.closed = True
        self._lot.unpark_all()

    def close_and_wipe(self) -> None:
        self.data.clear()
        self.close()

    def take_nowait(self, max_bytes: int | None) -> bytes:
        """What is buffered (at most *max_bytes*), ``b""`` once closed and
        empty, or :exc:`WouldBlock`."""
        data = self.data
        if not data:
            if self.closed:
                return b""
            raise WouldBlock
        if max_bytes is None or max_bytes >= len(data):
            chunk = bytes(data)
            data.clear()
        else:
            chunk = bytes(data[:max_bytes])
            # Deleting from the front of a bytearray is O(1) in CPython (it
            # moves its start offset), so a slow reader costs no copying.
            del data[:max_bytes]
        return chunk

    async def take(self, max_bytes: int | None) -> bytes:
        """Wait until there is data or the queue is closed, then take as
        :meth:`take_nowait` does. Blocks only when empty; never checkpoints
        otherwise (see the class docstring)."""
        while not self.data and not self.closed:
            await self._lot.park()
        return self.take_nowait(max_bytes)


class MemorySendStream(SendStream):
    """A :class:`~nursery.SendStream` that keeps what is sent in an
    unbounded buffer, from which a test takes it with :meth:`get_data` or
    :meth:`get_data_nowait`.

    Three hooks, each a constructor argument and a writable attribute of
    the same name, let a test decide what happens around the buffer:

    * ``send_all_hook``: an async function with no arguments, awaited at
      the end of every :meth:`send_all`, after the data was buffered;
    * ``wait_send_all_might_not_block_hook``: an async function awaited at
      the end of :meth:`wait_send_all_might_not_block`;
    * ``close_hook``: a plain function, called every time :meth:`close` or
      :meth:`aclose` runs (also on the second and later calls).

    Like every stream, one task at a time may send (:meth:`send_all` and
    :meth:`wait_send_all_might_not_block` share one slot); a second gets
    :exc:`~nursery.BusyResourceError`.
    """

    def __init__(
        self,
        send_all_hook: AsyncHook | None = None,
        wait_send_all_might_not_block_hook: AsyncHook | None = None,
        close_hook: SyncHook | None = None,
    ) -> None:
        self.send_all_hook = send_all_hook
        self.wait_send_all_might_not_block_hook = wait_send_all_might_not_block_hook
        self.close_hook = close_hook
        self._outgoing = _ByteQueue()
        self._sending = ConflictDetector("another task is already sending on this MemorySendStream")
        self._getting = ConflictDetector("another task is already in get_data() on this MemorySendStream")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Append *data* to the buffer (a copy: the caller may reuse its
        buffer at once), then await ``send_all_hook``. A checkpoint, before
        anything is buffered: if it raises ``Cancelled``, nothing was sent.

        Raises :exc:`TypeError` if *data* is not bytes, bytearray or
        memoryview, :exc:`~nursery.ClosedResourceError` if this stream was
        closed, :exc:`~nursery.BusyResourceError` if another task is sending,
        and whatever the hook raises.
        """
        with self._sending:
            check_payload(data, "MemorySendStream.send_all()")
            await checkpoint()
            if self._outgoing.closed:
                raise ClosedResourceError("send_all() on a MemorySendStream that was closed")
            self._outgoing.put(data)
            hook = self.send_all_hook
            if hook is not None:
                await hook()

    async def wait_send_all_might_not_block(self) -> None:
        """Checkpoint, then await ``wait_send_all_might_not_block_hook``
        (the buffer itself never blocks). Raises
        :exc:`~nursery.ClosedResourceError` if this stream was closed and
        :exc:`~nursery.BusyResourceError` if another task is sending."""
        with self._sending:
            await checkpoint()
            if self._outgoing.closed:
                raise ClosedResourceError("wait_send_all_might_not_block() on a MemorySendStream that was closed")
            hook = self.wait_send_all_might_not_block_hook
            if hook is not None:
                await hook()

    def close(self) -> None:
        """Close the stream at once (synchronously), then call
        ``close_hook``. What is buffered can still be taken with
        :meth:`get_data`; after it, ``get_data`` returns ``b""``.
        Idempotent. Not a checkpoint."""
        self._outgoing.close()
        hook = self.close_hook
        if hook is not None:
            hook()

    async def aclose(self) -> None:
        """:meth:`close`, then a checkpoint (the stream is closed even if
        the checkpoint raises ``Cancelled``)."""
        self.close()
        await checkpoint()

    async def get_data(self, max_bytes: int | None = None) -> bytes:
        """Take what was sent and is still buffered, at most *max_bytes*
        (all of it for ``None``), waiting until there is some. Returns
        ``b""`` once the stream is closed and the buffer is empty. A
        checkpoint; a cancelled call takes nothing. Raises
        :exc:`~nursery.BusyResourceError` if another task is in
        ``get_data()``."""
        with self._getting:
            max_bytes = check_max_bytes(max_bytes, "get_data()")
            await checkpoint()
            return await self._outgoing.take(max_bytes)

    def get_data_nowait(self, max_bytes: int | None = None) -> bytes:
        """Like :meth:`get_data`, but raises :exc:`~nursery.WouldBlock`
        instead of waiting. Not a checkpoint."""
        with self._getting:
            max_bytes = check_max_bytes(max_bytes, "get_data_nowait()")
            return self._outgoing.take_nowait(max_bytes)

    def __repr__(self) -> str:
        closed = ", closed" if self._outgoing.closed else ""
        return f"<MemorySendStream at {id(self):#x}, {len(self._outgoing.data)} bytes buffered{closed}>"


class MemoryReceiveStream(ReceiveStream):
    """A :class:`~nursery.ReceiveStream` that returns what a test puts into
    it with :meth:`put_data`, and ``b""`` after :meth:`put_eof`.

    Two hooks, each a constructor argument and a writable attribute:

    * ``receive_some_hook``: an async function with no arguments, awaited
      in every :meth:`receive_some` before it looks at the buffer (a place
      to pump data in);
    * ``close_hook``: a plain function, called every time :meth:`close` or
      :meth:`aclose` runs.

    One task at a time may receive; a second gets
    :exc:`~nursery.BusyResourceError`.
    """

    def __init__(
        self,
        receive_some_hook: AsyncHook | None = None,
        close_hook: SyncHook | None = None,
    ) -> None:
        self.receive_some_hook = receive_some_hook
        self.close_hook = close_hook
        self._closed = False
        self._incoming = _ByteQueue()
        self._receiving = ConflictDetector("another task is already receiving on this MemoryReceiveStream")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Await ``receive_some_hook``, then return at least one and at
        most *max_bytes* buffered bytes (all of them for ``None``), waiting
        until there are some; ``b""`` after :meth:`put_eof` once the buffer
        is empty (every time it is called).

        A checkpoint. A cancelled call takes nothing: the data stays for the
        next call. Raises :exc:`ValueError` for ``max_bytes < 1``,
        :exc:`TypeError` for a non-integer, :exc:`~nursery.ClosedResourceError`
        if this stream is closed (also when it is closed while the call
        waits), :exc:`~nursery.BusyResourceError` if another task is
        receiving.
        """
        with self._receiving:
            max_bytes = check_max_bytes(max_bytes, "MemoryReceiveStream.receive_some()")
            await checkpoint()
            if self._closed:
                raise ClosedResourceError("receive_some() on a MemoryReceiveStream that was closed")
            hook = self.receive_some_hook
            if hook is not None:
                await hook()
            data = await self._incoming.take(max_bytes)
            if self._closed:
                raise ClosedResourceError("the MemoryReceiveStream was closed while receive_some() was waiting")
            return data

    def close(self) -> None:
        """Close the stream at once (synchronously): buffered data is
        discarded, a waiting :meth:`receive_some` raises
        :exc:`~nursery.ClosedResourceError`, and so do later calls and
        :meth:`put_data`. Then calls ``close_hook``. Idempotent. Not a
        checkpoint."""
        self._closed = True
        self._incoming.close_and_wipe()
        hook = self.close_hook
        if hook is not None:
            hook()

    async def aclose(self) -> None:
        """:meth:`close`, then a checkpoint (the stream is closed even if
        the checkpoint raises ``Cancelled``)."""
        self.close()
        await checkpoint()

    def put_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add *data* (a copy) to the buffer, waking a waiting
        :meth:`receive_some`. Raises :exc:`TypeError` for a non-bytes
        payload and :exc:`~nursery.ClosedResourceError` if the stream was
        closed or :meth:`put_eof` was called. Not a checkpoint."""
        check_payload(data, "put_data()")
        if self._incoming.closed:
            if self._closed:
                raise ClosedResourceError("put_data() on a MemoryReceiveStream that was closed")
            raise ClosedResourceError("put_data() after put_eof(): no more data may follow the end of the stream")
        self._incoming.put(data)

    def put_eof(self) -> None:
        """Mark the end of the stream: once the buffer is empty,
        :meth:`receive_some` returns ``b""``. Idempotent. Not a
        checkpoint."""
        self._incoming.close()

    def __repr__(self) -> str:
        if self._closed:
            state = ", closed"
        elif self._incoming.closed:
            state = ", at EOF"
        else:
            state = ""
        return f"<MemoryReceiveStream at {id(self):#x}, {len(self._incoming.data)} bytes buffered{state}>"


def memory_stream_pump(
    memory_send_stream: MemorySendStream,
    memory_receive_stream: MemoryReceiveStream,
    *,
    max_bytes: int | None = None,
) -> bool:
    """Move what *memory_send_stream* has buffered (at most *max_bytes*) into
    *memory_receive_stream*; once the send stream is closed and everything
    it buffered has moved, also deliver the end of the stream
    (:meth:`~MemoryReceiveStream.put_eof`).

    Returns whether anything (data or the end of the stream) was delivered:
    ``False`` when the send stream's buffer was empty and it is still open.
    Raises :exc:`~nursery.BrokenResourceError` if there is data to deliver
    but the receive stream was closed (the data is dropped, as a network
    would drop it). Synchronous: not a checkpoint.
    """
    try:
        data = memory_send_stream.get_data_nowait(max_bytes)
    except WouldBlock:
        return False
    if data:
        try:
            memory_receive_stream.put_data(data)
        except ClosedResourceError:
            raise BrokenResourceError(
                "the receiving end of this memory stream was closed; the data cannot be delivered"
            ) from None
    if memory_send_stream._outgoing.closed and not memory_send_stream._outgoing.data:
        memory_receive_stream.put_eof()
    return True


def memory_stream_one_way_pair() -> tuple[MemorySendStream, MemoryReceiveStream]:
    """A connected ``(MemorySendStream, MemoryReceiveStream)`` pair with
    unbounded buffering: ``send_all`` moves the data across at once and
    never blocks; closing the send stream delivers EOF; sending after the
    receive stream was closed raises :exc:`~nursery.BrokenResourceError`.

    The connection is made by hooks that call :func:`memory_stream_pump`
    (the send stream's ``send_all_hook`` and ``close_hook``, the receive
    stream's ``receive_some_hook``); replace them to take control. For
    example, set ``send_all_hook`` and ``receive_some_hook`` to ``None`` and
    call :func:`memory_stream_pump` by hand, with a small *max_bytes*, to
    test what a receiver does with data that arrives in odd pieces.
    """
    send_stream = MemorySendStream()
    receive_stream = MemoryReceiveStream()

    def pump() -> None:
        memory_stream_pump(send_stream, receive_stream)

    async def async_pump() -> None:
        pump()

    def pump_on_close() -> None:
        # Closing must not raise: if the receiver is gone, there is nobody
        # to deliver anything to.
        try:
            pump()
        except BrokenResourceError:
            pass

    send_stream.send_all_hook = async_pump
    send_stream.close_hook = pump_on_close
    receive_stream.receive_some_hook = async_pump
    return send_stream, receive_stream


def memory_stream_pair() -> tuple[
    StapledStream[MemorySendStream, MemoryReceiveStream],
    StapledStream[MemorySendStream, MemoryReceiveStream],
]:
    """Two connected :class:`~nursery.StapledStream` objects, each made of
    one end of two :func:`memory_stream_one_way_pair` pairs: what one sends,
    the other receives, with unbounded buffering in both directions.
    ``send_eof()`` on one closes its send stream, so the other sees EOF
    while the reverse direction keeps working."""
    a_send, b_receive = memory_stream_one_way_pair()
    b_send, a_receive = memory_stream_one_way_pair()
    return StapledStream(a_send, a_receive), StapledStream(b_send, b_receive)

"""Lockstep streams: in-memory streams with no buffering at all, where
``send_all`` returns only once the receiver has taken every byte.

They are as unforgiving as a stream can be: a sender makes progress only
while a receiver is reading, so code that sends and receives on one task, or
that waits for a reply before the peer has read its request, deadlocks here
at once instead of once in a thousand runs over a real network.
"""

from __future__ import annotations

from typing import Callable

from .._abc import ReceiveStream, SendStream
from .._conflict_detector import ConflictDetector
from .._core import (
    BrokenResourceError,
    ClosedResourceError,
    ParkingLot,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
)
from .._stapled import StapledStream
from .._stream_args import check_max_bytes, check_payload

__all__ = ["lockstep_stream_one_way_pair", "lockstep_stream_pair"]


class _Lockstep:
    """The state one sender and one receiver share.

    Data sits in ``data`` only while a ``send_all`` is waiting for the
    receiver to take it. ``taken`` counts every byte the receiver has ever
    taken, so a sender knows its data is through once ``taken`` reaches the
    mark it computed when it started, whatever else happened meanwhile.
    """

    __slots__ = (
        "data",
        "taken",
        "sender_closed",
        "receiver_closed",
        "receiver_waiting",
        "broken",
        "_lot",
        "sending",
        "receiving",
    )

    def __init__(self) -> None:
        self.data = bytearray()
        self.taken = 0
        self.sender_closed = False
        self.receiver_closed = False
        # A receive_some is blocked, waiting for data: the hint that
        # wait_send_all_might_not_block waits for.
        self.receiver_waiting = False
        # A send_all was cancelled after the receiver took part of its data.
        self.broken = False
        # Everyone who waits parks here and re-checks their condition when
        # woken: with one sender and one receiver, precise wake-ups are not
        # worth their bookkeeping.
        self._lot = ParkingLot()
        self.sending = ConflictDetector("another task is already sending on this lockstep stream")
        self.receiving = ConflictDetector("another task is already receiving on this lockstep stream")

    def something_happened(self) -> None:
        self._lot.unpark_all()

    async def wait_for(self, condition: Callable[[], object]) -> bool:
        """Block until *condition()* is true; return whether it blocked.
        Callers have checked for cancellation already."""
        if condition():
            return False
        while not condition():
            await self._lot.park()
        return True

    # -- send side ---------------------------------------------------------

    def _check_can_send(self, what: str) -> None:
        if self.sender_closed:
            raise ClosedResourceError(f"{what} on a lockstep stream that was closed")
        if self.broken:
            raise BrokenResourceError(
                f"{what}: an earlier send_all() was cancelled after the receiver had taken part of its data, "
                "so the stream is broken"
            )
        if self.receiver_closed:
            raise BrokenResourceError(f"{what}: the receiving end of this lockstep stream was closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self.sending:
            check_payload(data, "lockstep send_all()")
            await checkpoint_if_cancelled()
            self._check_can_send("send_all()")
            # Not broken, so no earlier send left data behind.
            assert not self.data
            mark = self.taken + len(data)
            self.data += data  # a copy: the caller may reuse its buffer
            self.something_happened()
            try:
                blocked = await self.wait_for(
                    lambda: self.taken >= mark or self.sender_closed or self.receiver_closed
                )
            except BaseException:
                # Cancelled. If the receiver took none of it, take it all back:
                # the call sent nothing and the stream is fine. If it took a
                # part, the rest still goes through, but the caller cannot
                # know how much was sent, so the stream is broken.
                if self.taken == mark - len(data):
                    self.data.clear()
                elif self.taken < mark:
                    self.broken = True
                raise
            if self.taken >= mark:
                if not blocked:
                    # Only b"" gets here without blocking.
                    await cancel_shielded_checkpoint()
                return
            if self.sender_closed:
                raise ClosedResourceError("the lockstep stream was closed while send_all() was waiting")
            raise BrokenResourceError("the receiving end of this lockstep stream was closed before it took the data")

    async def wait_send_all_might_not_block(self) -> None:
        with self.sending:
            await checkpoint_if_cancelled()
            if self.sender_closed:
                raise ClosedResourceError("wait_send_all_might_not_block() on a lockstep stream that was closed")
            # A broken stream or a closed receiver makes send_all fail at
            # once rather than block, so there is nothing to wait for.
            blocked = await self.wait_for(
                lambda: self.receiver_waiting or self.sender_closed or self.receiver_closed or self.broken
            )
            if self.sender_closed:
                raise ClosedResourceError(
                    "the lockstep stream was closed while wait_send_all_might_not_block() was waiting"
                )
            if not blocked:
                await cancel_shielded_checkpoint()

    def close_sender(self) -> None:
        # Data of a send_all still waiting is dropped: that send_all raises
        # ClosedResourceError and the receiver sees the end of the stream.
        self.sender_closed = True
        self.data.clear()
        self.something_happened()

    # -- receive side ------------------------------------------------------

    async def receive_some(self, max_bytes: int | None) -> bytes:
        with self.receiving:
            max_bytes = check_max_bytes(max_bytes, "lockstep receive_some()")
            await checkpoint_if_cancelled()
            if self.receiver_closed:
                raise ClosedResourceError("receive_some() on a lockstep stream that was closed")
            self.receiver_waiting = True
            self.something_happened()
            try:
                blocked = await self.wait_for(lambda: self.data or self.sender_closed or self.receiver_closed)
            finally:
                self.receiver_waiting = False
            if self.receiver_closed:
                raise ClosedResourceError("the lockstep stream was closed while receive_some() was waiting")
            data = self.data
            if max_bytes is None or max_bytes >= len(data):
                chunk = bytes(data)
                data.clear()
            else:
                chunk = bytes(data[:max_bytes])
                del data[:max_bytes]
            if chunk:
                self.taken += len(chunk)
                self.something_happened()
            if not blocked:
                # The data is taken already; a shielded yield cannot lose it.
                await cancel_shielded_checkpoint()
            return chunk

    def close_receiver(self) -> None:
        self.receiver_closed = True
        self.data.clear()
        self.something_happened()


class LockstepSendStream(SendStream):
    """The send side of a :func:`lockstep_stream_one_way_pair`."""

    def __init__(self, lockstep: _Lockstep) -> None:
        self._lockstep = lockstep

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Hand *data* to the receiver, returning once it has taken all of
        it. A checkpoint. Cancelled before the receiver took any of it: sent
        nothing, the stream stays usable. Cancelled after it took a part:
        the rest is still delivered, but later sends raise
        :exc:`~nursery.BrokenResourceError`. Raises
        :exc:`~nursery.BrokenResourceError` if the receive side was closed,
        :exc:`~nursery.ClosedResourceError` if this side was closed (also
        while waiting)."""
        await self._lockstep.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until a receiver is blocked in ``receive_some`` (or a send
        would fail at once). A checkpoint."""
        await self._lockstep.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close this side (the receiver then sees the end of the stream);
        idempotent; a checkpoint."""
        self._lockstep.close_sender()
        await checkpoint()

    def __repr__(self) -> str:
        return f"<lockstep send stream at {id(self):#x}{', closed' if self._lockstep.sender_closed else ''}>"


class LockstepReceiveStream(ReceiveStream):
    """The receive side of a :func:`lockstep_stream_one_way_pair`."""

    def __init__(self, lockstep: _Lockstep) -> None:
        self._lockstep = lockstep

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Wait for a sender and take at most *max_bytes* of its data;
        ``b""`` once the send side is closed. A checkpoint; a cancelled call
        takes nothing."""
        return await self._lockstep.receive_some(max_bytes)

    async def aclose(self) -> None:
        """Close this side (senders then get
        :exc:`~nursery.BrokenResourceError`); idempotent; a checkpoint."""
        self._lockstep.close_receiver()
        await checkpoint()

    def __repr__(self) -> str:
        return f"<lockstep receive stream at {id(self):#x}{', closed' if self._lockstep.receiver_closed else ''}>"


def lockstep_stream_one_way_pair() -> tuple[SendStream, ReceiveStream]:
    """A connected ``(send_stream, receive_stream)`` pair with no buffering:
    ``send_all`` blocks until the receiver has taken all of its data, and
    ``wait_send_all_might_not_block`` until a receiver is waiting. Closing
    the send side gives the receiver ``b""``; closing the receive side makes
    sends raise :exc:`~nursery.BrokenResourceError`.

    Use it to flush out code that only works because real streams buffer:
    what deadlocks here could deadlock on a network whose buffers are full.
    """
    lockstep = _Lockstep()
    return LockstepSendStream(lockstep), LockstepReceiveStream(lockstep)


def lockstep_stream_pair() -> tuple[
    StapledStream[SendStream, ReceiveStream],
    StapledStream[SendStream, ReceiveStream],
]:
    """Two connected :class:`~nursery.StapledStream` objects built from two
    :func:`lockstep_stream_one_way_pair` pairs: like
    :func:`~nursery.testing.memory_stream_pair`, but with no buffering in
    either direction."""
    a_send, b_receive = lockstep_stream_one_way_pair()
    b_send, a_receive = lockstep_stream_one_way_pair()
    return StapledStream(a_send, a_receive), StapledStream(b_send, b_receive)

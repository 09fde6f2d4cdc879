"""Two one-way streams joined into one two-way stream."""

from __future__ import annotations

from typing import Generic, TypeVar

from ._abc import HalfCloseableStream, ReceiveStream, SendStream
from ._conflict_detector import ConflictDetector
from ._core import ClosedResourceError, checkpoint

S = TypeVar("S", bound=SendStream)
R = TypeVar("R", bound=ReceiveStream)


class StapledStream(HalfCloseableStream, Generic[S, R]):
    """A :class:`HalfCloseableStream` that sends on *send_stream* and
    receives from *receive_stream* (for example a subprocess's stdin and
    stdout).

    ``send_eof()`` calls the send stream's ``send_eof()`` when it has one and
    closes the send stream otherwise. As on any stream, it raises
    :exc:`~nursery.ClosedResourceError` after this stream's ``aclose()``, and
    :exc:`~nursery.BusyResourceError` while another task is in this stream's
    ``send_all()`` or ``wait_send_all_might_not_block()`` (which also
    exclude each other). ``aclose()`` closes both halves, the receive stream
    even if closing the send stream fails.
    """

    def __init__(self, send_stream: S, receive_stream: R) -> None:
        self.send_stream = send_stream
        self.receive_stream = receive_stream
        # Needed by send_eof() alone: closing a send stream that has no
        # send_eof() of its own is how send_eof() works, so the send stream
        # being closed does not tell whether *this* stream was closed.
        self._closed = False
        # send_all, wait_send_all_might_not_block and send_eof exclude each
        # other here, not only in the send stream: closing a send stream
        # (send_eof without a send_eof of its own) does not conflict with
        # its send_all, it interrupts it.
        self._sending = ConflictDetector("another task is already sending on this StapledStream")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._sending:
            return await self.send_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            return await self.send_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        with self._sending:
            if self._closed:
                await checkpoint()
                raise ClosedResourceError("send_eof() on a StapledStream that was closed")
            stream = self.send_stream
            if isinstance(stream, HalfCloseableStream):
                return await stream.send_eof()
            return await stream.aclose()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.receive_stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        self._closed = True
        try:
            await self.send_stream.aclose()
        finally:
            await self.receive_stream.aclose()

    def __repr__(self) -> str:
        return f"<StapledStream send={self.send_stream!r} receive={self.receive_stream!r}>"

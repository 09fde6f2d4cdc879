"""The abstract shapes every byte stream and listener in nursery follows.

Code written against these ABCs works with TCP, Unix sockets, TLS, pipes to a
subprocess and the in-memory streams of :mod:`nursery.testing` alike, and the
conformance checks in :mod:`nursery.testing` hold every implementation to the
same contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Generic, TypeVar

from ._core import CancelScope

T_resource = TypeVar("T_resource", bound="AsyncResource", covariant=True)


class AsyncResource(ABC):
    """Something that holds an OS or protocol resource and must be closed.

    ``aclose()`` closes it; closing twice is a no-op, and using it after it is
    closed raises :exc:`nursery.ClosedResourceError`. ``async with resource:``
    closes it on the way out. ``aclose()`` is a checkpoint; if it is
    cancelled, the resource is still closed, only less gracefully (see
    :func:`aclose_forcefully`).
    """

    __slots__ = ()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the resource. Idempotent; a checkpoint."""

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


_Self = TypeVar("_Self", bound=AsyncResource)


async def aclose_forcefully(resource: AsyncResource) -> None:
    """Close *resource* at once, skipping any graceful shutdown (a TLS
    close_notify, a flush): ``aclose()`` runs inside an already-cancelled
    scope. Use it when the peer is misbehaving or you are cleaning up after
    an error. A checkpoint."""
    with CancelScope() as scope:
        scope.cancel()
        await resource.aclose()


class SendStream(AsyncResource):
    """The sending half of a byte stream."""

    __slots__ = ()

    @abstractmethod
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of *data*, waiting as long as the transport needs.

        Returns once the data is handed to the transport (not necessarily
        received). Raises :exc:`nursery.BusyResourceError` if another task is
        already sending on this stream, :exc:`nursery.ClosedResourceError` if
        this stream was closed, :exc:`nursery.BrokenResourceError` if the
        transport failed. If cancelled part way, an unknown amount of *data*
        was sent and the stream is broken: later sends raise
        :exc:`nursery.BrokenResourceError` instead of sending a partial
        message silently.
        """

    @abstractmethod
    async def wait_send_all_might_not_block(self) -> None:
        """Wait until a ``send_all`` would probably not block. A hint for
        code that wants to produce data at the last moment; it may return
        early. Same errors as :meth:`send_all`."""


class ReceiveStream(AsyncResource):
    """The receiving half of a byte stream. ``async for chunk in stream``
    yields chunks until the peer closes its end."""

    __slots__ = ()

    @abstractmethod
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Wait for and return at least one byte, at most *max_bytes* (a
        reasonable chunk size when ``None``). Returns ``b""`` once the peer
        has closed its end and everything sent was received.

        Raises :exc:`ValueError` for ``max_bytes < 1``,
        :exc:`nursery.BusyResourceError` if another task is already receiving,
        :exc:`nursery.ClosedResourceError` if this stream was closed,
        :exc:`nursery.BrokenResourceError` if the transport failed. A
        cancelled ``receive_some`` loses no data: what arrives later is
        returned by the next call.
        """

    def __aiter__(self) -> ReceiveStream:
        return self

    async def __anext__(self) -> bytes | bytearray:
        data = await self.receive_some()
        if not data:
            raise StopAsyncIteration
        return data


class Stream(SendStream, ReceiveStream):
    """A bidirectional byte stream."""

    __slots__ = ()


class HalfCloseableStream(Stream):
    """A stream whose sending side can be closed on its own."""

    __slots__ = ()

    @abstractmethod
    async def send_eof(self) -> None:
        """Tell the peer no more data is coming (its ``receive_some``
        returns ``b""``), while still receiving. Idempotent. Raises
        :exc:`nursery.BusyResourceError` if a ``send_all`` is running,
        :exc:`nursery.ClosedResourceError` if the stream was closed."""


class Listener(AsyncResource, Generic[T_resource]):
    """Accepts incoming connections, each an :class:`AsyncResource`
    (usually a :class:`Stream`)."""

    __slots__ = ()

    @abstractmethod
    async def accept(self) -> T_resource:
        """Wait for and return the next connection. Raises
        :exc:`nursery.BusyResourceError` if another task is already accepting
        and :exc:`nursery.ClosedResourceError` if the listener was closed."""

"""The I/O half of compat's event loop: asyncio's selector loop, with the
kernel as its selector.

:class:`KernelSelectorIO` is mixed into :class:`nursery.compat.EventLoop`
ahead of :class:`asyncio.SelectorEventLoop`. Everything asyncio's selector
loop builds on its selector (sockets' ``sock_*`` methods, servers, the
socket, datagram, SSL and pipe transports, ``sendfile``) comes unmodified
from the running interpreter's asyncio; only the methods that talk to the
selector are replaced, by the kernel's fd readiness callbacks
(:meth:`nursery.lowlevel.KernelRun.add_reader` & co.): a ready fd puts its
asyncio handle straight into the kernel's ready queue, where asyncio's loop
would have put it into ``loop._ready``. So the loop has no selector, no
self-pipe and no poll of its own: the kernel's one poll serves the loop's
transports and nursery's tasks alike. (The one subclass: stream sockets get
asyncio's socket transport with shorter read and write paths,
:mod:`._socket_transport`.)
"""

from __future__ import annotations

import selectors
from collections.abc import Mapping
from typing import Any, Iterator

from ._handles import Handle
from ._socket_transport import SocketTransport

__all__ = ["KernelSelectorIO"]

_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE


def _fileno(fileobj: Any) -> int:
    # What a selector accepts as an fd, with its errors.
    if fileobj.__class__ is int:
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class KernelSelectorIO:
    """asyncio's selector-loop I/O hooks on the kernel's fd callbacks.

    A mixin for an :class:`asyncio.selector_events.BaseSelectorEventLoop`
    subclass whose ``_kernel_run`` is a :class:`nursery.lowlevel.KernelRun`.
    ``add_reader``/``remove_reader``/``add_writer``/``remove_writer`` keep
    asyncio's contract (one reader and one writer per fd, a new one replaces
    the old, level-triggered); an fd that a nursery task waits on in the same
    direction (``nursery.lowlevel.wait_readable``) cannot also get a callback
    (:exc:`nursery.BusyResourceError`).
    """

    _kernel_run: Any

    # The kernel's wake-up channel wakes the loop from other threads
    # (_write_to_self): asyncio's self-pipe is not made.
    _ssock = None
    _csock = None

    # The kernel's wake-up channel stands in for the self-pipe: it is what
    # asyncio counts in _internal_fds.
    def _make_self_pipe(self) -> None:
        self._internal_fds += 1  # type: ignore[attr-defined]

    def _close_self_pipe(self) -> None:
        self._internal_fds -= 1  # type: ignore[attr-defined]

    def _read_from_self(self) -> None:
        pass

    def _make_socket_transport(
        self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None, server: Any = None
    ) -> SocketTransport:
        # asyncio's transport with shorter read and write paths
        # (_socket_transport).
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    # Hot path (every sock_recv/sock_sendall that blocks, every
    # pause/resume_reading of a transport; benchmarks: the compat streams
    # echo): one handle and one kernel call.
    def _add_reader(self, fd: Any, callback: Any, *args: Any) -> Handle:
        self._check_closed()  # type: ignore[attr-defined]
        handle = Handle(callback, args, self, None)
        previous = self._kernel_run.add_reader(fd if fd.__class__ is int and fd >= 0 else _fileno(fd), handle)
        if previous is not None:
            previous.cancel()
        return handle

    def _add_writer(self, fd: Any, callback: Any, *args: Any) -> Handle:
        self._check_closed()  # type: ignore[attr-defined]
        handle = Handle(callback, args, self, None)
        previous = self._kernel_run.add_writer(fd if fd.__class__ is int and fd >= 0 else _fileno(fd), handle)
        if previous is not None:
            previous.cancel()
        return handle

    def _remove_reader(self, fd: Any) -> bool:
        if self._closed:  # type: ignore[attr-defined]
            return False
        handle = self._kernel_run.remove_reader(fd if fd.__class__ is int and fd >= 0 else _fileno(fd))
        if handle is None:
            return False
        # It may be in the ready queue already, from this turn's poll.
        handle.cancel()
        return True

    def _remove_writer(self, fd: Any) -> bool:
        if self._closed:  # type: ignore[attr-defined]
            return False
        handle = self._kernel_run.remove_writer(fd if fd.__class__ is int and fd >= 0 else _fileno(fd))
        if handle is None:
            return False
        handle.cancel()
        return True


class KernelSelector(selectors.BaseSelector):
    """What ``loop._selector`` is on compat's loop: a read-only view of the
    fds the loop watches through the kernel, for code that inspects the
    selector (asyncio's transports' reprs ask it whether they are polling).
    It cannot register or poll: the kernel does that."""

    def __init__(self, kernel_run: Any) -> None:
        self._kernel_run = kernel_run

    def _key(self, fd: int, reader: Any, writer: Any) -> selectors.SelectorKey:
        events = (_EVENT_READ if reader is not None else 0) | (_EVENT_WRITE if writer is not None else 0)
        return selectors.SelectorKey(fd, fd, events, (reader, writer))

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        fd = _fileno(fileobj)
        reader, writer = self._kernel_run.fd_callbacks(fd)
        if reader is None and writer is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return self._key(fd, reader, writer)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return _KeyMap(self)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise _read_only()

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        raise _read_only()

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise _read_only()

    def select(self, timeout: float | None = None) -> list:
        raise _read_only()

    def close(self) -> None:
        pass


def _read_only() -> NotImplementedError:
    return NotImplementedError(
        "compat's event loop watches fds through the nursery kernel; use "
        "loop.add_reader()/add_writer() rather than the loop's selector"
    )


class _KeyMap(Mapping):
    def __init__(self, selector: KernelSelector) -> None:
        self._selector = selector

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        return self._selector.get_key(fileobj)

    def __iter__(self) -> Iterator[int]:
        return iter(self._selector._kernel_run.all_fd_callbacks())

    def __len__(self) -> int:
        return len(self._selector._kernel_run.all_fd_callbacks())

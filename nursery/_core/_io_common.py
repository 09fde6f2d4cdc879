"""What every I/O backend shares: the per-fd waiter record, the parking of a
task until its fd is ready, and the readiness callbacks of event loops built
on the kernel.

An fd and direction (read or write) is watched either by one task
(``wait_readable``/``wait_writable``: woken once, then the interest is
dropped) or by one *callback handle* (``add_reader``/``add_writer``: put
into the ready queue every time the fd is found ready, until removed), never
both: the second one to ask gets :exc:`BusyResourceError`. Different fds, or
the two directions of one fd, mix freely."""

from __future__ import annotations

import select
import socket
import types
from typing import Any

from ._exceptions import BusyResourceError, ClosedResourceError
from ._state import current_runner
from ._traps import Abort


_socket_class = socket.socket


def fd_of(fd_or_sock: Any) -> int:
    if isinstance(fd_or_sock, int):
        fd = fd_or_sock
    else:
        try:
            fd = fd_or_sock.fileno()
        except AttributeError:
            raise TypeError(f"expected a file descriptor or an object with fileno(), got {fd_or_sock!r}") from None
    if fd < 0:
        raise ValueError(f"invalid file descriptor {fd} (is the socket closed?)")
    return fd


class Waiters:
    """The tasks waiting on one fd and the callback handles watching it, and
    the interest registered for them with the OS (backend-specific)."""

    __slots__ = ("read_task", "write_task", "read_handle", "write_handle", "registered", "fd", "manager")

    def __init__(self, manager: IOManagerBase, fd: int) -> None:
        self.read_task = None
        self.write_task = None
        self.read_handle = None
        self.write_handle = None
        self.registered = 0
        self.fd = fd
        self.manager = manager

    # The abort functions of the two kinds of wait: bound methods rather than
    # a closure per wait (cheaper to make, and the hot path makes one per
    # wait).
    def abort_read(self, raise_cancel: Any) -> Abort:
        self.read_task = None
        self.manager._update(self.fd, self)
        return _ABORT_SUCCEEDED

    def abort_write(self, raise_cancel: Any) -> Abort:
        self.write_task = None
        self.manager._update(self.fd, self)
        return _ABORT_SUCCEEDED


_ABORT_SUCCEEDED = Abort.SUCCEEDED


def _idle(waiters: Waiters) -> bool:
    return (
        waiters.read_task is None
        and waiters.write_task is None
        and waiters.read_handle is None
        and waiters.write_handle is None
    )


def _busy(fd: int, held_by_callback: bool, what: str, asked_by_callback: bool = False) -> BusyResourceError:
    if held_by_callback:
        kind = "reader" if what == "readable" else "writer"
        return BusyResourceError(
            f"a callback already watches fd {fd} for becoming {what} (an event loop's "
            f"add_{kind}()); a task cannot also wait for it"
        )
    if asked_by_callback:
        return BusyResourceError(
            f"a task is already waiting for fd {fd} to become {what}; a callback cannot also watch it"
        )
    return BusyResourceError(f"another task is already waiting for fd {fd} to become {what}")


class IOManagerBase:
    """Backends implement ``_update(fd, waiters)`` (make the OS interest match
    the waiters, and drop the fd from ``_waiters`` once nobody waits),
    ``_forget(fd)`` (the fd is about to be closed), ``get_events``,
    ``process_events`` and ``close``."""

    def __init__(self, runner, wakeup) -> None:
        self._runner = runner
        self._wakeup = wakeup
        # Only fds that some task waits on or some callback watches: the run
        # loop reads "is anyone waiting for I/O" as the truth of this dict.
        self._waiters: dict[int, Waiters] = {}

    @property
    def busy(self) -> bool:
        """Whether any task waits on an fd or any callback watches one, so
        that the run loop must poll even while other tasks are ready."""
        return bool(self._waiters)

    def wakeup_threadsafe(self) -> None:
        self._wakeup.wakeup()

    def _forget(self, fd: int) -> None:
        """The fd is about to be closed: drop whatever the OS still holds
        for it. Nothing by default."""

    def _refresh(self, fd: int, waiters: Waiters) -> None:
        """Make sure the OS still watches *fd* as recorded (a callback was
        replaced). Nothing by default."""

    # Hot path (every socket and pipe wait; benchmarks echo_tcp, echo_bulk):
    # generator-based, so that the waiting task carries one frame here and
    # yields its abort function to the run loop directly.
    @types.coroutine
    def wait_readable(self, fd_or_sock: Any) -> Any:
        kind = type(fd_or_sock)
        if kind is _socket_class:
            fd = fd_or_sock.fileno()
        elif kind is int:
            fd = fd_or_sock
        else:
            fd = fd_of(fd_or_sock)
        if fd < 0:
            fd_of(fd_or_sock)  # raises the error that explains it
        waiters = self._waiters.get(fd)
        if waiters is None:
            waiters = self._waiters[fd] = Waiters(self, fd)
        elif waiters.read_task is not None or waiters.read_handle is not None:
            raise _busy(fd, waiters.read_task is None, "readable")
        waiters.read_task = self._runner.current_task
        self._update(fd, waiters)
        yield waiters.abort_read

    @types.coroutine
    def wait_writable(self, fd_or_sock: Any) -> Any:
        kind = type(fd_or_sock)
        if kind is _socket_class:
            fd = fd_or_sock.fileno()
        elif kind is int:
            fd = fd_or_sock
        else:
            fd = fd_of(fd_or_sock)
        if fd < 0:
            fd_of(fd_or_sock)  # raises the error that explains it
        waiters = self._waiters.get(fd)
        if waiters is None:
            waiters = self._waiters[fd] = Waiters(self, fd)
        elif waiters.write_task is not None or waiters.write_handle is not None:
            raise _busy(fd, waiters.write_task is None, "writable")
        waiters.write_task = self._runner.current_task
        self._update(fd, waiters)
        yield waiters.abort_write

    # ------------------------------------------------------------------
    # callbacks (KernelRun.add_reader & co.)

    def set_handle(self, fd: int, writing: bool, handle: Any) -> Any:
        """Make *handle* the fd's reader (writer) callback; returns the one
        it replaces, or None."""
        if fd.__class__ is not int:
            fd = fd_of(fd)
        elif fd < 0:
            fd_of(fd)
        waiters = self._waiters.get(fd)
        if waiters is None:
            waiters = self._waiters[fd] = Waiters(self, fd)
        if writing:
            if waiters.write_task is not None:
                raise _busy(fd, False, "writable", True)
            previous = waiters.write_handle
            waiters.write_handle = handle
        else:
            if waiters.read_task is not None:
                raise _busy(fd, False, "readable", True)
            previous = waiters.read_handle
            waiters.read_handle = handle
        try:
            if previous is not None:
                # Usually the fd keeps its predecessor's registration; but
                # if the fd was closed without remove_reader() and its
                # number reused, that registration is gone with the old
                # file: check.
                self._refresh(fd, waiters)
            else:
                self._update(fd, waiters)
        except BaseException:
            # The OS refused the fd (closed, or a regular file that cannot
            # be polled): no callback watches it in this direction now.
            if writing:
                waiters.write_handle = None
            else:
                waiters.read_handle = None
            if self._waiters.get(fd) is waiters and _idle(waiters):
                del self._waiters[fd]
            raise
        return previous

    def clear_handle(self, fd: int, writing: bool) -> Any:
        """Forget the fd's reader (writer) callback; returns it, or None if
        there was none."""
        if fd.__class__ is not int:
            fd = fd_of(fd)
        waiters = self._waiters.get(fd)
        if waiters is None:
            return None
        if writing:
            handle = waiters.write_handle
            waiters.write_handle = None
        else:
            handle = waiters.read_handle
            waiters.read_handle = None
        if handle is not None:
            self._update(fd, waiters)
        return handle

    def get_handles(self, fd: int) -> tuple[Any, Any]:
        waiters = self._waiters.get(fd)
        if waiters is None:
            return None, None
        return waiters.read_handle, waiters.write_handle

    def handles(self) -> dict[int, tuple[Any, Any]]:
        return {
            fd: (w.read_handle, w.write_handle)
            for fd, w in self._waiters.items()
            if w.read_handle is not None or w.write_handle is not None
        }

    def notify_closing(self, fd_or_sock: Any) -> None:
        fd = fd_of(fd_or_sock)
        waiters = self._waiters.get(fd)
        if waiters is not None:
            # Callbacks watching the fd are forgotten (never called again):
            # the fd they watch is going away.
            waiters.read_handle = waiters.write_handle = None
            for attr in ("read_task", "write_task"):
                task = getattr(waiters, attr)
                if task is not None:
                    setattr(waiters, attr, None)
                    self._runner.reschedule_exc(task, ClosedResourceError("another task closed this fd"))
            self._update(fd, waiters)
        self._forget(fd)

    def _wake(self, fd: int, readable: bool, writable: bool) -> None:
        waiters = self._waiters.get(fd)
        if waiters is None:
            return
        changed = False
        if readable:
            handle = waiters.read_handle
            if handle is not None:
                if handle._cancelled:
                    # Cancelled by its owner without removing it: drop it
                    # now (asyncio's selector loop does the same).
                    waiters.read_handle = None
                    changed = True
                else:
                    self._runner.ready.append(handle)
            task = waiters.read_task
            if task is not None:
                waiters.read_task = None
                self._runner.reschedule(task)
                changed = True
        if writable:
            handle = waiters.write_handle
            if handle is not None:
                if handle._cancelled:
                    waiters.write_handle = None
                    changed = True
                else:
                    self._runner.ready.append(handle)
            task = waiters.write_task
            if task is not None:
                waiters.write_task = None
                self._runner.reschedule(task)
                changed = True
        if changed:
            self._update(fd, waiters)

    def statistics(self) -> dict[str, int]:
        values = self._waiters.values()
        return {
            "tasks_waiting_read": sum(1 for w in values if w.read_task is not None),
            "tasks_waiting_write": sum(1 for w in values if w.write_task is not None),
            "reader_callbacks": sum(1 for w in values if w.read_handle is not None),
            "writer_callbacks": sum(1 for w in values if w.write_handle is not None),
        }


def make_io_manager(runner, wakeup):
    """Pick the best backend this platform has."""
    if hasattr(select, "epoll"):
        from ._io_epoll import EpollIOManager

        return EpollIOManager(runner, wakeup)
    if hasattr(select, "kqueue"):
        from ._io_kqueue import KqueueIOManager

        return KqueueIOManager(runner, wakeup)
    from ._io_select import SelectIOManager

    return SelectIOManager(runner, wakeup)


def wait_readable(fd_or_sock: Any):
    """Block until *fd_or_sock* (an int fd or anything with ``fileno()``) is
    readable: data, end of file, an error or a pending connection to accept.

    Raises :exc:`nursery.BusyResourceError` if another task already waits for
    the same fd to become readable, and :exc:`nursery.ClosedResourceError` if
    :func:`notify_closing` is called for it while we wait. A checkpoint only
    in the sense that it always blocks until the fd is ready or the wait is
    cancelled; call it after a non-blocking attempt failed.
    """
    return current_runner("wait_readable()").io.wait_readable(fd_or_sock)


def wait_writable(fd_or_sock: Any):
    """Block until *fd_or_sock* is writable (or has an error). Errors as for
    :func:`wait_readable`."""
    return current_runner("wait_writable()").io.wait_writable(fd_or_sock)


def notify_closing(fd_or_sock: Any) -> None:
    """Tell the kernel that *fd_or_sock* is about to be closed: every task
    waiting on it gets :exc:`nursery.ClosedResourceError`. Call it *before*
    closing the fd (the OS may reuse the number at once). Not a checkpoint."""
    current_runner("notify_closing()").io.notify_closing(fd_or_sock)

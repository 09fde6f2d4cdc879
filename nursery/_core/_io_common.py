"""What every I/O backend shares: the per-fd waiter record and the parking
of a task until its fd is ready."""

from __future__ import annotations

import select
from typing import Any

from ._exceptions import BusyResourceError, ClosedResourceError
from ._state import current_runner
from ._traps import Abort, wait_task_rescheduled


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
    __slots__ = ("read_task", "write_task", "registered")

    def __init__(self) -> None:
        self.read_task = None
        self.write_task = None
        # The interest currently registered with the OS (backend-specific).
        self.registered = 0


class IOManagerBase:
    """Backends implement ``_update(fd, waiters)`` (make the OS interest match
    the waiters), ``_forget(fd)``, ``get_events``, ``process_events`` and
    ``close``."""

    def __init__(self, runner, wakeup) -> None:
        self._runner = runner
        self._wakeup = wakeup
        self._waiters: dict[int, Waiters] = {}

    @property
    def busy(self) -> bool:
        """Whether any task waits on an fd, so that the run loop must poll even
        while other tasks are ready."""
        return bool(self._waiters)

    def wakeup_threadsafe(self) -> None:
        self._wakeup.wakeup()

    async def _wait(self, fd_or_sock: Any, writable: bool) -> None:
        runner = current_runner("wait_readable()/wait_writable()")
        task = runner.current_task
        fd = fd_of(fd_or_sock)
        waiters = self._waiters.get(fd)
        if waiters is None:
            waiters = self._waiters[fd] = Waiters()
        attr = "write_task" if writable else "read_task"
        if getattr(waiters, attr) is not None:
            raise BusyResourceError(
                f"another task is already waiting for fd {fd} to become "
                f"{'writable' if writable else 'readable'}"
            )
        setattr(waiters, attr, task)
        self._update(fd, waiters)

        def abort(raise_cancel: Any) -> Abort:
            setattr(waiters, attr, None)
            self._update(fd, waiters)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    async def wait_readable(self, fd_or_sock: Any) -> None:
        await self._wait(fd_or_sock, False)

    async def wait_writable(self, fd_or_sock: Any) -> None:
        await self._wait(fd_or_sock, True)

    def notify_closing(self, fd_or_sock: Any) -> None:
        fd = fd_of(fd_or_sock)
        waiters = self._waiters.get(fd)
        if waiters is None:
            return
        for attr in ("read_task", "write_task"):
            task = getattr(waiters, attr)
            if task is not None:
                setattr(waiters, attr, None)
                self._runner.reschedule_exc(
                    task, ClosedResourceError("another task closed this fd")
                )
        self._update(fd, waiters)

    def _wake(self, fd: int, readable: bool, writable: bool) -> None:
        waiters = self._waiters.get(fd)
        if waiters is None:
            return
        if readable and waiters.read_task is not None:
            self._runner.reschedule(waiters.read_task)
            waiters.read_task = None
        if writable and waiters.write_task is not None:
            self._runner.reschedule(waiters.write_task)
            waiters.write_task = None
        self._update(fd, waiters)

    def statistics(self) -> dict[str, int]:
        readers = sum(1 for w in self._waiters.values() if w.read_task is not None)
        writers = sum(1 for w in self._waiters.values() if w.write_task is not None)
        return {"tasks_waiting_read": readers, "tasks_waiting_write": writers}


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

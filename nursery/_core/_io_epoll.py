"""The I/O backend for Linux: epoll, with one-shot registrations.

Each fd is registered with ``EPOLLONESHOT``: an event disarms it, and the
next wait re-arms it with a single ``epoll_ctl(MOD)``. That is half the
system calls of registering for every wait and unregistering after it (the
hot path of every socket: benchmarks echo_tcp, echo_bulk), and unlike a
registration that is simply left in place, a disarmed one can never report
events for an fd nobody waits on, nor spin on an fd that was closed behind
our back while a duplicate of it stays open.

``_in_epoll`` remembers which fds were registered. It is only a hint of
which ``epoll_ctl`` to try first: an fd closed without ``notify_closing``
leaves the epoll set by itself, and if its number is reused, MOD fails with
ENOENT and we register instead.
"""

from __future__ import annotations

import select
from math import inf

from ._io_common import IOManagerBase

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ONESHOT = select.EPOLLONESHOT
_READ_READY = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP | select.EPOLLRDHUP
_WRITE_READY = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP

# epoll_wait takes an int of milliseconds; longer waits are cut here and the
# run loop simply waits again.
_MAX_TIMEOUT = 86400.0


class EpollIOManager(IOManagerBase):
    def __init__(self, runner, wakeup) -> None:
        super().__init__(runner, wakeup)
        self._epoll = select.epoll()
        self._epoll.register(wakeup.fd, _IN)
        self._in_epoll: set[int] = set()

    def _update(self, fd: int, waiters) -> None:
        wanted = (_IN if waiters.read_task is not None else 0) | (_OUT if waiters.write_task is not None else 0)
        if not wanted:
            # Nobody waits. A registration still armed (a waiter was
            # cancelled) reports at most one stray event, which is ignored.
            del self._waiters[fd]
            return
        if wanted == waiters.registered:
            return
        epoll = self._epoll
        flags = wanted | _ONESHOT
        try:
            if fd in self._in_epoll:
                try:
                    epoll.modify(fd, flags)
                except FileNotFoundError:
                    # Closed without notify_closing() and the number reused.
                    epoll.register(fd, flags)
            else:
                try:
                    epoll.register(fd, flags)
                except FileExistsError:
                    epoll.modify(fd, flags)
                self._in_epoll.add(fd)
        except OSError:
            # The fd was closed without notify_closing() (or cannot be
            # polled); nothing can be waited on, so wake the waiters and let
            # their next syscall report the real error.
            self._in_epoll.discard(fd)
            del self._waiters[fd]
            for task in (waiters.read_task, waiters.write_task):
                if task is not None:
                    self._runner.reschedule(task)
            waiters.read_task = waiters.write_task = None
            return
        waiters.registered = wanted

    def _forget(self, fd: int) -> None:
        if fd in self._in_epoll:
            self._in_epoll.discard(fd)
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass  # already gone with the file

    def get_events(self, timeout: float):
        if timeout == inf or timeout > _MAX_TIMEOUT:
            timeout = _MAX_TIMEOUT
        # A few more than the waiters, for stray events of disarmed waits.
        return self._epoll.poll(timeout, len(self._waiters) + 8)

    # Hot path (every wake-up of an I/O wait; benchmarks echo_tcp,
    # echo_bulk): the base class's _wake and _update are inlined for the
    # common case, a waiter woken and nobody else waiting on the fd.
    def process_events(self, events) -> None:
        wakeup_fd = self._wakeup.fd
        waiters_by_fd = self._waiters
        reschedule = self._runner.reschedule
        for fd, flags in events:
            if fd == wakeup_fd:
                self._wakeup.drain()
                continue
            waiters = waiters_by_fd.get(fd)
            if waiters is None:
                continue  # a stray event of a wait that was cancelled
            # The event disarmed the registration (one-shot).
            waiters.registered = 0
            if flags & _READ_READY:
                task = waiters.read_task
                if task is not None:
                    waiters.read_task = None
                    reschedule(task)
            if flags & _WRITE_READY:
                task = waiters.write_task
                if task is not None:
                    waiters.write_task = None
                    reschedule(task)
            if waiters.read_task is None and waiters.write_task is None:
                del waiters_by_fd[fd]
            else:
                self._update(fd, waiters)

    def close(self) -> None:
        self._epoll.close()

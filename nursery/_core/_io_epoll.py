"""The I/O backend for Linux: epoll, level-triggered, with each fd's interest
kept equal to what its waiting tasks want."""

from __future__ import annotations

import select
from math import inf

from ._io_common import IOManagerBase

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
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

    def _update(self, fd: int, waiters) -> None:
        wanted = (_IN if waiters.read_task is not None else 0) | (_OUT if waiters.write_task is not None else 0)
        if wanted == waiters.registered:
            if not wanted:
                del self._waiters[fd]
            return
        try:
            if not waiters.registered:
                self._epoll.register(fd, wanted)
            elif wanted:
                self._epoll.modify(fd, wanted)
            else:
                self._epoll.unregister(fd)
        except OSError:
            # The fd was closed without notify_closing(); nothing more can
            # be waited on, so wake the waiters and let their next syscall
            # report the real error.
            waiters.registered = 0
            self._waiters.pop(fd, None)
            for task in (waiters.read_task, waiters.write_task):
                if task is not None:
                    self._runner.reschedule(task)
            waiters.read_task = waiters.write_task = None
            return
        waiters.registered = wanted
        if not wanted:
            del self._waiters[fd]

    def get_events(self, timeout: float):
        if timeout == inf or timeout > _MAX_TIMEOUT:
            timeout = _MAX_TIMEOUT
        return self._epoll.poll(timeout, len(self._waiters) + 1)

    def process_events(self, events) -> None:
        wakeup_fd = self._wakeup.fd
        for fd, flags in events:
            if fd == wakeup_fd:
                self._wakeup.drain()
            else:
                self._wake(fd, bool(flags & _READ_READY), bool(flags & _WRITE_READY))

    def close(self) -> None:
        self._epoll.close()

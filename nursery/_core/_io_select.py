"""The portable fallback I/O backend: select(). Used where neither epoll nor
kqueue exists; also exercised by the test suite on Linux."""

from __future__ import annotations

import select
from math import inf

from ._io_common import IOManagerBase, _idle


class SelectIOManager(IOManagerBase):
    def _update(self, fd: int, waiters) -> None:
        if _idle(waiters):
            self._waiters.pop(fd, None)

    def get_events(self, timeout: float):
        readers = [self._wakeup.fd]
        writers = []
        for fd, waiters in self._waiters.items():
            if waiters.read_task is not None or waiters.read_handle is not None:
                readers.append(fd)
            if waiters.write_task is not None or waiters.write_handle is not None:
                writers.append(fd)
        try:
            r, w, x = select.select(readers, writers, readers + writers, None if timeout == inf else timeout)
        except (OSError, ValueError):
            # Some fd was closed under us: report everything as ready so the
            # waiters retry their syscalls and see the real error.
            return [(fd, True, True) for fd in self._waiters]
        ready: dict[int, list[bool]] = {}
        for fd in r:
            ready.setdefault(fd, [False, False])[0] = True
        for fd in w:
            ready.setdefault(fd, [False, False])[1] = True
        for fd in x:
            flags = ready.setdefault(fd, [False, False])
            flags[0] = flags[1] = True
        return [(fd, rd, wr) for fd, (rd, wr) in ready.items()]

    def process_events(self, events) -> None:
        wakeup_fd = self._wakeup.fd
        for fd, readable, writable in events:
            if fd == wakeup_fd:
                self._wakeup.drain()
            else:
                self._wake(fd, readable, writable)

    def close(self) -> None:
        pass

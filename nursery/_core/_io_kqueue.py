"""The I/O backend for macOS and the BSDs: kqueue, one filter per direction.

Written against the kqueue API but not exercised by CI, which runs on Linux
only; the select backend covers the shared logic in tests."""

from __future__ import annotations

import select
from math import inf

from ._io_common import IOManagerBase

_MAX_TIMEOUT = 86400.0


class KqueueIOManager(IOManagerBase):
    def __init__(self, runner, wakeup) -> None:
        super().__init__(runner, wakeup)
        self._kqueue = select.kqueue()
        self._control(wakeup.fd, select.KQ_FILTER_READ, select.KQ_EV_ADD)

    def _control(self, fd: int, filt: int, flags: int) -> None:
        self._kqueue.control([select.kevent(fd, filt, flags)], 0)

    def _update(self, fd: int, waiters) -> None:
        # Filters stay added (level-triggered) while a task or callback
        # wants the direction; a callback is queued at every poll that finds
        # its fd ready, a task is woken once (and its filter deleted).
        read = waiters.read_task is not None or waiters.read_handle is not None
        write = waiters.write_task is not None or waiters.write_handle is not None
        wanted = (1 if read else 0) | (2 if write else 0)
        for bit, filt in ((1, select.KQ_FILTER_READ), (2, select.KQ_FILTER_WRITE)):
            if wanted & bit and not waiters.registered & bit:
                self._control(fd, filt, select.KQ_EV_ADD)
            elif waiters.registered & bit and not wanted & bit:
                try:
                    self._control(fd, filt, select.KQ_EV_DELETE)
                except OSError:
                    pass
        waiters.registered = wanted
        if not wanted:
            self._waiters.pop(fd, None)

    def get_events(self, timeout: float):
        if timeout == inf or timeout > _MAX_TIMEOUT:
            timeout = _MAX_TIMEOUT
        return self._kqueue.control([], 2 * len(self._waiters) + 1, timeout)

    def process_events(self, events) -> None:
        wakeup_fd = self._wakeup.fd
        for event in events:
            fd = event.ident
            if fd == wakeup_fd:
                self._wakeup.drain()
            else:
                readable = event.filter == select.KQ_FILTER_READ
                self._wake(fd, readable, not readable)

    def close(self) -> None:
        self._kqueue.close()

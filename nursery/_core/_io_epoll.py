"""The I/O backend for Linux: epoll; one-shot registrations for tasks,
level-triggered ones for callbacks.

An fd that only tasks wait on is registered with ``EPOLLONESHOT``: an event
disarms it, and the next wait re-arms it with a single ``epoll_ctl(MOD)``.
That is half the system calls of registering for every wait and
unregistering after it (the hot path of every socket: benchmarks echo_tcp,
echo_bulk), and unlike a registration that is simply left in place, a
disarmed one can never report events for an fd nobody waits on, nor spin on
an fd that was closed behind our back while a duplicate of it stays open.

An fd that a callback watches (``KernelRun.add_reader``: an asyncio
transport's reader, for as long as the connection is open and reading) is
registered level-triggered, without ``EPOLLONESHOT``: the callback is due
again at every poll for as long as the fd is ready, as asyncio's selector
loop does it, and the registration needs no ``epoll_ctl`` per event (with
one-shot it would need one re-arm per event; streams benchmarks: ~10% of
the loop's time). It is removed (``unregister``) when the last callback and
waiter go, so a level registration never outlives its callbacks.

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
        read = waiters.read_task is not None or waiters.read_handle is not None
        write = waiters.write_task is not None or waiters.write_handle is not None
        if not (read or write):
            # Nobody waits. A one-shot registration still armed (a waiter
            # was cancelled) reports at most one stray event, which is
            # ignored; a level-triggered one would report forever.
            del self._waiters[fd]
            if waiters.registered and not waiters.registered & _ONESHOT:
                self._in_epoll.discard(fd)
                try:
                    self._epoll.unregister(fd)
                except OSError:
                    pass  # closed already (and so gone from the set)
            return
        flags = (_IN if read else 0) | (_OUT if write else 0)
        if waiters.read_handle is None and waiters.write_handle is None:
            flags |= _ONESHOT
        if flags == waiters.registered:
            return
        epoll = self._epoll
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
            self._in_epoll.discard(fd)
            if waiters.read_handle is not None or waiters.write_handle is not None:
                # A callback's registration: the caller (add_reader) reports
                # the error and takes its callback back.
                waiters.registered = 0
                raise
            # The fd was closed without notify_closing() (or cannot be
            # polled); nothing can be waited on, so wake the waiters and let
            # their next syscall report the real error.
            del self._waiters[fd]
            for task in (waiters.read_task, waiters.write_task):
                if task is not None:
                    self._runner.reschedule(task)
            waiters.read_task = waiters.write_task = None
            return
        waiters.registered = flags

    def _refresh(self, fd: int, waiters) -> None:
        # One epoll_ctl(MOD): it fails (and _update registers instead) if
        # the file we registered is gone. Replacing a callback is rare
        # (asyncio's transports add theirs once).
        registered = waiters.registered
        waiters.registered = 0
        try:
            self._update(fd, waiters)
        except OSError:
            waiters.registered = registered
            raise

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
        # A few more than the fds watched, for stray events of disarmed waits.
        return self._epoll.poll(timeout, len(self._waiters) + 8)

    # Hot path (every wake-up of an I/O wait, every readiness of an asyncio
    # transport on compat's loop; benchmarks echo_tcp, echo_bulk, the compat
    # streams echo): the base class's _wake and _update are inlined for the
    # common cases, a waiter woken and nobody else waiting on the fd, or
    # callbacks queued with their level-triggered registration left as is.
    def process_events(self, events) -> None:
        wakeup_fd = self._wakeup.fd
        waiters_by_fd = self._waiters
        reschedule = self._runner.reschedule
        append = self._runner.ready.append
        read_ready = _READ_READY
        write_ready = _WRITE_READY
        oneshot = _ONESHOT
        for fd, flags in events:
            if fd == wakeup_fd:
                self._wakeup.drain()
                continue
            waiters = waiters_by_fd.get(fd)
            if waiters is None:
                continue  # a stray event of a wait that was cancelled
            changed = False
            if waiters.registered & oneshot:
                # The event disarmed the registration.
                waiters.registered = 0
                changed = True
            if flags & read_ready:
                handle = waiters.read_handle
                if handle is not None:
                    if handle._cancelled:
                        # Cancelled without being removed: drop it now (as
                        # asyncio's selector loop does).
                        waiters.read_handle = None
                        changed = True
                    else:
                        append(handle)
                else:
                    task = waiters.read_task
                    if task is not None:
                        waiters.read_task = None
                        reschedule(task)
                        changed = True
            if flags & write_ready:
                handle = waiters.write_handle
                if handle is not None:
                    if handle._cancelled:
                        waiters.write_handle = None
                        changed = True
                    else:
                        append(handle)
                else:
                    task = waiters.write_task
                    if task is not None:
                        waiters.write_task = None
                        reschedule(task)
                        changed = True
            if changed:
                if (
                    waiters.registered == 0
                    and waiters.read_task is None
                    and waiters.write_task is None
                    and waiters.read_handle is None
                    and waiters.write_handle is None
                ):
                    # Disarmed and unwanted: nothing to tell the OS.
                    del waiters_by_fd[fd]
                else:
                    self._update(fd, waiters)

    def close(self) -> None:
        self._epoll.close()

"""The epoll backend's one-shot registrations: one epoll_ctl per wait, and
no stale registration can hide an fd or make the loop spin, whatever
happened to the fd in between (closed without notify_closing, its number
reused, a duplicate kept open)."""

from __future__ import annotations

import os
import select
import socket
from typing import Any

import pytest

import nursery
from nursery import lowlevel
from nursery._core import current_runner
from nursery._core._io_epoll import EpollIOManager
from nursery.testing import wait_all_tasks_blocked

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")


def _io() -> Any:
    io = current_runner("test").io
    assert isinstance(io, EpollIOManager)
    return io


class CountingEpoll:
    """Stands in for the manager's epoll object and counts the epoll_ctl
    calls, which the real (C) object does not let us observe."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, int]] = []

    def register(self, fd: int, flags: int) -> None:
        self.calls.append(("register", fd))
        self.real.register(fd, flags)

    def modify(self, fd: int, flags: int) -> None:
        self.calls.append(("modify", fd))
        self.real.modify(fd, flags)

    def unregister(self, fd: int) -> None:
        self.calls.append(("unregister", fd))
        self.real.unregister(fd)

    def poll(self, timeout: float, maxevents: int) -> Any:
        return self.real.poll(timeout, maxevents)

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def counting_epoll() -> Any:
    """Install a CountingEpoll in the current run's I/O manager (use it from
    inside the test, after the run started)."""

    def install() -> CountingEpoll:
        io = _io()
        counter = CountingEpoll(io._epoll)
        io._epoll = counter
        return counter

    return install


async def test_each_wait_costs_one_epoll_ctl(sockpair: Any, counting_epoll: Any) -> None:
    a, b = sockpair
    counter = counting_epoll()
    for i in range(5):
        async with nursery.open_nursery() as n:
            n.start_soon(_io().wait_readable, a)
            await wait_all_tasks_blocked()
            b.send(b"x")
        assert a.recv(10) == b"x"
    fd = a.fileno()
    # The first wait registers; every later one re-arms; nothing unregisters.
    assert counter.calls == [("register", fd)] + [("modify", fd)] * 4
    lowlevel.notify_closing(a)
    assert counter.calls[-1] == ("unregister", fd)


async def test_a_stray_event_after_a_cancelled_wait_is_ignored(sockpair: Any) -> None:
    a, b = sockpair
    with nursery.move_on_after(0.01):
        await _io().wait_readable(a)
    # The cancelled wait's registration is still armed; data makes it fire
    # once, with nobody waiting.
    b.send(b"stray")
    await nursery.sleep(0.01)
    assert _io()._waiters == {}
    # The fd can be waited on again, and the data is still there.
    await _io().wait_readable(a)
    assert a.recv(10) == b"stray"


async def test_fd_closed_without_notify_closing_and_reused(sockpair: Any) -> None:
    a, b = sockpair
    b.send(b"x")
    await _io().wait_readable(a)
    number = a.fileno()
    a.close()  # no notify_closing(): the epoll set forgets it by itself
    c, d = socket.socketpair()
    try:
        if c.fileno() != number:
            c, d = d, c
        assert c.fileno() == number, "the fd number was not reused"
        c.setblocking(False)
        # We still think the number is registered; the wait must find out
        # otherwise and register the new socket.
        woke = []

        async def reader() -> None:
            await _io().wait_readable(c)
            woke.append(c.recv(1))

        async with nursery.open_nursery() as n:
            n.start_soon(reader)
            await wait_all_tasks_blocked()
            assert woke == []
            assert lowlevel.current_statistics().io_statistics["tasks_waiting_read"] == 1
            d.send(b"y")
        assert woke == [b"y"]
    finally:
        c.close()
        d.close()


async def test_closed_fd_with_an_open_duplicate_does_not_spin(sockpair: Any) -> None:
    a, b = sockpair
    duplicate = os.dup(a.fileno())
    try:
        with nursery.move_on_after(0.01):
            await _io().wait_readable(a)
        number = a.fileno()
        a.close()  # the duplicate keeps the file, and its epoll entry, alive
        b.send(b"data for the duplicate")
        # The stale entry reports its event at most once: count the run
        # loop's polls while sleeping.
        io = _io()
        polls = 0
        real_get_events = io.get_events

        def counting_get_events(timeout: float) -> Any:
            nonlocal polls
            polls += 1
            return real_get_events(timeout)

        io.get_events = counting_get_events
        try:
            await nursery.sleep(0.1)
        finally:
            del io.get_events
        assert polls <= 3, f"the run loop polled {polls} times in 0.1 s: a stale registration keeps firing"
        assert number not in io._waiters
    finally:
        os.close(duplicate)


async def test_reader_woken_while_writer_keeps_waiting(sockpair: Any, counting_epoll: Any) -> None:
    # One event disarms the fd for both directions: the remaining waiter's
    # interest must be re-armed.
    a, b = sockpair
    sent = 0
    try:
        while True:
            sent += a.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    woke = []

    async def reader() -> None:
        await _io().wait_readable(a)
        woke.append("read")

    async def writer() -> None:
        await _io().wait_writable(a)
        woke.append("write")

    async with nursery.open_nursery() as n:
        n.start_soon(reader)
        n.start_soon(writer)
        await wait_all_tasks_blocked()
        b.send(b"r")
        await wait_all_tasks_blocked()
        assert woke == ["read"]
        received = 0
        while received < sent:
            received += len(b.recv(1 << 20))
    assert woke == ["read", "write"]

"""fd readiness callbacks (KernelRun.add_reader & co.): what an event loop
built on the kernel watches its transports' fds with. Every test runs on the
epoll and the select backend."""

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


class Probe:
    """A ready item that records each time it runs."""

    def __init__(self, log: list, name: str, action: Any = None) -> None:
        self.log = log
        self.name = name
        self.action = action
        self._cancelled = False

    def _run(self) -> None:
        self.log.append(self.name)
        if self.action is not None:
            self.action()

    def cancel(self) -> None:
        self._cancelled = True


def _stats() -> dict:
    return lowlevel.current_statistics().io_statistics


def _fill(sock: socket.socket) -> None:
    try:
        while True:
            sock.send(b"x" * 65536)
    except BlockingIOError:
        pass


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass


async def _turns(n: int) -> None:
    # Each sleep(0) lets the run loop take (at least) one turn, which polls
    # for I/O since a callback is registered.
    for _ in range(n):
        await nursery.sleep(0)


async def test_reader_is_queued_while_readable_level_triggered(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    assert run.add_reader(a.fileno(), Probe(log, "r")) is None
    await _turns(3)
    assert log == []
    b.send(b"data")
    await _turns(3)
    # Still readable (nobody read): due again at every turn.
    assert len(log) >= 2
    a.recv(100)
    # (One may have been queued already, by the turn that resumed us.)
    await _turns(1)
    log.clear()
    await _turns(3)
    assert log == []
    assert run.remove_reader(a.fileno()).name == "r"


async def test_reader_that_consumes_runs_once_per_arrival(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    got: list = []
    probe = Probe([], "r", lambda: got.append(a.recv(100)))
    run.add_reader(a, probe)  # an object with fileno() works too
    for chunk in (b"one", b"two", b"three"):
        b.send(chunk)
        await _turns(3)
    assert got == [b"one", b"two", b"three"]
    assert run.remove_reader(a) is probe
    assert run.remove_reader(a) is None


async def test_writer_fires_while_writable_not_while_full(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_writer(a.fileno(), Probe(log, "w"))
    await _turns(3)
    assert log.count("w") >= 2  # writable: due at every turn
    # (The removed handle may still be queued from this turn: new log.)
    run.remove_writer(a.fileno())
    _fill(a)
    log = []
    run.add_writer(a.fileno(), Probe(log, "w"))
    await _turns(3)
    assert log == []  # full: not writable
    _drain(b)
    await _turns(3)
    assert "w" in log
    assert run.remove_writer(a.fileno()).name == "w"


async def test_remove_stops_callback_already_removed_is_none(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_reader(a.fileno(), Probe(log, "r"))
    assert run.remove_reader(a.fileno()) is not None
    b.send(b"x")
    await _turns(3)
    assert log == []
    assert run.remove_reader(a.fileno()) is None
    assert run.remove_writer(a.fileno()) is None
    assert run.remove_reader(12345) is None
    assert _stats()["reader_callbacks"] == 0


async def test_replacing_returns_previous_and_only_new_one_runs(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    first = Probe(log, "first")
    second = Probe(log, "second", lambda: a.recv(100))
    run.add_reader(a.fileno(), first)
    assert run.add_reader(a.fileno(), second) is first
    assert run.fd_callbacks(a.fileno()) == (second, None)
    b.send(b"x")
    await _turns(3)
    assert log == ["second"]
    run.remove_reader(a.fileno())


async def test_reader_and_writer_on_one_fd_each_fire_for_their_direction(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_writer(a.fileno(), Probe(log, "w", lambda: run.remove_writer(a.fileno())))
    run.add_reader(a.fileno(), Probe(log, "r", lambda: a.recv(100)))
    assert _stats()["reader_callbacks"] == 1
    assert _stats()["writer_callbacks"] == 1
    await _turns(3)
    assert log == ["w"]  # writable at once, not readable
    b.send(b"x")
    await _turns(3)
    assert log == ["w", "r"]
    assert run.fd_callbacks(a.fileno())[1] is None
    assert set(run.all_fd_callbacks()) == {a.fileno()}
    run.remove_reader(a.fileno())
    assert run.all_fd_callbacks() == {}
    assert run.fd_callbacks(a.fileno()) == (None, None)


async def test_cancelled_handle_is_dropped_instead_of_queued(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    probe = Probe(log, "r")
    run.add_reader(a.fileno(), probe)
    probe.cancel()
    b.send(b"x")
    await _turns(3)
    assert log == []
    # The kernel forgot it when it found it cancelled.
    assert run.remove_reader(a.fileno()) is None
    assert _stats()["reader_callbacks"] == 0


async def test_task_and_callback_cannot_share_fd_and_direction(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    run.add_reader(a.fileno(), Probe([], "r"))
    with pytest.raises(
        nursery.BusyResourceError,
        match=rf"^a callback already watches fd {a.fileno()} for becoming readable "
        r"\(an event loop's add_reader\(\)\); a task cannot also wait for it$",
    ):
        await lowlevel.wait_readable(a)
    # The other direction is free for a task.
    await lowlevel.wait_writable(a)
    run.remove_reader(a.fileno())

    async with nursery.open_nursery() as n:
        n.start_soon(lowlevel.wait_readable, a)
        await wait_all_tasks_blocked()
        with pytest.raises(
            nursery.BusyResourceError,
            match=rf"^a task is already waiting for fd {a.fileno()} to become readable; "
            "a callback cannot also watch it$",
        ):
            run.add_reader(a.fileno(), Probe([], "r"))
        # The failed add changed nothing: the task is still woken.
        b.send(b"x")
    assert _stats()["reader_callbacks"] == 0


async def test_writer_callback_refused_while_task_waits_writable(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    _fill(a)
    async with nursery.open_nursery() as n:
        n.start_soon(lowlevel.wait_writable, a)
        await wait_all_tasks_blocked()
        with pytest.raises(nursery.BusyResourceError, match="to become writable; a callback cannot"):
            run.add_writer(a.fileno(), Probe([], "w"))
        # A reader callback on the same fd is fine meanwhile.
        log: list = []
        run.add_reader(a.fileno(), Probe(log, "r", lambda: a.recv(10)))
        b.send(b"x")
        await _turns(3)
        assert log == ["r"]
        run.remove_reader(a.fileno())
        _drain(b)
    run.add_writer(a.fileno(), Probe([], "w"))
    with pytest.raises(nursery.BusyResourceError, match="add_writer"):
        await lowlevel.wait_writable(a)
    run.remove_writer(a.fileno())


async def test_task_waiter_and_reader_callback_on_one_fd_both_work(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    _fill(a)
    async with nursery.open_nursery() as n:

        async def writer() -> None:
            await lowlevel.wait_writable(a)
            log.append("task woke")

        n.start_soon(writer)
        await wait_all_tasks_blocked()
        run.add_reader(a.fileno(), Probe(log, "r", lambda: a.recv(10)))
        b.send(b"1")
        await _turns(3)
        assert log == ["r"]
        _drain(b)
    assert log == ["r", "task woke"]
    # The reader stays registered and keeps working after the task left.
    b.send(b"2")
    await _turns(3)
    assert log == ["r", "task woke", "r"]
    run.remove_reader(a.fileno())


async def test_callbacks_make_the_run_poll_while_tasks_are_ready(backend, sockpair):
    # A task that only ever yields keeps something ready at all times: the
    # registered reader must still be polled for and run.
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_reader(a.fileno(), Probe(log, "r", lambda: a.recv(10)))
    b.send(b"x")
    spins = 0
    while not log:
        await lowlevel.checkpoint()
        spins += 1
        assert spins < 100
    run.remove_reader(a.fileno())


async def test_bad_fds(backend):
    run = lowlevel.current_kernel_run()
    with pytest.raises(ValueError, match=r"invalid file descriptor -1"):
        run.add_reader(-1, Probe([], "r"))
    with pytest.raises(TypeError, match="expected a file descriptor or an object with fileno"):
        run.add_writer(object(), Probe([], "w"))  # type: ignore[arg-type]
    assert _stats()["reader_callbacks"] == _stats()["writer_callbacks"] == 0


async def test_closed_fd_is_refused_and_nothing_is_registered():
    # (epoll only: select() finds out about a closed fd when it polls.)
    run = lowlevel.current_kernel_run()
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError):
        run.add_reader(fd, Probe([], "r"))
    assert run.fd_callbacks(fd) == (None, None)
    assert _stats()["reader_callbacks"] == 0
    assert not current_runner("test").io.busy


async def test_regular_file_cannot_be_watched_by_epoll(tmp_path):
    run = lowlevel.current_kernel_run()
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        with pytest.raises(PermissionError):
            run.add_reader(f.fileno(), Probe([], "r"))
        assert not current_runner("test").io.busy


async def test_notify_closing_forgets_callbacks(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_reader(a.fileno(), Probe(log, "r"))
    run.add_writer(a.fileno(), Probe(log, "w"))
    lowlevel.notify_closing(a)
    b.send(b"x")
    await _turns(3)
    assert log == []
    assert run.fd_callbacks(a.fileno()) == (None, None)
    assert not current_runner("test").io.busy


async def test_handles_run_in_fifo_with_tasks(backend, sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    log: list = []
    run.add_reader(a.fileno(), Probe(log, "callback", lambda: (a.recv(10), run.remove_reader(a.fileno()))))
    b.send(b"x")
    # The reader was queued by the poll at the start of the turn; this task
    # was queued before that by its checkpoint, so it runs first.
    await lowlevel.checkpoint()
    log.append("task")
    await _turns(2)
    assert log == ["task", "callback"]


def test_kernel_run_driven_by_hand(backend):
    a, b = socket.socketpair()
    try:
        run = lowlevel.KernelRun.create()
        run.enter()
        try:
            got: list = []
            run.add_reader(a.fileno(), Probe([], "r", lambda: got.append(a.recv(10))))
            b.send(b"hello")
            run.step(1.0)  # does not wait: data is there
            assert got == [b"hello"]
            run.remove_reader(a.fileno())
        finally:
            run.shutdown()
            run.leave()
    finally:
        a.close()
        b.close()


def test_idle_step_waits_for_a_callback_fd(backend):
    # An idle step wakes up for a watched fd, not only for deadlines.
    import threading
    import time

    a, b = socket.socketpair()
    try:
        run = lowlevel.KernelRun.create()
        run.enter()
        try:
            got: list = []
            run.add_reader(a.fileno(), Probe([], "r", lambda: got.append(a.recv(10))))
            timer = threading.Timer(0.05, b.send, (b"late",))
            timer.start()
            start = time.monotonic()
            run.step(5.0)
            assert got == [b"late"]
            assert time.monotonic() - start < 2.0
            timer.join()
            run.remove_reader(a.fileno())
        finally:
            run.shutdown()
            run.leave()
    finally:
        a.close()
        b.close()


# ----------------------------------------------------------------------
# epoll: level-triggered registrations cost no epoll_ctl per event


class CountingEpoll:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, int, int]] = []

    def register(self, fd: int, flags: int) -> None:
        self.calls.append(("register", fd, flags))
        self.real.register(fd, flags)

    def modify(self, fd: int, flags: int) -> None:
        self.calls.append(("modify", fd, flags))
        self.real.modify(fd, flags)

    def unregister(self, fd: int) -> None:
        self.calls.append(("unregister", fd, 0))
        self.real.unregister(fd)

    def poll(self, timeout: float, maxevents: int) -> Any:
        return self.real.poll(timeout, maxevents)

    def close(self) -> None:
        self.real.close()


def _counting() -> CountingEpoll:
    io = current_runner("test").io
    assert isinstance(io, EpollIOManager)
    counter = io._epoll = CountingEpoll(io._epoll)
    return counter


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
async def test_epoll_reader_registration_is_persistent(sockpair):
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    epoll = _counting()
    got: list = []
    run.add_reader(a.fileno(), Probe([], "r", lambda: got.append(a.recv(10))))
    assert epoll.calls == [("register", a.fileno(), select.EPOLLIN)]
    for i in range(20):
        b.send(b"%d" % i)
        await _turns(2)
    assert len(got) == 20
    assert len(epoll.calls) == 1  # no epoll_ctl per event
    run.add_writer(a.fileno(), Probe([], "w", lambda: None))
    run.remove_writer(a.fileno())
    run.remove_reader(a.fileno())
    assert epoll.calls[1:] == [
        ("modify", a.fileno(), select.EPOLLIN | select.EPOLLOUT),
        ("modify", a.fileno(), select.EPOLLIN),
        ("unregister", a.fileno(), 0),
    ]
    # Gone from the set: data arriving now wakes nothing and no one.
    b.send(b"x")
    await _turns(2)
    assert len(got) == 20


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
async def test_epoll_task_wait_on_callback_fd_switches_modes(sockpair):
    # A task's one-shot wait on the other direction of a callback's fd
    # shares the level registration; once it is woken only the callback's
    # direction is left.
    a, b = sockpair
    run = lowlevel.current_kernel_run()
    epoll = _counting()
    run.add_reader(a.fileno(), Probe([], "r", lambda: a.recv(10)))
    await lowlevel.wait_writable(a)
    run.remove_reader(a.fileno())
    fd = a.fileno()
    assert epoll.calls == [
        ("register", fd, select.EPOLLIN),
        ("modify", fd, select.EPOLLIN | select.EPOLLOUT),
        ("modify", fd, select.EPOLLIN),
        ("unregister", fd, 0),
    ]
    # Tasks alone are back to one-shot.
    b.send(b"x")
    await lowlevel.wait_readable(a)
    assert epoll.calls[-1] == ("register", fd, select.EPOLLIN | select.EPOLLONESHOT)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
async def test_epoll_reader_on_fd_closed_behind_our_back_and_reused():
    # The fd is closed without remove_reader (epoll drops it by itself) and
    # its number reused: a new reader on the new file registers again.
    run = lowlevel.current_kernel_run()
    r, w = os.pipe()
    run.add_reader(r, Probe([], "old"))
    os.close(r)
    os.close(w)
    r2, w2 = os.pipe()
    try:
        assert r2 == r
        log: list = []
        # Replacing the stale callback finds the old registration gone and
        # registers the new file.
        run.add_reader(r2, Probe(log, "new", lambda: os.read(r2, 10)))
        os.write(w2, b"x")
        await _turns(3)
        assert log == ["new"]
        run.remove_reader(r2)
        # Removed, then added anew: as well.
        run.add_reader(r2, Probe(log, "newer", lambda: os.read(r2, 10)))
        os.write(w2, b"y")
        await _turns(3)
        assert log == ["new", "newer"]
        run.remove_reader(r2)
    finally:
        os.close(r2)
        os.close(w2)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
async def test_epoll_replacing_reader_of_closed_fd_raises_and_forgets():
    # As asyncio's selector: adding a reader for an fd that was closed
    # behind our back fails, and the fd is then watched by nothing.
    run = lowlevel.current_kernel_run()
    r, w = os.pipe()
    run.add_reader(r, Probe([], "old"))
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        run.add_reader(r, Probe([], "new"))
    assert run.fd_callbacks(r) == (None, None)
    assert not current_runner("test").io.busy

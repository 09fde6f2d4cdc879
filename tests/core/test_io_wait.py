"""The run loop's I/O wait: readiness waiting on fds (epoll and the select
fallback), notify_closing, and the cross-thread wake-up channel."""

from __future__ import annotations

import contextvars
import re
import socket
import threading
import time

import pytest

import nursery
from nursery import lowlevel
from nursery._core import current_runner
from nursery._core._io_epoll import EpollIOManager
from nursery.testing import wait_all_tasks_blocked


def _io():
    return current_runner("test").io


def _fill(sock):
    """Write into *sock* until its buffers are full."""
    sent = 0
    try:
        while True:
            sent += sock.send(b"x" * 65536)
    except BlockingIOError:
        pass
    return sent


def _drain(sock):
    got = 0
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += len(data)
    except BlockingIOError:
        pass
    return got


async def test_the_backend_fixture_takes_effect(backend):
    assert type(_io()) is backend


def test_default_backend_on_linux_is_epoll():
    async def main():
        return type(_io())

    assert nursery.run(main) is EpollIOManager


# ----------------------------------------------------------------------
# readiness


async def test_wait_readable_wakes_on_data(backend, sockpair):
    a, b = sockpair
    log = []

    async def reader():
        await _io().wait_readable(a)
        log.append(a.recv(100))

    async with nursery.open_nursery() as n:
        n.start_soon(reader)
        await wait_all_tasks_blocked()
        assert log == []
        assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 1, "tasks_waiting_write": 0, "reader_callbacks": 0, "writer_callbacks": 0}
        b.send(b"ping")
    assert log == [b"ping"]
    assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 0, "reader_callbacks": 0, "writer_callbacks": 0}


async def test_wait_readable_accepts_a_raw_fd(backend, sockpair):
    a, b = sockpair
    b.send(b"already there")
    await _io().wait_readable(a.fileno())
    assert a.recv(100) == b"already there"


async def test_wait_readable_when_data_is_already_there_returns(backend, sockpair):
    a, b = sockpair
    b.send(b"x")
    with nursery.fail_after(5):
        await _io().wait_readable(a)
    assert lowlevel.current_statistics().io_statistics["tasks_waiting_read"] == 0


async def test_wait_readable_on_peer_close(backend, sockpair):
    a, b = sockpair
    done = []

    async def reader():
        await _io().wait_readable(a)
        done.append(a.recv(10))

    async with nursery.open_nursery() as n:
        n.start_soon(reader)
        await wait_all_tasks_blocked()
        b.shutdown(socket.SHUT_WR)
    assert done == [b""]


async def test_wait_writable_blocks_until_buffer_drains(backend, sockpair):
    a, b = sockpair
    await _io().wait_writable(a)  # a fresh socket is writable at once
    _fill(a)
    log = []

    async def writer():
        await _io().wait_writable(a)
        log.append("writable")

    async with nursery.open_nursery() as n:
        n.start_soon(writer)
        await wait_all_tasks_blocked()
        assert log == []
        assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 1, "reader_callbacks": 0, "writer_callbacks": 0}
        _drain(b)
    assert log == ["writable"]


async def test_reader_and_writer_on_the_same_fd(backend, sockpair):
    a, b = sockpair
    _fill(a)
    log = []

    async def reader():
        await _io().wait_readable(a)
        log.append(("read", a.recv(10)))

    async def writer():
        await _io().wait_writable(a)
        log.append("write")

    async with nursery.open_nursery() as n:
        n.start_soon(reader)
        n.start_soon(writer)
        await wait_all_tasks_blocked()
        assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 1, "tasks_waiting_write": 1, "reader_callbacks": 0, "writer_callbacks": 0}
        b.send(b"r")
        await wait_all_tasks_blocked()
        assert log == [("read", b"r")]
        assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 1, "reader_callbacks": 0, "writer_callbacks": 0}
        _drain(b)
    assert log == [("read", b"r"), "write"]


async def test_second_reader_is_busy_resource_error(backend, sockpair):
    a, b = sockpair

    async with nursery.open_nursery() as n:
        n.start_soon(_io().wait_readable, a)
        await wait_all_tasks_blocked()
        with pytest.raises(
            nursery.BusyResourceError,
            match=f"another task is already waiting for fd {a.fileno()} to become readable",
        ):
            await _io().wait_readable(a)
        # The first reader is unaffected and still wakes.
        assert lowlevel.current_statistics().io_statistics["tasks_waiting_read"] == 1
        b.send(b"x")


async def test_second_writer_is_busy_resource_error(backend, sockpair):
    a, b = sockpair
    _fill(a)
    async with nursery.open_nursery() as n:
        n.start_soon(_io().wait_writable, a)
        await wait_all_tasks_blocked()
        with pytest.raises(nursery.BusyResourceError, match="to become writable"):
            await _io().wait_writable(a.fileno())
        _drain(b)


async def test_notify_closing_raises_closed_resource_error_in_waiters(backend, sockpair):
    a, b = sockpair
    _fill(a)
    errors = []

    async def wait(kind):
        try:
            await getattr(_io(), f"wait_{kind}")(a)
        except nursery.ClosedResourceError as exc:
            errors.append((kind, str(exc)))

    async with nursery.open_nursery() as n:
        n.start_soon(wait, "readable")
        n.start_soon(wait, "writable")
        await wait_all_tasks_blocked()
        _io().notify_closing(a)
        assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 0, "reader_callbacks": 0, "writer_callbacks": 0}
    assert sorted(errors) == [
        ("readable", "another task closed this fd"),
        ("writable", "another task closed this fd"),
    ]


async def test_notify_closing_without_waiters_is_a_no_op(backend, sockpair):
    a, b = sockpair
    _io().notify_closing(a)
    b.send(b"x")
    await _io().wait_readable(a)
    assert a.recv(1) == b"x"


async def test_fd_can_be_waited_on_again_after_notify_closing(backend, sockpair):
    a, b = sockpair

    async with nursery.open_nursery() as n:

        async def reader():
            with pytest.raises(nursery.ClosedResourceError):
                await _io().wait_readable(a)

        n.start_soon(reader)
        await wait_all_tasks_blocked()
        _io().notify_closing(a)
    b.send(b"y")
    await _io().wait_readable(a)
    assert a.recv(1) == b"y"


async def test_cancelled_waiter_is_unregistered(backend, sockpair):
    a, b = sockpair
    log = []

    async def reader():
        try:
            await _io().wait_readable(a)
        except nursery.Cancelled:
            log.append("cancelled")
            raise
        log.append("read")

    async with nursery.open_nursery() as n:
        n.start_soon(reader)
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert log == ["cancelled"]
    assert lowlevel.current_statistics().io_statistics == {"tasks_waiting_read": 0, "tasks_waiting_write": 0, "reader_callbacks": 0, "writer_callbacks": 0}
    assert _io()._waiters == {}
    # Another task may now wait on the same fd, and data wakes it.
    async with nursery.open_nursery() as n:
        n.start_soon(_io().wait_readable, a)
        await wait_all_tasks_blocked()
        b.send(b"z")
    assert a.recv(1) == b"z"


async def test_wait_readable_with_timeout(backend, sockpair, autojump_clock):
    a, b = sockpair
    with nursery.move_on_after(10) as scope:
        await _io().wait_readable(a)
    assert scope.cancelled_caught
    assert nursery.current_time() == 10
    assert _io()._waiters == {}


async def test_wait_in_cancelled_scope_raises_and_leaves_nothing(backend, sockpair):
    a, b = sockpair
    b.send(b"ready")  # even if the fd is ready
    with nursery.CancelScope() as scope:
        scope.cancel()
        await _io().wait_readable(a)
    assert scope.cancelled_caught
    assert _io()._waiters == {}


async def test_many_fds_each_wake_their_own_waiter(backend):
    pairs = [socket.socketpair() for _ in range(5)]
    try:
        woke = []

        async def reader(i, sock):
            await _io().wait_readable(sock)
            woke.append((i, sock.recv(10)))

        async with nursery.open_nursery() as n:
            for i, (a, _) in enumerate(pairs):
                n.start_soon(reader, i, a)
            await wait_all_tasks_blocked()
            assert lowlevel.current_statistics().io_statistics["tasks_waiting_read"] == 5
            for i in (3, 1):
                pairs[i][1].send(b"%d" % i)
            await wait_all_tasks_blocked()
            assert sorted(woke) == [(1, b"1"), (3, b"3")]
            for i in (0, 2, 4):
                pairs[i][1].send(b"%d" % i)
        assert sorted(woke) == [(i, b"%d" % i) for i in range(5)]
    finally:
        for a, b in pairs:
            a.close()
            b.close()


async def test_bad_fd_arguments(backend):
    with pytest.raises(TypeError, match="expected a file descriptor or an object with fileno\\(\\), got 'nope'"):
        await _io().wait_readable("nope")
    s = socket.socket()
    s.close()
    with pytest.raises(ValueError, match=re.escape("invalid file descriptor -1 (is the socket closed?)")):
        await _io().wait_writable(s)
    with pytest.raises(ValueError, match="invalid file descriptor -1"):
        _io().notify_closing(-1)


# ----------------------------------------------------------------------
# the cross-thread wake-up


async def test_run_sync_soon_threadsafe_wakes_an_idle_loop(backend):
    runner = current_runner("test")
    event = nursery.Event()
    seen = {}
    loop_thread = threading.get_ident()

    def callback(value):
        seen["value"] = value
        seen["thread"] = threading.get_ident()
        seen["in_task"] = lowlevel.in_task()
        seen["at"] = time.monotonic()
        event.set()

    def poke():
        seen["posted"] = time.monotonic()
        runner.run_sync_soon_threadsafe(callback, ("hello",))

    # Nothing else can end the loop's wait: no deadlines, no I/O, no tasks.
    timer = threading.Timer(0.05, poke)
    t0 = time.monotonic()
    timer.start()
    try:
        with nursery.fail_after(10):
            await event.wait()
    finally:
        timer.join()
    assert seen["value"] == "hello"
    assert seen["thread"] == loop_thread
    assert seen["in_task"] is False
    assert time.monotonic() - t0 < 2.0
    assert seen["at"] - seen["posted"] < 1.0


async def test_run_sync_soon_threadsafe_from_many_threads_all_run():
    runner = current_runner("test")
    got = []
    done = nursery.Event()
    n_threads = 8

    def callback(i):
        got.append(i)
        if len(got) == n_threads:
            done.set()

    threads = [threading.Thread(target=runner.run_sync_soon_threadsafe, args=(callback, (i,))) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with nursery.fail_after(10):
        await done.wait()
    assert sorted(got) == list(range(n_threads))


async def test_run_sync_soon_threadsafe_keeps_fifo_order_and_counts():
    runner = current_runner("test")
    got = []
    for i in range(5):
        runner.run_sync_soon_threadsafe(got.append, (i,))
    assert lowlevel.current_statistics().run_sync_soon_queue_size == 5
    await wait_all_tasks_blocked()
    assert got == [0, 1, 2, 3, 4]
    assert lowlevel.current_statistics().run_sync_soon_queue_size == 0


async def test_run_sync_soon_threadsafe_runs_in_the_run_context():
    var = contextvars.ContextVar("var", default="default")
    var.set("task value")
    runner = current_runner("test")
    seen = []
    runner.run_sync_soon_threadsafe(lambda: seen.append(var.get()), ())
    await wait_all_tasks_blocked()
    assert seen == ["default"]


def test_run_sync_soon_threadsafe_after_the_run_is_run_finished_error():
    async def main():
        return current_runner("test")

    runner = nursery.run(main)
    with pytest.raises(nursery.RunFinishedError, match="this run has finished"):
        runner.run_sync_soon_threadsafe(print, ())
    assert issubclass(nursery.RunFinishedError, RuntimeError)


def test_run_sync_soon_threadsafe_from_a_thread_after_the_run():
    async def main():
        return current_runner("test")

    runner = nursery.run(main)
    errors = []

    def post():
        try:
            runner.run_sync_soon_threadsafe(print, ())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=post)
    t.start()
    t.join()
    assert len(errors) == 1 and type(errors[0]) is nursery.RunFinishedError

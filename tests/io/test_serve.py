"""serve_listeners and serve_tcp: start() returns the listeners, one task
per connection, streams closed after their handler, listeners closed on
exit, errors, and the pause-and-retry when accept() runs out of
descriptors."""

from __future__ import annotations

import errno
import logging
import socket
from functools import partial

import pytest

import nursery
from nursery import AsyncResource, Listener, serve_listeners, serve_tcp
from nursery.testing import open_stream_to_socket_listener, wait_all_tasks_blocked


async def echo(stream):
    async for chunk in stream:
        await stream.send_all(chunk)


async def test_start_serve_tcp_returns_the_listeners_and_serves():
    async with nursery.open_nursery() as n:
        listeners = await n.start(partial(serve_tcp, echo, 0, host="127.0.0.1"))
        (listener,) = listeners
        assert isinstance(listener, nursery.SocketListener)
        assert listener.socket.getsockname()[0] == "127.0.0.1"
        async with await open_stream_to_socket_listener(listener) as client:
            await client.send_all(b"hello")
            assert await client.receive_some() == b"hello"
        n.cancel_scope.cancel()
    # serve_tcp owned the listener and closed it on the way out.
    assert listener.socket.fileno() == -1


async def test_each_connection_gets_its_own_task():
    started = []
    release = nursery.Event()

    async def handler(stream):
        started.append(nursery.lowlevel.current_task())
        await release.wait()
        await stream.send_all(b"bye")

    async with nursery.open_nursery() as n:
        (listener,) = await n.start(partial(serve_tcp, handler, 0, host="127.0.0.1"))
        clients = [await open_stream_to_socket_listener(listener) for _ in range(3)]
        await wait_all_tasks_blocked()
        # All three handlers run at once, each in a task of its own.
        assert len(set(started)) == 3
        release.set()
        for client in clients:
            assert await client.receive_some() == b"bye"
            # The handler returned without closing: the stream was closed for it.
            assert await client.receive_some() == b""
            await client.aclose()
        n.cancel_scope.cancel()


async def test_serve_listeners_on_several_listeners():
    listeners = await nursery.open_tcp_listeners(0)  # 0.0.0.0 and ::
    assert len(listeners) == 2
    async with nursery.open_nursery() as n:
        returned = await n.start(serve_listeners, echo, listeners)
        assert returned == listeners
        for listener in listeners:
            async with await open_stream_to_socket_listener(listener) as client:
                await client.send_all(b"x" * 10)
                got = b""
                while len(got) < 10:
                    got += await client.receive_some()
                assert got == b"x" * 10
        n.cancel_scope.cancel()
    assert all(listener.socket.fileno() == -1 for listener in listeners)


async def test_handler_nursery_outlives_the_server():
    done = []

    async def handler(stream):
        await nursery.sleep(0.01)
        await stream.send_all(b"still here")
        done.append(True)

    async with nursery.open_nursery() as handlers:
        async with nursery.open_nursery() as server_nursery:
            (listener,) = await server_nursery.start(
                partial(serve_tcp, handler, 0, host="127.0.0.1", handler_nursery=handlers)
            )
            client = await open_stream_to_socket_listener(listener)
            await wait_all_tasks_blocked()
            # Stop the server while the handler is still running...
            server_nursery.cancel_scope.cancel()
        assert listener.socket.fileno() == -1
        # ...the handler lives in the other nursery and finishes its work.
        async with client:
            assert await client.receive_some() == b"still here"
    assert done == [True]


async def test_a_failing_handler_stops_the_server_and_closes_everything():
    async def handler(stream):
        await stream.receive_some()
        raise ValueError("bad request")

    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            (listener,) = await n.start(partial(serve_tcp, handler, 0, host="127.0.0.1"))
            client = await open_stream_to_socket_listener(listener)
            async with client:
                await client.send_all(b"?")
                # The server's end is closed after the handler failed.
                assert await client.receive_some() == b""
                await nursery.sleep_forever()
    assert info.group_contains(ValueError, match="bad request")
    assert listener.socket.fileno() == -1


async def test_cancelling_the_server_cancels_its_handlers():
    cancelled = []

    async def handler(stream):
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            cancelled.append(True)
            raise

    async with nursery.open_nursery() as n:
        (listener,) = await n.start(partial(serve_tcp, handler, 0, host="127.0.0.1"))
        async with await open_stream_to_socket_listener(listener) as client:
            await wait_all_tasks_blocked()
            n.cancel_scope.cancel()
    assert cancelled == [True]


# ----------------------------------------------------------------------
# accept() errors, with a scripted listener


class FakeStream(AsyncResource):
    def __init__(self, name):
        self.name = name
        self.closed = False

    async def aclose(self):
        self.closed = True
        await nursery.lowlevel.checkpoint()


class ScriptedListener(Listener[FakeStream]):
    """accept() raises or returns the next item of *script*, then blocks."""

    def __init__(self, script):
        self.script = list(script)
        self.accept_times = []
        self.closed = False

    async def accept(self):
        self.accept_times.append(nursery.current_time())
        await nursery.lowlevel.checkpoint()
        if not self.script:
            await nursery.sleep_forever()
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self):
        self.closed = True
        await nursery.lowlevel.checkpoint()


async def test_out_of_descriptors_pauses_and_retries(autojump_clock, caplog):
    stream = FakeStream("conn")
    listener = ScriptedListener(
        [
            OSError(errno.EMFILE, "Too many open files"),
            OSError(errno.ENFILE, "Too many open files in system"),
            stream,
        ]
    )
    handled = []

    async def handler(s):
        handled.append((s, nursery.current_time()))

    start = nursery.current_time()
    with caplog.at_level(logging.ERROR, logger="nursery.serve_listeners"):
        async with nursery.open_nursery() as n:
            await n.start(serve_listeners, handler, [listener])
            await nursery.sleep(1)
            n.cancel_scope.cancel()
    assert [round(t - start, 6) for t in listener.accept_times] == [0.0, 0.1, 0.2, 0.2]
    assert handled == [(stream, pytest.approx(start + 0.2))]
    assert stream.closed  # closed after its handler
    assert listener.closed
    messages = [r.getMessage() for r in caplog.records if r.name == "nursery.serve_listeners"]
    assert messages == [
        f"accept() on {listener!r} failed with EMFILE (Too many open files); retrying in 0.1 seconds",
        f"accept() on {listener!r} failed with ENFILE (Too many open files in system); retrying in 0.1 seconds",
    ]
    assert all(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


async def test_other_accept_errors_stop_the_server(autojump_clock):
    listener = ScriptedListener([OSError(errno.EINVAL, "Invalid argument")])
    with pytest.raises(ExceptionGroup) as info:
        async with nursery.open_nursery() as n:
            await n.start(serve_listeners, echo, [listener])
    assert info.group_contains(OSError, match="Invalid argument")
    assert listener.closed


# ----------------------------------------------------------------------
# bad input


async def test_handler_not_callable_closes_the_listeners():
    listener = ScriptedListener([])
    with pytest.raises(TypeError) as info:
        await serve_listeners("echo", [listener])
    assert str(info.value) == "serve_listeners() handler must be an async function taking the stream, got 'echo'"
    assert listener.closed


async def test_serve_tcp_checks_the_handler_before_opening_sockets():
    with pytest.raises(TypeError) as info:
        await serve_tcp(None, 0, host="127.0.0.1")
    assert str(info.value) == "serve_tcp() handler must be an async function taking the stream, got None"
    # Nothing was opened (the leak check would catch a socket).


async def test_no_listeners():
    with pytest.raises(ValueError) as info:
        await serve_listeners(echo, [])
    assert str(info.value) == "serve_listeners() needs at least one listener, got none"


async def test_not_a_listener_closes_the_real_ones():
    listener = ScriptedListener([])
    with pytest.raises(TypeError) as info:
        await serve_listeners(echo, [listener, ("127.0.0.1", 80)])
    assert str(info.value) == "serve_listeners() listeners must be nursery.Listener objects, got ('127.0.0.1', 80)"
    assert listener.closed


async def test_serve_tcp_port_in_use():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        async with nursery.open_nursery() as n:
            with pytest.raises(OSError, match=rf"could not listen on 127\.0\.0\.1:{port}: Address already in use"):
                await n.start(partial(serve_tcp, echo, port, host="127.0.0.1"))

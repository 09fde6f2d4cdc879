"""Unix domain sockets: open_unix_socket, open_unix_listener (stale files,
mode, cleanup on close), serving them with serve_listeners."""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import stat
import sys
from pathlib import Path

import pytest

import nursery
from nursery import SocketListener, SocketStream, open_unix_listener, open_unix_socket, serve_listeners
from nursery.testing import check_half_closeable_stream, open_stream_to_socket_listener

pytestmark = pytest.mark.skipif(not hasattr(stdlib_socket, "AF_UNIX"), reason="no Unix domain sockets here")


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    # sun_path holds ~108 bytes: pytest's tmp_path can be long, so keep the
    # name short.
    return tmp_path / "s.sock"


async def test_listen_connect_and_talk(sock_path):
    listener = await open_unix_listener(sock_path)
    async with listener:
        assert isinstance(listener, SocketListener)
        assert listener.socket.family == stdlib_socket.AF_UNIX
        assert listener.path == str(sock_path)
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
        client = await open_unix_socket(sock_path)
        server = await listener.accept()
        async with client, server:
            assert isinstance(client, SocketStream)
            await client.send_all(b"over unix")
            assert await server.receive_some() == b"over unix"
            # Half-close works as on TCP.
            await client.send_eof()
            assert await server.receive_some() == b""
            await server.send_all(b"reply")
            assert await client.receive_some() == b"reply"
    # Closing the listener removed its socket file.
    assert not sock_path.exists()


async def test_str_and_bytes_paths(sock_path):
    async with await open_unix_listener(os.fsencode(sock_path)) as listener:
        assert listener.path == os.fsencode(sock_path)
        async with await open_unix_socket(str(sock_path)):
            pass
    assert not sock_path.exists()


async def test_open_stream_to_a_unix_listener(sock_path):
    async with await open_unix_listener(sock_path) as listener:
        async with await open_stream_to_socket_listener(listener) as client, await listener.accept() as server:
            await server.send_all(b"hi")
            assert await client.receive_some() == b"hi"


async def test_mode_is_applied(sock_path):
    async with await open_unix_listener(sock_path, mode=0o600):
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o600
    async with await open_unix_listener(sock_path, mode=0o666):
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o666


async def test_a_stale_socket_file_is_replaced(sock_path):
    # A server that died without cleaning up leaves its socket file behind.
    dead = stdlib_socket.socket(stdlib_socket.AF_UNIX)
    dead.bind(str(sock_path))
    dead.close()
    with pytest.raises(ConnectionRefusedError):
        await open_unix_socket(sock_path)
    async with await open_unix_listener(sock_path) as listener:
        async with await open_unix_socket(sock_path) as client, await listener.accept() as server:
            await client.send_all(b"new server")
            assert await server.receive_some() == b"new server"
    assert not sock_path.exists()


async def test_a_live_socket_is_not_replaced(sock_path):
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as live:
        live.bind(str(sock_path))
        live.listen()
        inode = os.lstat(sock_path).st_ino
        with pytest.raises(OSError) as info:
            await open_unix_listener(sock_path)
        assert info.value.errno == errno.EADDRINUSE
        assert str(info.value) == (
            f"[Errno {errno.EADDRINUSE}] cannot listen on {str(sock_path)!r}: "
            "another socket is already listening there"
        )
        assert os.lstat(sock_path).st_ino == inode


async def test_a_regular_file_is_never_removed(sock_path):
    sock_path.write_text("precious")
    with pytest.raises(OSError) as info:
        await open_unix_listener(sock_path)
    assert info.value.errno == errno.EADDRINUSE
    assert str(info.value) == (
        f"[Errno {errno.EADDRINUSE}] cannot listen on {str(sock_path)!r}: "
        "a file that is not a socket is in the way; remove it or choose another path"
    )
    assert sock_path.read_text() == "precious"


async def test_close_leaves_a_replacement_socket_alone(sock_path):
    listener = await open_unix_listener(sock_path)
    # Someone removed our file and a new server took the path.
    os.unlink(sock_path)
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as newer:
        newer.bind(str(sock_path))
        inode = os.lstat(sock_path).st_ino
        await listener.aclose()
        assert os.lstat(sock_path).st_ino == inode
        await listener.aclose()  # twice: a no-op
    os.unlink(sock_path)


async def test_close_when_the_file_is_already_gone(sock_path):
    listener = await open_unix_listener(sock_path)
    os.unlink(sock_path)
    await listener.aclose()
    assert listener.socket.fileno() == -1


async def test_directory_that_does_not_exist(tmp_path):
    path = tmp_path / "nope" / "s.sock"
    with pytest.raises(FileNotFoundError) as info:
        await open_unix_listener(path)
    assert str(info.value) == f"[Errno {errno.ENOENT}] cannot listen on {str(path)!r}: No such file or directory"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract addresses are Linux-only")
async def test_abstract_address():
    name = f"\0nursery-test-{os.getpid()}"
    async with await open_unix_listener(name) as listener:
        assert listener.socket.getsockname() == name.encode()
        async with await open_unix_socket(name) as client, await listener.accept() as server:
            await client.send_all(b"abstract")
            assert await server.receive_some() == b"abstract"
    with pytest.raises(ValueError) as info:
        await open_unix_listener(name, mode=0o600)
    assert str(info.value) == (
        "open_unix_listener() mode does not apply to an abstract address (a path starting with NUL)"
    )


async def test_serve_unix_listener(sock_path):
    async def echo(stream):
        async for chunk in stream:
            await stream.send_all(chunk)

    async with nursery.open_nursery() as n:
        listener = await open_unix_listener(sock_path)
        await n.start(serve_listeners, echo, [listener])
        for i in range(3):
            async with await open_unix_socket(sock_path) as client:
                await client.send_all(b"line %d" % i)
                assert await client.receive_some() == b"line %d" % i
        n.cancel_scope.cancel()
    # serve_listeners closed the listener, which removed the file.
    assert not sock_path.exists()


# ----------------------------------------------------------------------
# connecting: errors


async def test_connect_to_nothing(sock_path):
    with pytest.raises(FileNotFoundError) as info:
        await open_unix_socket(sock_path)
    assert repr(str(sock_path)) in str(info.value)


async def test_connect_to_a_socket_nobody_listens_on(sock_path):
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as dead:
        dead.bind(str(sock_path))
        with pytest.raises(ConnectionRefusedError) as info:
            await open_unix_socket(sock_path)
    assert repr(str(sock_path)) in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: open_unix_socket(42),
            "open_unix_socket() needs a file system path (str, bytes or os.PathLike), got 42",
        ),
        (
            lambda: open_unix_listener(None),
            "open_unix_listener() needs a file system path (str, bytes or os.PathLike), got None",
        ),
        (
            lambda: open_unix_listener("x.sock", mode="600"),
            "open_unix_listener() mode must be an int such as 0o660, or None, got '600'",
        ),
        (
            lambda: open_unix_listener("x.sock", backlog=1.5),
            "open_unix_listener() backlog must be an int or None, got 1.5",
        ),
    ],
)
async def test_bad_arguments(call, message):
    with pytest.raises(TypeError) as info:
        await call()
    assert str(info.value) == message


async def test_negative_backlog():
    with pytest.raises(ValueError) as info:
        await open_unix_listener("x.sock", backlog=-3)
    assert str(info.value) == (
        "open_unix_listener() backlog must be >= 0 (or None for the system's maximum), got -3"
    )


async def test_no_unix_sockets_on_this_platform(monkeypatch):
    import nursery._unix_sockets as us

    monkeypatch.setattr(us, "HAS_UNIX", False)
    with pytest.raises(RuntimeError) as info:
        await open_unix_socket("x.sock")
    assert str(info.value) == "open_unix_socket(): this platform has no Unix domain sockets (AF_UNIX)"


async def test_unix_streams_pass_the_conformance_check(tmp_path):
    counter = 0

    async def unix_stream_pair():
        nonlocal counter
        counter += 1
        path = tmp_path / f"c{counter}.sock"
        async with await open_unix_listener(path) as listener:
            client = await open_unix_socket(path)
            server = await listener.accept()
        return client, server

    await check_half_closeable_stream(unix_stream_pair, None)


async def test_open_unix_listener_cancelled_leaves_nothing_behind(sock_path):
    with nursery.CancelScope() as scope:
        scope.cancel()
        await open_unix_listener(sock_path)
    assert scope.cancelled_caught
    assert not sock_path.exists()

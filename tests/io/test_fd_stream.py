"""nursery.lowlevel.FdStream over os.pipe() pairs."""

from __future__ import annotations

import array
import errno
import gc
import hashlib
import os

import pytest

import nursery
from nursery import BrokenResourceError, BusyResourceError, ClosedResourceError
from nursery.lowlevel import FdStream, checkpoint
from nursery.testing import (
    assert_checkpoints,
    check_half_closeable_stream,
    check_one_way_stream,
    wait_all_tasks_blocked,
)


def pipe_streams() -> tuple[FdStream, FdStream]:
    """(writer, reader) over a fresh pipe."""
    r, w = os.pipe()
    return FdStream(w), FdStream(r)


def fill(stream: FdStream) -> int:
    """Fill the pipe behind a writer stream with raw writes; return how much
    went in."""
    total = 0
    try:
        while True:
            total += os.write(stream.fileno(), b"f" * 65536)
    except BlockingIOError:
        return total


async def drain(stream: FdStream, count: int) -> bytes:
    got = bytearray()
    while len(got) < count:
        got += await stream.receive_some(count - len(got))
    return bytes(got)


# ----------------------------------------------------------------------
# data


async def test_send_and_receive_then_end_of_file():
    w, r = pipe_streams()
    async with w, r:
        await w.send_all(b"hello")
        assert await r.receive_some() == b"hello"
        await w.send_all(bytearray(b"ab"))
        await w.send_all(memoryview(b"cd"))
        assert await drain(r, 4) == b"abcd"
        await w.aclose()
        assert await r.receive_some() == b""
        assert await r.receive_some() == b""  # and again


async def test_receive_some_respects_max_bytes():
    w, r = pipe_streams()
    async with w, r:
        await w.send_all(b"0123456789")
        assert await r.receive_some(3) == b"012"
        assert await r.receive_some(100) == b"3456789"


async def test_send_all_accepts_any_buffer():
    w, r = pipe_streams()
    async with w, r:
        ints = array.array("i", [1, 2, 3])
        await w.send_all(ints)
        assert await drain(r, ints.itemsize * 3) == ints.tobytes()
        await w.send_all(b"")  # nothing to send: still fine


async def test_async_iteration_yields_chunks_until_end_of_file():
    w, r = pipe_streams()
    async with r:
        async with w:
            await w.send_all(b"abc")
        chunks = [chunk async for chunk in r]
    assert b"".join(chunks) == b"abc"


async def test_large_transfer_arrives_intact():
    payload = os.urandom(4 * 1024 * 1024)
    w, r = pipe_streams()
    received = hashlib.sha256()
    count = 0

    async def sender():
        async with w:
            await w.send_all(payload)

    async with r, nursery.open_nursery() as n:
        n.start_soon(sender)
        async for chunk in r:
            received.update(chunk)
            count += len(chunk)
    assert count == len(payload)
    assert received.digest() == hashlib.sha256(payload).digest()


async def test_many_small_sends_keep_their_order():
    w, r = pipe_streams()
    messages = [f"{i:05d}".encode() for i in range(2000)]

    async def sender():
        async with w:
            for message in messages:
                await w.send_all(message)

    async with r, nursery.open_nursery() as n:
        n.start_soon(sender)
        got = b"".join([chunk async for chunk in r])
    assert got == b"".join(messages)


# ----------------------------------------------------------------------
# checkpoints


async def test_every_operation_is_a_checkpoint_even_when_it_does_not_block():
    w, r = pipe_streams()
    async with w, r:
        with assert_checkpoints():
            await w.send_all(b"x")
        with assert_checkpoints():
            assert await r.receive_some() == b"x"
        with assert_checkpoints():
            await w.wait_send_all_might_not_block()
        with assert_checkpoints():
            await w.aclose()


async def test_operations_in_a_cancelled_scope_raise_cancelled_and_do_nothing():
    w, r = pipe_streams()
    async with w, r:
        await w.send_all(b"ready")
        with nursery.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(nursery.Cancelled):
                await w.send_all(b"never")
            with pytest.raises(nursery.Cancelled):
                await r.receive_some()
        # Nothing was read or written: the stream is still usable.
        assert await r.receive_some() == b"ready"
        await w.send_all(b"more")
        assert await r.receive_some() == b"more"


# ----------------------------------------------------------------------
# bad input


async def test_receive_some_rejects_bad_max_bytes():
    w, r = pipe_streams()
    async with w, r:
        with pytest.raises(ValueError, match=r"^max_bytes must be >= 1, got 0$"):
            await r.receive_some(0)
        with pytest.raises(ValueError, match=r"^max_bytes must be >= 1, got -5$"):
            await r.receive_some(-5)
        with pytest.raises(TypeError, match=r"^max_bytes must be an int >= 1 or None, got 1\.5$"):
            await r.receive_some(1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"got '10'"):
            await r.receive_some("10")  # type: ignore[arg-type]


async def test_send_all_rejects_non_bytes():
    w, r = pipe_streams()
    async with w, r:
        with pytest.raises(TypeError, match=r"^send_all\(\) expected bytes, bytearray or memoryview, got str$"):
            await w.send_all("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"got int$"):
            await w.send_all(42)  # type: ignore[arg-type]
        # The failed calls did not leave the stream busy or broken.
        await w.send_all(b"ok")
        assert await r.receive_some() == b"ok"


def test_constructor_rejects_what_is_not_an_open_fd():
    with pytest.raises(TypeError, match=r"^FdStream\(\) expected a file descriptor \(an int\), got '3'$"):
        FdStream("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got True"):
        FdStream(True)
    with pytest.raises(ValueError, match=r"^FdStream\(\) expected a file descriptor >= 0, got -1$"):
        FdStream(-1)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        FdStream(r)
    assert info.value.errno == errno.EBADF


# ----------------------------------------------------------------------
# busy


async def test_two_receivers_at_once_is_an_error():
    w, r = pipe_streams()
    async with w, r:
        async with nursery.open_nursery() as n:
            n.start_soon(r.receive_some)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError, match="another task is already receiving on this FdStream"):
                await r.receive_some()
            n.cancel_scope.cancel()


async def test_two_senders_at_once_is_an_error():
    w, r = pipe_streams()
    async with w, r:
        fill(w)
        async with nursery.open_nursery() as n:
            n.start_soon(w.send_all, b"x")
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError, match="another task is already sending on this FdStream"):
                await w.send_all(b"y")
            with pytest.raises(BusyResourceError, match="another task is already sending on this FdStream"):
                await w.wait_send_all_might_not_block()
            n.cancel_scope.cancel()


# ----------------------------------------------------------------------
# closing


async def test_closed_stream_raises_closed_resource_error():
    w, r = pipe_streams()
    await w.aclose()
    await r.aclose()
    await w.aclose()  # twice: a no-op
    w.close()
    assert w.fileno() == -1 and w.closed
    assert repr(w) == "<nursery.lowlevel.FdStream closed>"
    for call in (lambda: w.send_all(b"x"), lambda: w.send_all(b""), w.wait_send_all_might_not_block, r.receive_some):
        with pytest.raises(ClosedResourceError, match="^this FdStream was closed$"):
            await call()


async def test_closing_wakes_a_blocked_receiver():
    w, r = pipe_streams()
    async with w:
        async with nursery.open_nursery() as n:

            async def receiver():
                with pytest.raises(ClosedResourceError):
                    await r.receive_some()

            n.start_soon(receiver)
            await wait_all_tasks_blocked()
            await r.aclose()


async def test_closing_wakes_a_blocked_sender_and_waiter():
    for method in ("send_all", "wait_send_all_might_not_block"):
        w, r = pipe_streams()
        async with r:
            fill(w)
            async with nursery.open_nursery() as n:

                async def sender():
                    with pytest.raises(ClosedResourceError):
                        if method == "send_all":
                            await w.send_all(b"more")
                        else:
                            await w.wait_send_all_might_not_block()

                n.start_soon(sender)
                await wait_all_tasks_blocked()
                await nursery.aclose_forcefully(w)


async def test_close_restores_blocking_mode_of_the_shared_file():
    r, w = os.pipe()
    other = os.dup(w)  # shares the open file (and its O_NONBLOCK flag)
    try:
        assert os.get_blocking(other)
        stream = FdStream(w)
        assert not os.get_blocking(other)
        await stream.aclose()
        assert os.get_blocking(other)
        # A descriptor that was non-blocking to start with stays so.
        os.set_blocking(other, False)
        stream = FdStream(other)
        other = -1
        await stream.aclose()
    finally:
        os.close(r)
        if other >= 0:
            os.close(other)


async def test_a_dropped_stream_closes_its_fd():
    r, w = os.pipe()
    os.close(r)
    stream = FdStream(w)
    del stream
    gc.collect()
    with pytest.raises(OSError) as info:
        os.fstat(w)
    assert info.value.errno == errno.EBADF


# ----------------------------------------------------------------------
# broken pipes and cancellation


async def test_closed_reader_breaks_the_writer_and_it_stays_broken():
    w, r = pipe_streams()
    async with w:
        await r.aclose()
        with pytest.raises(BrokenResourceError, match=r"^the pipe is broken: Broken pipe$") as info:
            await w.send_all(b"x")
        assert isinstance(info.value.__cause__, BrokenPipeError)
        with pytest.raises(BrokenResourceError):
            await w.send_all(b"x")
        with pytest.raises(BrokenResourceError):
            await w.wait_send_all_might_not_block()


async def test_reader_closing_while_sender_waits_breaks_the_sender():
    w, r = pipe_streams()
    async with w:
        fill(w)
        async with nursery.open_nursery() as n:

            async def sender():
                with pytest.raises(BrokenResourceError):
                    await w.send_all(b"x" * 1000)

            n.start_soon(sender)
            await wait_all_tasks_blocked()
            await r.aclose()


async def test_cancelled_receive_loses_no_data(autojump_clock):
    w, r = pipe_streams()
    async with w, r:
        with nursery.move_on_after(1) as scope:
            await r.receive_some()
        assert scope.cancelled_caught
        await w.send_all(b"after")
        assert await r.receive_some() == b"after"


async def test_send_all_cancelled_part_way_breaks_the_stream(autojump_clock):
    w, r = pipe_streams()
    async with w, r:
        capacity = fill(w)
        # Make room for a little (two pages: a pipe takes writes a page at a
        # time), so that send_all writes part of its data and then has to
        # wait for the rest.
        room = 8192
        assert await drain(r, room) == b"f" * room
        with nursery.move_on_after(1) as scope:
            await w.send_all(b"d" * 100_000)
        assert scope.cancelled_caught
        with pytest.raises(BrokenResourceError, match="cancelled part way"):
            await w.send_all(b"x")
        # What was written before the cancellation is there, and nothing else.
        got = await drain(r, capacity)
        assert got == b"f" * (capacity - room) + b"d" * room
        w.close()
        assert await r.receive_some() == b""


async def test_send_all_cancelled_before_sending_anything_leaves_the_stream_usable(autojump_clock):
    w, r = pipe_streams()
    async with w, r:
        capacity = fill(w)
        with nursery.move_on_after(1) as scope:
            await w.send_all(b"x")
        assert scope.cancelled_caught
        assert await drain(r, capacity) == b"f" * capacity
        await w.send_all(b"still fine")
        assert await r.receive_some() == b"still fine"


async def test_wait_send_all_might_not_block_waits_for_room():
    w, r = pipe_streams()
    async with w, r:
        capacity = fill(w)
        events = []

        async def waiter():
            await w.wait_send_all_might_not_block()
            events.append("room")

        async with nursery.open_nursery() as n:
            n.start_soon(waiter)
            await wait_all_tasks_blocked()
            assert events == []
            await drain(r, capacity)
        assert events == ["room"]


async def test_wrong_direction_on_a_pipe_is_an_os_error():
    w, r = pipe_streams()
    async with w, r:
        with pytest.raises(OSError) as info:
            await r.send_all(b"x")
        assert info.value.errno == errno.EBADF
        await checkpoint()


# ----------------------------------------------------------------------
# conformance


async def make_pipe_pair() -> tuple[FdStream, FdStream]:
    return pipe_streams()


async def make_clogged_pipe_pair() -> tuple[FdStream, FdStream]:
    w, r = pipe_streams()
    fill(w)
    return w, r


async def test_pipe_streams_pass_the_one_way_stream_checks():
    await check_one_way_stream(make_pipe_pair, make_clogged_pipe_pair)


async def make_stapled_pipes() -> tuple[nursery.StapledStream, nursery.StapledStream]:
    # Two pipes, one each way: what a subprocess's stdin and stdout make.
    w1, r1 = pipe_streams()
    w2, r2 = pipe_streams()
    return nursery.StapledStream(w1, r2), nursery.StapledStream(w2, r1)


async def make_clogged_stapled_pipes() -> tuple[nursery.StapledStream, nursery.StapledStream]:
    a, b = await make_stapled_pipes()
    fill(a.send_stream)
    fill(b.send_stream)
    return a, b


async def test_stapled_pipe_pairs_pass_the_half_closeable_stream_checks():
    await check_half_closeable_stream(make_stapled_pipes, make_clogged_stapled_pipes)

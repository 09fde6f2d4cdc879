"""MemorySendStream, MemoryReceiveStream, memory_stream_pump and the memory
and lockstep pairs: their own API (buffers, hooks, pumping by hand) and the
exact errors they raise. The stream contract itself is checked by
test_check_streams.py."""

from __future__ import annotations

import pytest

import nursery
from nursery import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    ClosedResourceError,
    StapledStream,
    WouldBlock,
)
from nursery.testing import (
    MemoryReceiveStream,
    MemorySendStream,
    assert_checkpoints,
    lockstep_stream_one_way_pair,
    lockstep_stream_pair,
    memory_stream_one_way_pair,
    memory_stream_pair,
    memory_stream_pump,
    wait_all_tasks_blocked,
)

# ---------------------------------------------------------------------------
# MemorySendStream


async def test_send_stream_buffers_until_taken():
    s = MemorySendStream()
    with assert_checkpoints():
        await s.send_all(b"abc")
    await s.send_all(bytearray(b"de"))
    await s.send_all(memoryview(b"fgh")[1:])
    assert s.get_data_nowait(2) == b"ab"
    assert s.get_data_nowait() == b"cdegh"
    with pytest.raises(WouldBlock):
        s.get_data_nowait()
    assert repr(s).startswith("<MemorySendStream at 0x") and repr(s).endswith(", 0 bytes buffered>")


async def test_send_stream_copies_the_callers_buffer():
    s = MemorySendStream()
    buffer = bytearray(b"before")
    await s.send_all(buffer)
    buffer[:] = b"after!"
    assert s.get_data_nowait() == b"before"


async def test_send_stream_memoryview_of_wide_items_sends_all_bytes():
    s = MemorySendStream()
    await s.send_all(memoryview(bytearray(b"ABCDEF")).cast("H"))
    assert s.get_data_nowait() == b"ABCDEF"


async def test_get_data_waits_for_data_and_returns_eof_after_close():
    s = MemorySendStream()
    got = []

    async def getter():
        got.append(await s.get_data())
        got.append(await s.get_data(1))
        got.append(await s.get_data())
        got.append(await s.get_data())

    async with nursery.open_nursery() as n:
        n.start_soon(getter)
        await wait_all_tasks_blocked()
        assert got == []
        await s.send_all(b"xy")
        await wait_all_tasks_blocked()
        assert got == [b"xy"]
        await s.send_all(b"zw")
        await wait_all_tasks_blocked()
        assert got == [b"xy", b"z", b"w"]
        s.close()
    assert got == [b"xy", b"z", b"w", b""]
    assert repr(s).endswith(", 0 bytes buffered, closed>")


async def test_get_data_is_a_checkpoint_and_a_cancelled_one_takes_nothing():
    s = MemorySendStream()
    await s.send_all(b"kept")
    with assert_checkpoints():
        with nursery.CancelScope() as scope:
            scope.cancel()
            await s.get_data()
    assert scope.cancelled_caught
    assert await s.get_data() == b"kept"


async def test_get_data_bad_max_bytes():
    s = MemorySendStream()
    with pytest.raises(ValueError, match=r"^get_data\(\) max_bytes must be at least 1, got 0$"):
        await s.get_data(0)
    with pytest.raises(
        TypeError,
        match=r"^get_data_nowait\(\) max_bytes must be a positive int or None, got float 1.5",
    ):
        s.get_data_nowait(1.5)


async def test_concurrent_get_data_is_busy():
    s = MemorySendStream()
    async with nursery.open_nursery() as n:
        n.start_soon(s.get_data)
        await wait_all_tasks_blocked()
        with pytest.raises(
            BusyResourceError,
            match=r"^another task is already in get_data\(\) on this MemorySendStream",
        ):
            await s.get_data()
        with pytest.raises(BusyResourceError):
            s.get_data_nowait()
        n.cancel_scope.cancel()


async def test_send_stream_hooks_run_in_order_and_are_attributes():
    log = []

    async def send_hook():
        log.append(("send_all_hook", s.get_data_nowait()))

    async def wait_hook():
        log.append("wait hook")

    def close_hook():
        log.append("close hook")

    s = MemorySendStream(send_hook, wait_hook, close_hook)
    await s.send_all(b"data")  # the hook sees the data already buffered
    await s.wait_send_all_might_not_block()
    await s.aclose()
    s.close()  # the close hook runs every time
    assert log == [("send_all_hook", b"data"), "wait hook", "close hook", "close hook"]

    s.send_all_hook = None
    s.wait_send_all_might_not_block_hook = None
    s.close_hook = None
    s2 = MemorySendStream()
    assert (s2.send_all_hook, s2.wait_send_all_might_not_block_hook, s2.close_hook) == (None, None, None)


async def test_send_stream_errors():
    s = MemorySendStream()
    with pytest.raises(
        TypeError,
        match=r"^MemorySendStream.send_all\(\) expected bytes, bytearray or memoryview, got str 'text' "
        r"\(encode it first, e.g. data.encode\(\)\)$",
    ):
        await s.send_all("text")
    with pytest.raises(
        TypeError,
        match=r"^MemorySendStream.send_all\(\) expected bytes, bytearray or memoryview, got int 5",
    ):
        await s.send_all(5)
    await s.aclose()
    await s.aclose()
    with pytest.raises(ClosedResourceError, match=r"^send_all\(\) on a MemorySendStream that was closed$"):
        await s.send_all(b"x")
    with pytest.raises(
        ClosedResourceError, match=r"^wait_send_all_might_not_block\(\) on a MemorySendStream that was closed$"
    ):
        await s.wait_send_all_might_not_block()


async def test_send_stream_concurrent_senders_are_busy():
    release = nursery.Event()

    async def slow_hook():
        await release.wait()

    s = MemorySendStream(send_all_hook=slow_hook, wait_send_all_might_not_block_hook=slow_hook)
    async with nursery.open_nursery() as n:
        n.start_soon(s.send_all, b"first")
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError, match="^another task is already sending on this MemorySendStream$"):
            await s.send_all(b"second")
        with pytest.raises(BusyResourceError):
            await s.wait_send_all_might_not_block()
        release.set()
    assert s.get_data_nowait() == b"first"


async def test_send_all_cancelled_at_its_checkpoint_sends_nothing():
    s = MemorySendStream()
    with nursery.CancelScope() as scope:
        scope.cancel()
        await s.send_all(b"lost")
    assert scope.cancelled_caught
    with pytest.raises(WouldBlock):
        s.get_data_nowait()


# ---------------------------------------------------------------------------
# MemoryReceiveStream


async def test_receive_stream_returns_what_was_put():
    r = MemoryReceiveStream()
    r.put_data(b"abc")
    r.put_data(bytearray(b"def"))
    with assert_checkpoints():
        assert await r.receive_some(2) == b"ab"
    assert await r.receive_some() == b"cdef"
    r.put_data(b"g")
    r.put_eof()
    r.put_eof()
    assert repr(r).endswith(", 1 bytes buffered, at EOF>")
    assert await r.receive_some() == b"g"
    for _ in range(3):
        with assert_checkpoints():
            assert await r.receive_some() == b""


async def test_receive_some_waits_for_put_data():
    r = MemoryReceiveStream()
    got = []

    async def receiver():
        got.append(await r.receive_some())

    async with nursery.open_nursery() as n:
        n.start_soon(receiver)
        await wait_all_tasks_blocked()
        r.put_data(b"")  # nothing: the receiver keeps waiting
        await wait_all_tasks_blocked()
        assert got == []
        r.put_data(b"now")
    assert got == [b"now"]


async def test_receive_some_hook_runs_before_the_buffer_is_read():
    r = MemoryReceiveStream()
    calls = []

    async def hook():
        calls.append("hook")
        r.put_data(b"from the hook")

    r.receive_some_hook = hook
    assert await r.receive_some() == b"from the hook"
    assert calls == ["hook"]


async def test_receive_stream_close_discards_data_and_wakes_the_receiver():
    closes = []
    r = MemoryReceiveStream(close_hook=lambda: closes.append("closed"))
    outcome = []

    async def receiver():
        with pytest.raises(
            ClosedResourceError, match=r"^the MemoryReceiveStream was closed while receive_some\(\) was waiting$"
        ):
            await r.receive_some()
        outcome.append("woken")

    async with nursery.open_nursery() as n:
        n.start_soon(receiver)
        await wait_all_tasks_blocked()
        await r.aclose()
    assert outcome == ["woken"] and closes == ["closed"]

    r2 = MemoryReceiveStream()
    r2.put_data(b"never read")
    r2.close()
    assert repr(r2).endswith(", 0 bytes buffered, closed>")
    with pytest.raises(ClosedResourceError, match=r"^receive_some\(\) on a MemoryReceiveStream that was closed$"):
        await r2.receive_some()


async def test_receive_stream_errors():
    r = MemoryReceiveStream()
    with pytest.raises(ValueError, match=r"^MemoryReceiveStream.receive_some\(\) max_bytes must be at least 1, got 0$"):
        await r.receive_some(0)
    with pytest.raises(ValueError, match=r"got -3$"):
        await r.receive_some(-3)
    with pytest.raises(
        TypeError, match=r"^MemoryReceiveStream.receive_some\(\) max_bytes must be a positive int or None, got str '1'$"
    ):
        await r.receive_some("1")
    with pytest.raises(TypeError, match=r"^put_data\(\) expected bytes, bytearray or memoryview, got list \[1\]$"):
        r.put_data([1])
    r.put_eof()
    with pytest.raises(
        ClosedResourceError, match=r"^put_data\(\) after put_eof\(\): no more data may follow the end of the stream$"
    ):
        r.put_data(b"x")
    r.close()
    with pytest.raises(ClosedResourceError, match=r"^put_data\(\) on a MemoryReceiveStream that was closed$"):
        r.put_data(b"x")


async def test_concurrent_receivers_are_busy():
    r = MemoryReceiveStream()
    async with nursery.open_nursery() as n:
        n.start_soon(r.receive_some)
        await wait_all_tasks_blocked()
        with pytest.raises(
            BusyResourceError, match="^another task is already receiving on this MemoryReceiveStream$"
        ):
            await r.receive_some()
        n.cancel_scope.cancel()
    # The cancelled receive took nothing.
    r.put_data(b"still here")
    assert await r.receive_some() == b"still here"


async def test_receive_cancelled_at_its_checkpoint_takes_nothing():
    r = MemoryReceiveStream()
    r.put_data(b"keep")
    with nursery.CancelScope() as scope:
        scope.cancel()
        await r.receive_some()
    assert scope.cancelled_caught
    assert await r.receive_some() == b"keep"


# ---------------------------------------------------------------------------
# pumping


async def test_pump_by_hand():
    s = MemorySendStream()
    r = MemoryReceiveStream()
    assert memory_stream_pump(s, r) is False  # nothing to move
    await s.send_all(b"hello")
    assert memory_stream_pump(s, r, max_bytes=2) is True
    assert await r.receive_some() == b"he"
    assert memory_stream_pump(s, r) is True
    assert memory_stream_pump(s, r) is False
    assert await r.receive_some() == b"llo"
    await s.send_all(b"!")
    s.close()
    # The rest of the data and the end of stream move together.
    assert memory_stream_pump(s, r) is True
    assert await r.receive_some() == b"!"
    assert await r.receive_some() == b""
    assert memory_stream_pump(s, r) is True  # the end of stream, again: harmless


async def test_pump_into_a_closed_receive_stream_is_broken():
    s = MemorySendStream()
    r = MemoryReceiveStream()
    await s.send_all(b"data")
    r.close()
    with pytest.raises(
        BrokenResourceError,
        match="^the receiving end of this memory stream was closed; the data cannot be delivered$",
    ):
        memory_stream_pump(s, r)


async def test_one_way_pair_with_manual_pumping_delivers_odd_pieces():
    s, r = memory_stream_one_way_pair()
    s.send_all_hook = None  # take over: nothing moves until we pump
    r.receive_some_hook = None
    await s.send_all(b"abcdef")
    got = []

    async def receiver():
        while chunk := await r.receive_some():
            got.append(chunk)

    async with nursery.open_nursery() as n:
        n.start_soon(receiver)
        for size in (1, 2, 3):
            await wait_all_tasks_blocked()
            memory_stream_pump(s, r, max_bytes=size)
        await s.aclose()
    assert got == [b"a", b"bc", b"def"]


# ---------------------------------------------------------------------------
# the pairs


async def test_one_way_pair():
    s, r = memory_stream_one_way_pair()
    assert isinstance(s, MemorySendStream) and isinstance(r, MemoryReceiveStream)
    await s.send_all(b"x")  # never blocks
    await s.send_all(b"y")
    assert await r.receive_some() == b"xy"
    await r.aclose()
    with pytest.raises(BrokenResourceError, match="^the receiving end of this memory stream was closed"):
        await s.send_all(b"z")
    await s.aclose()  # closing the sender does not raise, even with the receiver gone


async def test_one_way_pair_sender_close_is_eof():
    s, r = memory_stream_one_way_pair()
    await s.send_all(b"last")
    await s.aclose()
    assert await r.receive_some() == b"last"
    assert await r.receive_some() == b""


async def test_memory_stream_pair_is_two_stapled_streams():
    a, b = memory_stream_pair()
    assert isinstance(a, StapledStream) and isinstance(b, StapledStream)
    assert isinstance(a.send_stream, MemorySendStream) and isinstance(a.receive_stream, MemoryReceiveStream)
    await a.send_all(b"ping")
    assert await b.receive_some() == b"ping"
    await b.send_all(b"pong")
    assert await a.receive_some() == b"pong"
    await a.send_eof()
    assert await b.receive_some() == b""
    await b.send_all(b"still")
    assert await a.receive_some() == b"still"


# ---------------------------------------------------------------------------
# lockstep streams


async def test_lockstep_send_all_returns_only_when_everything_was_taken():
    s, r = lockstep_stream_one_way_pair()
    log = []

    async def sender():
        await s.send_all(b"abcd")
        log.append("sent")

    async with nursery.open_nursery() as n:
        n.start_soon(sender)
        await wait_all_tasks_blocked()
        assert log == []
        assert await r.receive_some(3) == b"abc"
        await wait_all_tasks_blocked()
        assert log == []
        assert await r.receive_some(3) == b"d"
        await wait_all_tasks_blocked()
        assert log == ["sent"]


async def test_lockstep_wait_send_all_might_not_block_waits_for_a_receiver():
    s, r = lockstep_stream_one_way_pair()
    log = []

    async def waiter():
        await s.wait_send_all_might_not_block()
        log.append("might not block")
        await s.send_all(b"x")

    async with nursery.open_nursery() as n:
        n.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert log == []
        assert await r.receive_some() == b"x"
    assert log == ["might not block"]


async def test_lockstep_send_all_cancelled_before_the_receiver_took_anything_sent_nothing(autojump_clock):
    s, r = lockstep_stream_one_way_pair()
    with nursery.move_on_after(1) as scope:
        await s.send_all(b"withdrawn")  # nobody receives: blocks until cancelled
    assert scope.cancelled_caught

    async with nursery.open_nursery() as n:
        n.start_soon(s.send_all, b"next")
        assert await r.receive_some() == b"next"


async def test_lockstep_send_all_cancelled_part_way_breaks_the_stream():
    s, r = lockstep_stream_one_way_pair()
    scope = nursery.CancelScope()

    async def sender():
        with scope:
            await s.send_all(b"abcdef")

    async with nursery.open_nursery() as n:
        n.start_soon(sender)
        assert await r.receive_some(2) == b"ab"
        await wait_all_tasks_blocked()
        scope.cancel()
    assert scope.cancelled_caught
    # The rest still arrives; the sender cannot know how much did.
    assert await r.receive_some() == b"cdef"
    with pytest.raises(
        BrokenResourceError,
        match=r"^send_all\(\): an earlier send_all\(\) was cancelled after the receiver had taken part of its data, "
        r"so the stream is broken$",
    ):
        await s.send_all(b"more")


async def test_lockstep_close_errors():
    s, r = lockstep_stream_one_way_pair()

    async def blocked_sender():
        with pytest.raises(
            ClosedResourceError, match=r"^the lockstep stream was closed while send_all\(\) was waiting$"
        ):
            await s.send_all(b"x")

    async with nursery.open_nursery() as n:
        n.start_soon(blocked_sender)
        await wait_all_tasks_blocked()
        await s.aclose()
    assert await r.receive_some() == b""  # the unsent data was dropped
    with pytest.raises(ClosedResourceError, match=r"^send_all\(\) on a lockstep stream that was closed$"):
        await s.send_all(b"x")
    assert repr(s).endswith(", closed>")

    s, r = lockstep_stream_one_way_pair()
    await r.aclose()
    with pytest.raises(
        BrokenResourceError, match=r"^send_all\(\): the receiving end of this lockstep stream was closed$"
    ):
        await s.send_all(b"x")
    with pytest.raises(ClosedResourceError, match=r"^receive_some\(\) on a lockstep stream that was closed$"):
        await r.receive_some()
    assert repr(r).startswith("<lockstep receive stream at 0x") and repr(r).endswith(", closed>")


async def test_lockstep_bad_arguments():
    s, r = lockstep_stream_one_way_pair()
    with pytest.raises(
        TypeError,
        match=r"^lockstep send_all\(\) expected bytes, bytearray or memoryview, got NoneType",
    ):
        await s.send_all(None)
    with pytest.raises(ValueError, match=r"^lockstep receive_some\(\) max_bytes must be at least 1, got 0$"):
        await r.receive_some(0)


async def test_lockstep_concurrent_use_is_busy():
    s, r = lockstep_stream_one_way_pair()
    async with nursery.open_nursery() as n:
        n.start_soon(s.send_all, b"x")
        n.start_soon(r.receive_some, 0 + 1)
        await nursery.sleep(0)
        n.cancel_scope.cancel()
    async with nursery.open_nursery() as n:
        n.start_soon(s.send_all, b"x")
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError, match="^another task is already sending on this lockstep stream$"):
            await s.send_all(b"y")
        n.cancel_scope.cancel()
    async with nursery.open_nursery() as n:
        n.start_soon(r.receive_some)
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError, match="^another task is already receiving on this lockstep stream$"):
            await r.receive_some()
        n.cancel_scope.cancel()


async def test_lockstep_stream_pair_flushes_out_a_send_before_receive_deadlock(autojump_clock):
    # Code that sends a whole request before reading the reply works over
    # buffered streams and deadlocks without buffering: lockstep streams
    # show it at once.
    async def echo_server(stream):
        async for chunk in stream:
            await stream.send_all(chunk)

    async def client(stream):
        await stream.send_all(b"request 1")
        await stream.send_all(b"request 2")  # the server is stuck replying to 1
        reply = b""
        while len(reply) < 18:
            reply += await stream.receive_some()
        return reply

    for make_pair, deadlocks in ((memory_stream_pair, False), (lockstep_stream_pair, True)):
        a, b = make_pair()
        with nursery.move_on_after(10) as scope:
            async with nursery.open_nursery() as n:
                n.start_soon(echo_server, b)
                assert await client(a) == b"request 1request 2"
                await a.aclose()
        assert scope.cancelled_caught is deadlocks


async def test_cancelled_is_not_swallowed_by_the_streams():
    # A sanity check on the error paths: Cancelled passes through unchanged.
    s, r = memory_stream_one_way_pair()
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(Cancelled):
            await r.receive_some()
        with pytest.raises(Cancelled):
            await s.send_all(b"x")

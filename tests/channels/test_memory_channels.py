"""Memory channels: buffering, rendezvous, hand-off, closing, fairness,
checkpoints and cancellation safety."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections import Counter

import pytest

import nursery
from nursery import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    MemoryChannelStatistics,
    MemoryReceiveChannel,
    MemorySendChannel,
    WouldBlock,
    open_memory_channel,
)
from nursery.testing import assert_checkpoints, assert_no_checkpoints, wait_all_tasks_blocked

SEND_CLOSED = "send() on a closed MemorySendChannel"
RECEIVE_CLOSED = "receive() on a closed MemoryReceiveChannel"
SEND_CLOSED_WHILE_WAITING = "the MemorySendChannel was closed while send() was waiting on it"
RECEIVE_CLOSED_WHILE_WAITING = "the MemoryReceiveChannel was closed while receive() was waiting on it"
BROKEN = "send(): every receive channel of this memory channel is closed, so nobody can receive"
END = "every send channel is closed and the buffer is empty"
END_WHILE_WAITING = "every send channel was closed"


def stats(channel, **expected):
    """Assert the fields given in *expected* of channel.statistics()."""
    actual = dataclasses.asdict(channel.statistics())
    assert {key: actual[key] for key in expected} == expected


# The two helpers log what happened; a channel error is logged and
# swallowed, Cancelled is logged and re-raised (for the nursery to catch).


async def _receive_into(channel, log, name=None):
    try:
        value = await channel.receive()
    except (ClosedResourceError, EndOfChannel) as exc:
        log.append((name, type(exc).__name__, str(exc)))
        return
    except nursery.Cancelled as exc:
        log.append((name, type(exc).__name__, str(exc)))
        raise
    log.append((name, value))


async def _send_logged(channel, value, log, name=None):
    try:
        await channel.send(value)
    except (ClosedResourceError, BrokenResourceError) as exc:
        log.append((name, type(exc).__name__, str(exc)))
        return
    except nursery.Cancelled as exc:
        log.append((name, type(exc).__name__, str(exc)))
        raise
    log.append((name, "sent", value))


async def _start_one_by_one(n, fn, *args_list):
    """Start fn(*args) for each args, each blocked before the next starts,
    so the blocking order is the start order."""
    for args in args_list:
        n.start_soon(fn, *args)
        await wait_all_tasks_blocked()


# ----------------------------------------------------------------------
# construction and bad input


@pytest.mark.parametrize("size", [0, 1, 7, math.inf])
def test_open_outside_a_run_and_initial_statistics(size):
    send, receive = open_memory_channel(size)
    assert type(send) is MemorySendChannel
    assert type(receive) is MemoryReceiveChannel
    expected = MemoryChannelStatistics(
        current_buffer_used=0,
        max_buffer_size=size,
        open_send_channels=1,
        open_receive_channels=1,
        tasks_waiting_send=0,
        tasks_waiting_receive=0,
    )
    assert send.statistics() == expected
    assert receive.statistics() == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        send.statistics().current_buffer_used = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "size, exc_type, message",
    [
        (-1, ValueError, "open_memory_channel(): max_buffer_size must be >= 0, got -1"),
        (-math.inf, ValueError, "open_memory_channel(): max_buffer_size must be >= 0, got -inf"),
        (math.nan, ValueError, "open_memory_channel(): max_buffer_size must not be NaN"),
        (1.5, TypeError, "open_memory_channel(): max_buffer_size must be an int or math.inf, got 1.5"),
        (2.0, TypeError, "open_memory_channel(): max_buffer_size must be an int or math.inf, got 2.0"),
        ("3", TypeError, "open_memory_channel(): max_buffer_size must be an int or math.inf, got '3'"),
        (None, TypeError, "open_memory_channel(): max_buffer_size must be an int or math.inf, got None"),
        (True, TypeError, "open_memory_channel(): max_buffer_size must be an int or math.inf, got True"),
    ],
)
def test_bad_sizes(size, exc_type, message):
    with pytest.raises(exc_type) as info:
        open_memory_channel(size)
    assert str(info.value) == message


def test_classes_cannot_be_made_directly_but_are_generic():
    with pytest.raises(TypeError, match=r"^MemorySendChannel objects are made by nursery.open_memory_channel\(\)"):
        MemorySendChannel()
    with pytest.raises(TypeError, match=r"^MemoryReceiveChannel objects are made by nursery.open_memory_channel\(\)"):
        MemoryReceiveChannel()
    alias = MemorySendChannel[int]
    assert alias.__origin__ is MemorySendChannel
    assert MemoryReceiveChannel[str].__args__ == (str,)
    send, receive = open_memory_channel(0)
    assert repr(send).startswith("<MemorySendChannel at ")
    receive.close()
    assert ", closed" in repr(receive)
    assert MemorySendChannel.__module__ == "nursery"


def test_send_outside_a_run_is_a_clear_error():
    send, receive = open_memory_channel(1)

    async def main():
        await send.send(1)

    with pytest.raises(RuntimeError, match=r"^MemorySendChannel.send\(\) must be called from inside nursery.run\(\)"):
        asyncio.run(main())

    async def main2():
        await receive.receive()

    with pytest.raises(
        RuntimeError, match=r"^MemoryReceiveChannel.receive\(\) must be called from inside nursery.run\(\)"
    ):
        asyncio.run(main2())
    # The nowait forms need no run: with nothing to wake, they are plain
    # buffer operations.
    send.send_nowait("x")
    assert receive.receive_nowait() == "x"


# ----------------------------------------------------------------------
# buffering


async def test_buffer_fills_then_would_block_and_drains_in_order():
    send, receive = open_memory_channel(3)
    for i in range(3):
        send.send_nowait(i)
    stats(send, current_buffer_used=3)
    with pytest.raises(WouldBlock):
        send.send_nowait(3)
    assert [receive.receive_nowait() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(WouldBlock):
        receive.receive_nowait()


async def test_unbounded_buffer_never_blocks():
    send, receive = open_memory_channel(math.inf)
    for i in range(10_000):
        send.send_nowait(i)
    await send.send("last")
    stats(receive, current_buffer_used=10_001)
    assert receive.receive_nowait() == 0


async def test_zero_buffer_nowait_needs_a_waiting_partner():
    send, receive = open_memory_channel(0)
    with pytest.raises(WouldBlock):
        send.send_nowait(1)
    with pytest.raises(WouldBlock):
        receive.receive_nowait()
    stats(send, current_buffer_used=0, tasks_waiting_send=0, tasks_waiting_receive=0)


async def test_rendezvous_send_completes_only_when_received():
    send, receive = open_memory_channel(0)
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_send_logged, send, "ball", log)
        await wait_all_tasks_blocked()
        assert log == []
        stats(send, current_buffer_used=0, tasks_waiting_send=1)
        assert receive.receive_nowait() == "ball"
        stats(send, current_buffer_used=0, tasks_waiting_send=0)
        await wait_all_tasks_blocked()
        assert log == [(None, "sent", "ball")]


async def test_send_hands_the_value_straight_to_a_waiting_receiver():
    send, receive = open_memory_channel(0)
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_receive_into, receive, log)
        await wait_all_tasks_blocked()
        stats(receive, tasks_waiting_receive=1)
        send.send_nowait("direct")
        # Not buffered (there is no room anyway) and the receiver is no
        # longer waiting: it holds the value.
        stats(receive, current_buffer_used=0, tasks_waiting_receive=0)
        with pytest.raises(WouldBlock):
            send.send_nowait("second")
    assert log == [(None, "direct")]


async def test_buffered_hand_off_skips_the_buffer_when_a_receiver_waits():
    send, receive = open_memory_channel(5)
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_receive_into, receive, log)
        await wait_all_tasks_blocked()
        await send.send("v")
        stats(receive, current_buffer_used=0, tasks_waiting_receive=0)
    assert log == [(None, "v")]


async def test_blocked_senders_refill_the_buffer_in_order():
    send, receive = open_memory_channel(2)
    send.send_nowait(0)
    send.send_nowait(1)
    log = []
    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, _send_logged, (send, 2, log), (send, 3, log))
        stats(send, current_buffer_used=2, tasks_waiting_send=2)
        assert receive.receive_nowait() == 0
        # The oldest sender's value moved into the buffer, and it was woken.
        stats(send, current_buffer_used=2, tasks_waiting_send=1)
        assert await receive.receive() == 1
        assert [receive.receive_nowait() for _ in range(2)] == [2, 3]
    assert log == [(None, "sent", 2), (None, "sent", 3)]


# ----------------------------------------------------------------------
# fairness


async def test_blocked_senders_are_served_first_come_first_served():
    send, receive = open_memory_channel(0)
    clone = send.clone()
    log = []
    async with nursery.open_nursery() as n:
        # Senders on two clones: the order is one queue across clones.
        args = [(send if i % 2 else clone, i, log, f"s{i}") for i in range(6)]
        await _start_one_by_one(n, _send_logged, *args)
        received = [await receive.receive() for _ in range(6)]
    assert received == list(range(6))
    assert [name for name, *_ in log] == [f"s{i}" for i in range(6)]


async def test_blocked_receivers_are_served_first_come_first_served():
    send, receive = open_memory_channel(0)
    clone = receive.clone()
    log = []
    async with nursery.open_nursery() as n:
        args = [(receive if i % 2 else clone, log, f"r{i}") for i in range(6)]
        await _start_one_by_one(n, _receive_into, *args)
        for i in range(6):
            await send.send(i)
    assert sorted(log) == [(f"r{i}", i) for i in range(6)]


async def test_a_receiver_in_a_loop_cannot_starve_blocked_senders():
    # Two producers blocked on a full channel; a consumer receiving in a
    # loop wakes them alternately, never the same one twice in a row.
    send, receive = open_memory_channel(0)
    got = []

    async def producer(name):
        for i in range(5):
            await send.send((name, i))

    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, producer, ("a",), ("b",))
        for _ in range(10):
            got.append(await receive.receive())
    assert [name for name, _ in got] == ["a", "b"] * 5


# ----------------------------------------------------------------------
# checkpoints


async def test_every_send_and_receive_is_a_checkpoint_even_without_blocking():
    send, receive = open_memory_channel(1)
    with assert_checkpoints():
        await send.send(1)  # into the buffer
    with assert_checkpoints():
        assert await receive.receive() == 1  # from the buffer
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_receive_into, receive, log)
        await wait_all_tasks_blocked()
        with assert_checkpoints():
            await send.send(2)  # handed to the waiting receiver
        send.send_nowait(3)
        n.start_soon(_send_logged, send, 4, log)
        await wait_all_tasks_blocked()
        with assert_checkpoints():
            assert await receive.receive() == 3  # and the sender refills
        with assert_checkpoints():
            assert await receive.receive() == 4
    assert log == [(None, 2), (None, "sent", 4)]


async def test_close_clone_and_nowait_forms_are_not_checkpoints():
    send, receive = open_memory_channel(1)
    with assert_no_checkpoints():
        send.send_nowait(1)
        assert receive.receive_nowait() == 1
        send2 = send.clone()
        receive2 = receive.clone()
        send2.close()
        receive2.close()
        with send:
            pass
        receive.close()


async def test_aclose_and_async_with_are_checkpoints():
    send, receive = open_memory_channel(0)
    with assert_checkpoints():
        await send.aclose()
    with assert_checkpoints():
        async with receive:
            pass
    stats(send, open_send_channels=0, open_receive_channels=0)


@pytest.mark.parametrize("size", [0, 1])
async def test_send_in_a_cancelled_scope_sends_nothing(size):
    send, receive = open_memory_channel(size)
    log = []
    async with nursery.open_nursery() as n:
        if size == 0:
            n.start_soon(_receive_into, receive, log)
            await wait_all_tasks_blocked()
        with nursery.CancelScope() as scope:
            scope.cancel()
            await send.send("lost?")
        assert scope.cancelled_caught
        # Nothing was buffered or handed over.
        stats(send, current_buffer_used=0, tasks_waiting_receive=1 - size)
        send.send_nowait("real")
    assert receive.receive_nowait() == "real" if size else log == [(None, "real")]


async def test_receive_in_a_cancelled_scope_takes_nothing():
    send, receive = open_memory_channel(1)
    send.send_nowait("kept")
    with nursery.CancelScope() as scope:
        scope.cancel()
        await receive.receive()
    assert scope.cancelled_caught
    assert receive.receive_nowait() == "kept"


async def test_cancellation_wins_over_errors():
    send, receive = open_memory_channel(1)
    send.close()
    receive.close()
    for op in (lambda: send.send(1), receive.receive):
        with nursery.CancelScope() as scope:
            scope.cancel()
            await op()
        assert scope.cancelled_caught


# ----------------------------------------------------------------------
# closing


async def test_use_of_a_closed_clone_raises_closed_resource_error():
    send, receive = open_memory_channel(1)
    send.close()
    receive.close()
    send.close()  # twice: a no-op
    receive.close()
    cases = [
        (lambda: send.send_nowait(1), "send_nowait() on a closed MemorySendChannel"),
        (send.clone, "clone() of a closed MemorySendChannel"),
        (receive.receive_nowait, "receive_nowait() on a closed MemoryReceiveChannel"),
        (receive.clone, "clone() of a closed MemoryReceiveChannel"),
    ]
    for fn, message in cases:
        with pytest.raises(ClosedResourceError) as info:
            fn()
        assert str(info.value) == message
    with pytest.raises(ClosedResourceError) as info:
        await send.send(1)
    assert str(info.value) == SEND_CLOSED
    with pytest.raises(ClosedResourceError) as info:
        await receive.receive()
    assert str(info.value) == RECEIVE_CLOSED
    with pytest.raises(ClosedResourceError) as info:
        async for _ in receive:
            pass
    assert str(info.value) == RECEIVE_CLOSED


async def test_end_of_channel_after_every_sender_closed_and_buffer_drained():
    send, receive = open_memory_channel(5)
    clone = send.clone()
    await send.send(1)
    await clone.send(2)
    send.close()
    # One clone still open: an empty buffer is not the end.
    assert [receive.receive_nowait(), receive.receive_nowait()] == [1, 2]
    with pytest.raises(WouldBlock):
        receive.receive_nowait()
    await clone.send(3)
    await clone.aclose()
    stats(receive, open_send_channels=0, current_buffer_used=1)
    assert await receive.receive() == 3
    with pytest.raises(EndOfChannel) as info:
        await receive.receive()
    assert str(info.value) == END
    with pytest.raises(EndOfChannel) as info:
        receive.receive_nowait()
    assert str(info.value) == END


async def test_async_for_receives_until_end_of_channel():
    send, receive = open_memory_channel(0)

    async def producer(channel, values):
        async with channel:
            for value in values:
                await channel.send(value)

    got = []
    async with nursery.open_nursery() as n:
        n.start_soon(producer, send.clone(), range(0, 5))
        n.start_soon(producer, send, range(5, 10))
        with receive:
            async for value in receive:
                got.append(value)
    assert sorted(got) == list(range(10))
    stats(receive, open_send_channels=0, open_receive_channels=0)


async def test_closing_the_last_sender_wakes_blocked_receivers():
    send, receive = open_memory_channel(0)
    clone = receive.clone()
    log = []

    async def receiver(channel, name):
        with pytest.raises(EndOfChannel) as info:
            await channel.receive()
        log.append((name, str(info.value)))

    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, receiver, (receive, "a"), (clone, "b"))
        second = send.clone()
        send.close()
        await wait_all_tasks_blocked()
        assert log == []  # one send clone is still open
        with assert_no_checkpoints():
            second.close()
        stats(receive, tasks_waiting_receive=0)
    assert log == [("a", END_WHILE_WAITING), ("b", END_WHILE_WAITING)]


async def test_closing_every_receiver_breaks_senders_blocked_or_not():
    send, receive = open_memory_channel(1)
    clone = send.clone()
    await send.send("buffered")
    log = []

    async def sender(channel, name):
        with pytest.raises(BrokenResourceError) as info:
            await channel.send(name)
        log.append((name, str(info.value)))

    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, sender, (send, "a"), (clone, "b"))
        stats(send, tasks_waiting_send=2, current_buffer_used=1)
        receive.close()
        # Blocked senders are woken; the buffer is dropped.
        stats(send, tasks_waiting_send=0, current_buffer_used=0, open_receive_channels=0)
    assert log == [("a", BROKEN), ("b", BROKEN)]
    with pytest.raises(BrokenResourceError) as info:
        await send.send(1)
    assert str(info.value) == BROKEN
    with pytest.raises(BrokenResourceError) as info:
        send.send_nowait(1)
    assert str(info.value) == BROKEN.replace("send()", "send_nowait()")


async def test_one_receive_clone_closed_leaves_the_channel_working():
    send, receive = open_memory_channel(0)
    clone = receive.clone()
    receive.close()
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_receive_into, clone, log)
        await wait_all_tasks_blocked()
        await send.send(1)
    assert log == [(None, 1)]


async def test_closing_a_clone_wakes_only_the_tasks_blocked_in_that_clone():
    send, receive = open_memory_channel(0)
    other_receive = receive.clone()
    log = []
    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, _receive_into, (receive, log, "mine"), (other_receive, log, "other"))
        with assert_no_checkpoints():
            receive.close()
        await wait_all_tasks_blocked()
        assert log == [("mine", "ClosedResourceError", RECEIVE_CLOSED_WHILE_WAITING)]
        stats(send, tasks_waiting_receive=1, open_receive_channels=1)
        send.send_nowait("for other")
    assert log[1:] == [("other", "for other")]


async def test_closing_a_send_clone_wakes_only_its_blocked_senders():
    send, receive = open_memory_channel(0)
    other_send = send.clone()
    log = []
    async with nursery.open_nursery() as n:
        await _start_one_by_one(n, _send_logged, (send, 1, log, "mine"), (other_send, 2, log, "other"))
        send.close()
        await wait_all_tasks_blocked()
        assert log == [("mine", "ClosedResourceError", SEND_CLOSED_WHILE_WAITING)]
        stats(send, tasks_waiting_send=1, open_send_channels=1)
        assert receive.receive_nowait() == 2
    assert log[1:] == [("other", "sent", 2)]
    other_send.close()
    with pytest.raises(EndOfChannel):
        receive.receive_nowait()


async def test_context_managers_close():
    send, receive = open_memory_channel(0)
    with send as s:
        assert s is send
    async with receive as r:
        assert r is receive
    stats(send, open_send_channels=0, open_receive_channels=0)
    with pytest.raises(ClosedResourceError):
        send.send_nowait(1)


# ----------------------------------------------------------------------
# cancellation safety


async def test_cancelled_blocked_send_delivers_nothing_and_leaves_no_waiter():
    send, receive = open_memory_channel(0)
    async with nursery.open_nursery() as n:
        n.start_soon(_send_logged, send, "lost", log := [])
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert log == [(None, "Cancelled", "Cancelled")]
    stats(send, tasks_waiting_send=0)
    with pytest.raises(WouldBlock):
        receive.receive_nowait()


async def test_cancelled_blocked_receive_takes_nothing_and_leaves_no_waiter():
    send, receive = open_memory_channel(0)
    log = []
    async with nursery.open_nursery() as n:
        n.start_soon(_receive_into, receive, log)
        await wait_all_tasks_blocked()
        n.cancel_scope.cancel()
    assert log == [(None, "Cancelled", "Cancelled")]
    stats(send, tasks_waiting_receive=0)
    # No ghost receiver to hand a value to.
    with pytest.raises(WouldBlock):
        send.send_nowait(1)


async def test_a_receiver_handed_a_value_keeps_it_if_cancelled_before_running():
    send, receive = open_memory_channel(0)
    log = []

    async def receiver(scope_box):
        with nursery.CancelScope() as scope:
            scope_box.append(scope)
            log.append(await receive.receive())
            await nursery.sleep(0)  # cancelled here, not before
            log.append("not reached")

    boxes = []
    async with nursery.open_nursery() as n:
        n.start_soon(receiver, boxes)
        await wait_all_tasks_blocked()
        send.send_nowait("kept")
        boxes[0].cancel()  # the receiver has not run since the hand-off
    assert log == ["kept"]


async def test_a_sender_whose_value_was_taken_returns_if_cancelled_before_running():
    send, receive = open_memory_channel(0)
    log = []

    async def sender(scope_box):
        with nursery.CancelScope() as scope:
            scope_box.append(scope)
            await send.send("taken")
            log.append("send returned")
            await nursery.sleep(0)
            log.append("not reached")

    boxes = []
    async with nursery.open_nursery() as n:
        n.start_soon(sender, boxes)
        await wait_all_tasks_blocked()
        assert receive.receive_nowait() == "taken"
        boxes[0].cancel()
    assert log == ["send returned"]


@pytest.mark.parametrize("size", [0, 1, 3, math.inf])
@pytest.mark.parametrize("seed", range(6))
async def test_stress_every_item_exactly_once_under_random_cancellation(size, seed, autojump_clock):
    """Several producers and consumers; every send and receive may be
    cancelled by a random deadline or by a chaos task cancelling scopes at
    random moments. A send that returned delivered its item, one that raised
    Cancelled did not; a receive that raised took nothing. So what was
    received is exactly what was sent, each item once."""
    rng = random.Random(seed)
    send, receive = open_memory_channel(size)
    sent: list[tuple[int, int]] = []
    received: list[tuple[int, int]] = []
    live_scopes: list[nursery.CancelScope] = []
    cancelled_ops = Counter()
    producers_left = 4

    def deadline():
        return rng.choice([0, 0.001, 0.01, 0.05, 1, math.inf])

    async def producer(p, channel):
        nonlocal producers_left
        with channel:
            for i in range(60):
                item = (p, i)
                with nursery.move_on_after(deadline()) as scope:
                    live_scopes.append(scope)
                    await channel.send(item)
                    sent.append(item)
                live_scopes.remove(scope)
                if scope.cancelled_caught:
                    cancelled_ops["send"] += 1
                    assert item not in sent
                if rng.random() < 0.3:
                    await nursery.sleep(rng.choice([0, 0.001, 0.02]))
        producers_left -= 1

    async def consumer(channel):
        with channel:
            while True:
                with nursery.move_on_after(deadline()) as scope:
                    live_scopes.append(scope)
                    try:
                        item = await channel.receive()
                    except EndOfChannel:
                        live_scopes.remove(scope)
                        return
                    received.append(item)
                live_scopes.remove(scope)
                if scope.cancelled_caught:
                    cancelled_ops["receive"] += 1
                if rng.random() < 0.3:
                    await nursery.sleep(rng.choice([0, 0.001, 0.02]))

    async def chaos():
        while producers_left:
            await nursery.sleep(rng.choice([0, 0, 0.001, 0.005]))
            if live_scopes and rng.random() < 0.5:
                rng.choice(live_scopes).cancel()

    async with nursery.open_nursery() as n:
        n.start_soon(chaos)
        for p in range(4):
            n.start_soon(producer, p, send.clone())
        for _ in range(3):
            n.start_soon(consumer, receive.clone())
        send.close()
        receive.close()

    assert len(received) == len(set(received))
    assert Counter(received) == Counter(sent)
    # Every producer's items arrive in the order it sent them.
    for p in range(4):
        mine = [i for q, i in received if q == p]
        assert mine == sorted(mine)
    # The test exercised what it claims to.
    assert cancelled_ops["send"] > 0 and cancelled_ops["receive"] > 0
    assert len(sent) > 0
    assert send.statistics() == MemoryChannelStatistics(
        current_buffer_used=0,
        max_buffer_size=size,
        open_send_channels=0,
        open_receive_channels=0,
        tasks_waiting_send=0,
        tasks_waiting_receive=0,
    )

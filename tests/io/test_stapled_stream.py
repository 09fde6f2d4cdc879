"""StapledStream (two one-way streams as one two-way stream), and the
AsyncResource helpers: aclose_forcefully and ``async with``."""

from __future__ import annotations

import pytest

import nursery
from nursery import (
    AsyncResource,
    BusyResourceError,
    ClosedResourceError,
    HalfCloseableStream,
    ReceiveStream,
    SendStream,
    StapledStream,
    aclose_forcefully,
)
from nursery.lowlevel import checkpoint
from nursery.testing import (
    MemoryReceiveStream,
    MemorySendStream,
    assert_checkpoints,
    lockstep_stream_pair,
    memory_stream_one_way_pair,
    memory_stream_pair,
    wait_all_tasks_blocked,
)


class RecordingSend(SendStream):
    def __init__(self, log, *, fail_close=False):
        self.log = log
        self.fail_close = fail_close

    async def send_all(self, data):
        self.log.append(("send_all", bytes(data)))

    async def wait_send_all_might_not_block(self):
        self.log.append("wait_send_all_might_not_block")

    async def aclose(self):
        self.log.append("send aclose")
        if self.fail_close:
            raise OSError("the send stream failed to close")


class RecordingHalfCloseableSend(RecordingSend, HalfCloseableStream):
    async def send_eof(self):
        self.log.append("send_eof")

    async def receive_some(self, max_bytes=None):  # pragma: no cover - not used as a receiver
        raise AssertionError("not used")


class RecordingReceive(ReceiveStream):
    def __init__(self, log):
        self.log = log

    async def receive_some(self, max_bytes=None):
        self.log.append(("receive_some", max_bytes))
        return b"data"

    async def aclose(self):
        self.log.append("receive aclose")


async def test_stapled_stream_forwards_each_call_to_the_right_half():
    log = []
    stream = StapledStream(RecordingSend(log), RecordingReceive(log))
    assert isinstance(stream, HalfCloseableStream)
    await stream.send_all(b"out")
    await stream.wait_send_all_might_not_block()
    assert await stream.receive_some(5) == b"data"
    assert await stream.receive_some() == b"data"
    assert log == [
        ("send_all", b"out"),
        "wait_send_all_might_not_block",
        ("receive_some", 5),
        ("receive_some", None),
    ]


async def test_send_eof_uses_the_send_streams_own_send_eof_when_it_has_one():
    log = []
    stream = StapledStream(RecordingHalfCloseableSend(log), RecordingReceive(log))
    await stream.send_eof()
    assert log == ["send_eof"]


async def test_send_eof_closes_a_send_stream_without_send_eof():
    s, r = memory_stream_one_way_pair()
    stream = StapledStream(s, MemoryReceiveStream())
    await stream.send_all(b"last words")
    with assert_checkpoints():
        await stream.send_eof()
    await stream.send_eof()  # again: a no-op
    assert await r.receive_some() == b"last words"
    assert await r.receive_some() == b""
    with pytest.raises(ClosedResourceError):
        await stream.send_all(b"more")


async def test_send_eof_after_aclose_is_an_error():
    a, _ = memory_stream_pair()
    await a.aclose()
    with pytest.raises(ClosedResourceError, match=r"^send_eof\(\) on a StapledStream that was closed$"):
        await a.send_eof()


async def test_send_eof_during_a_send_is_busy():
    a, b = lockstep_stream_pair()  # no buffering: send_all blocks until b reads
    async with nursery.open_nursery() as n:
        n.start_soon(a.send_all, b"x")
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError, match="^another task is already sending on this StapledStream$"):
            await a.send_eof()
        with pytest.raises(BusyResourceError, match="^another task is already sending on this StapledStream$"):
            await a.wait_send_all_might_not_block()
        assert await b.receive_some() == b"x"
    # Not busy any more: send_eof goes through.
    await a.send_eof()
    assert await b.receive_some() == b""


async def test_aclose_closes_both_halves():
    log = []
    stream = StapledStream(RecordingSend(log), RecordingReceive(log))
    await stream.aclose()
    assert log == ["send aclose", "receive aclose"]


async def test_aclose_closes_the_receive_half_even_if_the_send_half_fails():
    log = []
    stream = StapledStream(RecordingSend(log, fail_close=True), RecordingReceive(log))
    with pytest.raises(OSError, match="^the send stream failed to close$"):
        await stream.aclose()
    assert log == ["send aclose", "receive aclose"]


async def test_stapled_stream_over_memory_streams_both_ways():
    a, b = memory_stream_pair()
    async with a, b:
        await a.send_all(b"to b")
        await b.send_all(b"to a")
        assert await b.receive_some() == b"to b"
        assert await a.receive_some() == b"to a"
    # ``async with`` closed both: their halves are closed.
    with pytest.raises(ClosedResourceError):
        await a.send_all(b"x")
    with pytest.raises(ClosedResourceError):
        await b.receive_some()


async def test_stapled_stream_repr_names_both_halves():
    s, r = MemorySendStream(), MemoryReceiveStream()
    stream = StapledStream(s, r)
    assert repr(stream) == f"<StapledStream send={s!r} receive={r!r}>"
    assert stream.send_stream is s and stream.receive_stream is r


# ---------------------------------------------------------------------------
# aclose_forcefully and ``async with``


class GracefulResource(AsyncResource):
    """Closes at once, then does a graceful step that can be interrupted
    (like a TLS close_notify over a slow peer)."""

    def __init__(self):
        self.log = []

    async def aclose(self):
        self.log.append("closed")
        await checkpoint()
        self.log.append("graceful goodbye")


async def test_aclose_forcefully_skips_the_graceful_part_but_closes():
    resource = GracefulResource()
    with assert_checkpoints():
        await aclose_forcefully(resource)
    assert resource.log == ["closed"]


async def test_plain_aclose_runs_the_graceful_part():
    resource = GracefulResource()
    await resource.aclose()
    assert resource.log == ["closed", "graceful goodbye"]


async def test_aclose_forcefully_does_not_swallow_real_errors():
    class Fails(AsyncResource):
        async def aclose(self):
            raise OSError("close failed")

    with pytest.raises(OSError, match="^close failed$"):
        await aclose_forcefully(Fails())


async def test_aclose_forcefully_in_a_cancelled_scope_still_closes():
    resource = GracefulResource()
    with nursery.CancelScope() as outer:
        outer.cancel()
        await aclose_forcefully(resource)
        # The outer cancellation is still pending: the next checkpoint raises.
        await checkpoint()
    assert outer.cancelled_caught
    assert resource.log == ["closed"]


async def test_aclose_forcefully_on_memory_streams():
    s, r = memory_stream_one_way_pair()
    await s.send_all(b"sent before")
    await aclose_forcefully(s)
    assert await r.receive_some() == b"sent before"
    assert await r.receive_some() == b""
    await aclose_forcefully(r)
    with pytest.raises(ClosedResourceError):
        await r.receive_some()


async def test_async_with_closes_the_resource_also_on_error():
    resource = GracefulResource()
    with pytest.raises(KeyError):
        async with resource as entered:
            assert entered is resource
            raise KeyError("boom")
    assert resource.log == ["closed", "graceful goodbye"]

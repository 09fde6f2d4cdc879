"""compat's StreamReader (and the reader side of StreamReaderProtocol)
against stock asyncio's, without a network: data is fed by hand, as a
protocol would.

The core is a differential fuzz: a seeded random script of reads
(read/readline/readexactly/readuntil/async iteration, some cancelled, some
concurrent), fed in random chunks with EOF or an error at a random point,
is run with stock asyncio's StreamReader and with compat's; every result,
exception (type, message, partial/expected/consumed), the unread buffer,
at_eof() and each pause/resume of the transport must be the same. Then a
few explicit cases pin the values themselves.
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import sys
from typing import Any

import pytest

import nursery
from nursery import compat
from test_compat_streams_support import IMPLS, PY313, describe

LIMIT_DEFAULT = 2**16


class FakeTransport:
    """Records the reader's flow control calls."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def pause_reading(self) -> None:
        self.log.append("pause")

    def resume_reading(self) -> None:
        self.log.append("resume")

    def __repr__(self) -> str:
        return "<FakeTransport>"


SEPARATORS: list[Any] = [b"\n", b"\r\n", b"ab", b"xyz"]
if PY313:
    SEPARATORS += [(b"\n", b"\r\n"), (b"ab", b"b"), (b"zz", b"z\n", b"\n"), (b"x",)]
OPS = ["read", "read_all", "readline", "readexactly", "readuntil", "anext", "at_eof", "double"]


def _address_free(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "0x?", text)


async def reader_script(aio: Any, seed: int) -> list[Any]:
    """One random session with ``aio``'s StreamReader; returns the trace."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    limit = rng.choice([1, 2, 3, 4, 7, 16, 100])
    reader = aio.StreamReader(limit=limit, loop=loop)
    tlog: list[str] = []
    if rng.random() < 0.8:
        reader.set_transport(FakeTransport(tlog))
    payload = bytes(rng.choice(b"ab\nxyz\r-") for _ in range(rng.randrange(0, 300)))
    chunks: collections.deque[bytes] = collections.deque()
    i = 0
    while i < len(payload):
        size = rng.randrange(1, 40)
        chunks.append(payload[i : i + size])
        i += size
    fail_at = rng.randrange(0, len(chunks) + 1) if rng.random() < 0.2 else None
    fed = 0
    ended = False
    trace: list[Any] = [("limit", limit)]

    def feed_one() -> bool:
        nonlocal fed, ended
        if ended:
            return False
        if fail_at is not None and fed == fail_at:
            reader.set_exception(ConnectionResetError("peer went away"))
            ended = True
        elif chunks:
            reader.feed_data(chunks.popleft())
            fed += 1
        else:
            reader.feed_eof()
            ended = True
        return True

    async def op_coro(op: str) -> Any:
        if op == "read":
            return await reader.read(rng.choice([1, 2, 5, 50, 1000]))
        if op == "read_all":
            return await reader.read()
        if op == "readline":
            return await reader.readline()
        if op == "readexactly":
            return await reader.readexactly(rng.choice([0, 1, 3, 10, 120]))
        if op == "readuntil":
            return await reader.readuntil(rng.choice(SEPARATORS))
        if op == "anext":
            lines = []
            async for line in reader:
                lines.append(line)
                if len(lines) == 3:
                    break
            return lines
        raise AssertionError(op)

    for _ in range(rng.randrange(3, 30)):
        op = rng.choice(OPS)
        if op == "at_eof":
            trace.append(("at_eof", reader.at_eof()))
            continue
        cancel = rng.random() < 0.15
        if op == "double":
            first = loop.create_task(op_coro("readexactly"))
            second = loop.create_task(op_coro(rng.choice(["read", "readline", "readuntil"])))
            tasks = [first, second]
        else:
            tasks = [loop.create_task(op_coro(op))]
        await asyncio.sleep(0)
        fed_during = 0
        while not all(t.done() for t in tasks):
            if cancel and fed_during == 1:
                for t in tasks:
                    t.cancel()
                await asyncio.sleep(0)
                break
            if not feed_one():
                raise AssertionError(f"a read waits after EOF: {op}")
            fed_during += 1
            await asyncio.sleep(0)
        results = []
        for t in tasks:
            if t.cancelled():
                results.append("cancelled")
            elif t.exception() is not None:
                results.append(("error", describe(t.exception())))  # type: ignore[arg-type]
            else:
                results.append(("value", t.result()))
        trace.append((op, results, bytes(reader._buffer), reader.at_eof(), list(tlog)))
        trace.append(_address_free(repr(reader)))
        tlog.clear()
    return trace


def run_script(loop_kind: str, aio: Any, seed: int) -> list[Any]:
    if loop_kind == "nursery.run":
        return nursery.run(reader_script, aio, seed)  # type: ignore[no-any-return]
    loop = asyncio.new_event_loop() if loop_kind == "stock-loop" else compat.new_event_loop()
    try:
        return loop.run_until_complete(reader_script(aio, seed))
    finally:
        loop.close()


@pytest.mark.parametrize("loop_kind", ["stock-loop", "compat-loop", "nursery.run"])
def test_reader_fuzz_matches_stock_asyncio(loop_kind: str) -> None:
    # 300 random sessions, each compared step by step with stock asyncio's
    # reader on stock asyncio's loop (the reference).
    for seed in range(300):
        expected = run_script("stock-loop", asyncio, seed)
        got = run_script(loop_kind, compat, seed)
        assert got == expected, f"seed {seed}"


def test_fuzz_exercises_every_outcome() -> None:
    # The fuzz is only as good as what it reaches: every error kind, a
    # pause and a resume, a cancelled read and a concurrent-read error.
    seen: set[str] = set()
    for seed in range(300):
        for entry in run_script("stock-loop", compat, seed):
            text = repr(entry)
            for marker in (
                "IncompleteReadError",
                "LimitOverrunError",
                "ValueError",
                "ConnectionResetError",
                "RuntimeError",
                "'pause'",
                "'resume'",
                "'cancelled'",
                "paused",
            ):
                if marker in text:
                    seen.add(marker)
    assert seen == {
        "IncompleteReadError",
        "LimitOverrunError",
        "ValueError",
        "ConnectionResetError",
        "RuntimeError",
        "'pause'",
        "'resume'",
        "'cancelled'",
        "paused",
    }


# ----------------------------------------------------------------------
# explicit values (the same for both implementations)


def run_with(aio: Any, scenario: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(scenario(aio, loop))
    finally:
        loop.close()


@pytest.fixture(params=["asyncio", "compat"])
def aio(request: pytest.FixtureRequest) -> Any:
    return IMPLS[request.param]


def test_limit_overrun_separator_not_found(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(limit=5, loop=loop)
        reader.feed_data(b"abcdefgh")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"XY")
        return info.value, bytes(reader._buffer)

    exc, left = run_with(aio, scenario)
    assert str(exc) == "Separator is not found, and chunk exceed the limit"
    assert exc.consumed == 7  # len(buffer) + 1 - len(separator)
    assert left == b"abcdefgh"  # nothing consumed


def test_limit_overrun_separator_found(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(limit=3, loop=loop)
        reader.feed_data(b"abcd!rest")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"!")
        return info.value, bytes(reader._buffer)

    exc, left = run_with(aio, scenario)
    assert str(exc) == "Separator is found, but chunk is longer than limit"
    assert exc.consumed == 4
    assert left == b"abcd!rest"


def test_readline_over_limit_drops_the_line(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(limit=3, loop=loop)
        reader.feed_data(b"toolong\nok\n")
        with pytest.raises(ValueError) as info:
            await reader.readline()
        assert isinstance(info.value.__context__, asyncio.LimitOverrunError)
        return str(info.value), await reader.readline()

    assert run_with(aio, scenario) == ("Separator is found, but chunk is longer than limit", b"ok\n")


def test_readline_over_limit_without_newline_clears_the_buffer(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(limit=3, loop=loop)
        reader.feed_data(b"abcdefg")
        with pytest.raises(ValueError) as info:
            await reader.readline()
        return str(info.value), bytes(reader._buffer)

    assert run_with(aio, scenario) == ("Separator is not found, and chunk exceed the limit", b"")


def test_incomplete_read_errors(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reader.feed_data(b"abc")
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as exactly:
            await reader.readexactly(5)
        reader2 = aio.StreamReader(loop=loop)
        reader2.feed_data(b"ab\r")
        reader2.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as until:
            await reader2.readuntil(b"\r\n")
        return exactly.value, until.value, reader.at_eof(), reader2.at_eof()

    exactly, until, eof1, eof2 = run_with(aio, scenario)
    assert (exactly.partial, exactly.expected, str(exactly)) == (
        b"abc",
        5,
        "3 bytes read on a total of 5 expected bytes",
    )
    assert (until.partial, until.expected, str(until)) == (b"ab\r", None, "3 bytes read on a total of undefined expected bytes")
    assert eof1 and eof2


def test_argument_errors(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        errors = []
        for call in (
            lambda: reader.readexactly(-1),
            lambda: reader.readuntil(b""),
        ):
            try:
                await call()
            except ValueError as exc:
                errors.append(str(exc))
        try:
            aio.StreamReader(limit=0, loop=loop)
        except ValueError as exc:
            errors.append(str(exc))
        return errors

    assert run_with(aio, scenario) == [
        "readexactly size can not be less than zero",
        "Separator should be at least one-byte string",
        "Limit cannot be <= 0",
    ]


def test_two_readers_waiting(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        first = loop.create_task(reader.read(10))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError) as info:
            await reader.readline()
        reader.feed_data(b"data\n")
        return str(info.value), await first

    assert run_with(aio, scenario) == (
        "readuntil() called while another coroutine is already waiting for incoming data",
        b"data\n",
    )


def test_exception_wins_over_buffered_data(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reader.feed_data(b"buffered\n")
        error = ConnectionResetError("reset")
        reader.set_exception(error)
        results = []
        for call in (reader.read, reader.readline, lambda: reader.readexactly(1), reader.readuntil):
            try:
                await call()
            except ConnectionResetError as exc:
                results.append(exc is error)
        return results, reader.exception() is error, bytes(reader._buffer)

    assert run_with(aio, scenario) == ([True] * 4, True, b"buffered\n")


def test_cancelled_read_keeps_the_data(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        task = loop.create_task(reader.readexactly(6))
        await asyncio.sleep(0)
        reader.feed_data(b"abc")
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # Data that arrives after the cancellation is not lost either; nor
        # is data that arrived while the cancelled read was being woken.
        reader.feed_data(b"def")
        task2 = loop.create_task(reader.read(100))
        reader.feed_data(b"ghi")
        task2.cancel()
        await asyncio.gather(task2, return_exceptions=True)
        return task.cancelled(), task2.cancelled(), await reader.readexactly(9)

    assert run_with(aio, scenario) == (True, True, b"abcdefghi")


def test_flow_control(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        log: list[str] = []
        reader = aio.StreamReader(limit=4, loop=loop)
        reader.set_transport(FakeTransport(log))
        reader.feed_data(b"12345678")  # 8 = 2 * limit: not yet
        log.append("fed 8")
        reader.feed_data(b"9")  # over 2 * limit: pause
        log.append(repr(reader))
        log.append(await reader.read(4))  # 5 left > limit: still paused
        log.append(await reader.read(1))  # 4 left: resume
        return log

    assert run_with(aio, scenario) == [
        "fed 8",
        "pause",
        "<StreamReader 9 bytes limit=4 transport=<FakeTransport> paused>",
        b"1234",
        "resume",
        b"5",
    ]


def test_reader_waiting_while_paused_resumes(aio: Any) -> None:
    # readexactly(n) with n > 2 * limit would wait forever with the
    # transport paused; waiting resumes it.
    async def scenario(aio: Any, loop: Any) -> Any:
        log: list[str] = []
        reader = aio.StreamReader(limit=2, loop=loop)
        reader.set_transport(FakeTransport(log))
        task = loop.create_task(reader.readexactly(10))
        reader.feed_data(b"12345")
        await asyncio.sleep(0)
        reader.feed_data(b"67890")
        return await task, log

    assert run_with(aio, scenario) == (b"1234567890", ["pause", "resume", "pause", "resume"])


def test_transport_that_cannot_pause(aio: Any) -> None:
    class NoPause:
        def pause_reading(self) -> None:
            raise NotImplementedError

    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(limit=1, loop=loop)
        reader.set_transport(NoPause())
        reader.feed_data(b"abc")
        reader.feed_eof()
        return reader._transport, reader._paused, await reader.read()

    assert run_with(aio, scenario) == (None, False, b"abc")


def test_repr(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reprs = [repr(reader)]
        reader.feed_data(b"xy")
        reader.feed_eof()
        reprs.append(repr(reader))
        reader.set_exception(ValueError("boom"))
        reprs.append(repr(reader))
        return reprs

    assert run_with(aio, scenario) == [
        "<StreamReader>",
        "<StreamReader 2 bytes eof>",
        "<StreamReader 2 bytes eof exception=ValueError('boom')>",
    ]


def test_async_iteration(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reader.feed_data(b"one\ntwo\nthree")
        reader.feed_eof()
        return [line async for line in reader]

    assert run_with(aio, scenario) == [b"one\n", b"two\n", b"three"]


def test_read_zero_and_at_eof(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        out = [await reader.read(0), await reader.readexactly(0), reader.at_eof()]
        reader.feed_eof()
        out += [reader.at_eof(), await reader.read(), await reader.read(5), await reader.readline()]
        return out

    assert run_with(aio, scenario) == [b"", b"", False, True, b"", b"", b""]


@pytest.mark.skipif(not PY313, reason="a tuple of separators is 3.13+")
def test_readuntil_tuple_shortest_match_wins(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reader.feed_data(b"a\r\nb\nc!!d")
        out = [await reader.readuntil((b"\n", b"\r\n")), await reader.readuntil((b"!!", b"\n"))]
        out.append(await reader.readuntil((b"!", b"!!")))
        try:
            await reader.readuntil(())
        except ValueError as exc:
            out.append(str(exc))
        return out

    assert run_with(aio, scenario) == [b"a\r\n", b"b\n", b"c!", "Separator should contain at least one element"]


@pytest.mark.skipif(PY313, reason="before 3.13 a tuple is not a separator")
def test_readuntil_tuple_before_313_is_a_type_error(aio: Any) -> None:
    async def scenario(aio: Any, loop: Any) -> Any:
        reader = aio.StreamReader(loop=loop)
        reader.feed_data(b"a\nb")
        try:
            await reader.readuntil((b"\n", b"b"))
        except TypeError as exc:
            return str(exc)

    assert run_with(aio, scenario) == run_with(asyncio, scenario)
    assert "tuple" in run_with(aio, scenario)


def test_big_payloads_are_not_quadratic() -> None:
    # 4 MiB fed in 1 KiB chunks and read back by readexactly in 1 KiB
    # pieces, by line and in one read(): a quadratic copy would take minutes.
    async def scenario() -> Any:
        loop = asyncio.get_running_loop()
        chunk = b"x" * 1023 + b"\n"
        reader = compat.StreamReader(limit=2**23, loop=loop)
        for _ in range(4096):
            reader.feed_data(chunk)
        lines = [await reader.readline() for _ in range(2048)]
        pieces = [await reader.readexactly(1024) for _ in range(1024)]
        reader.feed_eof()
        rest = await reader.read()
        return len(lines), len(pieces), len(rest), all(p == chunk for p in lines + pieces)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(asyncio.wait_for(scenario(), 10)) == (2048, 1024, 1024 * 1024, True)
    finally:
        loop.close()


def test_reader_without_loop_uses_the_running_one() -> None:
    async def scenario() -> Any:
        return compat.StreamReader()._loop is asyncio.get_running_loop()

    assert compat.run(scenario()) is True


def test_classes_are_compat_own() -> None:
    # Natively written, not stock's classes re-exported.
    for name in ("StreamReader", "StreamWriter", "StreamReaderProtocol"):
        ours = getattr(compat, name)
        assert ours is not getattr(asyncio, name)
        assert ours.__module__ == "nursery.compat"
    assert issubclass(compat.StreamReaderProtocol, asyncio.Protocol)
    for name in ("open_connection", "start_server", "open_unix_connection", "start_unix_server"):
        assert getattr(compat, name) is not getattr(asyncio, name)
        assert name in compat.__all__
    assert "StreamReader" in compat.__all__ and "StreamWriter" in compat.__all__


def test_stream_names_are_stock_asyncios() -> None:
    # Every stream name stock asyncio exports, compat exports too.
    import asyncio.streams

    missing = [name for name in asyncio.streams.__all__ if not hasattr(compat, name)]
    assert missing == []
    assert sys.platform == "win32" or {"open_unix_connection", "start_unix_server"} <= set(compat.__all__)
    assert LIMIT_DEFAULT == asyncio.streams._DEFAULT_LIMIT


class ClosableTransport:
    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return "<ClosableTransport>"


@pytest.mark.parametrize("loop_closed", [False, True])
def test_dropped_writer_finaliser(aio: Any, loop_closed: bool) -> None:
    # A writer collected while its transport is open: closes it with
    # "unclosed <StreamWriter ...>", or says "loop is closed" when it cannot
    # (where the running version's stock writer has the finaliser).
    import gc
    import warnings

    def scenario(aio: Any) -> Any:
        loop = asyncio.new_event_loop()
        transport = ClosableTransport()
        writer = aio.StreamWriter(transport, None, None, loop)
        if loop_closed:
            loop.close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            del writer
            gc.collect()
        loop.close()
        return [(w.category.__name__, str(w.message)) for w in caught], transport.closed

    expected = scenario(asyncio)
    assert scenario(aio) == expected
    if hasattr(asyncio.StreamWriter, "__del__"):
        if loop_closed:
            assert expected == ([("ResourceWarning", "loop is closed")], False)
        else:
            assert expected == ([("ResourceWarning", "unclosed <StreamWriter transport=<ClosableTransport>>")], True)


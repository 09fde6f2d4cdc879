"""The stream conformance checks: one set of behaviours that every stream in
the library (sockets, TLS, pipes, the memory streams) is held to, and that
your own stream classes can be held to as well.

Each check runs a series of *properties*, each on a fresh pair of streams
from the maker, so that a failure in one does not spill into the next. A
failed property raises :exc:`AssertionError` with a message of the form
``"check_one_way_stream: <property>: <what was wrong>"``; an unexpected
exception from the stream propagates unchanged, with a note saying which
property was being checked. A property that hangs (a receive that never sees
its data or its end of stream, say) fails after *timeout* seconds of the
run's clock, saying what it was waiting for.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, NoReturn

from .._abc import HalfCloseableStream, ReceiveStream, SendStream, Stream, aclose_forcefully
from .._core import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    CancelScope,
    ClosedResourceError,
    check_time,
    checkpoint,
    open_nursery,
    wait_all_tasks_blocked,
)
from .._timeouts import move_on_after
from ._checkpoints import assert_checkpoints

__all__ = ["check_one_way_stream", "check_two_way_stream", "check_half_closeable_stream"]

StreamMaker = Callable[[], Awaitable[Any]]

DEFAULT_TIMEOUT = 30.0

# How much data the transfer properties move. Big enough to fill the kernel
# buffers of a socket pair several times (so that sending really blocks and
# resumes), small enough for pure-Python streams to stay quick.
_ONE_WAY_BYTES = 2**18
_DUPLEX_BYTES = 2**20
_MAX_CHUNK = 2**14

# A receiver that is closed must make the sender fail "eventually": after at
# most this much data. (Loopback TCP notices within two sends; an in-process
# stream at once.)
_BROKEN_AFTER_BYTES = 2**22


def _random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def _random_size(rng: random.Random, limit: int = _MAX_CHUNK) -> int:
    # Log-uniform, so that tiny chunks (1, 2, 3 bytes) are as common as big
    # ones: off-by-one bugs live at the small end, buffer handling at the
    # large end.
    return min(limit, max(1, int(2 ** rng.uniform(0, limit.bit_length() - 1))))


def _describe_difference(got: bytes | bytearray, expected: bytes | bytearray) -> str:
    """Say where *got* first departs from *expected*."""
    n = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    return (
        f"received {len(got)} bytes, expected {len(expected)}; they differ from byte {n} on: "
        f"got {bytes(got[n : n + 12])!r}, expected {bytes(expected[n : n + 12])!r}"
        + (" (data was lost or reordered)" if len(got) <= len(expected) else " (data was duplicated or invented)")
    )


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


class _Checker:
    """Runs the properties of one check and words their failures."""

    def __init__(self, check: str, timeout: float) -> None:
        self.check = check
        self.timeout = timeout
        self.prop = ""
        # What the property is doing right now: named in the message when
        # the property hangs or the stream raises something unexpected.
        self.step = ""

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{self.check}: {self.prop}: {message}")

    async def run(
        self,
        prop: str,
        maker: StreamMaker,
        body: Callable[[Any, Any], Awaitable[None]],
        types: tuple[type, type],
    ) -> None:
        """Run *body* on a fresh pair from *maker*, within the timeout,
        closing both streams afterwards."""
        self.prop = prop
        self.step = "calling the stream maker"
        failed_while: str | None = None
        with move_on_after(self.timeout) as scope:
            try:
                a, b = await self._make(maker, types)
                try:
                    await body(a, b)
                except BaseException:
                    failed_while = self.step
                    raise
                finally:
                    self.step = "closing both streams with aclose_forcefully() after the property"
                    await self._close_both(a, b, failed=failed_while is not None)
            except BaseException as exc:
                failed_while = failed_while or self.step
                if scope.cancel_called:
                    raise AssertionError(
                        f"{self.check}: {prop}: did not finish within {self.timeout:g} seconds; "
                        f"it hung while {failed_while}"
                    ) from exc
                # A failure in a child task arrives in an ExceptionGroup;
                # report the assertion itself.
                leaves = [leaf for leaf in _leaves(exc) if not isinstance(leaf, Cancelled)]
                for leaf in leaves:
                    if isinstance(leaf, AssertionError) and str(leaf).startswith(f"{self.check}:"):
                        raise leaf from None
                # Anything else the stream raised fails the property too
                # (the original is the cause, with its traceback). Not
                # KeyboardInterrupt and friends: those are not the stream's.
                errors = [leaf for leaf in leaves if isinstance(leaf, Exception)]
                if errors and len(errors) == len(leaves):
                    raised = ", ".join(f"{type(leaf).__name__}({leaf})" for leaf in errors)
                    raise AssertionError(
                        f"{self.check}: {prop}: unexpected {raised}, raised while {failed_while}"
                    ) from exc
                raise
        if scope.cancelled_caught:  # pragma: no cover - the except clause sees it first
            self.fail(f"did not finish within {self.timeout:g} seconds; it hung while {self.step}")

    async def _close_both(self, a: Any, b: Any, *, failed: bool) -> None:
        # Both are closed whatever happens. If the property itself failed,
        # its error is the one to report; otherwise a failing close is.
        problems: list[str] = []
        for which, stream in (("first", a), ("second", b)):
            try:
                await aclose_forcefully(stream)
            except Cancelled:
                raise
            except Exception as exc:
                problems.append(f"aclose_forcefully() of the {which} stream raised {type(exc).__name__}({exc})")
        if problems and not failed:
            self.fail(
                "after the property, "
                + "; ".join(problems)
                + " (closing must always work, also on a stream that is closed or broken already)"
            )

    async def _make(self, maker: StreamMaker, types: tuple[type, type]) -> tuple[Any, Any]:
        made = await maker()
        try:
            a, b = made
        except (TypeError, ValueError):
            self.fail(f"the stream maker must return a pair of streams, got {made!r}")
        for stream, wanted, which in ((a, types[0], "first"), (b, types[1], "second")):
            if not isinstance(stream, wanted):
                self.fail(f"the {which} stream from the maker must be a {wanted.__name__}, got {stream!r}")
        if a is b:
            self.fail(f"the stream maker returned the same object twice: {a!r}")
        return a, b

    # -- helpers -------------------------------------------------------------

    @contextmanager
    def expect(self, exc_type: type[BaseException], what: str) -> Iterator[None]:
        """The block must raise *exc_type*."""
        try:
            yield
        except exc_type:
            return
        except Cancelled:
            raise  # the timeout, or a test's own scope: not ours to judge
        except BaseException as exc:
            self.fail(f"{what} raised {type(exc).__name__}({exc}); expected {exc_type.__name__}")
        self.fail(f"{what} did not raise; expected {exc_type.__name__}")

    async def checkpointed(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await fn(*args)``, failing if it returns without a checkpoint."""
        try:
            with assert_checkpoints():
                return await fn(*args)
        except AssertionError as exc:
            if str(exc).startswith("assert_checkpoints:"):
                self.fail(
                    f"{what} returned without executing a checkpoint (every async stream method must let "
                    "other tasks run and be cancellable, even when it has nothing to wait for)"
                )
            raise

    async def send(self, s: SendStream, data: Any, what: str | None = None) -> None:
        what = what or f"send_all({_short(data)})"
        result = await self.checkpointed(what, s.send_all, data)
        if result is not None:
            self.fail(f"{what} returned {result!r}; send_all() returns None")

    async def receive(
        self,
        r: ReceiveStream,
        max_bytes: int | None = None,
        *,
        pass_max_bytes: bool = True,
        waiting_for: str = "",
    ) -> bytes:
        what = f"receive_some({max_bytes!r})" if pass_max_bytes else "receive_some()"
        self.step = f"waiting in {what}" + (f" for {waiting_for}" if waiting_for else "")
        if pass_max_bytes:
            data = await self.checkpointed(what, r.receive_some, max_bytes)
        else:
            data = await self.checkpointed(what, r.receive_some)
        if not isinstance(data, (bytes, bytearray)):
            self.fail(f"{what} returned {data!r}; it must return bytes or a bytearray")
        if max_bytes is not None and len(data) > max_bytes:
            self.fail(f"{what} returned {len(data)} bytes, more than max_bytes={max_bytes}")
        return data

    async def receive_exactly(self, r: ReceiveStream, count: int, *, max_bytes: int | None = None) -> bytes:
        """Receive until *count* bytes came; fail at an early end of stream."""
        got = bytearray()
        while len(got) < count:
            chunk = await self.receive(r, max_bytes)
            if not chunk:
                self.fail(f"receive_some() returned b'' (end of stream) after {len(got)} of the {count} bytes sent")
            got += chunk
        return bytes(got)

    async def receive_to_eof(
        self, r: ReceiveStream, *, rng: random.Random | None = None, allow_broken: bool = False
    ) -> bytes:
        got = bytearray()
        while True:
            max_bytes = None if rng is None or rng.random() < 0.1 else _random_size(rng)
            try:
                chunk = await self.receive(r, max_bytes)
            except BrokenResourceError:
                if allow_broken:
                    return bytes(got)
                raise
            if not chunk:
                return bytes(got)
            got += chunk

    async def exchange(self, s: SendStream, r: ReceiveStream, payload: Any, expected: bytes) -> None:
        """Send *payload* in a task while receiving it here; the receiver
        must get *expected*."""
        async with open_nursery() as n:
            n.start_soon(self.send, s, payload)
            got = await self.receive_exactly(r, len(expected))
        if got != expected:
            self.fail(f"sent {_short(payload)}: {_describe_difference(got, expected)}")

    async def expect_busy(
        self, what: str, first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]]
    ) -> None:
        """While *first* is blocked in one task, *second* (and a third try)
        must raise BusyResourceError; *first* is then cancelled."""
        outcomes: list[str] = []

        async def run(fn: Callable[[], Awaitable[Any]], label: str) -> None:
            try:
                await fn()
            except BusyResourceError:
                outcomes.append(f"{label}: busy")
            except Cancelled:
                outcomes.append(f"{label}: cancelled")
                raise
            except BaseException as exc:
                outcomes.append(f"{label}: {type(exc).__name__}({exc})")
            else:
                outcomes.append(f"{label}: returned")

        self.step = f"setting up {what}"
        async with open_nursery() as n:
            n.start_soon(run, first, "first")
            await wait_all_tasks_blocked()
            if outcomes:
                self.fail(f"{what}: the first call was expected to block, but it ended: {outcomes}")
            for label in ("second", "third"):
                n.start_soon(run, second, label)
                await wait_all_tasks_blocked()
                if f"{label}: busy" not in outcomes:
                    done = outcomes or "it is still running"
                    released = "; the refused second call seems to have released the first one's claim"
                    self.fail(
                        f"{what}: a {label} call while the first was still running did not raise "
                        f"BusyResourceError ({done})" + (released if label == "third" else "")
                    )
            if outcomes[:1] != ["second: busy"]:
                self.fail(f"{what}: the first call ended when the second was refused: {outcomes}")
            n.cancel_scope.cancel()


def _short(data: Any) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size <= 8:
            return repr(bytes(data)) if not isinstance(data, bytearray) else repr(data)
        return f"<{type(data).__name__} of {size} bytes>"
    return repr(data)


# ---------------------------------------------------------------------------
# one-way properties: (s, r) is a (SendStream, ReceiveStream) pair


async def _small_transfer(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async with open_nursery() as n:
        n.start_soon(c.send, s, b"x")
        got = await c.receive(r, 1)
    if got != b"x":
        c.fail(f"sent b'x', receive_some(1) returned {got!r}")


async def _empty_send(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async def sender() -> None:
        await c.send(s, b"")
        await c.send(s, b"y")

    async with open_nursery() as n:
        n.start_soon(sender)
        got = await c.receive(r, 1)
    if got != b"y":
        c.fail(
            f"sent b'' then b'y'; receive_some(1) returned {got!r} "
            "(send_all(b'') must send nothing, and is not an end of stream)"
        )


async def _payload_types(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    # Each payload must arrive as the bytes it holds, whatever its type.
    big = bytearray(b"0123456789")
    reused = bytearray(b"original")
    two_byte_items = memoryview(bytearray(b"ABCDEF")).cast("H")  # 3 items, 6 bytes
    cases: list[tuple[str, Any, bytes]] = [
        ("a bytearray", bytearray(b"ba"), b"ba"),
        ("a memoryview", memoryview(b"mv"), b"mv"),
        ("a memoryview slice", memoryview(big)[3:7], b"3456"),
        (
            "a memoryview with 2-byte items (len() counts items, nbytes counts bytes)",
            two_byte_items,
            b"ABCDEF",
        ),
        ("a bytearray that the sender overwrites after send_all() returns", reused, b"original"),
    ]
    marker = b"<end of payload>"
    for label, payload, expected in cases:
        # Each payload is followed by a marker, and the receiver reads up to
        # the marker: a stream that sends too few bytes fails here instead
        # of hanging.
        async def sender() -> None:
            await c.send(s, payload, f"send_all({label})")
            if payload is reused:
                reused[:] = b"XXXXXXXX"
            await c.send(s, marker, "send_all(<marker>)")

        got = bytearray()
        async with open_nursery() as n:
            n.start_soon(sender)
            c.step = f"receiving {label}"
            while not got.endswith(marker):
                chunk = await c.receive(r)
                if not chunk:
                    c.fail(f"end of stream while receiving {label}")
                got += chunk
        if got[: -len(marker)] != expected:
            c.fail(f"sent {label} holding {expected!r}; the receiver got {bytes(got[: -len(marker)])!r}")


async def _bad_payloads(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    for bad in ("text", 5, None, [1, 2]):
        what = f"send_all({bad!r})"
        c.step = f"calling {what}"
        try:
            await s.send_all(bad)  # type: ignore[arg-type]
        except TypeError as exc:
            if not str(exc):
                c.fail(f"{what} raised TypeError with an empty message; say what was expected and what was given")
        except Cancelled:
            raise
        except BaseException as exc:
            c.fail(f"{what} raised {type(exc).__name__}({exc}); expected TypeError")
        else:
            c.fail(f"{what} did not raise; expected TypeError (bytes(5) is five zero bytes: never convert blindly)")
    # A refused payload sends nothing and leaves the stream usable.
    await c.exchange(s, r, b"ok", b"ok")


async def _max_bytes_arguments(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async with open_nursery() as n:
        # Data is on its way while the bad calls are made, so that a stream
        # that does not check its argument returns instead of hanging.
        n.start_soon(c.send, s, b"a")
        await wait_all_tasks_blocked()
        for bad, exc_type in ((0, ValueError), (-1, ValueError), (1.5, TypeError), ("1", TypeError)):
            c.step = f"calling receive_some({bad!r})"
            try:
                got = await r.receive_some(bad)  # type: ignore[arg-type]
            except exc_type:
                continue
            except Cancelled:
                raise
            except BaseException as exc:
                c.fail(f"receive_some({bad!r}) raised {type(exc).__name__}({exc}); expected {exc_type.__name__}")
            c.fail(f"receive_some({bad!r}) returned {got!r}; expected it to raise {exc_type.__name__}")
        # The refusals took nothing; omitted or None means any amount.
        got = await c.receive(r, pass_max_bytes=False)
    if got != b"a":
        c.fail(f"sent b'a' while receive_some() refused bad arguments; then receive_some() returned {got!r}")
    async with open_nursery() as n:
        n.start_soon(c.send, s, b"bc")
        got = await c.receive(r, None)
        got += await c.receive_exactly(r, 2 - len(got))
    if got != b"bc":
        c.fail(f"sent b'bc', receive_some(None) returned {got!r}")


async def _max_bytes_honoured(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    data = bytes(range(100))
    async with open_nursery() as n:
        n.start_soon(c.send, s, data)
        got = await c.receive_exactly(r, len(data), max_bytes=7)
    if got != data:
        c.fail(f"sent 100 bytes in one send_all(), received with receive_some(7): {_describe_difference(got, data)}")


async def _in_order_and_intact(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    rng = random.Random(1)
    data = _random_bytes(rng, _ONE_WAY_BYTES)

    async def sender() -> None:
        view = memoryview(data)
        send_rng = random.Random(2)
        while view:
            size = _random_size(send_rng)
            await c.send(s, view[:size], f"send_all(<chunk of {size} bytes>)")
            view = view[size:]
        c.step = "closing the sender after the data"
        await s.aclose()

    async with open_nursery() as n:
        n.start_soon(sender)
        got = await c.receive_to_eof(r, rng=random.Random(3))
    if got != data:
        c.fail(f"sent {len(data)} bytes in chunks of random sizes, then closed: {_describe_difference(got, data)}")


async def _eof_after_aclose(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async def sender() -> None:
        await c.send(s, b"y")
        c.step = "in the sender's aclose()"
        await c.checkpointed("aclose()", s.aclose)

    async with open_nursery() as n:
        n.start_soon(sender)
        # Let the sender get as far as it can: data sent before aclose()
        # must still arrive, even when nobody was reading at the time.
        await wait_all_tasks_blocked()
        got = await c.receive(r, 1)
        if got != b"y":
            c.fail(f"sent b'y' then closed the sender; receive_some(1) returned {got!r}")
        for attempt in range(3):
            got = await c.receive(r, 1, waiting_for="b'' (end of stream) after the sender's aclose()")
            if got != b"":
                again = "" if attempt == 0 else f" (call {attempt + 1}: it must keep returning b'')"
                c.fail(
                    f"after the sender's aclose() and all data received, receive_some(1) returned {got!r}, "
                    f"not b''{again}"
                )


async def _async_iteration(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async def sender() -> None:
        await c.send(s, b"abc")
        await c.send(s, b"def")
        c.step = "in the sender's aclose()"
        await s.aclose()

    chunks: list[bytes] = []
    async with open_nursery() as n:
        n.start_soon(sender)
        c.step = "in `async for chunk in stream`, waiting for the end of stream"
        async for chunk in r:
            if not chunk:
                c.fail("`async for` over the stream yielded b''; iteration must stop at the end of stream instead")
            chunks.append(bytes(chunk))
    if b"".join(chunks) != b"abcdef":
        c.fail(f"sent b'abc', b'def' then closed; `async for` collected {b''.join(chunks)!r}")


async def _close_three_times(c: _Checker, stream: Any, side: str) -> None:
    for call in ("first", "second", "third"):
        what = f"the {call} aclose() of the {side} stream"
        c.step = f"in {what}"
        try:
            await c.checkpointed(what, stream.aclose)
        except (AssertionError, Cancelled):
            raise
        except Exception as exc:
            c.fail(f"{what} raised {type(exc).__name__}({exc}); closing a closed stream must do nothing")


async def _closed_send_stream(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _close_three_times(c, s, "send")
    c.step = "using the closed send stream"
    with c.expect(ClosedResourceError, "send_all(b'x') on a closed send stream"):
        await s.send_all(b"x")
    with c.expect(ClosedResourceError, "send_all(b'') on a closed send stream"):
        await s.send_all(b"")
    with c.expect(ClosedResourceError, "wait_send_all_might_not_block() on a closed send stream"):
        await s.wait_send_all_might_not_block()


async def _closed_receive_stream(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _close_three_times(c, r, "receive")
    c.step = "using the closed receive stream"
    with c.expect(ClosedResourceError, "receive_some(10) on a closed receive stream"):
        await r.receive_some(10)
    with c.expect(ClosedResourceError, "receive_some() on a closed receive stream"):
        await r.receive_some()
    with c.expect(ClosedResourceError, "`async for` over a closed receive stream"):
        async for _ in r:
            pass


async def _send_until_broken(c: _Checker, s: SendStream, context: str) -> None:
    block = b"x" * 1024
    sent = 0
    c.step = f"sending after {context}, waiting for BrokenResourceError"
    try:
        while sent < _BROKEN_AFTER_BYTES:
            await s.send_all(block)
            sent += len(block)
    except BrokenResourceError:
        pass
    except Cancelled:
        raise
    except BaseException as exc:
        c.fail(f"send_all() after {context} raised {type(exc).__name__}({exc}); expected BrokenResourceError")
    else:
        c.fail(f"sent {sent} bytes after {context}, and send_all() never raised BrokenResourceError")
    # Once broken, it stays broken.
    with c.expect(BrokenResourceError, f"send_all() again, after a BrokenResourceError caused by {context}"):
        await s.send_all(block)


async def _peer_closed_first(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await c.checkpointed("aclose() of the receive stream", r.aclose)
    await _send_until_broken(c, s, "the receive stream was closed")
    with c.expect(ClosedResourceError, "receive_some(4096) on the closed receive stream"):
        await r.receive_some(4096)


async def _peer_closed_while_sending(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async with open_nursery() as n:
        n.start_soon(_send_until_broken, c, s, "the receive stream was closed while a sender was sending")
        await checkpoint()
        await r.aclose()


async def _peer_closed_forcefully(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await aclose_forcefully(r)
    await _send_until_broken(c, s, "aclose_forcefully() of the receive stream")
    with c.expect(ClosedResourceError, "receive_some(4096) after aclose_forcefully() of the receive stream"):
        await r.receive_some(4096)


async def _sender_closed_forcefully(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await aclose_forcefully(s)
    with c.expect(ClosedResourceError, "send_all(b'123') after aclose_forcefully() of the send stream"):
        await s.send_all(b"123")
    # The receiver sees a clean end of stream or BrokenResourceError; never
    # data, never a hang.
    c.step = "receiving after aclose_forcefully() of the send stream (expecting b'' or BrokenResourceError)"
    try:
        got = await r.receive_some(1)
    except BrokenResourceError:
        return
    if got != b"":
        c.fail(
            f"after aclose_forcefully() of the send stream, receive_some(1) returned {got!r}; "
            "expected b'' or BrokenResourceError"
        )


async def _cancelled_aclose_closes(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    for name, stream in (("receive", r), ("send", s)):
        c.step = f"in aclose() of the {name} stream inside a cancelled scope"
        with CancelScope() as scope:
            scope.cancel()
            await stream.aclose()
    with c.expect(ClosedResourceError, "send_all(b'123') after an aclose() that was cancelled"):
        await s.send_all(b"123")
    with c.expect(ClosedResourceError, "receive_some(4096) after an aclose() that was cancelled"):
        await r.receive_some(4096)


async def _cancelled_before_start(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    # An operation in an already-cancelled scope raises Cancelled before it
    # does anything: the data is not sent, nothing is received.
    for what, op in (
        ("send_all(b'lost')", lambda: s.send_all(b"lost")),
        ("receive_some(1)", lambda: r.receive_some(1)),
        ("wait_send_all_might_not_block()", s.wait_send_all_might_not_block),
    ):
        c.step = f"in {what} inside an already-cancelled scope"
        with CancelScope() as scope:
            scope.cancel()
            try:
                await op()
            except Cancelled:
                raise
            except BaseException as exc:
                c.fail(f"{what} in an already-cancelled scope raised {type(exc).__name__}({exc}); expected Cancelled")
            else:
                c.fail(f"{what} in an already-cancelled scope did not raise Cancelled (it must be a checkpoint)")
    try:
        await c.exchange(s, r, b"ok", b"ok")
    except BaseExceptionGroup as group:
        errors = [leaf for leaf in _leaves(group) if isinstance(leaf, (BrokenResourceError, ClosedResourceError))]
        if not errors:
            raise
        c.fail(
            "after send_all(), receive_some() and wait_send_all_might_not_block() were cancelled before they "
            f"started, the stream failed: {type(errors[0]).__name__}({errors[0]}); an operation cancelled at its "
            "first checkpoint must leave the stream as it was"
        )
    # Both sides can still be closed gracefully, at the same time.
    c.step = "closing both sides gracefully after the cancellations"
    async with open_nursery() as n:
        n.start_soon(c.checkpointed, "aclose() of the send stream", s.aclose)
        n.start_soon(c.checkpointed, "aclose() of the receive stream", r.aclose)


async def _close_wakes_receive(
    c: _Checker, s: SendStream, r: ReceiveStream, closer: Callable[[Any], Awaitable[None]], how: str
) -> None:
    outcome: list[str] = []

    async def receiver() -> None:
        try:
            got = await r.receive_some(10)
        except ClosedResourceError:
            outcome.append("closed")
        except Cancelled:
            raise
        except BaseException as exc:
            outcome.append(f"{type(exc).__name__}({exc})")
        else:
            outcome.append(f"returned {got!r}")

    async with open_nursery() as n:
        n.start_soon(receiver)
        c.step = "waiting for receive_some(10) to block"
        await wait_all_tasks_blocked()
        c.step = f"waiting for receive_some(10) to wake up after {how} of its own stream"
        await closer(r)
    if outcome != ["closed"]:
        c.fail(
            f"a receive_some(10) blocked when {how} closed its own stream ended with {outcome[0]}; "
            "expected ClosedResourceError"
        )


async def _close_wakes_receive_forcefully(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _close_wakes_receive(c, s, r, aclose_forcefully, "aclose_forcefully()")


async def _close_wakes_receive_gracefully(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _close_wakes_receive(c, s, r, lambda stream: stream.aclose(), "aclose()")


async def _cancelled_receive_loses_nothing(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    rng = random.Random(4)
    data = _random_bytes(rng, 2**16)
    got = bytearray()

    async def sender() -> None:
        view = memoryview(data)
        while view:
            size = _random_size(rng, 2**12)
            await s.send_all(view[:size])
            view = view[size:]
            for _ in range(rng.randrange(3)):
                await checkpoint()
        await s.aclose()

    async def receiver(scope: CancelScope, done: list[bool]) -> None:
        with scope:
            while True:
                chunk = await r.receive_some(_random_size(rng, 2**12))
                if not chunk:
                    done.append(True)
                    return
                got.extend(chunk)

    async with open_nursery() as n:
        n.start_soon(sender)
        done: list[bool] = []
        # Receivers cancelled at random moments: while blocked, just after
        # data arrived, at their first checkpoint.
        for round in range(60):
            c.step = f"in round {round} of cancelling receive_some() at random moments"
            scope = CancelScope()
            async with open_nursery() as inner:
                inner.start_soon(receiver, scope, done)
                for _ in range(rng.randrange(4)):
                    await checkpoint()
                scope.cancel()
            if done:
                break
        c.step = "receiving the rest, up to the end of stream, after the cancelled receives"
        if not done:
            got += await c.receive_to_eof(r)
    if got != data:
        c.fail(
            f"{_describe_difference(got, data)}, receiving with receive_some() calls that were cancelled at "
            "random moments; a cancelled receive_some() must lose nothing"
        )


async def _concurrent_receive(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await c.expect_busy(
        "two tasks in receive_some() at once",
        lambda: r.receive_some(1),
        lambda: r.receive_some(1),
    )
    # The cancelled first receive lost nothing and the stream still works.
    await c.exchange(s, r, b"ok", b"ok")


async def _wait_send_all_with_a_receiver(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    # With a receiver waiting, sending might not block, so the wait must
    # end. (A stream without buffering may wait for the receiver, hence the
    # receiver.)
    returned: list[bool] = []

    async def waiter(cancel_scope: CancelScope) -> None:
        c.step = "in wait_send_all_might_not_block() while a receiver is waiting"
        await c.checkpointed("wait_send_all_might_not_block()", s.wait_send_all_might_not_block)
        returned.append(True)
        cancel_scope.cancel()

    async with open_nursery() as n:
        n.start_soon(waiter, n.cancel_scope)
        n.start_soon(r.receive_some, 1)
    if not returned:  # pragma: no cover - the nursery only ends when it returned
        c.fail("wait_send_all_might_not_block() did not return while a receiver was waiting")


# -- properties that need a clogged stream ------------------------------------


async def _clogged_wait_send_all(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    record: list[str] = []

    async def waiter(cancel_scope: CancelScope) -> None:
        record.append("waiter sleeping")
        await c.checkpointed("wait_send_all_might_not_block()", s.wait_send_all_might_not_block)
        record.append("waiter woke up")
        cancel_scope.cancel()

    async def receiver() -> None:
        record.append("receiver starting")
        while True:
            await r.receive_some(16384)

    async with open_nursery() as n:
        n.start_soon(waiter, n.cancel_scope)
        c.step = "waiting for wait_send_all_might_not_block() to block on the clogged stream"
        await wait_all_tasks_blocked()
        if record != ["waiter sleeping"]:
            c.fail(
                "wait_send_all_might_not_block() returned although the stream was clogged and nobody was "
                "receiving (or the clogged_stream_maker's stream is not clogged)"
            )
        c.step = "waiting for wait_send_all_might_not_block() to return once a receiver reads the clogged stream"
        n.start_soon(receiver)
    if "receiver starting" not in record:
        c.fail(
            "wait_send_all_might_not_block() returned although the stream was clogged and nobody was "
            "receiving (or the clogged_stream_maker's stream is not clogged in this direction)"
        )
    if record != ["waiter sleeping", "receiver starting", "waiter woke up"]:
        c.fail(f"unexpected order of events: {record}")


async def _clogged_concurrent_waits(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await c.expect_busy(
        "two tasks in wait_send_all_might_not_block() at once",
        s.wait_send_all_might_not_block,
        s.wait_send_all_might_not_block,
    )


async def _clogged_wait_and_send(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await c.expect_busy(
        "send_all() while another task is in wait_send_all_might_not_block()",
        s.wait_send_all_might_not_block,
        lambda: s.send_all(b"123"),
    )


async def _clogged_concurrent_sends(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await c.expect_busy(
        "two tasks in send_all() at once",
        lambda: s.send_all(b"123"),
        lambda: s.send_all(b"456"),
    )


async def _clogged_receiver_closed_during_wait(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    async def sender() -> None:
        try:
            await c.checkpointed("wait_send_all_might_not_block()", s.wait_send_all_might_not_block)
        except BrokenResourceError:
            pass

    async with open_nursery() as n:
        n.start_soon(sender)
        await wait_all_tasks_blocked()
        c.step = "waiting for a blocked wait_send_all_might_not_block() to end after the receive stream was closed"
        await aclose_forcefully(r)


async def _clogged_receiver_closed_before_wait(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await aclose_forcefully(r)
    c.step = "in wait_send_all_might_not_block() after the receive stream was closed (it must not block)"
    try:
        await c.checkpointed("wait_send_all_might_not_block()", s.wait_send_all_might_not_block)
    except BrokenResourceError:
        pass


async def _clogged_close_wakes_sender(c: _Checker, s: SendStream, r: ReceiveStream, method: str) -> None:
    async def close_soon() -> None:
        await wait_all_tasks_blocked()
        c.step = f"waiting for a blocked {method} to wake up after its own stream was closed"
        await aclose_forcefully(s)

    async with open_nursery() as n:
        n.start_soon(close_soon)
        c.step = f"in {method} on the clogged stream"
        with c.expect(ClosedResourceError, f"a {method} blocked when its own stream was closed"):
            if method == "send_all()":
                await s.send_all(b"xyzzy")
            else:
                await s.wait_send_all_might_not_block()


async def _clogged_close_wakes_send_all(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _clogged_close_wakes_sender(c, s, r, "send_all()")


async def _clogged_close_wakes_wait(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    await _clogged_close_wakes_sender(c, s, r, "wait_send_all_might_not_block()")


async def _clogged_cancelled_send(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    # A send_all() cancelled part way must not let the stream go on as if
    # nothing happened: either it sent nothing (and the stream is fine), or
    # it sent everything, or later sends raise BrokenResourceError. What must
    # never happen is a truncated message followed by new data.
    rng = random.Random(5)
    message = b"<cancelled message>" + _random_bytes(rng, 2**16)
    after = b"<sent after the cancelled send_all()>"
    ended: list[str] = []

    async def cancelled_sender(scope: CancelScope) -> None:
        with scope:
            try:
                await s.send_all(message)
            except Cancelled:
                ended.append("cancelled")
                raise
            ended.append("returned")

    scope = CancelScope()
    async with open_nursery() as n:
        n.start_soon(cancelled_sender, scope)
        c.step = "waiting for send_all() to block on the clogged stream"
        await wait_all_tasks_blocked()
        scope.cancel()
    if ended != ["cancelled"]:
        c.fail(f"send_all() on the clogged stream was expected to block until cancelled, but it {ended[0]}")

    got, broken = await _send_and_find(c, s, r, after, "a cancelled send_all()")
    if broken:
        return
    before = got[: -len(after)]
    head = message[:19]
    start = before.rfind(head, max(0, len(before) - len(message)))
    if start != -1 and before[start:] == message[: len(before) - start] and len(before) - start < len(message):
        c.fail(
            f"send_all() was cancelled after sending {len(before) - start} of its {len(message)} bytes, yet the "
            "stream was not marked broken: the next send_all() succeeded, so the receiver got a truncated message "
            "followed by new data (a cancelled send_all() must send nothing, or leave the stream broken so that "
            "later sends raise BrokenResourceError)"
        )


async def _clogged_cancelled_wait(c: _Checker, s: SendStream, r: ReceiveStream) -> None:
    # Cancelling a wait changes nothing: the stream still works.
    scope = CancelScope()

    async def waiter() -> None:
        with scope:
            await s.wait_send_all_might_not_block()

    async with open_nursery() as n:
        n.start_soon(waiter)
        c.step = "waiting for wait_send_all_might_not_block() to block on the clogged stream"
        await wait_all_tasks_blocked()
        scope.cancel()
    if not scope.cancelled_caught:
        c.fail("wait_send_all_might_not_block() on the clogged stream returned instead of blocking")

    _, broken = await _send_and_find(
        c, s, r, b"<sent after the cancelled wait>", "a cancelled wait_send_all_might_not_block()"
    )
    if broken:
        c.fail(
            "send_all() raised BrokenResourceError after a cancelled wait_send_all_might_not_block(); "
            "cancelling a wait sends nothing and must leave the stream usable"
        )


async def _send_and_find(
    c: _Checker, s: SendStream, r: ReceiveStream, marker: bytes, after_what: str
) -> tuple[bytes, bool]:
    """Send *marker* on a (formerly) clogged stream while receiving until it
    arrives; return what was received and whether the send raised
    BrokenResourceError (then the receiving stops). The receiver does not
    wait for the end of stream: closing a socket with unread data resets the
    connection, which could discard the very data looked for."""
    broken: list[bool] = []
    got = bytearray()
    async with open_nursery() as n:

        async def sender() -> None:
            try:
                await s.send_all(marker)
            except BrokenResourceError:
                broken.append(True)
                n.cancel_scope.cancel()

        n.start_soon(sender)
        c.step = f"receiving the data sent after {after_what}"
        while not got.endswith(marker):
            chunk = await c.receive(r, None)
            if not chunk:
                c.fail(f"end of stream before the data sent after {after_what} arrived")
            got += chunk
    return bytes(got), bool(broken)


_ONE_WAY_PROPERTIES: list[tuple[str, Callable[..., Awaitable[None]]]] = [
    ("a small transfer", _small_transfer),
    ("send_all(b'') sends nothing", _empty_send),
    ("bytearray and memoryview payloads", _payload_types),
    ("non-bytes payloads raise TypeError", _bad_payloads),
    ("receive_some() argument checks", _max_bytes_arguments),
    ("receive_some(max_bytes) returns at most max_bytes", _max_bytes_honoured),
    ("data arrives in order and intact", _in_order_and_intact),
    ("end of stream after the sender's aclose()", _eof_after_aclose),
    ("async iteration", _async_iteration),
    ("a closed send stream", _closed_send_stream),
    ("a closed receive stream", _closed_receive_stream),
    ("sending after the receive stream was closed", _peer_closed_first),
    ("sending while the receive stream is closed", _peer_closed_while_sending),
    ("sending after aclose_forcefully() of the receive stream", _peer_closed_forcefully),
    ("aclose_forcefully() of the send stream", _sender_closed_forcefully),
    ("a cancelled aclose() still closes", _cancelled_aclose_closes),
    ("operations in a cancelled scope", _cancelled_before_start),
    ("aclose_forcefully() wakes a blocked receive_some()", _close_wakes_receive_forcefully),
    ("aclose() wakes a blocked receive_some()", _close_wakes_receive_gracefully),
    ("a cancelled receive_some() loses no data", _cancelled_receive_loses_nothing),
    ("concurrent receive_some() calls", _concurrent_receive),
    ("wait_send_all_might_not_block() with a receiver waiting", _wait_send_all_with_a_receiver),
]

_CLOGGED_PROPERTIES: list[tuple[str, Callable[..., Awaitable[None]]]] = [
    ("wait_send_all_might_not_block() on a clogged stream", _clogged_wait_send_all),
    ("concurrent wait_send_all_might_not_block() calls", _clogged_concurrent_waits),
    ("send_all() during wait_send_all_might_not_block()", _clogged_wait_and_send),
    ("concurrent send_all() calls", _clogged_concurrent_sends),
    ("closing the receiver ends a blocked wait_send_all_might_not_block()", _clogged_receiver_closed_during_wait),
    ("wait_send_all_might_not_block() after the receiver was closed", _clogged_receiver_closed_before_wait),
    ("closing a stream wakes its blocked send_all()", _clogged_close_wakes_send_all),
    ("closing a stream wakes its blocked wait_send_all_might_not_block()", _clogged_close_wakes_wait),
    ("a send_all() cancelled part way", _clogged_cancelled_send),
    ("a cancelled wait_send_all_might_not_block()", _clogged_cancelled_wait),
]


async def _run_one_way(
    check: str,
    stream_maker: StreamMaker,
    clogged_stream_maker: StreamMaker | None,
    types: tuple[type, type],
    timeout: float,
    direction: str = "",
) -> None:
    checker = _Checker(check, timeout)
    for prop, body in _ONE_WAY_PROPERTIES:
        await checker.run(prop + direction, stream_maker, lambda a, b, body=body: body(checker, a, b), types)
    if clogged_stream_maker is not None:
        for prop, body in _CLOGGED_PROPERTIES:
            await checker.run(
                prop + direction, clogged_stream_maker, lambda a, b, body=body: body(checker, a, b), types
            )


def _check_arguments(check: str, stream_maker: Any, clogged_stream_maker: Any, timeout: Any) -> float:
    """Check what the user passed; return the timeout as a float."""
    if not callable(stream_maker):
        raise TypeError(
            f"{check}() needs an async function returning a pair of streams as stream_maker, got {stream_maker!r}"
        )
    if clogged_stream_maker is not None and not callable(clogged_stream_maker):
        raise TypeError(
            f"{check}() needs an async function or None as clogged_stream_maker, got {clogged_stream_maker!r}"
        )
    timeout = check_time(
        timeout,
        f"{check}() timeout must be a number of seconds, got {{value!r}}",
        f"{check}() timeout must be a number of seconds, got NaN",
    )
    if not timeout > 0:
        raise ValueError(f"{check}() timeout must be more than 0 seconds, got {timeout!r}")
    return timeout


async def check_one_way_stream(
    stream_maker: StreamMaker,
    clogged_stream_maker: StreamMaker | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Check that a one-way stream behaves as every nursery stream must.

    *stream_maker* is an async function with no arguments returning a
    connected ``(send_stream, receive_stream)`` pair (a
    :class:`~nursery.SendStream` and a :class:`~nursery.ReceiveStream`); it is
    called once per property checked, and the check closes both streams
    after each. *clogged_stream_maker* is like it, but returns a pair whose
    ``send_all()`` and ``wait_send_all_might_not_block()`` block until the
    receiver reads (buffers full, or no buffering at all); with ``None`` the
    properties that need one are skipped.

    Checked: data arrives in order and intact, in chunks of random sizes;
    ``receive_some(max_bytes)`` returns between 1 and *max_bytes* bytes and
    rejects bad arguments (:exc:`ValueError`, :exc:`TypeError`); bytes,
    bytearray and memoryview payloads (also memoryviews of multi-byte items,
    and buffers reused after ``send_all()`` returns) and :exc:`TypeError` for
    others; ``send_all(b"")`` sends nothing; every method is a checkpoint; end
    of stream after the sender's ``aclose()`` (``b""``, repeatedly, and the end
    of ``async for``); :exc:`~nursery.ClosedResourceError` when using a closed
    stream, and when a blocked call's own stream is closed; closing is
    idempotent, and a cancelled ``aclose()`` or :func:`~nursery.aclose_forcefully`
    still closes; :exc:`~nursery.BrokenResourceError` when sending to a
    closed receiver (eventually) and from then on; operations in a cancelled
    scope raise ``Cancelled`` without sending or receiving anything; a
    cancelled ``receive_some()`` loses nothing; concurrent calls raise
    :exc:`~nursery.BusyResourceError`; ``wait_send_all_might_not_block()``
    waits on a clogged stream until the receiver reads; and a ``send_all()``
    cancelled part way either sent nothing or leaves the stream broken.

    Raises :exc:`AssertionError` naming the property that failed. A property
    that does not finish within *timeout* seconds of the run's clock fails
    as hung. (Under a :class:`~nursery.testing.MockClock` with ``autojump_threshold=0`` a
    hang in an in-memory stream is reported at once; streams that wait for
    real I/O want the default clock, or a threshold above their slowest
    wait.)
    """
    timeout = _check_arguments("check_one_way_stream", stream_maker, clogged_stream_maker, timeout)
    await _run_one_way(
        "check_one_way_stream", stream_maker, clogged_stream_maker, (SendStream, ReceiveStream), timeout
    )


def _flipped(maker: StreamMaker) -> StreamMaker:
    async def flipped() -> Any:
        made = await maker()
        try:
            a, b = made
        except (TypeError, ValueError):
            return made  # let the checker report the bad shape
        return b, a

    return flipped


async def _duplex(c: _Checker, s1: Stream, s2: Stream) -> None:
    # Both directions at full speed at once: a stream whose send and
    # receive sides share state (a lock, a buffer, the TLS engine) deadlocks
    # or corrupts here.
    forward = _random_bytes(random.Random(6), _DUPLEX_BYTES)
    backward = forward[::-1]

    async def sender(s: Stream, data: bytes, seed: int) -> None:
        rng = random.Random(seed)
        view = memoryview(data)
        while view:
            size = _random_size(rng)
            await s.send_all(view[:size])
            view = view[size:]

    async def receiver(r: Stream, data: bytes, seed: int, direction: str) -> None:
        rng = random.Random(seed)
        got = bytearray()
        while len(got) < len(data):
            max_bytes = _random_size(rng)
            chunk = await r.receive_some(max_bytes)
            if not chunk:
                c.fail(f"{direction}: end of stream after {len(got)} of {len(data)} bytes")
            if len(chunk) > max_bytes:
                c.fail(f"{direction}: receive_some({max_bytes}) returned {len(chunk)} bytes")
            got += chunk
        if got != data:
            c.fail(f"{direction}: {_describe_difference(got, data)}")

    c.step = f"sending {_DUPLEX_BYTES} bytes each way at once (a hang here is a deadlock between the directions)"
    async with open_nursery() as n:
        n.start_soon(sender, s1, forward, 7)
        n.start_soon(sender, s2, backward, 8)
        n.start_soon(receiver, s1, backward, 9, "second stream to first")
        n.start_soon(receiver, s2, forward, 10, "first stream to second")

    async def expect_eof() -> None:
        c.step = "waiting for b'' on one stream after the other's aclose()"
        got = await s2.receive_some(10)
        if got != b"":
            c.fail(f"after the first stream's aclose(), receive_some(10) on the second returned {got!r}, not b''")
        await s2.aclose()

    async with open_nursery() as n:
        n.start_soon(expect_eof)
        n.start_soon(s1.aclose)


async def check_two_way_stream(
    stream_maker: StreamMaker,
    clogged_stream_maker: StreamMaker | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Check that a two-way stream behaves as every nursery
    :class:`~nursery.Stream` must.

    The makers return a connected pair of :class:`~nursery.Stream` objects.
    Runs every property of :func:`check_one_way_stream` in both directions,
    then sends a megabyte each way at the same time, in random chunks (which
    flushes out deadlocks between the directions), and checks that closing
    one stream gives the other the end of stream.
    """
    check = "check_two_way_stream"
    timeout = _check_arguments(check, stream_maker, clogged_stream_maker, timeout)
    await _run_two_way(check, stream_maker, clogged_stream_maker, (Stream, Stream), timeout)


async def _run_two_way(
    check: str,
    stream_maker: StreamMaker,
    clogged_stream_maker: StreamMaker | None,
    types: tuple[type, type],
    timeout: float,
) -> None:
    await _run_one_way(check, stream_maker, clogged_stream_maker, types, timeout, " (first stream to second)")
    await _run_one_way(
        check,
        _flipped(stream_maker),
        None if clogged_stream_maker is None else _flipped(clogged_stream_maker),
        types,
        timeout,
        " (second stream to first)",
    )
    checker = _Checker(check, timeout)
    await checker.run(
        "both directions at once", stream_maker, lambda a, b: _duplex(checker, a, b), types
    )


async def _send_eof(c: _Checker, s1: HalfCloseableStream, s2: HalfCloseableStream) -> None:
    async def send_then_eof(s: HalfCloseableStream, data: bytes) -> None:
        await c.send(s, data)
        c.step = "in send_eof()"
        await c.checkpointed("send_eof()", s.send_eof)

    async def expect_then_eof(r: HalfCloseableStream, data: bytes, direction: str) -> None:
        await wait_all_tasks_blocked()
        got = await c.receive_exactly(r, len(data), max_bytes=10)
        if got != data:
            c.fail(f"{direction}: sent {data!r} then send_eof(); received {got!r}")
        for attempt in range(2):
            got = await c.receive(r, 10, waiting_for=f"b'' after send_eof() ({direction})")
            if got != b"":
                c.fail(f"{direction}: after the peer's send_eof(), receive_some(10) returned {got!r}, not b''")

    async with open_nursery() as n:
        n.start_soon(send_then_eof, s1, b"x")
        n.start_soon(expect_then_eof, s2, b"x", "first stream to second")

    with c.expect(ClosedResourceError, "send_all(b'y') after send_eof()"):
        await s1.send_all(b"y")
    c.step = "in a second send_eof()"
    await c.checkpointed("a second send_eof() (it must be a no-op)", s1.send_eof)

    # The other direction still works, with plenty of data.
    data = _random_bytes(random.Random(11), 2**16)
    async with open_nursery() as n:
        n.start_soon(send_then_eof, s2, data)
        n.start_soon(expect_then_eof, s1, data, "second stream to first, after the first's send_eof()")


async def _send_eof_after_close(c: _Checker, s1: HalfCloseableStream, s2: HalfCloseableStream) -> None:
    await s1.aclose()
    with c.expect(ClosedResourceError, "send_eof() on a closed stream"):
        await s1.send_eof()


async def _clogged_send_eof_during_send(c: _Checker, s1: HalfCloseableStream, s2: HalfCloseableStream) -> None:
    await c.expect_busy("send_eof() while another task is in send_all()", lambda: s1.send_all(b"x"), s1.send_eof)


async def _clogged_send_eof_during_wait(c: _Checker, s1: HalfCloseableStream, s2: HalfCloseableStream) -> None:
    await c.expect_busy(
        "send_eof() while another task is in wait_send_all_might_not_block()",
        s1.wait_send_all_might_not_block,
        s1.send_eof,
    )


async def check_half_closeable_stream(
    stream_maker: StreamMaker,
    clogged_stream_maker: StreamMaker | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Check that a half-closeable stream behaves as every nursery
    :class:`~nursery.HalfCloseableStream` must.

    Everything :func:`check_two_way_stream` checks, and: after ``send_eof()``
    (a checkpoint) the peer receives the data sent before it and then
    ``b""``, sending raises :exc:`~nursery.ClosedResourceError`, ``send_eof()``
    again is a no-op, and the other direction keeps working; ``send_eof()``
    on a closed stream raises :exc:`~nursery.ClosedResourceError`; and (with a
    clogged stream) ``send_eof()`` while a ``send_all()`` or
    ``wait_send_all_might_not_block()`` is running raises
    :exc:`~nursery.BusyResourceError`.
    """
    check = "check_half_closeable_stream"
    timeout = _check_arguments(check, stream_maker, clogged_stream_maker, timeout)
    types = (HalfCloseableStream, HalfCloseableStream)
    await _run_two_way(check, stream_maker, clogged_stream_maker, types, timeout)
    checker = _Checker(check, timeout)
    props: list[tuple[str, StreamMaker, Callable[..., Awaitable[None]]]] = [
        ("send_eof()", stream_maker, _send_eof),
        ("send_eof() on a closed stream", stream_maker, _send_eof_after_close),
    ]
    if clogged_stream_maker is not None:
        props += [
            ("send_eof() during send_all()", clogged_stream_maker, _clogged_send_eof_during_send),
            ("send_eof() during wait_send_all_might_not_block()", clogged_stream_maker, _clogged_send_eof_during_wait),
        ]
    for prop, maker, body in props:
        await checker.run(prop, maker, lambda a, b, body=body: body(checker, a, b), types)

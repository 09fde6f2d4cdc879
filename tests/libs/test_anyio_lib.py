"""anyio's asyncio backend (what httpx runs on), unmodified, on stock asyncio
and compat's loop.

anyio implements cancel scopes on top of asyncio's Task: it cancels tasks with
``Task.cancel()``, tells its own cancellations from foreign ones with
``cancelling()``, and takes its own back with ``uncancel()``. These tests
check the results a program sees: task groups, nested and shielded scopes,
timeouts inside and around asyncio's, worker threads, and TCP streams.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from libs_harness import require

anyio = require("anyio")

pytestmark = [pytest.mark.libs, pytest.mark.timeout(60)]


def test_task_groups_and_scopes(run_mixed: Any) -> None:

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        log: list[str] = []

        async def worker(name: str, delay: float) -> None:
            await anyio.sleep(delay)
            log.append(name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, "b", 0.02)
            tg.start_soon(worker, "a", 0.01)
        out["order"] = list(log)

        # An error in a child cancels the siblings and comes out grouped.
        cancelled: list[str] = []

        async def sibling() -> None:
            try:
                await anyio.sleep(2)
            except anyio.get_cancelled_exc_class():
                cancelled.append("sibling")
                raise

        async def failing() -> None:
            await anyio.sleep(0.01)
            raise ValueError("boom")

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sibling)
                tg.start_soon(failing)
        except ExceptionGroup as eg:
            out["group"] = [(type(e).__name__, str(e)) for e in eg.exceptions]
        out["cancelled"] = cancelled

        # move_on_after / fail_after, nested, with a shielded cleanup.
        with anyio.move_on_after(0.05) as outer:
            with anyio.move_on_after(10) as inner:
                try:
                    await anyio.sleep(10)
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(0.01)
                        out["shielded_ran"] = True
        out["scopes"] = (outer.cancelled_caught, inner.cancelled_caught)
        try:
            with anyio.fail_after(0.02):
                await anyio.sleep(10)
        except TimeoutError:
            out["fail_after"] = "TimeoutError"

        # anyio scopes inside an asyncio.timeout: the inner anyio deadline
        # fires first and is absorbed; then the outer asyncio one fires and
        # anyio lets it through.
        try:
            async with asyncio.timeout(0.1):
                with anyio.move_on_after(0.02) as scope:
                    await anyio.sleep(10)
                out["inner_first"] = scope.cancelled_caught
                with anyio.move_on_after(10) as scope2:
                    await anyio.sleep(10)
        except TimeoutError:
            out["outer_through"] = not scope2.cancelled_caught
        task = asyncio.current_task()
        out["cancelling"] = task.cancelling() if task is not None else None

        # Cancelling a task group's scope from outside with a message-less
        # cancel, and an asyncio task cancelled while inside a task group.
        async def inside_group() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 10)
                await anyio.sleep(10)

        t = asyncio.ensure_future(inside_group())
        await asyncio.sleep(0.01)
        t.cancel("from outside")
        try:
            await t
        except asyncio.CancelledError as exc:
            out["outside_cancel"] = exc.args
        return out

    out = run_mixed(main)
    assert out["order"] == ["a", "b"]
    assert out["group"] == [("ValueError", "boom")]
    assert out["cancelled"] == ["sibling"]
    assert out["shielded_ran"] is True
    assert out["scopes"] == (True, False)
    assert out["fail_after"] == "TimeoutError"
    assert out["inner_first"] is True
    assert out["outer_through"] is True
    assert out["cancelling"] == 0
    assert out["outside_cancel"] == ("from outside",)


def test_threads_and_streams(run: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        main_thread = threading.get_ident()

        async def loop_thread() -> int:
            await anyio.sleep(0)
            return threading.get_ident()

        def in_thread(x: int) -> tuple[int, bool]:
            # In a worker thread, and back into the loop from it.
            back = anyio.from_thread.run(loop_thread)
            return x * 2, threading.get_ident() != main_thread and back == main_thread

        out["threads"] = [await anyio.to_thread.run_sync(in_thread, i) for i in range(3)]

        # anyio's TCP listener and stream, and a memory object stream.
        send, receive = anyio.create_memory_object_stream[bytes](10)
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def handle(stream: Any) -> None:
            async with stream:
                data = b""
                while not data.endswith(b"."):
                    data += await stream.receive()
                await stream.send(data.upper())
                await send.send(data)

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            replies = []
            for word in (b"one.", b"two.", b"x" * 200_000 + b"."):
                async with await anyio.connect_tcp("127.0.0.1", port) as client:
                    await client.send(word)
                    reply = b""
                    while True:
                        try:
                            reply += await client.receive()
                        except anyio.EndOfStream:
                            break
                    replies.append(reply)
            out["seen"] = [await receive.receive() for _ in range(3)]
            tg.cancel_scope.cancel()
        out["replies"] = replies
        send.close()
        receive.close()
        return out

    out = run(main)
    assert out["threads"] == [(0, True), (2, True), (4, True)]
    assert out["replies"] == [b"ONE.", b"TWO.", b"X" * 200_000 + b"."]
    assert out["seen"] == [b"one.", b"two.", b"x" * 200_000 + b"."]


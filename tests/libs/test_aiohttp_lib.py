"""aiohttp's client and server, unmodified, on stock asyncio and compat's loop.

Both ends run in the loop under test, over loopback: concurrent requests
through a connection-limited session, request and response bodies streamed in
chunks (with a hash over every byte), websockets both ways, and a client
timeout and cancellation that leave the session usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from typing import Any, AsyncIterator

import pytest

import nursery

from libs_harness import gather_all, require

aiohttp = require("aiohttp")
from aiohttp import web  # noqa: E402

pytestmark = [pytest.mark.libs, pytest.mark.timeout(60)]

CHUNK = 64 * 1024


def pattern(i: int, size: int) -> bytes:
    """Chunk *i* of a stream: distinct per chunk, so a reordered or dropped
    chunk changes the hash."""
    return bytes([(i * 7 + 1) % 256]) * size


class State:
    """What the server's handlers observed."""

    def __init__(self) -> None:
        self.peers: set[Any] = set()
        self.release = asyncio.Event()
        self.slow_cancelled = 0


STATE = web.AppKey("state", State)


def make_app() -> web.Application:
    app = web.Application()
    app[STATE] = State()

    async def echo(request: web.Request) -> web.Response:
        request.app[STATE].peers.add(request.transport.get_extra_info("peername"))
        await asyncio.sleep(0.001)
        return web.json_response({"i": int(request.query["i"]), "method": request.method})

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        chunks = 0
        async for chunk in request.content.iter_chunked(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
        return web.json_response({"sha256": digest.hexdigest(), "size": size, "chunked": request.headers.get("Transfer-Encoding")})

    async def download(request: web.Request) -> web.StreamResponse:
        n, size = int(request.query["n"]), int(request.query["size"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(n):
            await response.write(pattern(i, size))
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        try:
            await request.app[STATE].release.wait()
        except asyncio.CancelledError:
            request.app[STATE].slow_cancelled += 1
            raise
        return web.Response(text="late")

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data.startswith("close "):
                    _, code, reason = msg.data.split(" ", 2)
                    await ws.close(code=int(code), message=reason.encode())
                    break
                await ws.send_str(msg.data.upper())
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app.router.add_get("/echo", echo)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", ws_echo)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve *app* on a free loopback port; yield its base URL."""
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"{'https' if ssl_context else 'http'}://{host}:{port}"
    finally:
        app[STATE].release.set()
        await runner.cleanup()


def test_concurrent_requests(run_mixed: Any) -> None:
    async def main() -> tuple[list[Any], int]:
        app = make_app()
        async with serving(app) as url:
            connector = aiohttp.TCPConnector(limit=8)
            async with aiohttp.ClientSession(url, connector=connector) as session:

                async def get(i: int) -> Any:
                    async with session.get("/echo", params={"i": str(i)}) as response:
                        assert response.status == 200
                        return await response.json()

                results = await gather_all(run_mixed, *(get(i) for i in range(60)))
            return results, len(app[STATE].peers)

    results, peers = run_mixed(main)
    assert results == [{"i": i, "method": "GET"} for i in range(60)]
    # Connections were reused, and several were open at once.
    assert 1 < peers <= 8


def test_streaming_bodies(run: Any) -> None:
    upload_chunks = 64  # 4 MiB
    down_n, down_size = 300, 10_000

    async def main() -> tuple[Any, str, int, list[int]]:
        async with serving(make_app()) as url, aiohttp.ClientSession(url) as session:

            async def body() -> AsyncIterator[bytes]:
                for i in range(upload_chunks):
                    yield pattern(i, CHUNK)
                    if i % 16 == 0:
                        await asyncio.sleep(0)

            async with session.post("/upload", data=body()) as response:
                uploaded = await response.json()

            digest = hashlib.sha256()
            size = 0
            async with session.get("/download", params={"n": str(down_n), "size": str(down_size)}) as response:
                assert response.headers["Transfer-Encoding"] == "chunked"
                async for chunk in response.content.iter_chunked(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            # A second session-level read of a big body in one piece.
            async with session.get("/download", params={"n": "8", "size": str(CHUNK)}) as response:
                whole = await response.read()
            return uploaded, digest.hexdigest(), size, [whole[i * CHUNK] for i in range(8)]

    uploaded, down_hash, down_total, firsts = run(main)
    expected_up = hashlib.sha256(b"".join(pattern(i, CHUNK) for i in range(upload_chunks))).hexdigest()
    assert uploaded == {"sha256": expected_up, "size": upload_chunks * CHUNK, "chunked": "chunked"}
    expected_down = hashlib.sha256(b"".join(pattern(i, down_size) for i in range(down_n))).hexdigest()
    assert (down_hash, down_total) == (expected_down, down_n * down_size)
    assert firsts == [pattern(i, 1)[0] for i in range(8)]


def test_websockets(run_mixed: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with serving(make_app()) as url, aiohttp.ClientSession(url) as session:
            async with session.ws_connect("/ws") as ws:
                replies = []
                for i in range(50):
                    await ws.send_str(f"msg {i}")
                    replies.append(await ws.receive_str())
                big = bytes(range(256)) * 4096  # 1 MiB
                await ws.send_bytes(big)
                out["big_ok"] = (await ws.receive_bytes()) == big[::-1]
                out["replies"] = replies
                await ws.send_str("close 4001 going away")
                msg = await ws.receive()
                out["close"] = (msg.type, msg.data, msg.extra)
                out["close_code"] = ws.close_code
            # Client-initiated close, concurrently on several connections.

            async def client(i: int) -> str:
                async with session.ws_connect("/ws") as ws:
                    await ws.send_str(f"c{i}")
                    reply = await ws.receive_str()
                    await ws.close()
                    return reply

            out["many"] = await gather_all(run_mixed, *(client(i) for i in range(10)))
        return out

    out = run_mixed(main)
    assert out["replies"] == [f"MSG {i}" for i in range(50)]
    assert out["big_ok"] is True
    assert out["close"] == (aiohttp.WSMsgType.CLOSE, 4001, "going away")
    assert out["close_code"] == 4001
    assert out["many"] == [f"C{i}" for i in range(10)]


def test_timeout_and_cancellation(run_mixed: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        app = make_app()
        async with serving(app) as url, aiohttp.ClientSession(url) as session:
            start = time.monotonic()
            try:
                async with session.get("/slow", timeout=aiohttp.ClientTimeout(total=0.2)):
                    pass
            except asyncio.TimeoutError:
                out["client_timeout"] = True
            out["elapsed"] = time.monotonic() - start

            # asyncio.timeout around a request (cancellation through the
            # client's internals).
            try:
                async with asyncio.timeout(0.2):
                    await session.get("/slow")
            except TimeoutError:
                out["asyncio_timeout"] = True

            # Task.cancel() with a message.
            task = asyncio.ensure_future(session.get("/slow"))
            await asyncio.sleep(0.1)
            task.cancel("stop it")
            try:
                await task
            except asyncio.CancelledError as exc:
                out["cancel_args"] = exc.args

            if run_mixed.flavor == "nursery":
                # A nursery cancel scope around an aiohttp request.
                with nursery.move_on_after(0.2) as scope:
                    await session.get("/slow")
                out["scope_cancelled"] = scope.cancelled_caught

            # The session still works afterwards.
            async with session.get("/echo", params={"i": "7"}) as response:
                out["after"] = await response.json()
            # The server noticed each disconnect and cancelled its handler.
            for _ in range(100):
                if app[STATE].slow_cancelled >= out_expected_cancels(run_mixed):
                    break
                await asyncio.sleep(0.02)
            out["server_cancelled"] = app[STATE].slow_cancelled
        return out

    out = run_mixed(main)
    assert out["client_timeout"] is True
    assert 0.15 < out["elapsed"] < 2
    assert out["asyncio_timeout"] is True
    assert out["cancel_args"] == ("stop it",)
    assert out["after"] == {"i": 7, "method": "GET"}
    assert out["server_cancelled"] == out_expected_cancels(run_mixed)
    if run_mixed.flavor == "nursery":
        assert out["scope_cancelled"] is True


def out_expected_cancels(runner: Any) -> int:
    return 4 if runner.flavor == "nursery" else 3


def test_tls(run: Any) -> None:
    """HTTPS and wss: aiohttp over the loop's TLS transports (a trustme CA;
    the client verifies the server's certificate for 127.0.0.1)."""
    trustme = require("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with serving(make_app(), server_ctx) as url:
            async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=client_ctx)) as session:
                results = await asyncio.gather(*(session.get("/echo", params={"i": str(i)}) for i in range(10)))
                out["echo"] = [await r.json() for r in results]
                for r in results:
                    r.release()
                out["released"] = results[0].connection is None  # back in the pool
                async with session.get("/download", params={"n": "40", "size": "50000"}) as response:
                    out["download"] = len(await response.read())
                async with session.ws_connect("/ws") as ws:
                    await ws.send_str("secure")
                    out["ws"] = await ws.receive_str()
                    out["tls"] = ws.get_extra_info("ssl_object") is not None
            # A client that does not trust the CA is refused.
            async with aiohttp.ClientSession(url) as session:
                try:
                    await session.get("/echo", params={"i": "0"})
                except aiohttp.ClientConnectorCertificateError as exc:
                    out["untrusted"] = exc.certificate_error.verify_message
        return out

    out = run(main)
    assert out["echo"] == [{"i": i, "method": "GET"} for i in range(10)]
    assert out["released"] is True
    assert out["download"] == 40 * 50000
    assert out["ws"] == "SECURE"
    assert out["tls"] is True
    assert out["untrusted"] == "unable to get local issuer certificate"


@pytest.mark.parametrize("flavor", ["compat", "nursery"])
def test_nursery_code_in_handlers(flavor: str) -> None:
    # From 3.12 aiohttp makes each request's task with asyncio.Task(...,
    # eager_start=True) rather than create_task: on compat's loop that must
    # still be a kernel task, or nurseries and scopes fail in handlers.
    from libs_harness import LoopRunner

    async def fan_out(request: web.Request) -> web.Response:
        task = asyncio.current_task()
        assert task is nursery.lowlevel.current_task()
        done: list[int] = []

        async def part(i: int) -> None:
            await nursery.sleep(0.002 * (3 - i))
            done.append(i)

        async with nursery.open_nursery() as n:
            for i in range(3):
                n.start_soon(part, i)
        with nursery.move_on_after(0.01) as scope:
            await asyncio.sleep(10)
        return web.json_response({"done": done, "cancelled_caught": scope.cancelled_caught})

    async def main() -> list[Any]:
        app = web.Application()
        app[STATE] = State()
        app.router.add_get("/fan", fan_out)
        async with serving(app) as url:
            async with aiohttp.ClientSession(url) as session:

                async def get() -> Any:
                    async with session.get("/fan") as response:
                        assert response.status == 200, await response.text()
                        return await response.json()

                return list(await asyncio.gather(*(get() for _ in range(5))))

    assert LoopRunner(flavor)(main) == [{"done": [2, 1, 0], "cancelled_caught": True}] * 5

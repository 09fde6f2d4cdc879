"""websockets (its asyncio implementation), unmodified, on stock asyncio and
compat's loop: echo both ways with text, binary, fragmented and large
messages, pings, concurrent clients, and the close handshake's codes and
reasons as each side sees them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from libs_harness import gather_all, require

websockets = require("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK  # noqa: E402

pytestmark = [pytest.mark.libs, pytest.mark.timeout(60)]


class EchoServer:
    """Echoes every message (reversed, so that a reply is not the request);
    "close CODE REASON" makes it close the connection with that code.
    Records how each connection ended."""

    def __init__(self) -> None:
        self.closes: list[tuple[int | None, str | None]] = []
        self.paths: list[str] = []

    async def handler(self, ws: Any) -> None:
        self.paths.append(ws.request.path)
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("close "):
                    _, code, reason = message.split(" ", 2)
                    await ws.close(int(code), reason)
                    break
                await ws.send(message[::-1])
        finally:
            await ws.wait_closed()
            self.closes.append((ws.close_code, ws.close_reason))


def test_echo(run_mixed: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        echo = EchoServer()
        async with serve(echo.handler, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}/chat?x=1"
            async with connect(uri, max_size=None) as ws:
                out["text"] = []
                for word in ("hello", "wörld", ""):
                    await ws.send(word)
                    out["text"].append(await ws.recv())
                await ws.send(b"\x00\x01\x02")
                out["binary"] = await ws.recv()
                # A fragmented message arrives whole.
                await ws.send(iter(["frag", "ment", "ed"]))
                out["fragmented"] = await ws.recv()
                big = bytes(range(256)) * 16384  # 4 MiB
                await ws.send(big)
                out["big"] = (await ws.recv()) == big[::-1]
                latency = await (await ws.ping())
                out["ping"] = isinstance(latency, float) and latency >= 0

            async def client(i: int) -> list[str]:
                async with connect(uri) as ws:
                    replies = []
                    for j in range(20):
                        await ws.send(f"{i}:{j}")
                        replies.append(await ws.recv())
                    return replies

            out["concurrent"] = await gather_all(run_mixed, *(client(i) for i in range(10)))
            # Let the server's handlers record the closes.
            for _ in range(100):
                if len(echo.closes) == 11:
                    break
                await asyncio.sleep(0.01)
        out["paths"] = set(echo.paths)
        out["closes"] = set(echo.closes)
        return out

    out = run_mixed(main)
    assert out["text"] == ["olleh", "dlröw", ""]
    assert out["binary"] == b"\x02\x01\x00"
    assert out["fragmented"] == "detnemgarf"
    assert out["big"] is True
    assert out["ping"] is True
    assert out["concurrent"] == [[f"{i}:{j}"[::-1] for j in range(20)] for i in range(10)]
    assert out["paths"] == {"/chat?x=1"}
    # Every client closed normally, as the server saw it.
    assert out["closes"] == {(1000, "")}


def test_close_codes(run: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        echo = EchoServer()
        async with serve(echo.handler, "127.0.0.1", 0) as server:
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

            # The server closes with an application code: the client's recv
            # raises ConnectionClosedError with what the server sent.
            async with connect(uri) as ws:
                await ws.send("close 4001 custom reason")
                try:
                    await ws.recv()
                except ConnectionClosedError as exc:
                    out["server_4001"] = (exc.rcvd.code, exc.rcvd.reason, exc.sent.code)
                out["client_view"] = (ws.close_code, ws.close_reason)

            # The server closes normally (1000): ConnectionClosedOK.
            async with connect(uri) as ws:
                await ws.send("close 1000 bye")
                try:
                    await ws.recv()
                except ConnectionClosedOK as exc:
                    out["server_1000"] = (exc.rcvd.code, exc.rcvd.reason)

            # The client closes with "going away".
            async with connect(uri) as ws:
                await ws.send("x")
                await ws.recv()
                await ws.close(1001, "leaving")
                out["client_1001"] = (ws.close_code, ws.close_reason)

            # The connection drops without a close frame: 1006 on the
            # server's side.
            ws = await connect(uri)
            await ws.send("y")
            await ws.recv()
            ws.transport.abort()
            await ws.wait_closed()
            out["abort"] = ws.close_code

            for _ in range(100):
                if len(echo.closes) == 4:
                    break
                await asyncio.sleep(0.01)
        out["server_closes"] = echo.closes
        return out

    out = run(main)
    assert out["server_4001"] == (4001, "custom reason", 4001)
    assert out["client_view"] == (4001, "custom reason")
    assert out["server_1000"] == (1000, "bye")
    assert out["client_1001"] == (1001, "leaving")
    assert out["abort"] == 1006
    assert out["server_closes"] == [(4001, "custom reason"), (1000, "bye"), (1001, "leaving"), (1006, "")]

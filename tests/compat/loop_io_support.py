"""Helpers of the compat loop's I/O tests (tests/compat/test_loop_io*.py):
run one stock-asyncio program on stock asyncio's loop, on compat's own loop
and on the loop of a nursery.run, and compare what each observed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

import nursery
from nursery import compat

WAYS = ("stock", "compat", "nursery")


def describe(exc: BaseException) -> tuple[str, str]:
    return (type(exc).__name__, str(exc))


def run_way(way: str, main: Callable[..., Any], *args: Any) -> Any:
    """Run ``main(*args)`` (stock asyncio code) one way; returns
    ("value", result) or ("error", (type name, message))."""
    try:
        if way == "stock":
            with asyncio.Runner() as runner:
                return ("value", runner.run(main(*args)))
        if way == "compat":
            with asyncio.Runner(loop_factory=compat.new_event_loop) as runner:
                assert isinstance(runner.get_loop(), compat.EventLoop)
                return ("value", runner.run(main(*args)))
        assert way == "nursery"
        return ("value", nursery.run(main, *args))
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        return ("error", describe(exc))


def same_three_ways(main: Callable[..., Any], *args: Any) -> Any:
    """Run *main* the three ways; all must agree. Returns stock's outcome."""
    stock = run_way("stock", main, *args)
    for way in ("compat", "nursery"):
        assert run_way(way, main, *args) == stock, way
    return stock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

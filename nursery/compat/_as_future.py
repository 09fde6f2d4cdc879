"""Turning an awaitable into a future, for the functions that combine them
(gather, shield, wait_for, as_completed): what ``asyncio.ensure_future``
does, kept private here so the combinators do not depend on the public
task-creation module."""

from __future__ import annotations

import inspect
import types
from asyncio import coroutines, events
from typing import Any

__all__ = ["as_future", "get_loop", "is_future"]

_CoroutineType = types.CoroutineType


def is_future(obj: Any) -> bool:
    # asyncio's duck-typed test (asyncio.isfuture): compat Tasks, stock
    # Futures and Tasks, and anything else following the future protocol.
    return hasattr(obj.__class__, "_asyncio_future_blocking") and obj._asyncio_future_blocking is not None


def get_loop(future: Any) -> Any:
    try:
        get = future.get_loop
    except AttributeError:
        return future._loop
    return get()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def as_future(aw: Any, loop: Any = None) -> Any:
    """*aw* itself if it is a future (of *loop*, if given); a new task of
    *loop* (or the current event loop) for a coroutine or other awaitable."""
    # Hot path (benchmark: gather): a plain coroutine is by far the most
    # common argument, and cannot be a future.
    if aw.__class__ is _CoroutineType:
        if loop is None:
            loop = events.get_event_loop()
        try:
            return loop.create_task(aw)
        except RuntimeError:
            aw.close()
            raise
    if is_future(aw):
        if loop is not None and loop is not get_loop(aw):
            raise ValueError("The future belongs to a different loop than the one specified as the loop argument")
        return aw
    if coroutines.iscoroutine(aw):
        coro = aw
    elif inspect.isawaitable(aw):
        coro = _await(aw)
    else:
        raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
    if loop is None:
        loop = events.get_event_loop()
    try:
        return loop.create_task(coro)
    except RuntimeError:
        if coro is aw:
            aw.close()
        raise

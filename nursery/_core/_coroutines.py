"""Turning ``fn, *args`` into a coroutine, with a specific error for each
way of getting it wrong."""

from __future__ import annotations

import collections.abc
import inspect
from types import CoroutineType, GeneratorType
from typing import Any


def _is_awaitable_object(obj: Any) -> bool:
    return inspect.isawaitable(obj) or (
        hasattr(obj, "_asyncio_future_blocking") and hasattr(obj, "add_done_callback")
    )


def _reject_non_function(async_fn: Any, where: str) -> None:
    if _is_awaitable_object(async_fn):
        is_coro = inspect.iscoroutine(async_fn)
        if is_coro:
            # It will never run; close it so Python does not also warn that
            # it was never awaited.
            async_fn.close()
        kind = "a coroutine object" if is_coro else f"an awaitable ({type(async_fn).__name__})"
        raise TypeError(
            f"{where} expected an async function, got {kind} "
            f"(did you write fn() instead of fn? Pass the function and its "
            f"arguments separately: {where.split('(')[0]}(fn, arg1, arg2))"
        ) from None
    if not callable(async_fn):
        raise TypeError(f"{where} expected an async function, got {async_fn!r}") from None


def coroutine_or_error(async_fn: Any, args: tuple, where: str, kwargs: dict | None = None) -> Any:
    """Call ``async_fn(*args)`` and return the coroutine, or raise
    :exc:`TypeError` saying what was passed instead and how to fix it."""
    # Hot path (every spawn; benchmark: spawn): call first, diagnose only
    # when that fails or returns something other than a coroutine.
    try:
        coro = async_fn(*args) if kwargs is None else async_fn(*args, **kwargs)
    except TypeError:
        _reject_non_function(async_fn, where)
        raise
    if coro.__class__ is CoroutineType:
        return coro
    if isinstance(coro, GeneratorType) and coro.gi_code.co_flags & inspect.CO_ITERABLE_COROUTINE:
        return coro  # a @types.coroutine generator
    if isinstance(coro, collections.abc.Coroutine):
        return coro  # a coroutine implemented in C or Cython
    name = getattr(async_fn, "__qualname__", None) or repr(async_fn)
    if inspect.isasyncgen(coro):
        coro.aclose().close()
        raise TypeError(
            f"{where} expected an async function, but {name} is an async generator "
            "function; iterate it with 'async for' inside an async function instead"
        )
    if _is_awaitable_object(coro):
        raise TypeError(
            f"{where} expected an async function, but {name} returned "
            f"{type(coro).__name__} object, which is awaitable but not a coroutine; "
            "wrap it: 'async def wrapper(): return await thing'"
        )
    raise TypeError(
        f"{where} expected an async function, but {name} is synchronous "
        f"(it returned {coro!r}); define it with 'async def', or run blocking "
        "code in a worker thread"
    )

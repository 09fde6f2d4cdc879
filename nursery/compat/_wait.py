"""asyncio.wait on the compat loop: wait for a set of futures until all,
the first, or the first failing one is done, or a timeout passes."""

from __future__ import annotations

from asyncio import coroutines, events
from typing import Any

from ._as_future import is_future

__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "wait"]

# asyncio's values (those of concurrent.futures).
FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"
ALL_COMPLETED = "ALL_COMPLETED"


def _wake(waiter: Any, *args: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def wait(fs: Any, *, timeout: float | None = None, return_when: str = ALL_COMPLETED) -> tuple[set, set]:
    """Wait for the futures and tasks in the iterable *fs* and return two
    sets, ``(done, pending)`` (``asyncio.wait``). *return_when* is
    :data:`ALL_COMPLETED`, :data:`FIRST_COMPLETED` or
    :data:`FIRST_EXCEPTION`; after *timeout* seconds it returns anyway
    (it never raises :exc:`TimeoutError`). Nothing is cancelled."""
    if is_future(fs) or coroutines.iscoroutine(fs):
        raise TypeError(f"expect a list of futures, not {type(fs).__name__}")
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"Invalid return_when value: {return_when}")
    fs = set(fs)
    if any(coroutines.iscoroutine(f) for f in fs):
        raise TypeError("Passing coroutines is forbidden, use tasks explicitly.")
    loop = events.get_running_loop()
    return await wait_futures(fs, timeout, return_when, loop)


async def wait_futures(fs: set, timeout: float | None, return_when: str, loop: Any) -> tuple[set, set]:
    # The waiting part of wait() (also used by wait_for on 3.11).
    waiter = loop.create_future()
    timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
    left = len(fs)

    def one_done(f: Any) -> None:
        nonlocal left
        left -= 1
        if (
            left <= 0
            or return_when == FIRST_COMPLETED
            or (return_when == FIRST_EXCEPTION and not f.cancelled() and f.exception() is not None)
        ):
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.set_result(None)

    for f in fs:
        f.add_done_callback(one_done)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in fs:
            f.remove_done_callback(one_done)
    done, pending = set(), set()
    for f in fs:
        (done if f.done() else pending).add(f)
    return done, pending

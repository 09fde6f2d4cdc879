"""asyncio.wait_for on the compat loop.

3.12 rebuilt ``wait_for`` on ``asyncio.timeout()``; 3.11 waits for the
future and a timer separately. Each interpreter gets its own version's
behaviour (they differ when the awaited task swallows the cancellation, and
in what a cancelled ``wait_for`` waits for).
"""

from __future__ import annotations

import sys
from asyncio import CancelledError, events
from typing import Any

from ._as_future import as_future
from ._timeouts import timeout as _timeout
from ._wait import _wake

__all__ = ["wait_for"]

_PY312 = sys.version_info >= (3, 12)


async def _cancel_and_wait(fut: Any) -> None:
    # Cancel fut and wait until it has finished (it may refuse).
    loop = events.get_running_loop()
    waiter = loop.create_future()

    def release(_: Any) -> None:
        _wake(waiter)

    fut.add_done_callback(release)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(release)


async def _expired_already(fut: Any) -> Any:
    # timeout <= 0: the awaitable gets no time at all (but a task that is
    # done already still delivers its result).
    fut = as_future(fut)
    if fut.done():
        return fut.result()
    await _cancel_and_wait(fut)
    try:
        return fut.result()
    except CancelledError as exc:
        raise TimeoutError from exc


if _PY312:

    async def wait_for(fut: Any, timeout: float | None) -> Any:
        """Wait for the awaitable *fut*, cancelling it after *timeout*
        seconds (None: never) and raising :exc:`TimeoutError`
        (``asyncio.wait_for``). If the caller is cancelled, so is *fut*.
        Wrap *fut* in :func:`shield` to keep it running after a timeout."""
        if timeout is not None and timeout <= 0:
            return await _expired_already(fut)
        async with _timeout(timeout):
            return await fut

else:

    async def wait_for(fut: Any, timeout: float | None) -> Any:
        """Wait for the awaitable *fut*, cancelling it after *timeout*
        seconds (None: never) and raising :exc:`TimeoutError`
        (``asyncio.wait_for``). If the caller is cancelled, so is *fut*.
        Wrap *fut* in :func:`shield` to keep it running after a timeout."""
        loop = events.get_running_loop()
        if timeout is None:
            return await fut
        if timeout <= 0:
            return await _expired_already(fut)
        waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake, waiter)

        def release(_: Any) -> None:
            _wake(waiter)

        fut = as_future(fut, loop)
        fut.add_done_callback(release)
        try:
            try:
                await waiter
            except CancelledError:
                if fut.done():
                    return fut.result()
                fut.remove_done_callback(release)
                await _cancel_and_wait(fut)
                raise
            if fut.done():
                return fut.result()
            fut.remove_done_callback(release)
            await _cancel_and_wait(fut)
            try:
                return fut.result()
            except CancelledError as exc:
                raise TimeoutError from exc
        finally:
            timer.cancel()

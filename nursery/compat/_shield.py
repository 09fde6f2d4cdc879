"""asyncio.shield on the compat loop: an outer future that follows the
inner one, so cancelling the waiter does not cancel the inner work."""

from __future__ import annotations

from typing import Any

from ._as_future import as_future, get_loop

__all__ = ["shield"]


def shield(arg: Any) -> Any:
    """Wait for *arg* without passing cancellation on to it
    (``asyncio.shield``). The caller is still cancelled (it gets
    :exc:`CancelledError`, from ``Task.cancel()`` or from a nursery cancel
    scope), but the task running *arg* goes on. If *arg* itself is
    cancelled, so is the shield. Keep a reference to the inner task."""
    inner = as_future(arg)
    if inner.done():
        return inner
    outer = get_loop(inner).create_future()

    def inner_done(inner: Any) -> None:
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # retrieved: nobody else will look
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is None:
            outer.set_result(inner.result())
        else:
            outer.set_exception(exc)

    def outer_done(outer: Any) -> None:
        if not inner.done():
            inner.remove_done_callback(inner_done)

    inner.add_done_callback(inner_done)
    outer.add_done_callback(outer_done)
    return outer

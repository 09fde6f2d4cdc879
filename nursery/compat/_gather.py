"""asyncio.gather on the compat loop: one outer future that aggregates the
children's outcomes, with asyncio's rules (results in argument order, the
first error propagated at once unless ``return_exceptions``, cancelling the
outer future cancels the children, a cancelled child counts as an error)."""

from __future__ import annotations

import asyncio
from asyncio import events
from types import CoroutineType
from typing import Any

from ._as_future import as_future, get_loop
from ._loop import EventLoop
from ._task import _FINISHED, Task, new_task

__all__ = ["gather"]


class _GatheringFuture(asyncio.Future):
    # The outer future of gather(). cancel() is forwarded to the children
    # and, like Task.cancel(), does not cancel the outer future at once: it
    # ends when the children do, as cancelled if any child took the request.

    def __init__(self, children: list[Any], *, loop: Any) -> None:
        super().__init__(loop=loop)
        self._children = children
        self._cancel_requested = False

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        taken = False
        for child in self._children:
            if child.cancel(msg=msg):
                taken = True
        if taken:
            # Whatever return_exceptions says, the gather ends cancelled.
            self._cancel_requested = True
        return taken


def gather(*coros_or_futures: Any, return_exceptions: bool = False) -> asyncio.Future:
    """A future for the results of all the awaitables, in argument order
    (``asyncio.gather``). Coroutines are wrapped in tasks; an awaitable
    passed twice runs once. The first exception is propagated at once
    (the other children keep running) unless *return_exceptions*, which puts
    exceptions into the result list instead. Cancelling the returned future
    cancels every child that is still running."""
    if not coros_or_futures:
        loop = events.get_event_loop()
        empty = loop.create_future()
        empty.set_result([])
        return empty

    outer: _GatheringFuture | None = None
    children: list[Any] = []
    finished = 0

    def child_done(fut: Any) -> None:
        nonlocal finished
        finished += 1
        # Hot path (benchmark gather): a compat Task that returned needs
        # none of the checks below (a failed one is a _FailedTask).
        returned = fut.__class__ is Task and fut._state == _FINISHED
        if outer is None or outer.done():
            if not returned and not fut.cancelled():
                fut.exception()  # retrieved: no "never retrieved" report
            return
        if not return_exceptions and not returned:
            if fut.cancelled():
                outer.set_exception(fut._make_cancelled_error())
                return
            exc = fut.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if finished < count:
            return
        results = []
        for child in children:
            if child.__class__ is Task and child._state == _FINISHED:
                results.append(child._result)
            elif child.cancelled():
                message = child._cancel_message
                results.append(asyncio.CancelledError("" if message is None else message))
            else:
                exc = child.exception()
                results.append(child.result() if exc is None else exc)
        if outer._cancel_requested:
            # (fut is the child that finished last.)
            outer.set_exception(fut._make_cancelled_error())
        else:
            outer.set_result(results)

    futures_of: dict[Any, Any] = {}
    already_done = []
    count = 0
    loop = None
    fast = False
    for arg in coros_or_futures:
        fut = futures_of.get(arg)
        if fut is None and fast and arg.__class__ is CoroutineType:
            # Hot path (benchmark gather): a coroutine on a compat loop
            # becomes a compat Task directly, with child_done as its
            # first done-callback (what create_task and
            # add_done_callback would do).
            fut = new_task(loop, arg)
            fut._callback0 = child_done
            # (child_done reads no context variables: it may run in the
            # finished task's context rather than in a copy of ours.)
            fut._context0 = fut.context
            count += 1
            futures_of[arg] = fut
        elif fut is None:
            fut = as_future(arg, loop)
            if loop is None:
                loop = get_loop(fut)
                fast = loop.__class__ is EventLoop and loop._task_factory is None and not loop._closed
            if fut is not arg and fut.__class__ is not Task:
                # A task we made: nobody else can await it, so no
                # "Task was destroyed but it is pending" for it.
                fut._log_destroy_pending = False
            count += 1
            futures_of[arg] = fut
            if fut.done():
                already_done.append(fut)
            else:
                fut.add_done_callback(child_done)
        children.append(fut)

    outer = _GatheringFuture(children, loop=loop)
    # Children that were done already (futures passed in finished, or eager
    # tasks) are counted now that the outer future exists.
    for fut in already_done:
        child_done(fut)
    return outer

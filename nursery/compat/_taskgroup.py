"""asyncio.TaskGroup on the compat loop.

asyncio's structured concurrency: the group's tasks are awaited when the
block ends; the first task to fail cancels the others and the parent task
(edge-triggered, through ``Task.cancel()``, undone with ``uncancel()`` on the
way out), and the errors come out as one ``ExceptionGroup``.

One addition for nursery programs: when a nursery cancel scope cancels the
parent while it waits for its tasks, the kernel's cancellation is
level-triggered and would be raised again at every wait; the group then
waits for its (already cancelled) tasks inside a shielded scope, and the
scope's ``Cancelled`` comes out of the block afterwards, as in a nursery.
"""

from __future__ import annotations

import sys
from asyncio import CancelledError, events
from asyncio import tasks as _asyncio_tasks
from typing import Any

from .. import CancelScope, Cancelled
from ._loop import EventLoop
from ._task import Task, new_task

__all__ = ["TaskGroup"]

_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)

_current_task = _asyncio_tasks.current_task


def _is_cancellation(exc_type: type[BaseException]) -> bool:
    # 3.11 and 3.12 treat only a plain CancelledError as cancellation (a
    # subclass is an error like any other); the kernel's Cancelled counts
    # as cancellation everywhere.
    if _PY313:
        return issubclass(exc_type, CancelledError)
    return exc_type is CancelledError or issubclass(exc_type, Cancelled)


class TaskGroup:
    """An asynchronous context manager that runs tasks and waits for them
    all (``asyncio.TaskGroup``)::

        async with compat.TaskGroup() as tg:
            tg.create_task(one())
            tg.create_task(two())

    If a task fails (with anything but ``CancelledError``), the other tasks
    and the block are cancelled, and the errors are raised together as an
    :class:`ExceptionGroup` (:class:`BaseExceptionGroup` for
    ``KeyboardInterrupt``/``SystemExit``, which are raised bare)."""

    def __init__(self) -> None:
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop: Any = None
        self._parent_task: Any = None
        self._parent_cancel_requested = False
        self._tasks: set[Any] = set()
        self._errors: list[BaseException] | None = []
        self._base_error: BaseException | None = None
        self._on_completed_fut: Any = None
        # One bound method for all the group's tasks, not one each.
        self._task_done_callback = self._on_task_done

    def __repr__(self) -> str:
        info = [""]
        if self._tasks:
            info.append(f"tasks={len(self._tasks)}")
        if self._errors:
            info.append(f"errors={len(self._errors)}")
        if self._aborting:
            info.append("cancelling")
        elif self._entered:
            info.append("entered")
        return f"<TaskGroup{' '.join(info)}>"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        if self._loop is None:
            self._loop = events.get_running_loop()
        self._parent_task = _current_task(self._loop)
        if self._parent_task is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        self._entered = True
        return self

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> None:
        try:
            await self._wait_and_raise(et, exc)
        finally:
            # Every task is done: let go of the bound method that refers
            # back to the group (a cycle only the garbage collector frees).
            self._task_done_callback = None

    async def _wait_and_raise(self, et: Any, exc: Any) -> None:
        self._exiting = True
        if exc is not None and _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        propagate = exc if et is not None and _is_cancellation(et) else None
        if not _PY313 and self._parent_cancel_requested:
            # We cancelled the parent; withdraw that (3.11/3.12 do it here).
            if self._parent_task.uncancel() == 0 and not isinstance(propagate, Cancelled):
                propagate = None
        if et is not None and not self._aborting:
            self._abort()

        shield = False
        while self._tasks:
            if self._on_completed_fut is None:
                self._on_completed_fut = self._loop.create_future()
            try:
                if shield:
                    with CancelScope(shield=True):
                        await self._on_completed_fut
                else:
                    await self._on_completed_fut
            except CancelledError as ex:
                if not self._aborting:
                    propagate = ex
                    self._abort()
                if isinstance(ex, Cancelled):
                    # A nursery scope: it will go on cancelling every wait.
                    shield = True
                    if propagate is None or not isinstance(propagate, Cancelled):
                        propagate = ex
            self._on_completed_fut = None

        if self._base_error is not None:
            raise self._base_error
        if _PY313 and self._parent_cancel_requested:
            if self._parent_task.uncancel() == 0 and not isinstance(propagate, Cancelled):
                propagate = None
        if propagate is not None and not self._errors:
            raise propagate
        if et is not None and not _is_cancellation(et):
            self._errors.append(exc)
        if self._errors:
            if _PY313 and self._parent_task.cancelling():
                # Cancelled from outside too: keep the count stable.
                self._parent_task.uncancel()
                self._parent_task.cancel()
            try:
                group = BaseExceptionGroup("unhandled errors in a TaskGroup", self._errors)
                raise group from None
            finally:
                self._errors = None

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        """Start a task running *coro* in the group and return it (like
        ``asyncio.create_task``)."""
        if not self._entered:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} has not been entered")
        if self._exiting and not self._tasks:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} is finished")
        if self._aborting:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} is shutting down")
        loop = self._loop
        if loop.__class__ is EventLoop and loop._task_factory is None and not loop._closed:
            # Hot path (benchmark spawn): what loop.create_task() and
            # add_done_callback() would do, without the two calls.
            task = new_task(loop, coro, name=name, context=context)
            task._callback0 = self._task_done_callback
            # (_on_task_done reads no context variables: it may run in the
            # finished task's context rather than in a copy of ours.)
            task._context0 = task.context
            self._tasks.add(task)
            return task
        if context is None:
            task = loop.create_task(coro, name=name)
        else:
            task = loop.create_task(coro, name=name, context=context)
        if _PY312 and task.done():
            # (An eager task that finished at once.)
            self._on_task_done(task)
        else:
            if _PY312:
                self._tasks.add(task)
                task.add_done_callback(self._on_task_done)
            else:
                task.add_done_callback(self._on_task_done)
                self._tasks.add(task)
        return task

    def _abort(self) -> None:
        self._aborting = True
        for t in self._tasks:
            if not t.done():
                t.cancel()

    def _on_task_done(self, task: Any) -> None:
        self._tasks.discard(task)
        fut = self._on_completed_fut
        if fut is not None and not self._tasks and not fut.done():
            fut.set_result(True)
        if task.__class__ is Task:
            # A compat Task whose class is still Task did not fail (see
            # _FailedTask): it returned or was cancelled.
            return
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self._errors.append(exc)
        if _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        if self._parent_task.done():
            self._loop.call_exception_handler(
                {
                    "message": (
                        f"Task {task!r} has errored out but its parent task {self._parent_task} is already completed"
                    ),
                    "exception": exc,
                    "task": task,
                }
            )
            return
        if not self._aborting and not self._parent_cancel_requested:
            self._abort()
            self._parent_cancel_requested = True
            self._parent_task.cancel()


def _is_base_error(exc: BaseException) -> bool:
    return isinstance(exc, (SystemExit, KeyboardInterrupt))

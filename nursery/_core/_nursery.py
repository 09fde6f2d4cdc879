"""Nurseries: where tasks live, and the guarantee that none outlives its
parent's ``async with`` block."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Generic, Protocol, TypeVar

from ._cancel_scope import CancelScope
from ._exceptions import Cancelled, _AsyncioCancelledError as AsyncioCancelledError
from ._state import current_runner
from ._traps import Abort, cancel_shielded_checkpoint, wait_task_rescheduled

__all__ = ["Nursery", "open_nursery", "TaskStatus", "TASK_STATUS_IGNORED"]

StatusT = TypeVar("StatusT", contravariant=True)

_CLOSED_MESSAGE = (
    "this nursery is closed to new tasks: its 'async with' block has finished "
    "and all its tasks have exited. Start tasks in a nursery that is still open"
)


class TaskStatus(Protocol[StatusT]):
    """What :meth:`Nursery.start` passes as ``task_status``."""

    def started(self, value: StatusT = ...) -> None:
        """Tell the starter that the task is ready; ``value`` is what
        ``await nursery.start(...)`` returns. Call it exactly once."""


class _IgnoredTaskStatus:
    __slots__ = ()

    def started(self, value: Any = None) -> None:
        pass

    def __repr__(self) -> str:
        return "TASK_STATUS_IGNORED"


#: The default value for a ``task_status`` parameter, so that a function
#: written for ``Nursery.start`` can also be called directly or with
#: ``start_soon``.
TASK_STATUS_IGNORED: TaskStatus[Any] = _IgnoredTaskStatus()


class _TaskStatus:
    __slots__ = ("_old_nursery", "_new_nursery", "_called", "_value")

    def __init__(self, old_nursery: Nursery, new_nursery: Nursery) -> None:
        self._old_nursery = old_nursery
        self._new_nursery = new_nursery
        self._called = False
        self._value: Any = None

    def started(self, value: Any = None) -> None:
        if self._called:
            raise RuntimeError("task_status.started() was called twice; call it exactly once")
        new = self._new_nursery
        if new._closed:
            raise RuntimeError(_CLOSED_MESSAGE)
        self._called = True
        self._value = value
        old = self._old_nursery
        if old._cancel_scope._effectively_cancelled:
            # The caller is cancelled: leave the task under it. Moving it
            # could carry a propagating Cancelled into the target nursery,
            # where no cancelled scope would catch it and it would cancel
            # the target's other tasks. start() waits for the task instead.
            return
        (task,) = old._children
        # The task and every scope it opened move from the private nursery
        # that start() made to the target nursery: from now on the target's
        # cancellation reaches them and the caller's does not.
        old_scope, new_scope = old._cancel_scope, new._cancel_scope
        moved = list(old_scope._children or ())
        old_scope._children = None
        for scope in moved:
            scope._attach(new_scope)
            scope._propagate()  # recompute: the new parent may differ
        if task._cancel_scope is old_scope:
            task._cancel_scope = new_scope
        del old._children[task]
        task._parent_nursery = new
        task._eventual_parent_nursery = None
        new._children[task] = None
        old._check_closed()


class Nursery:
    """A place where tasks run. Get one from :func:`open_nursery`.

    The ``async with`` block that opened the nursery does not finish until
    every task in it has finished. If any task (or the block itself) raises,
    the nursery's :attr:`cancel_scope` is cancelled, so the other tasks are
    cancelled too, and everything raised is collected into one
    :class:`BaseExceptionGroup` raised from the block.
    """

    __slots__ = (
        "_runner",
        "_parent_task",
        "_cancel_scope",
        "_children",
        "_pending_excs",
        "_parent_cancellations",
        "_body_running",
        "_waiting_in_aexit",
        "_closed",
        "_pending_starts",
        "__weakref__",
    )

    def __init__(self, runner, parent_task, scope: CancelScope) -> None:
        self._runner = runner
        self._parent_task = parent_task
        self._cancel_scope = scope
        # A dict, not a set: iteration order must not depend on object
        # addresses, or seeded random scheduling would not replay.
        self._children: dict[Any, None] = {}
        self._pending_excs: list[BaseException] = []
        # asyncio-style cancellations of the parent task (from the body, or
        # thrown in while waiting for the children); see __aexit__.
        self._parent_cancellations: list[BaseException] = []
        self._body_running = True
        self._waiting_in_aexit = False
        self._closed = False
        # start() calls still waiting for started(): the nursery stays open
        # for them, so that started() always has somewhere to move the task.
        self._pending_starts = 0

    @property
    def cancel_scope(self) -> CancelScope:
        """The scope around the nursery's block and all its tasks; cancel it
        to cancel them all."""
        return self._cancel_scope

    @property
    def parent_task(self):
        """The task that opened this nursery."""
        return self._parent_task

    @property
    def child_tasks(self) -> frozenset:
        """The tasks currently running in this nursery."""
        return frozenset(self._children)

    def start_soon(self, async_fn: Callable[..., Awaitable[Any]], *args: Any, name: object = None) -> None:
        """Create a task that runs ``await async_fn(*args)`` in this nursery
        and return at once; the task first runs at a later schedule point.

        Not a checkpoint. Raises :exc:`RuntimeError` if the nursery is closed.
        """
        if self._closed:
            raise RuntimeError(_CLOSED_MESSAGE)
        self._runner.spawn(async_fn, args, self, name)

    async def start(self, async_fn: Callable[..., Awaitable[Any]], *args: Any, name: object = None) -> Any:
        """Start ``async_fn(*args, task_status=...)`` and wait until it calls
        ``task_status.started(value)``; then return *value*, while the task
        goes on running in this nursery.

        Until it calls ``started()``, the task runs as a child of the caller:
        the caller's cancellation reaches it, and an exception it raises is
        raised here directly. If it returns without calling ``started()``,
        :exc:`RuntimeError` is raised. This nursery stays open while a
        ``start()`` into it is pending, even if its block has finished.
        """
        if self._closed:
            raise RuntimeError(_CLOSED_MESSAGE)
        self._pending_starts += 1
        try:
            async with open_nursery() as old_nursery:
                status = _TaskStatus(old_nursery, self)
                task = self._runner.spawn(async_fn, args, old_nursery, name, task_status=status)
                task._eventual_parent_nursery = self
        except BaseExceptionGroup as group:
            # Only the starting task can have failed (the block above does
            # nothing else), so its single exception is raised as itself.
            if len(group.exceptions) == 1:
                exc = group.exceptions[0]
                try:
                    raise exc
                finally:
                    exc.__context__ = group.__context__
                    del exc, group
            raise
        finally:
            self._pending_starts -= 1
            self._check_closed()
        if not status._called:
            raise RuntimeError(
                f"{task.name} returned without calling task_status.started(); a "
                "function passed to Nursery.start() must call it once it is ready"
            )
        return status._value

    # ------------------------------------------------------------------
    # bookkeeping used by the run loop

    def _add_exc(self, exc: BaseException) -> None:
        self._pending_excs.append(exc)
        self._cancel_scope.cancel()

    def _child_finished(self, task, exc: BaseException | None) -> None:
        children = self._children
        del children[task]
        if exc is not None:
            self._add_exc(exc)
        # (Tested here first: while siblings run, as in the system nursery
        # of a compat loop with many tasks, closing is out of the question.)
        if not children:
            self._check_closed()

    def _check_closed(self) -> None:
        if not self._body_running and not self._children and not self._pending_starts:
            self._closed = True
            if self._waiting_in_aexit:
                self._waiting_in_aexit = False
                self._runner.reschedule(self._parent_task)

    def _abort_wait(self, raise_cancel) -> Abort:
        # The parent was cancelled while waiting for the children: cancel
        # them, and keep waiting. The Cancelled itself is not recorded: the
        # children's Cancelled (or the next checkpoint) carry it.
        self._cancel_scope.cancel()
        return Abort.FAILED

    async def _finish(self, body_exc: BaseException | None) -> BaseExceptionGroup | None:
        if body_exc is not None:
            if _is_asyncio_cancellation(body_exc):
                self._parent_cancellations.append(body_exc)
            self._add_exc(body_exc)
        self._body_running = False
        self._check_closed()
        if not self._closed:
            self._waiting_in_aexit = True
            try:
                await wait_task_rescheduled(self._abort_wait)
            except BaseException as exc:
                # An asyncio-style Task.cancel() that arrived while we
                # waited: _abort_wait refused to abandon the wait, so it is
                # thrown in once the children are done. It belongs with
                # the body's exceptions.
                self._pending_excs.append(exc)
                if _is_asyncio_cancellation(exc):
                    self._parent_cancellations.append(exc)
        else:
            # Nothing to wait for, but leaving a nursery is a checkpoint. The
            # Cancelled is made here rather than thrown into the task: a step
            # that starts with coro.throw() makes CPython chain whatever leaves
            # __aexit__ (our group) to the body's exception as __context__,
            # so tracebacks would show the body's exception twice.
            await cancel_shielded_checkpoint()
            if self._cancel_scope._effectively_cancelled:
                self._add_exc(Cancelled._create())
        if self._pending_excs:
            excs, self._pending_excs = self._pending_excs, []
            return BaseExceptionGroup("Exceptions from nursery", excs)
        return None

    def __repr__(self) -> str:
        return f"<Nursery at {id(self):#x} in task {self._parent_task.name!r}, {len(self._children)} tasks>"


class NurseryManager:
    """The async context manager returned by :func:`open_nursery`."""

    __slots__ = ("_nursery",)

    async def __aenter__(self) -> Nursery:
        runner = current_runner("open_nursery()")
        task = runner.current_task
        scope = CancelScope()
        scope.__enter__()
        nursery = Nursery(runner, task, scope)
        scope._nursery = nursery
        if task._child_nurseries:
            task._child_nurseries.append(nursery)
        else:
            task._child_nurseries = [nursery]
        self._nursery = nursery
        return nursery

    async def __aexit__(self, etype, exc, tb) -> bool:
        nursery = self._nursery
        group = await nursery._finish(exc)
        nursery._parent_task._child_nurseries.remove(nursery)
        scope = nursery._cancel_scope
        if group is None:
            scope.__exit__(None, None, None)
            return True
        try:
            if scope.__exit__(BaseExceptionGroup, group, group.__traceback__):
                return True
        except BaseExceptionGroup as rest:
            # The scope caught its own Cancelled and re-raised the rest.
            remaining = rest
        else:
            remaining = group
        own = nursery._parent_cancellations
        if own and all(any(e is c for c in own) for e in remaining.exceptions):
            # An asyncio-style cancellation of this task (Task.cancel(),
            # asyncio.timeout) passes through the nursery as itself, as it
            # passes through an asyncio TaskGroup: asyncio code up the stack
            # recognizes only a bare CancelledError. (A child's is an error
            # of the child, and stays in the group.)
            cancelled = remaining.exceptions[0]
            try:
                raise cancelled
            finally:
                del cancelled, remaining, group, exc
        # The body's exception is inside the group; chaining the group to it
        # as well would print it twice.
        context = exc.__context__ if exc is not None else None
        try:
            raise remaining
        finally:
            remaining.__context__ = context
            del remaining, group, context, exc


def _is_asyncio_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, AsyncioCancelledError) and not isinstance(exc, Cancelled)


def open_nursery() -> NurseryManager:
    """Open a nursery: ``async with open_nursery() as nursery: ...``.

    Leaving the block is a checkpoint, and waits for every task in the
    nursery. Exceptions from the block and the tasks are raised together as
    a :class:`BaseExceptionGroup` (always a group, even for one exception).
    """
    return NurseryManager()

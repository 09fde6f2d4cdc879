"""The event loop policy, and asyncio's functions for finding the loop and
its tasks, on the kernel.

:func:`install` makes compat's loop asyncio's default, so that an unmodified
program's ``asyncio.run(main())`` or ``asyncio.new_event_loop()`` runs on the
kernel. The other functions are the asyncio module's of the same names, with
stock asyncio's semantics and messages; where asyncio would make a loop of
its own, they make compat's.

asyncio keeps the running loop, the current task and the set of live tasks
in per-thread registries of its own; compat's loop and tasks are entered in
those, so stock asyncio's functions and these ones see the same things.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import sys
import threading
import warnings
from asyncio import coroutines, events
from typing import Any, Callable, Coroutine, TypeVar

from ._loop import EventLoop, new_event_loop

__all__ = [
    "EventLoopPolicy",
    "all_tasks",
    "create_task",
    "current_task",
    "ensure_future",
    "get_event_loop",
    "get_running_loop",
    "install",
    "iscoroutine",
    "run_coroutine_threadsafe",
    "set_event_loop",
    "to_thread",
]

T = TypeVar("T")


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,name-defined]
    """asyncio's default event loop policy, except that the loops it makes
    are compat's :class:`~nursery.compat.EventLoop`: one current loop per
    thread, made on demand in the main thread (by ``asyncio.get_event_loop()``
    where asyncio still does that)."""

    def new_event_loop(self) -> EventLoop:
        return new_event_loop()


def install() -> asyncio.AbstractEventLoopPolicy:
    """Make compat's :class:`EventLoopPolicy` asyncio's policy, so that
    ``asyncio.run()``, ``asyncio.Runner()`` and ``asyncio.new_event_loop()``
    make loops that run on the kernel.

    Returns the policy that was in force before, so that
    ``asyncio.set_event_loop_policy(previous)`` undoes it. Calling it again
    changes nothing: a compat policy already in force is kept (and returned).
    """
    previous = asyncio.get_event_loop_policy()
    if not isinstance(previous, EventLoopPolicy):
        asyncio.set_event_loop_policy(EventLoopPolicy())
    return previous


def get_running_loop() -> asyncio.AbstractEventLoop:
    """The event loop running in this thread; ``RuntimeError`` if there is
    none. Inside ``nursery.run`` it is that run's compat loop."""
    loop = events._get_running_loop()
    if loop is None:
        raise RuntimeError("no running event loop")
    return loop


def get_event_loop() -> asyncio.AbstractEventLoop:
    """The running event loop, or else the policy's current loop for this
    thread, as ``asyncio.get_event_loop()``. Where stock asyncio would make a
    new loop (main thread, none set yet, asyncio's default policy), this
    makes compat's instead (warning as stock asyncio does on 3.12+)."""
    loop = events._get_running_loop()
    if loop is not None:
        return loop
    policy = asyncio.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    if (
        type(policy) is asyncio.DefaultEventLoopPolicy  # type: ignore[attr-defined]
        and local is not None
        and local._loop is None
        and not local._set_called
        and threading.current_thread() is threading.main_thread()
    ):
        if sys.version_info >= (3, 12):
            warnings.warn("There is no current event loop", DeprecationWarning, stacklevel=_callers_level())
        policy.set_event_loop(new_event_loop())
    return policy.get_event_loop()


def _callers_level() -> int:
    # The warning names the first caller outside compat and asyncio (as
    # stock asyncio's names the first caller outside asyncio).
    level = 2
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("nursery.compat.", "asyncio.")) and module not in ("nursery.compat", "asyncio"):
            break
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def set_event_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Make ``loop`` the current event loop of this thread (the policy's),
    as ``asyncio.set_event_loop``."""
    asyncio.get_event_loop_policy().set_event_loop(loop)


def iscoroutine(obj: object) -> bool:
    """Whether asyncio takes ``obj`` for a coroutine (as
    ``asyncio.iscoroutine`` on the running interpreter)."""
    return coroutines.iscoroutine(obj)


# asyncio's registries (the names moved between 3.11 and 3.12).
_current_tasks: dict[Any, Any] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
_scheduled_tasks: Any = getattr(asyncio.tasks, "_scheduled_tasks", None)
if _scheduled_tasks is None:
    _scheduled_tasks = asyncio.tasks._all_tasks  # type: ignore[attr-defined]
_eager_tasks: Any = getattr(asyncio.tasks, "_eager_tasks", ())


def current_task(loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task[Any] | None:
    """The task running now on ``loop`` (by default the running loop), or
    ``None``. Inside ``nursery.run`` that is the current kernel task, also
    when it is not a compat task."""
    if loop is None:
        loop = get_running_loop()
    return _current_tasks.get(loop)


def all_tasks(loop: asyncio.AbstractEventLoop | None = None) -> set[asyncio.Task[Any]]:
    """The tasks of ``loop`` (by default the running loop) that are not done.

    These are asyncio's and compat's tasks; the plain kernel tasks of a
    ``nursery.run`` (started by nurseries) are not asyncio tasks and are not
    listed."""
    if loop is None:
        loop = get_running_loop()
    eager = list(_eager_tasks)
    # The weak set may change under us if another thread makes tasks.
    for attempt in range(1000):
        try:
            scheduled = list(_scheduled_tasks)
        except RuntimeError:
            if attempt == 999:
                raise
        else:
            break
    return {t for t in (*scheduled, *eager) if asyncio.futures._get_loop(t) is loop and not t.done()}


def create_task(
    coro: Coroutine[Any, Any, T], *, name: str | None = None, context: contextvars.Context | None = None
) -> asyncio.Task[T]:
    """Start ``coro`` as a task on the running loop (``RuntimeError`` if no
    loop runs), as ``asyncio.create_task``."""
    loop = get_running_loop()
    if context is None:
        return loop.create_task(coro, name=name)  # type: ignore[arg-type]
    return loop.create_task(coro, name=name, context=context)  # type: ignore[arg-type,call-arg]


async def _await_it(awaitable: Any) -> Any:
    return await awaitable


def ensure_future(coro_or_future: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
    """A future for ``coro_or_future``: a future is returned as it is, a
    coroutine or other awaitable is started as a task on ``loop`` (by
    default :func:`get_event_loop`'s), as ``asyncio.ensure_future``."""
    if asyncio.isfuture(coro_or_future):
        if loop is not None and loop is not asyncio.futures._get_loop(coro_or_future):
            raise ValueError("The future belongs to a different loop than the one specified as the loop argument")
        return coro_or_future  # type: ignore[no-any-return]
    ours = False
    if not coroutines.iscoroutine(coro_or_future):
        if not inspect.isawaitable(coro_or_future):
            raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
        coro_or_future = _await_it(coro_or_future)
        ours = True
    if loop is None:
        loop = get_event_loop()
    try:
        return loop.create_task(coro_or_future)
    except RuntimeError:
        # (A closed loop: the coroutine will never run; say so quietly.)
        if not ours:
            coro_or_future.close()
        raise


async def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call ``func(*args, **kwargs)`` in a worker thread of the running
    loop's default executor, in a copy of the current
    :mod:`contextvars` context, and return its result, as
    ``asyncio.to_thread``. Cancelling the caller stops the waiting, not the
    call."""
    loop = get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)  # type: ignore[no-any-return]


def run_coroutine_threadsafe(
    coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop
) -> concurrent.futures.Future[T]:
    """From another thread: start ``coro`` as a task on ``loop`` and return
    a :class:`concurrent.futures.Future` for its outcome, as
    ``asyncio.run_coroutine_threadsafe``. Cancelling that future cancels the
    task."""
    if not coroutines.iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        try:
            task = ensure_future(coro, loop=loop)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if outcome.set_running_or_notify_cancel():
                outcome.set_exception(exc)
            raise
        _report_to(task, outcome, loop)

    loop.call_soon_threadsafe(start)
    return outcome


def _report_to(task: asyncio.Future[Any], outcome: concurrent.futures.Future[Any], loop: Any) -> None:
    # The task's outcome goes to the concurrent future; cancelling that (in
    # any thread) cancels the task, in the loop's thread.
    def on_outcome_done(outcome: concurrent.futures.Future[Any]) -> None:
        if outcome.cancelled():
            loop.call_soon_threadsafe(task.cancel)

    def on_task_done(task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            outcome.cancel()
        if not outcome.set_running_or_notify_cancel():
            return
        exc = task.exception()
        if exc is not None:
            # concurrent.futures' own cancellation and state errors arrive as
            # asyncio's, as stock asyncio hands them on
            if type(exc) is concurrent.futures.CancelledError:
                exc = asyncio.CancelledError(*exc.args).with_traceback(exc.__traceback__)
            elif type(exc) is concurrent.futures.InvalidStateError:
                exc = asyncio.InvalidStateError(*exc.args).with_traceback(exc.__traceback__)
            outcome.set_exception(exc)
        else:
            outcome.set_result(task.result())

    outcome.add_done_callback(on_outcome_done)
    task.add_done_callback(on_task_done)

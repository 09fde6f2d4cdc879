"""asyncio's Task on the kernel: a kernel task with asyncio's Future
interface.

Because a compat Task *is* a kernel task, nursery code (nurseries, cancel
scopes, channels) works inside it, and ``asyncio.current_task()`` finds it
through the kernel's bookkeeping. What asyncio adds on top is kept here: the
task is owned by its loop (started detached from the caller's scopes), its
outcome is kept like a Future's, done-callbacks are scheduled on the loop,
and an exception nobody retrieved is reported to the loop's exception
handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import linecache
import sys
import traceback
from asyncio import coroutines
from types import CoroutineType as _CoroutineType
from types import GenericAlias
from typing import Any, Callable, Generator


from .. import lowlevel
from ._handles import Handle as _Handle

__all__ = ["Task"]

# (Bound once: the hot path of every create_task, benchmarks spawn, gather.)
_register_task = asyncio.tasks._register_task
_new_object = object.__new__
_FOREIGN_FUTURE_WAKER = lowlevel.KernelRun.FOREIGN_FUTURE_WAKER

_PENDING = "PENDING"
_CANCELLED = "CANCELLED"
_FINISHED = "FINISHED"

# Stock asyncio's counter, so that default names ("Task-7") never repeat
# between stock tasks and ours in one program.
# (3.11 keeps an itertools.count, 3.12+ its bound __next__.)
_counter: Any = getattr(asyncio.tasks, "_task_name_counter", None) or itertools.count(1)
_next_task_number: Callable[[], int] = _counter if callable(_counter) else _counter.__next__


class Task(lowlevel.Task):
    """An asyncio Task that runs on the nursery kernel.

    It has the whole :class:`asyncio.Task` interface (``done``, ``result``,
    ``exception``, ``add_done_callback``, ``cancel(msg)``, ``cancelling``,
    ``uncancel``, ``get_stack``, ...) with stock asyncio's semantics, and it
    is also a :class:`nursery.lowlevel.Task`.
    """

    __slots__ = (
        "_loop",
        "_state",
        "_result",
        "_exception",
        "_exception_tb",
        "_callback0",
        "_context0",
        "_callbacks",
        "_log_traceback",
        "_asyncio_future_blocking",
        # (Written by stock asyncio's gather() and run_until_complete() for
        # every task they make: a slot, or each would get a dict.)
        "_log_destroy_pending",
        # For the rarely written fields below (cancel messages, debug-mode
        # tracebacks): a dict made only if one is written.
        "__dict__",
    )

    # Hot path (every create_task; benchmarks spawn, gather): fields that
    # most tasks never change are class-level defaults rather than slots set
    # per task; _result, _exception, _exception_tb and _log_traceback are
    # written when the task ends, and read only after that.
    _cancel_message: Any = None
    _cancelled_exc: asyncio.CancelledError | None = None
    _source_traceback: Any = None

    def __init__(
        self,
        coro: Any,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        name: object = None,
        context: contextvars.Context | None = None,
        eager_start: bool | None = None,
    ) -> None:
        # Only reached when code writes Task(coro) itself (or
        # asyncio.Task(coro) with a compat loop: see _asyncio_task); the
        # loop's create_task() is new_task() itself.
        if eager_start is not None and sys.version_info < (3, 12):
            # (asyncio's message: the parameter is new in 3.12.)
            raise TypeError("'eager_start' is an invalid keyword argument for Task()")
        if loop is None:
            loop = asyncio.get_event_loop()
        new_task(loop, coro, name=name, context=context, _task=self, _eager=bool(eager_start))
        if self._source_traceback:
            del self._source_traceback[-1]  # this frame

    @property
    def name(self) -> str:
        """The task's name (``get_name()``)."""
        name = self._name
        if name.__class__ is int:
            # asyncio's default name, formatted when first read: most
            # names never are (benchmarks spawn, gather).
            self._name = name = f"Task-{name}"
        return name

    # ------------------------------------------------------------------
    # the Future interface

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        if self._state != _FINISHED:
            raise asyncio.InvalidStateError("Result is not set.")
        self._log_traceback = False
        if self._exception is not None:
            raise self._exception.with_traceback(self._exception_tb)
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        if self._state != _FINISHED:
            raise asyncio.InvalidStateError("Exception is not set.")
        self._log_traceback = False
        return self._exception

    def add_done_callback(self, fn: Callable[[Task], Any], *, context: contextvars.Context | None = None) -> None:
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=context)
            return
        if context is None:
            context = contextvars.copy_context()
        callbacks = self._callbacks
        if callbacks is None:
            if self._callback0 is None:
                # Most tasks get exactly one callback (their TaskGroup's,
                # gather's): it goes into two fields, with no list or
                # tuple for the garbage collector to count and track
                # (benchmarks spawn, gather).
                self._callback0 = fn
                self._context0 = context
            else:
                self._callbacks = [(fn, context)]
        else:
            callbacks.append((fn, context))

    def remove_done_callback(self, fn: Callable[[Task], Any]) -> int:
        removed = 0
        if self._callback0 is not None and self._callback0 == fn:
            self._callback0 = self._context0 = None
            removed = 1
        callbacks = self._callbacks
        if callbacks:
            kept = [(f, ctx) for (f, ctx) in callbacks if f != fn]
            removed += len(callbacks) - len(kept)
            callbacks[:] = kept
        return removed

    def set_result(self, result: Any) -> None:
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        raise RuntimeError("Task does not support set_exception operation")

    def cancel(self, msg: Any = None) -> bool:
        """Request cancellation: one :exc:`asyncio.CancelledError` (carrying
        *msg*) is thrown into the coroutine at its next suspension. Returns
        False if the task is already done."""
        self._log_traceback = False
        if self._state != _PENDING:
            return False
        self._cancel_message = msg
        return super().cancel(msg)

    def _make_cancelled_error(self) -> asyncio.CancelledError:
        exc = self._cancelled_exc
        if exc is not None:
            self._cancelled_exc = None
            return exc
        return asyncio.CancelledError() if self._cancel_message is None else asyncio.CancelledError(self._cancel_message)

    def __await__(self) -> Generator[Any, None, Any]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
        state = self._state
        if state == _FINISHED and self._exception is None:
            # result(), inline for a task that returned (hot path: aiohttp
            # awaits a task per request); such a task has nothing to log.
            return self._result
        if state == _PENDING:
            raise RuntimeError("await wasn't used with future")
        return self.result()

    __iter__ = __await__

    __class_getitem__ = classmethod(GenericAlias)

    # ------------------------------------------------------------------
    # asyncio's private attributes that libraries are known to read

    @property
    def _coro(self) -> Any:
        return self.coro

    # ------------------------------------------------------------------
    # stacks

    def get_stack(self, *, limit: int | None = None) -> list[Any]:
        frames: list[Any] = []
        if self._state == _PENDING or self._exception is None:
            for frame, _ in self.iter_await_frames():
                frames.append(frame)
            if limit is not None:
                frames = frames[-limit:] if limit > 0 else frames[: -limit]
            return frames
        tb = self._exception.__traceback__
        while tb is not None:
            if limit is not None and len(frames) >= limit:
                break
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        return frames

    def print_stack(self, *, limit: int | None = None, file: Any = None) -> None:
        extracted = []
        checked: set[str] = set()
        for frame in self.get_stack(limit=limit):
            lineno = frame.f_lineno
            code = frame.f_code
            filename = code.co_filename
            if filename not in checked:
                checked.add(filename)
                linecache.checkcache(filename)
            line = linecache.getline(filename, lineno, frame.f_globals)
            extracted.append((filename, lineno, code.co_name, line))
        exc = None if self._state == _PENDING else self._exception
        if file is None:
            file = sys.stdout
        if not extracted:
            print(f"No stack for {self!r}", file=file)
        elif exc is not None:
            print(f"Traceback for {self!r} (most recent call last):", file=file)
        else:
            print(f"Stack for {self!r} (most recent call last):", file=file)
        traceback.print_list(traceback.StackSummary.from_list(extracted), file=file)
        if exc is not None:
            for line in traceback.format_exception_only(type(exc), exc):
                print(line, file=file, end="")

    # ------------------------------------------------------------------
    # the end of the task

    def _exited(self, value: Any, error: BaseException | None) -> None:
        # Called by the kernel once the coroutine has returned or raised:
        # record the outcome as asyncio's Task would, and keep the error out
        # of the kernel's task tree (the loop owns this task).
        if error is None:
            self._exception = None
            self._log_traceback = False
            if self._throw_exc is not None:
                # cancel() arrived during the last step, too late to be
                # thrown in: asyncio cancels the task anyway.
                self._throw_exc = None
                self._state = _CANCELLED
            else:
                self._result = value
                self._state = _FINISHED
        elif isinstance(error, asyncio.CancelledError):
            self._exception = None
            self._log_traceback = False
            self._cancelled_exc = error
            # The message travels in the exception; like asyncio (whose
            # Future.cancel() without msg runs here), forget the request's.
            self._cancel_message = None
            self._state = _CANCELLED
        else:
            self._exception = error
            self._exception_tb = error.__traceback__
            self._state = _FINISHED
            self._log_traceback = True
            # Only now does the task need a finalizer (to report an
            # exception nobody retrieved): a __del__ on every Task would
            # cost each task a Python call when it is freed (benchmarks
            # spawn, gather).
            self.__class__ = _FailedTask
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                self._loop._interrupt_with(error)
        fn = self._callback0
        if fn is not None:
            # (The first callback runs first: it was added first.)
            self._callback0 = None
            loop = self._loop
            if type(fn) is _FOREIGN_FUTURE_WAKER and not loop._closed:
                # A task awaits this one (aiohttp, for one, awaits a task
                # per request): what the loop's call_soon does with the
                # kernel's waker (see EventLoop.call_soon).
                loop._enqueue(fn)
            elif loop._closed or loop._debug:
                loop.call_soon(fn, self, context=self._context0)
            else:
                # Hot path (every task with a done-callback; benchmarks
                # spawn, gather): Handle(fn, (self,), loop, context) into
                # the ready queue, without call_soon's checks or the
                # constructor call (the fields of Handle.__init__, as in
                # EventLoop.call_soon).
                handle = _new_object(_Handle)
                handle._context = self._context0
                handle._loop = loop
                handle._callback = fn
                handle._args = (self,)
                handle._cancelled = False
                handle._repr = None
                handle._source_traceback = None
                loop._enqueue(handle)
            self._context0 = None
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            call_soon = self._loop.call_soon
            for fn, context in callbacks:
                call_soon(fn, self, context=context)
        return None

    def __repr__(self) -> str:
        info = [self._state.lower()]
        info.append(f"name={self.get_name()!r}")
        info.append(f"coro=<{coroutines._format_coroutine(self.coro)}>")
        if self._state == _FINISHED:
            if self._exception is not None:
                info.append(f"exception={self._exception!r}")
            else:
                info.append(f"result={_short_repr(self._result)}")
        if self._source_traceback:
            # (Debug mode: where the task was created, as asyncio says.)
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return f"<{type(self).__name__} {' '.join(info)}>"


class _FailedTask(Task):
    """A Task that ended with an exception: it reports the exception to the
    loop's handler when freed, unless someone retrieved it."""

    __slots__ = ()

    def __del__(self) -> None:
        if self._log_traceback:
            context: dict[str, Any] = {
                "message": "Task exception was never retrieved",
                "exception": self._exception,
                "future": self,
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)


_FailedTask.__name__ = _FailedTask.__qualname__ = "Task"


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def new_task(
    loop: Any,
    coro: Any,
    *,
    name: object = None,
    context: contextvars.Context | None = None,
    _task: Task | None = None,
    _eager: bool = False,
) -> Task:
    """Start *coro* in a new Task on *loop*'s kernel run: this is the compat
    loop's ``create_task`` (also called directly by the module's
    combinators). *_task*, made with ``Task.__new__``, is the Task to start
    (for ``Task(coro)``). With *_eager* (``eager_start=True``), the task's
    first step runs before this returns, if *loop* is the running loop."""
    if loop._closed:
        loop._check_closed()  # raises asyncio's error
    if _task is not None:
        task = _task
    elif loop._task_factory is not None:
        return loop._create_task_by_factory(coro, name, context)  # type: ignore[no-any-return]
    else:
        task = _new_object(Task)
    if coro.__class__ is not _CoroutineType and not coroutines.iscoroutine(coro):
        # (The message and the type are asyncio's.)
        raise TypeError(f"a coroutine was expected, got {coro!r}")
    task._loop = loop
    task._state = _PENDING
    task._callback0 = None
    task._callbacks = None
    task._asyncio_future_blocking = False
    task._log_destroy_pending = True
    if loop._debug:
        task._source_traceback = traceback.extract_stack(sys._getframe(1))
    if name is None:
        # (Formatted as "Task-<n>" by the name property.)
        name = _next_task_number()
    elif not isinstance(name, str):
        name = str(name)
    if _eager and asyncio.events._get_running_loop() is loop:
        # Registered before its step, as asyncio registers an eager task,
        # so that all_tasks() run in that step finds it.
        _register_task(task)
        loop._kernel_run.spawn_detached(coro, task=task, name=name, context=context, eager=True)
        return task
    loop._kernel_run.spawn_detached(coro, task=task, name=name, context=context)
    _register_task(task)
    return task


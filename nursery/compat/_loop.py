"""The asyncio event loop on the nursery kernel.

:class:`EventLoop` is a full :class:`asyncio.AbstractEventLoop` whose
callbacks, timers and tasks are the kernel's: ``call_soon`` puts the handle
into the kernel's ready queue, ``call_later`` into its deadline heap, and
``create_task`` starts a kernel task. So asyncio code and nursery code
interleave in one FIFO, in exactly asyncio's order, and a nursery cancel scope
or channel works inside an asyncio task.

There are two kinds of loop object:

* a loop of its own (``new_event_loop()``, ``asyncio.run`` with
  :func:`install`): it owns a kernel run and drives it, one kernel tick per
  asyncio loop iteration, from ``run_forever``/``run_until_complete``;
* the loop of a ``nursery.run()``: every kernel run has one, returned by
  ``asyncio.get_running_loop()`` inside it, so stock asyncio code and
  libraries work in nursery programs. The kernel drives it; it is "running"
  for as long as the run is.

The machinery asyncio keeps at the Python level (exception handlers,
executors, async generator hooks, debug mode, ``run_until_complete``) is
stock asyncio's own ``BaseEventLoop``, so it behaves exactly as the running
interpreter's asyncio does. So is its I/O: the loop is an
``asyncio.SelectorEventLoop`` whose selector is the kernel (``_loop_io``),
so sockets, servers, transports, TLS and pipes are asyncio's own.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from asyncio import events
from math import inf
from typing import Any, Callable

from .. import RunFinishedError, lowlevel
from ._asyncio_task import install_asyncio_task
from ._debug import SlowStepReporter
from ._handles import Handle, TimerHandle
from ._loop_io import KernelSelector, KernelSelectorIO
from ._loop_subprocess import SubprocessSignalMixin
from ._task import Task, new_task

_STOCK_EAGER_TASK_FACTORY = getattr(asyncio, "eager_task_factory", None)

__all__ = ["EventLoop", "new_event_loop"]

# How create_task names a task its task factory made: 3.11 and 3.12 accept a
# factory's task without set_name() (with a DeprecationWarning); 3.13 calls
# set_name() unconditionally.
_set_task_name: Callable[[Any, object], None] = getattr(
    asyncio.tasks, "_set_task_name", lambda task, name: task.set_name(name)
)

_FOREIGN_FUTURE_WAKER = lowlevel.KernelRun.FOREIGN_FUTURE_WAKER
_new_object = object.__new__
_copy_context = contextvars.copy_context


class EventLoop(SubprocessSignalMixin, KernelSelectorIO, asyncio.SelectorEventLoop):
    """An asyncio event loop running on the nursery kernel.

    ``clock`` may be a :class:`nursery.testing.MockClock`: asyncio's timers,
    ``asyncio.sleep`` and timeouts then run on virtual time (with autojump, a
    program that waits an hour finishes at once).
    """

    def __init__(self, *, clock: Any = None, _kernel_run: lowlevel.KernelRun | None = None) -> None:
        # (asyncio.Task(coro, loop=self) makes a compat Task from now on.)
        install_asyncio_task()
        if _kernel_run is None:
            _kernel_run = lowlevel.KernelRun.create(clock=clock, asyncio_loop=self)
            self._owns_run = True
        elif clock is not None:
            raise TypeError("a nursery run's loop uses the run's clock")
        else:
            self._owns_run = False
        self._kernel_run = _kernel_run
        # Hot paths: call_soon and timer expiry append straight to the
        # kernel's ready queue.
        self._enqueue = _kernel_run.enqueue
        self._add_timer = _kernel_run.add_timer
        #: SystemExit/KeyboardInterrupt raised by a callback or a task, to be
        #: raised from run_forever once the current kernel tick is over.
        self._interrupt: BaseException | None = None
        # (Set before BaseEventLoop.__init__, which calls set_debug. Never
        # look the attribute up through self.__dict__: that makes the
        # instance keep a real dict, and every attribute read of the loop
        # on the hot paths slower: benchmark spawn, +5% instructions.)
        self._step_reporter: SlowStepReporter | None = None
        # asyncio's selector loop, with a view of the kernel's fd callbacks
        # for its selector (see _loop_io).
        super().__init__(KernelSelector(_kernel_run))
        self.time = _kernel_run.time  # type: ignore[method-assign]

    # ------------------------------------------------------------------
    # callbacks and timers

    @property
    def _ready(self) -> Any:
        # asyncio's queue of ready handles, which code and tests inspect
        # (``while loop._ready: ...``): here, the kernel's ready queue.
        return self._kernel_run.ready_queue

    @_ready.setter
    def _ready(self, value: Any) -> None:
        # (BaseEventLoop.__init__ sets its own deque: not used here.)
        pass

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> Handle:
        # (type(), not .__class__: callbacks come in many types, and the
        # interpreter specializes type() whatever the type.)
        if type(callback) is _FOREIGN_FUTURE_WAKER and not self._closed:
            # A future a kernel task awaits is done: its waker goes into the
            # ready queue where the handle would have gone, and the run
            # steps the task there (asyncio's Task is stepped by that
            # handle). Futures ignore what call_soon returns, and no one
            # else holds such a callback.
            self._enqueue(callback)
            return None  # type: ignore[return-value]
        if self._closed or self._debug:
            self._check_closed()
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle = Handle(callback, args, self, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]
            self._enqueue(handle)
            return handle
        # Hot path (every callback a stock Task or future schedules: on
        # 3.12+ each wake-up of a stock Task, such as aiohttp's per-request
        # task): Handle(callback, args, self, context) without the
        # constructor call and the closed-check call (the fields of
        # Handle.__init__, as in Task._exited).
        handle = _new_object(Handle)
        handle._context = _copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        self._enqueue(handle)
        return handle

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed or self._debug:
            self._check_closed()
            self._check_thread()
            self._check_callback(callback, "call_at")
            timer = TimerHandle(when, callback, args, self, context)
            if timer._source_traceback:
                del timer._source_traceback[-1]
        else:
            # Hot path (asyncio.sleep, timeout, wait_for, call_later:
            # benchmark timeouts): TimerHandle(when, callback, args, self,
            # context) without its three constructors (asyncio's call
            # loop.get_debug()). The fields are asyncio's (3.11-3.13).
            timer = _new_object(TimerHandle)
            timer._context = _copy_context() if context is None else context
            timer._loop = self
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._repr = None
            timer._source_traceback = None
            timer._when = when
            timer._timer_seq = 0
        self._add_timer(timer, when)
        timer._scheduled = True
        return timer

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        timer = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        if handle._scheduled:
            handle._scheduled = False
            self._kernel_run.remove_timer(handle)

    def call_soon_threadsafe(
        self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> Handle:
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        try:
            # Into the ready queue at once (not at the next tick), so that
            # it runs before a call_soon made after it, as in asyncio.
            self._kernel_run.enqueue_threadsafe(handle)
        except RunFinishedError:
            raise RuntimeError("Event loop is closed") from None
        return handle

    def _write_to_self(self) -> None:
        self._kernel_run.wakeup_threadsafe()

    # ------------------------------------------------------------------
    # tasks

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        # Task steps are timed by an instrument, installed only in debug
        # mode (an instrument costs every step a call).
        reporter = self._step_reporter
        if enabled and reporter is None:
            self._step_reporter = SlowStepReporter(self)
            self._kernel_run.add_instrument(self._step_reporter)
        elif not enabled and reporter is not None:
            self._step_reporter = None
            self._kernel_run.remove_instrument(reporter)

    # Hot path (every create_task; benchmarks spawn, gather): the method is
    # new_task itself, which hands over to _create_task_by_factory when a
    # task factory is set.
    create_task = new_task

    def _create_task_by_factory(self, coro: Any, name: object, context: contextvars.Context | None) -> Any:
        if self._task_factory is _STOCK_EAGER_TASK_FACTORY:
            # asyncio.eager_task_factory (3.12+) was made with stock's C Task
            # class before compat existed: here it means an eager compat Task.
            return new_task(self, coro, name=name, context=context, _task=Task.__new__(Task), _eager=True)
        if context is None:
            task = self._task_factory(self, coro)  # type: ignore[misc]
        else:
            task = self._task_factory(self, coro, context=context)  # type: ignore[misc]
        _set_task_name(task, name)
        return task

    # ------------------------------------------------------------------
    # running

    def _interrupt_with(self, exc: BaseException) -> None:
        if self._interrupt is None:
            self._interrupt = exc

    def _run_once(self) -> None:
        # One asyncio loop iteration is one kernel tick: wait for I/O or the
        # next deadline (not at all if something is ready or we are
        # stopping), then run what is ready.
        self._kernel_run.step(0 if self._stopping else inf)
        exc = self._interrupt
        if exc is not None:
            self._interrupt = None
            raise exc

    def run_forever(self) -> None:
        if not self._owns_run:
            self._check_closed()
            raise RuntimeError("This event loop is already running")
        self._check_closed()
        self._check_running()
        self._kernel_run.enter()
        try:
            super().run_forever()
        finally:
            self._kernel_run.leave()

    def close(self) -> None:
        if not self._owns_run and self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        was_closed = self._closed
        super().close()
        if self._owns_run and not was_closed:
            self._kernel_run.abandon()

    # ------------------------------------------------------------------
    # the loop of a nursery.run()

    def _attach(self) -> None:
        # The kernel run starts driving this thread.
        self._thread_id = threading.get_ident()
        events._set_running_loop(self)

    def _detach(self) -> None:
        # The kernel run is over: so is its loop.
        events._set_running_loop(None)
        self._thread_id = None
        if not self._closed:
            executor = self._default_executor
            super().close()
            if executor is not None:
                # As asyncio.run() does, wait for the default executor's
                # threads (run_in_executor, to_thread) before the run
                # returns, so that none outlives it.
                executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )


def new_event_loop(*, clock: Any = None) -> EventLoop:
    """A new :class:`EventLoop` with a kernel run of its own (what
    ``asyncio.new_event_loop()`` returns once :func:`install` was called).
    ``clock`` may be a :class:`nursery.testing.MockClock`."""
    return EventLoop(clock=clock)

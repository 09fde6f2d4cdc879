"""The run loop.

One ``Runner`` per run. It owns the ready queue (a FIFO of tasks to step and
plain callbacks to call), the deadline registry, the I/O backend and the
queue that other threads post callbacks to. Everything is driven by
``tick(max_wait)``: wait for I/O (not at all if something is ready), fire due
deadlines, then run everything that was ready when the batch started.
``nursery.run`` calls ``tick`` until the root task exits; a guest run calls
the same pieces from a foreign event loop; the compat event loop will drive
the same ticks.

Task steps are run by ``_run_batch``, written for speed: it is the single
hottest function in the library (benchmarks: switch, pingpong, spawn,
fan-in). Instruments and seeded random scheduling cost it a truth test each
when they are off.
"""

from __future__ import annotations

import contextvars
import random
from collections import deque
from contextvars import copy_context
from math import inf
from typing import Any, Callable

import outcome

from ._cancel_scope import CancelScope, _ACTIVE
from ._clock import Clock, SystemClock
from ._coroutines import coroutine_or_error
from ._exceptions import Cancelled, NurseryInternalError, RunFinishedError
from ._instruments import Instruments
from ._io_common import make_io_manager
from ._ki import SigintHandler
from ._mock_clock import MockClock
from ._nursery import open_nursery
from ._state import ASYNCIO_BRIDGE, STATE, current_runner, no_run_error
from ._task import Task
from ._timers import Timers
from ._traps import _SHIELDED, Abort, raise_cancel, wait_task_rescheduled
from ._wakeup import WakeupSocketpair

__all__ = ["Runner", "run", "Callback"]


class _Aborting:
    # Stands in for a task's abort function while that function runs, so
    # that a cancellation delivered from inside it is not delivered twice.
    __slots__ = ()


_ABORTING = _Aborting()


_new_object = object.__new__


class ForeignFutureWait:
    """A task parked on an asyncio future: the future's done-callback.

    Calling it (with the future) reschedules the task, once, unless the wait
    was aborted meanwhile. An asyncio loop on the kernel may instead put the
    wait itself into the ready queue when the future schedules it (in
    ``call_soon``), where a handle would have gone: the run then steps the
    task in its place, which is where asyncio's own Task would be stepped.
    """

    # (Made by Runner._run_batch, which sets both fields.)
    __slots__ = ("_task", "_future")

    def __call__(self, _: Any) -> None:
        task = self._task
        if task is not None:
            self._task = None
            # Runner.reschedule(task), inline (hot path: every wake-up by
            # an asyncio future; aiohttp takes two per request). Its check
            # holds: _abort_func is this wait until it is aborted, and an
            # abort clears _task.
            task._abort_func = None
            task._send_value = None
            runner = task._runner
            runner.ready.append(task)
            if runner.instruments and "task_scheduled" in runner.instruments:
                runner.instruments.call("task_scheduled", task)

    def abort(self, raise_cancel: Any) -> Abort:
        future = self._future
        if future.done():
            # The future has finished, so this wait is on its way to the
            # ready queue (futures schedule their callbacks as they finish):
            # the task wakes with the future's outcome, and the cancellation
            # comes at its next checkpoint. (asyncio's Task, too, keeps a
            # finished future's outcome and throws the CancelledError in
            # at its next step.)
            return Abort.FAILED
        self._task = None
        future.remove_done_callback(self)
        future.cancel()
        if not future.done():
            # An asyncio Task would read the outcome when the future
            # finishes; the task no longer will, so read it here, or a
            # future that finishes with an error after cancel() (gather's)
            # is reported as "exception was never retrieved".
            future.add_done_callback(_retrieve_outcome)
        return Abort.SUCCEEDED


def _retrieve_outcome(future: Any) -> None:
    if not future.cancelled():
        future.exception()


class Callback:
    """A plain callback in the ready queue, as made by ``lowlevel.call_soon``.

    Anything with a ``_run()`` method may sit in the ready queue; this is the
    kernel's own kind. ``cancel()`` stops it from running if it has not run
    yet.
    """

    __slots__ = ("_fn", "_args", "_context", "_cancelled")

    def __init__(self, fn: Callable[..., Any], args: tuple, context: contextvars.Context | None) -> None:
        self._fn = fn
        self._args = args
        self._context = context
        self._cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (if it has not run yet)."""
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        if self._cancelled:
            return
        if self._context is None:
            self._fn(*self._args)
        else:
            self._context.run(self._fn, *self._args)

    def __repr__(self) -> str:
        return f"<Callback {self._fn!r}{' cancelled' if self._cancelled else ''}>"


class Runner:
    __slots__ = (
        "clock",
        "timers",
        "ready",
        "current_task",
        "io",
        "_wakeup",
        "threadsafe_queue",
        "instruments",
        "_random",
        "_mock_clock",
        "init_task",
        "main_task",
        "system_nursery",
        "root_scope",
        "main_outcome",
        "done",
        "n_tasks",
        "ki_pending",
        "ki_received",
        "_crashes",
        "idle_waiters",
        "run_vars",
        "system_context",
        "closed",
        "asyncio_loop",
        "asyncio_current_tasks",
        "task_classes",
        "kernel_run",
        "__weakref__",
    )

    def __init__(
        self,
        clock: Clock | None = None,
        instruments: Any = (),
        random_seed: int | None = None,
        asyncio_loop: Any = None,
    ) -> None:
        if clock is None:
            clock = SystemClock()
        elif not isinstance(clock, Clock):
            raise TypeError(f"clock must be a nursery Clock (e.g. MockClock), got {clock!r}")
        self.clock = clock
        self.timers = Timers()
        self.ready: deque[Any] = deque()
        self.current_task: Task | None = None
        self._wakeup = WakeupSocketpair()
        self.io = make_io_manager(self, self._wakeup)
        self.threadsafe_queue: deque[tuple[Callable[..., Any], tuple]] = deque()
        self.instruments = Instruments()
        for instrument in instruments:
            self.instruments.add_instrument(instrument)
        self._random = None if random_seed is None else random.Random(random_seed)
        self._mock_clock = clock if isinstance(clock, MockClock) else None
        self.init_task: Task | None = None
        self.main_task: Task | None = None
        self.system_nursery = None
        self.root_scope: CancelScope | None = None
        self.main_outcome: outcome.Outcome | None = None
        self.done = False
        self.n_tasks = 0
        self.ki_pending = False
        self.ki_received = False
        self._crashes: list[BaseException] = []
        # Tasks in wait_all_tasks_blocked(), with their cushions.
        self.idle_waiters: dict[Task, float] = {}
        self.run_vars: dict[Any, Any] = {}
        # System tasks run in a copy of the context run() was called in,
        # never in the context of whichever task happened to spawn them.
        self.system_context = contextvars.copy_context()
        self.closed = False
        # The run's asyncio event loop (nursery.compat's), made by the layer
        # above through ASYNCIO_BRIDGE, and asyncio's registry of running
        # tasks, which the run loop keeps up to date.
        self.kernel_run = None  # its KernelRun, made on demand
        self.asyncio_loop = ASYNCIO_BRIDGE.make_loop(self) if asyncio_loop is None else asyncio_loop
        self.asyncio_current_tasks = ASYNCIO_BRIDGE.current_tasks
        # The classes of the tasks spawned so far (Task and the subclasses
        # of layers above): the run loop tells a task from a ready item by
        # its class, with a set lookup rather than isinstance() (hot path:
        # every step of a compat task and every asyncio callback).
        self.task_classes: set[type] = {Task}

    # ------------------------------------------------------------------
    # spawning, scheduling, cancelling

    def spawn(
        self,
        async_fn: Any,
        args: tuple,
        nursery: Any,
        name: Any,
        *,
        task_status: Any = None,
        system_task: bool = False,
        context: contextvars.Context | None = None,
        coro: Any = None,
        task: Task | None = None,
    ) -> Task:
        if coro is None:
            if task_status is None:
                coro = coroutine_or_error(async_fn, args, "start_soon()")
            else:
                coro = coroutine_or_error(async_fn, args, "start()", {"task_status": task_status})
        if context is None:
            context = self.system_context.copy() if system_task else copy_context()
        if task is None:
            task = Task(coro, context, self, nursery, async_fn if name is None else name)
        else:
            # An instance of a Task subclass made (with __new__) by the layer
            # above, which has its own constructor signature.
            Task.__init__(task, coro, context, self, nursery, async_fn if name is None else name)
            self.task_classes.add(task.__class__)
        nursery._children[task] = None
        self.n_tasks += 1
        self.ready.append(task)
        if self.instruments:
            if "task_spawned" in self.instruments:
                self.instruments.call("task_spawned", task)
            if "task_scheduled" in self.instruments:
                self.instruments.call("task_scheduled", task)
        return task

    # Hot path (every wake-up of a blocked task). Benchmark: pingpong.
    def reschedule(self, task: Task, value: Any = None) -> None:
        if task._abort_func is None:
            raise RuntimeError(f"can't reschedule {task!r}: it is not blocked in wait_task_rescheduled()")
        task._abort_func = None
        task._send_value = value
        self.ready.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def reschedule_exc(self, task: Task, exc: BaseException) -> None:
        if task._abort_func is None:
            raise RuntimeError(f"can't reschedule {task!r}: it is not blocked in wait_task_rescheduled()")
        task._abort_func = None
        if task._throw_exc is None:
            # (A pending asyncio-style cancellation wins, as in asyncio.)
            task._throw_exc = exc
        self.ready.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def _try_abort(self, task: Task) -> bool:
        """Ask the abort function of blocked *task* to abandon its wait.
        True: the task no longer waits, and the caller must queue it (with
        the exception it is to get in _throw_exc). False: the wait goes on
        (Abort.FAILED), or the abort function rescheduled the task itself."""
        abort = task._abort_func
        task._abort_func = _ABORTING
        try:
            if abort.__class__ is ForeignFutureWait:
                # (A wait on an asyncio future is its own abort function's
                # holder: calling it would wake the task; see
                # _unusual_yield.)
                result = abort.abort(raise_cancel)
            else:
                result = abort(raise_cancel)
        except BaseException as exc:
            self.crash(NurseryInternalError(f"abort function {abort!r} raised"), exc)
            result = None
        else:
            if result is not Abort.SUCCEEDED and result is not Abort.FAILED:
                self.crash(NurseryInternalError(f"abort function {abort!r} returned {result!r}, not an Abort"), None)
                result = None
        if task._abort_func is not _ABORTING:
            return False
        if result is Abort.FAILED:
            task._abort_func = abort
            return False
        # A broken abort function (result None here) crashed the run; its
        # wait is abandoned as if it had succeeded, so that the task unwinds
        # and the run finishes instead of hanging with the task blocked.
        task._abort_func = None
        return True

    def _queue_unblocked(self, task: Task) -> None:
        self.ready.append(task)
        if self.instruments and "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def deliver_cancel(self, task: Task) -> None:
        """Offer a cancellation to *task* if it is blocked and its innermost
        scope is cancelled."""
        abort = task._abort_func
        if abort is None or abort is _ABORTING or not task._cancel_scope._effectively_cancelled:
            return
        if self._try_abort(task):
            if task._throw_exc is None:
                # (A pending asyncio-style cancellation goes first: the
                # scope's Cancelled comes again at the next checkpoint, but
                # an edge-triggered request is delivered only once.)
                task._throw_exc = Cancelled._create()
            self._queue_unblocked(task)

    def cancel_edge(self, task: Task, exc: BaseException) -> None:
        """asyncio-style cancellation: throw *exc* into *task* once, at its
        next suspension (now, if it is blocked)."""
        if task._throw_exc is not None:
            # Something is already on its way in (a Cancelled, or an
            # earlier request): that one unwinds the task; asyncio, too,
            # delivers a single CancelledError for repeated cancel() calls.
            return
        task._throw_exc = exc
        abort = task._abort_func
        if abort is not None and abort is not _ABORTING:
            self._deliver_edge_cancel(task)
        # Otherwise the task is running or ready: the run loop throws
        # _throw_exc at its next step, or (if it blocks first) right after
        # it blocks, through _deliver_edge_cancel.

    def _deliver_edge_cancel(self, task: Task) -> None:
        wait = task._abort_func
        if wait.__class__ is ForeignFutureWait:
            # asyncio's Task.cancel() on a task waiting for a future cancels
            # that future and lets the task wake up as the future completes
            # (so it sees the future's outcome: usually its CancelledError,
            # but a task that was awaited may still return or raise
            # something else). Only if the future cannot be cancelled is the
            # CancelledError thrown in.
            exc = task._throw_exc
            if wait._future.cancel(msg=exc.args[0] if exc.args else None):
                task._throw_exc = None
                return
        # On Abort.FAILED, _throw_exc stays set and is thrown in (instead of
        # the value) when the waker reschedules the task.
        if self._try_abort(task):
            self._queue_unblocked(task)

    def call_soon(self, fn: Callable[..., Any], args: tuple, context: contextvars.Context | None) -> Callback:
        callback = Callback(fn, args, context)
        self.ready.append(callback)
        return callback

    def run_sync_soon_threadsafe(self, fn: Callable[..., Any], args: tuple) -> None:
        if self.closed:
            raise RunFinishedError("this run has finished")
        self.threadsafe_queue.append((fn, args))
        self.io.wakeup_threadsafe()

    def force_wakeup(self) -> None:
        self.io.wakeup_threadsafe()

    def crash(self, error: BaseException, cause: BaseException | None) -> None:
        """Something that must never fail failed: cancel everything and make
        run() raise ``error`` (with ``cause`` attached)."""
        if cause is not None:
            error.__cause__ = cause
        self._crashes.append(error)
        if self.root_scope is not None:
            self.root_scope.cancel()

    # ------------------------------------------------------------------
    # task exit

    def _task_exited(self, task: Task, value: Any, error: BaseException | None) -> None:
        # Marks the task done (Task.done()); the bound send is not needed
        # any more.
        task._coro_send = None
        if type(task) is not Task:
            # A task class of a layer above (nursery.compat's Task) keeps
            # its own outcome and may take the error out of the tree.
            error = task._exited(value, error)
        if error is not None and error.__traceback__ is not None:
            # Drop this frame (the run loop) from the traceback.
            error = error.with_traceback(error.__traceback__.tb_next)
        nursery = task._parent_nursery
        if nursery is not None and task._cancel_scope is not nursery._cancel_scope:
            error = self._close_leaked_scopes(task, nursery, error)
        self.n_tasks -= 1
        if "task_exited" in self.instruments:
            self.instruments.call("task_exited", task)
        if task is self.main_task:
            self.main_outcome = outcome.Value(value) if error is None else outcome.Error(error)
            nursery._child_finished(task, None)
            self.system_nursery._cancel_scope.cancel()
        elif task is self.init_task:
            if error is not None:
                self.crash(NurseryInternalError("the run's root task failed"), error)
            self.done = True
        elif nursery is self.system_nursery:
            if error is not None:
                if not isinstance(error, Cancelled):
                    self.crash(NurseryInternalError(f"system task {task.name!r} crashed"), error)
                nursery._child_finished(task, None)
            else:
                # Hot path (every asyncio task on a compat loop is a system
                # task; benchmarks spawn, gather): _child_finished inline.
                children = nursery._children
                del children[task]
                if not children:
                    nursery._check_closed()
        else:
            nursery._child_finished(task, error)

    def _close_leaked_scopes(self, task: Task, nursery: Any, error: BaseException | None) -> BaseException:
        scope = task._cancel_scope
        while scope is not None and scope is not nursery._cancel_scope and scope._state == _ACTIVE:
            parent = scope._parent
            scope._detach()
            scope = parent
        task._cancel_scope = nursery._cancel_scope
        leak = RuntimeError(
            f"task {task.name!r} exited with a cancel scope or nursery still open "
            "(probably held across a 'yield' in an async generator that was never closed)"
        )
        leak.__context__ = error
        return leak

    # ------------------------------------------------------------------
    # the loop

    def _unusual_yield(self, task: Task, message: Any) -> None:
        # Anything but a checkpoint, an abort function or an asyncio future
        # (those are handled in _run_batch).
        blocking = getattr(message, "_asyncio_future_blocking", None)
        if message is _SHIELDED:
            self.ready.append(task)
        elif blocking is not None:
            task._throw_exc = RuntimeError(
                f"yield was used instead of yield from in task {task.name!r} with {message!r}"
            )
            self.ready.append(task)
        else:
            task._throw_exc = TypeError(
                f"task {task.name!r} yielded {message!r} to the nursery kernel, which "
                "does not know what to do with it. This usually means it awaited "
                "something from another async library (trio, curio, ...) that "
                "cannot run under nursery"
            )
            self.ready.append(task)
        # Like every other way of becoming ready, this is reported.
        if "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def step_eagerly(self, task: Task) -> None:
        """Run the first step of *task*, which was just queued (it is the
        last item in the ready queue), right now: inside the step or
        callback that started it, as asyncio's eager tasks start. Whatever
        that step queues goes where any step's would; afterwards the
        caller's task is the current one again."""
        ready = self.ready
        if not ready or ready[-1] is not task:
            raise RuntimeError(f"{task!r} is not the task queued last; only a task just started can be stepped eagerly")
        # First in the queue, and a batch of one: the same step as any
        # other (one place decides what a task's yield means), taken now.
        ready.pop()
        ready.appendleft(task)
        caller = self.current_task
        current_tasks = self.asyncio_current_tasks
        loop = self.asyncio_loop
        caller_entry = current_tasks.get(loop)
        try:
            self._run_batch(first_only=True)
        finally:
            self.current_task = caller
            if caller_entry is not None:
                current_tasks[loop] = caller_entry

    def _run_batch(self, drain: bool = False, first_only: bool = False) -> None:
        # Hot path: see the module docstring. Locals instead of attribute
        # lookups; the task step is inlined rather than a method call; an
        # instrument costs one truth test of an empty dict when none is
        # installed. With *drain*, keep running batches for as long as
        # nothing but ready tasks needs attention (see run_until_done).
        # With *first_only*, step just the first item (see step_eagerly).
        ready = self.ready
        popleft = ready.popleft
        append = ready.append
        task_class = Task
        type_of = type
        task_classes = self.task_classes
        shielded = _SHIELDED
        new_object = _new_object
        future_wait = ForeignFutureWait
        instruments = self.instruments
        io_waiters = self.io._waiters
        queue = self.threadsafe_queue
        timers = self.timers
        current_time = self.clock.current_time
        # asyncio.current_task() reads this dict (asyncio's own registry of
        # the task each loop is running): keep it naming the kernel task
        # being stepped, and empty while a callback runs (a stock asyncio
        # Task, stepped from a callback, refuses to enter otherwise).
        current_tasks = self.asyncio_current_tasks
        loop = self.asyncio_loop
        entered = False
        while True:
            if first_only:
                count = 1
            else:
                if self._random is not None:
                    batch = list(ready)
                    self._random.shuffle(batch)
                    ready.clear()
                    ready.extend(batch)
                count = len(ready)
            for _ in range(count):
                task = popleft()
                # (type(), not .__class__: this site sees tasks, handles and
                # wakers, and an attribute read on that many types is not
                # specialized by the interpreter; type() is, whatever the
                # type. A set lookup only for what is not a plain kernel task.)
                cls = type_of(task)
                if cls is not task_class and cls not in task_classes:
                    if cls is future_wait:
                        # A finished future's waker, queued by the asyncio
                        # loop in the place of a handle: step its task now
                        # (what the waker's call would do, without a call;
                        # hot path: streams, aiohttp).
                        wait = task
                        task = wait._task
                        if task is None:
                            continue
                        wait._task = None
                        task._abort_func = None
                        task._send_value = None
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    else:
                        self.current_task = None
                        if entered:
                            del current_tasks[loop]
                            entered = False
                        try:
                            task._run()
                        except BaseException as exc:
                            self.crash(NurseryInternalError(f"callback {task!r} raised"), exc)
                        continue
                self.current_task = task
                current_tasks[loop] = task
                entered = True
                if instruments and "before_task_step" in instruments:
                    instruments.call("before_task_step", task)
                exc = task._throw_exc
                try:
                    if exc is None:
                        message = task.context.run(task._coro_send, task._send_value)
                    else:
                        task._throw_exc = None
                        message = task.context.run(task.coro.throw, exc)
                except StopIteration as stop:
                    self._task_exited(task, stop.value, None)
                except BaseException as error:
                    self._task_exited(task, None, error)
                else:
                    if message is None:
                        # A checkpoint.
                        if task._cancel_scope._effectively_cancelled and task._throw_exc is None:
                            task._throw_exc = Cancelled._create()
                        append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif message is shielded:
                        # A cancel-shielded checkpoint (every socket send or
                        # receive that did not block; benchmarks echo_tcp,
                        # echo_bulk): inline, like the plain checkpoint.
                        append(task)
                        if instruments and "task_scheduled" in instruments:
                            instruments.call("task_scheduled", task)
                    elif callable(message):
                        # wait_task_rescheduled(): the message is the abort function.
                        task._abort_func = message
                        if task._cancel_scope._effectively_cancelled:
                            self.deliver_cancel(task)
                        elif task._throw_exc is not None:
                            # The task cancelled itself asyncio-style
                            # (Task.cancel() on the running task).
                            self._deliver_edge_cancel(task)
                    elif getattr(message, "_asyncio_future_blocking", None):
                        # An asyncio future (or anything following its
                        # protocol): park the task until it is done, as
                        # asyncio's Task would. Inline, not a method (hot
                        # path: every await of an asyncio future on compat's
                        # loop; aiohttp awaits two per request). The wait
                        # stands in _abort_func for its abort method (no
                        # bound method made per wait; _try_abort knows).
                        message._asyncio_future_blocking = False
                        wait = new_object(future_wait)
                        wait._task = task
                        wait._future = message
                        # (With the task's context, as asyncio's Task
                        # passes its own: the future need not copy the
                        # current one for a callback that ignores it.)
                        message.add_done_callback(wait, context=task.context)
                        task._abort_func = wait
                        if task._cancel_scope._effectively_cancelled:
                            self.deliver_cancel(task)
                        elif task._throw_exc is not None:
                            self._deliver_edge_cancel(task)
                    else:
                        self._unusual_yield(task, message)
                if instruments and "after_task_step" in instruments:
                    instruments.call("after_task_step", task)
            if not drain or not ready or io_waiters or queue or self.ki_pending or self.done:
                break
            heap = timers._heap
            if heap and heap[0][0] <= current_time():
                break
        # A traceback kept by a task or future (an exception stored in an
        # asyncio Task) keeps its frames' callers alive, this frame too:
        # its last item must not be kept with it (asyncio's run loop, too,
        # drops its last handle; a stock Task nobody holds is then freed,
        # and "exception was never retrieved" reported, right away).
        task = None
        self.current_task = None
        if entered:
            del current_tasks[loop]

    def compute_timeout(self, max_wait: float) -> tuple[float, int]:
        """How long the next I/O wait may last, and why it might end early:
        0 (a deadline or nothing special), 1 (a wait_all_tasks_blocked
        cushion), 2 (the mock clock's autojump threshold)."""
        if self.ready or self.threadsafe_queue or self.ki_pending:
            return 0.0, 0
        deadline = self.timers.next_deadline()
        timeout = max_wait
        if deadline != inf:
            timeout = min(timeout, max(0.0, self.clock.deadline_to_sleep_time(deadline)))
        idle = 0
        if self.idle_waiters:
            cushion = min(self.idle_waiters.values())
            if cushion < timeout:
                timeout = cushion
                idle = 1
        mock = self._mock_clock
        # Autojump only when there is a deadline to jump to: otherwise a
        # threshold of 0 would make the loop spin without ever sleeping (and
        # never let a wait_all_tasks_blocked cushion elapse).
        if mock is not None and deadline != inf and mock._autojump_threshold < timeout:
            timeout = mock._autojump_threshold
            idle = 2
        return timeout, idle

    def tick(self, max_wait: float = inf) -> None:
        """One turn of the loop: wait up to *max_wait* seconds for something
        to happen (less if a deadline is due; not at all if a task is ready),
        then run everything that is ready."""
        timeout, idle = self.compute_timeout(max_wait)
        if timeout > 0 or self.io.busy:
            if "before_io_wait" in self.instruments:
                self.instruments.call("before_io_wait", timeout)
            events = self.io.get_events(timeout)
            if "after_io_wait" in self.instruments:
                self.instruments.call("after_io_wait", timeout)
            self.process_events(events, idle)
        else:
            self.process_events((), idle)

    def run_until_done(self) -> None:
        """Tick until the root task has exited."""
        # Hot path (every benchmark): while tasks are ready and nothing else
        # needs attention (no fd to poll, no deadline due, nothing from other
        # threads or signals), a tick is just a batch, so go straight to it:
        # on ping-pong workloads every batch holds one task, and the full
        # tick's bookkeeping would cost as much as the step.
        ready = self.ready
        io_waiters = self.io._waiters
        timers = self.timers
        queue = self.threadsafe_queue
        current_time = self.clock.current_time
        tick = self.tick
        while not self.done:
            if ready and not io_waiters and not queue and not self.ki_pending:
                heap = timers._heap
                if heap and heap[0][0] <= current_time():
                    timers.expire(current_time())
                self._run_batch(True)
            else:
                tick()

    def process_events(self, events: Any, idle: int) -> None:
        """Everything a tick does after the I/O wait: wake I/O waiters, take
        in callbacks from other threads, deliver Ctrl-C, fire deadlines,
        wake idle waiters, then run the batch."""
        if events:
            self.io.process_events(events)
        queue = self.threadsafe_queue
        while queue:
            fn, args = queue.popleft()
            self.ready.append(Callback(fn, args, self.system_context))
        if self.ki_pending:
            self._deliver_ki()
        timers = self.timers
        if timers._heap:
            timers.expire(self.clock.current_time())
        if idle and not self.ready:
            if idle == 1:
                self._wake_idle_waiters()
            else:
                self._mock_clock._autojump(self)
        self._run_batch()

    def _wake_idle_waiters(self) -> None:
        cushion = min(self.idle_waiters.values())
        for task, its_cushion in list(self.idle_waiters.items()):
            if its_cushion == cushion:
                del self.idle_waiters[task]
                self.reschedule(task)

    def _deliver_ki(self) -> None:
        self.ki_pending = False
        self.ki_received = True
        if self.root_scope is not None:
            self.root_scope.cancel()

    def ki_handler(self, signum: int, frame: Any) -> None:
        # Runs in the main thread between two bytecodes, possibly in the
        # middle of kernel code: only set a flag and wake the loop. The loop
        # turns it into a cancellation at the start of its next tick, when
        # no kernel state is half-updated.
        #
        # A second Ctrl-C is the user insisting (a task spins without ever
        # reaching a checkpoint, or cleanup hangs): raise KeyboardInterrupt
        # where we are, as Python's default handler does. If that lands in a
        # task, the task fails with it and the run unwinds normally; if it
        # lands in the kernel, the run ends at once, and its state no longer
        # matters.
        if self.ki_pending or self.ki_received:
            raise KeyboardInterrupt
        self.ki_pending = True
        self.io.wakeup_threadsafe()

    # ------------------------------------------------------------------
    # start and finish

    async def _init(self, main_coro: Any, main_name: Any) -> None:
        async with open_nursery() as system_nursery:
            self.system_nursery = system_nursery
            self.main_task = self.spawn(None, (), system_nursery, main_name, coro=main_coro)

    def start(self, async_fn: Any, args: tuple, where: str = "nursery.run()") -> None:
        """Set up the run: make the root task, which opens the system nursery
        and starts the main task, ``async_fn(*args)``, in it."""
        main_coro = coroutine_or_error(async_fn, args, where)
        if "before_run" in self.instruments:
            self.instruments.call("before_run")
        self.clock.start_clock()
        init_coro = self._init(main_coro, async_fn)
        task = Task(init_coro, self.system_context.copy(), self, None, "<init>")
        root = CancelScope()
        root._state = _ACTIVE
        root._owner = task
        root._runner = self
        task._cancel_scope = root
        self.root_scope = root
        self.init_task = task
        self.n_tasks += 1
        # Instruments see the root task like any other: spawned, scheduled,
        # ..., exited (so a live-task count never goes negative).
        if "task_spawned" in self.instruments:
            self.instruments.call("task_spawned", task)
        self.ready.append(task)
        if "task_scheduled" in self.instruments:
            self.instruments.call("task_scheduled", task)

    def finish(self) -> None:
        """Release the run's resources; called once, however the run ended."""
        if self.closed:
            return
        self.closed = True
        try:
            if "after_run" in self.instruments:
                self.instruments.call("after_run")
        finally:
            self.io.close()
            self._wakeup.stop_waking_on_signals()
            self._wakeup.close()

    def outcome(self) -> outcome.Outcome:
        """The run's final outcome, once ``done``."""
        if self._crashes:
            error = self._crashes[0]
            if self.main_outcome is not None and isinstance(self.main_outcome, outcome.Error):
                error.__context__ = self.main_outcome.error
            return outcome.Error(error)
        if self.ki_received:
            ki = KeyboardInterrupt()
            if isinstance(self.main_outcome, outcome.Error) and not _only_cancelled(self.main_outcome.error):
                ki.__context__ = self.main_outcome.error
            return outcome.Error(ki)
        assert self.main_outcome is not None
        return self.main_outcome


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(e) for e in exc.exceptions)
    return False


def run(
    async_fn: Callable[..., Any],
    *args: Any,
    clock: Clock | None = None,
    instruments: Any = (),
    random_seed: int | None = None,
) -> Any:
    """Run ``async_fn(*args)`` in a new kernel in this thread, and return what
    it returns (or raise what it raises) once it and every task it started
    have finished.

    ``clock`` replaces the system clock (see :class:`nursery.testing.MockClock`);
    ``instruments`` are installed for the whole run; ``random_seed``, if given,
    runs each batch of ready tasks in a shuffled order instead of FIFO, the same
    order for the same seed, to shake out code that depends on scheduling
    order.

    Ctrl-C cancels every task; once their cleanup has run, ``run`` raises
    :exc:`KeyboardInterrupt`.
    """
    if STATE.runner is not None:
        raise RuntimeError(
            "nursery.run() was called from inside a run in the same thread; runs "
            "cannot be nested. Call the async function directly with 'await', or "
            "start it in a nursery"
        )
    runner = Runner(clock=clock, instruments=instruments, random_seed=random_seed)
    sigint = SigintHandler(runner)
    STATE.runner = runner
    ASYNCIO_BRIDGE.enter(runner)
    try:
        runner.start(async_fn, args)
        runner._wakeup.wake_on_signals()
        with sigint:
            runner.run_until_done()
    finally:
        STATE.runner = None
        ASYNCIO_BRIDGE.leave(runner)
        runner.finish()
    if runner.ki_pending and not runner.ki_received:
        raise KeyboardInterrupt
    return runner.outcome().unwrap()


# ----------------------------------------------------------------------
# accessors for the public API


def current_task() -> Task:
    """The task running this code."""
    runner = current_runner("current_task()")
    task = runner.current_task
    if task is None:
        raise RuntimeError("current_task() was called outside of any task (in a callback?)")
    return task


def current_root_task() -> Task:
    """The run's root task (the one that runs the system nursery)."""
    return current_runner("current_root_task()").init_task


def current_clock() -> Clock:
    """The clock of the current run."""
    return current_runner("current_clock()").clock


def current_time() -> float:
    """The current time of the run's clock, in seconds. Not a checkpoint."""
    runner = STATE.runner
    if runner is None:
        raise no_run_error("current_time()")
    return runner.clock.current_time()


def in_run() -> bool:
    """Whether a nursery run is active in this thread."""
    return STATE.runner is not None


def in_task() -> bool:
    """Whether this code runs inside a task of a nursery run (rather than in
    a callback or outside any run)."""
    runner = STATE.runner
    return runner is not None and runner.current_task is not None


def call_soon(fn: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> Callback:
    """Schedule ``fn(*args)`` to be called from the run loop, after
    everything that is ready now, in the same FIFO as task steps. Not
    thread-safe (see ``Token.run_sync_soon`` for that). An exception from the
    callback crashes the run with :exc:`NurseryInternalError`. Returns a
    handle whose ``cancel()`` stops the call."""
    return current_runner("call_soon()").call_soon(fn, args, context)


def spawn_system_task(fn: Callable[..., Any], *args: Any, name: object = None, context: contextvars.Context | None = None) -> Task:
    """Start a system task: it runs in the run's system nursery, is cancelled
    when the main task exits, and an exception other than Cancelled escaping
    it crashes the run with :exc:`NurseryInternalError`."""
    runner = current_runner("spawn_system_task()")
    if runner.system_nursery is None or runner.system_nursery._closed:
        raise RuntimeError("the system nursery is closed; the run is finishing")
    return runner.spawn(fn, args, runner.system_nursery, name, system_task=True, context=context)


async def wait_all_tasks_blocked(cushion: float = 0.0) -> None:
    """Block until every other task has been blocked (with nothing ready to
    run and no I/O arriving) for *cushion* seconds of real time. If several
    tasks wait with the same cushion, all of them wake together. Mainly for
    tests."""
    runner = current_runner("wait_all_tasks_blocked()")
    cushion = float(cushion)
    if not cushion >= 0:
        raise ValueError(f"cushion must be non-negative, got {cushion!r}")
    task = runner.current_task
    runner.idle_waiters[task] = cushion

    def abort(raise_cancel: Any) -> Abort:
        del runner.idle_waiters[task]
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)

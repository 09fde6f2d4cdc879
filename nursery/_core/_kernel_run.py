"""A run of the kernel as an event loop built on it sees it.

``nursery.compat``'s asyncio event loop is such a loop. It needs a few
things no user-facing API offers: putting its own callback objects straight
into the ready queue and the deadline heap (no wrapper object per
``call_soon``), starting tasks that belong to the loop rather than to a
nursery, and, for a loop that owns its run, driving the run one tick at a
time. :class:`KernelRun` is that interface, public in ``nursery.lowlevel``.
"""

from __future__ import annotations

import contextvars
from math import inf
from typing import Any, Callable

from ._exceptions import Cancelled, RunFinishedError
from ._run import ForeignFutureWait, Runner
from ._sleep import sleep_forever
from ._state import STATE, current_runner
from ._task import Task

__all__ = ["KernelRun", "current_kernel_run"]


class KernelRun:
    """The run loop of one kernel run, for event loops built on it.

    Get the current run's with :func:`current_kernel_run`, or make a run
    that you drive yourself with :meth:`KernelRun.create`.

    The ready queue holds tasks and *ready items*: any object with a
    ``_run()`` method, called once when its turn comes (it must not raise;
    an exception crashes the run). Deadlines hold *timer items*: objects with
    an int attribute ``_timer_seq`` (start it at 0; the kernel owns it) and
    an ``_expire()`` method, called once when the deadline passes.
    """

    __slots__ = ("_runner", "enqueue", "time", "__weakref__")

    #: The class of the done-callback the kernel adds to an asyncio future
    #: that a task awaits. A loop's ``call_soon`` may put such a callback
    #: itself into the ready queue (:attr:`enqueue`) instead of a handle
    #: that calls it: the run then steps the task in its place (if the task
    #: still waits for the future). Calling it puts the task into the ready
    #: queue at once.
    FOREIGN_FUTURE_WAKER: type = ForeignFutureWait

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        #: ``enqueue(item)``: append a ready item to the ready queue (FIFO
        #: with task wake-ups). Not thread-safe.
        self.enqueue: Callable[[Any], None] = runner.ready.append
        #: ``time()``: the run's clock (a MockClock, if the run has one).
        self.time: Callable[[], float] = runner.clock.current_time

    # ------------------------------------------------------------------
    # scheduling

    def add_timer(self, item: Any, when: float) -> None:
        """Call ``item._expire()`` once the clock reaches *when*. Items with
        equal deadlines expire in the order they were added."""
        self._runner.timers.add(when, item)

    def remove_timer(self, item: Any) -> None:
        """Forget *item*'s deadline (no-op if it has none). O(1)."""
        self._runner.timers.discard(item)

    def run_sync_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` in the run's thread soon; safe from any thread
        and from signal handlers. :exc:`nursery.RunFinishedError` once the run
        has finished."""
        self._runner.run_sync_soon_threadsafe(fn, args)

    def enqueue_threadsafe(self, item: Any) -> None:
        """Append the ready item *item* to the ready queue from any thread,
        and wake the run if it waits for I/O. Unlike
        :meth:`run_sync_soon_threadsafe`, the item takes its place in the
        queue at once, so it runs in the order of the calls to this method
        and to :attr:`enqueue` (asyncio's ``call_soon_threadsafe`` and
        ``call_soon`` keep that order). Not from signal handlers.
        :exc:`nursery.RunFinishedError` once the run has finished."""
        runner = self._runner
        if runner._random is not None:
            # A seeded run reorders the ready queue in place (not safe
            # against another thread's append): go through the run's
            # thread-safe queue instead.
            runner.run_sync_soon_threadsafe(item._run, ())
            return
        if runner.closed:
            raise RunFinishedError("this run has finished")
        # deque.append is atomic; the wake-up ends a poll that began before
        # the item was there.
        runner.ready.append(item)
        runner.io.wakeup_threadsafe()

    # ------------------------------------------------------------------
    # fd readiness callbacks

    def add_reader(self, fd: int, handle: Any) -> Any:
        """Watch *fd* (an int, or anything with ``fileno()``) for becoming
        readable: every turn of the run loop that finds it readable (data,
        end of file, an error, a connection to accept) appends *handle* to
        the ready queue, until :meth:`remove_reader`. Level-triggered, as
        asyncio's selector loop: a handle that leaves the fd readable is due
        again at the next turn.

        *handle* is a ready item (see the class docstring) with a
        ``_cancelled`` attribute: a handle found cancelled when its fd is
        ready is removed instead of queued. Returns the handle this one
        replaces (the fd keeps its registration), or None.

        An fd and direction is watched by one callback or waited on by one
        task (:func:`wait_readable`), not both: :exc:`nursery.BusyResourceError`
        if a task waits for *fd* to become readable. :exc:`OSError` if the
        OS cannot watch *fd* (closed, or a regular file); nothing is
        registered then. While any callback is registered the run polls for
        I/O at every turn, as it does while a task waits for an fd.
        :func:`notify_closing` forgets the fd's callbacks (without calling
        them). Not thread-safe."""
        return self._runner.io.set_handle(fd, False, handle)

    def add_writer(self, fd: int, handle: Any) -> Any:
        """As :meth:`add_reader`, for *fd* becoming writable (or having an
        error)."""
        return self._runner.io.set_handle(fd, True, handle)

    def remove_reader(self, fd: int) -> Any:
        """Stop watching *fd* for readability. Returns the handle that was
        registered (so a false value means there was none); it may still be
        in the ready queue from the current turn: cancel it to keep it from
        running."""
        return self._runner.io.clear_handle(fd, False)

    def remove_writer(self, fd: int) -> Any:
        """As :meth:`remove_reader`, for the writer callback."""
        return self._runner.io.clear_handle(fd, True)

    def fd_callbacks(self, fd: int) -> tuple[Any, Any]:
        """The ``(reader, writer)`` handles registered for the int *fd* (None
        for a direction without one)."""
        return self._runner.io.get_handles(fd)

    def all_fd_callbacks(self) -> dict[int, tuple[Any, Any]]:
        """Every fd with a callback, mapped to its ``(reader, writer)``
        handles (a new dict: a snapshot)."""
        return self._runner.io.handles()

    @property
    def ready_queue(self) -> Any:
        """The ready queue itself (a deque of tasks and ready items), for
        loops that expose their pending callbacks (asyncio's
        ``loop._ready``). Read it; change it only through :attr:`enqueue`."""
        return self._runner.ready

    @property
    def current_task(self) -> Task | None:
        """The task being stepped right now, or None (in a callback, or
        between steps)."""
        return self._runner.current_task

    @property
    def asyncio_loop(self) -> Any:
        """The run's asyncio event loop."""
        return self._runner.asyncio_loop

    @property
    def clock(self) -> Any:
        return self._runner.clock

    def add_instrument(self, instrument: Any) -> None:
        """Install *instrument* in this run (as :func:`add_instrument` does
        in the current run); a loop may do this before or between its
        steps, from outside the run."""
        self._runner.instruments.add_instrument(instrument)

    def remove_instrument(self, instrument: Any) -> None:
        """Remove *instrument* from this run; :exc:`KeyError` if it is not
        installed."""
        self._runner.instruments.remove_instrument(instrument)

    def spawn_detached(
        self,
        coro: Any,
        *,
        task: Task | None = None,
        name: object = None,
        context: contextvars.Context | None = None,
        eager: bool = False,
    ) -> Task:
        """Start a task running the coroutine object *coro* that belongs to
        the run, not to the caller: it lives in the run's system nursery, is
        cancelled (by a cancel scope) when the run shuts down, and gets no
        cancellation from the caller's scopes.

        With *eager*, the task's first step runs at once, before this
        returns (asyncio's ``eager_start``): a coroutine that never
        suspends has finished by then. This needs the run entered in the
        calling thread (a step or callback of the run, or between steps of
        a loop driving it); the caller's task is current again afterwards.

        *task*, if given, is an instance of a subclass of :class:`Task` made
        with ``cls.__new__(cls)``: the kernel initializes its Task part and
        runs it. Its ``_exited(value, error)`` decides what becomes of the
        outcome; an error it lets through crashes the run."""
        runner = self._runner
        nursery = runner.system_nursery
        if nursery is None or nursery._closed:
            raise RuntimeError("this run is shutting down; it cannot start new tasks")
        if context is None:
            context = contextvars.copy_context()
        if eager and STATE.runner is not runner:
            raise RuntimeError(
                "spawn_detached(eager=True) runs the task's first step at once, so it must be "
                "called from inside the run (a task, a callback, or a loop between its steps)"
            )
        if task is None or runner.instruments:
            task = runner.spawn(None, (), nursery, name, coro=coro, context=context, task=task)
            if eager:
                runner.step_eagerly(task)
            return task
        # Hot path (every asyncio create_task on compat's loop; benchmarks
        # spawn, gather, aiohttp): Runner.spawn's work for this case, and
        # Task.__init__'s fields (the same values, in the same order; a
        # change there goes here too), inline: a Python call less per task.
        task._name = name
        task.coro = coro
        task.context = context
        task._runner = runner
        task._parent_nursery = nursery
        task._eventual_parent_nursery = None
        task._child_nurseries = ()
        task._cancel_scope = nursery._cancel_scope
        task._send_value = None
        task._throw_exc = None
        task._abort_func = None
        task._coro_send = coro.send
        task.custom_sleep_data = None
        task._cancel_requests = 0
        runner.task_classes.add(task.__class__)
        nursery._children[task] = None
        runner.n_tasks += 1
        runner.ready.append(task)
        if eager:
            runner.step_eagerly(task)
        return task

    # ------------------------------------------------------------------
    # runs driven by their event loop

    @classmethod
    def create(
        cls,
        *,
        clock: Any = None,
        instruments: Any = (),
        random_seed: int | None = None,
        asyncio_loop: Any = None,
    ) -> KernelRun:
        """A new run whose main task waits until :meth:`shutdown`, to be
        driven with :meth:`step`. The run is not current anywhere until
        :meth:`enter`. *asyncio_loop* is the event loop that drives it (the
        one ``asyncio.get_running_loop()`` returns while it is entered)."""
        runner = Runner(clock=clock, instruments=instruments, random_seed=random_seed, asyncio_loop=asyncio_loop)
        runner.start(_wait_for_shutdown, (), where="KernelRun.create()")
        # Step the root and main tasks until they wait (the system nursery
        # is open then), so that spawn_detached() works before the first
        # real step (asyncio lets
        # you create tasks before the loop runs). Nothing but kernel code
        # runs here, so it may happen inside another run.
        previous = STATE.runner
        STATE.runner = runner
        try:
            while runner.ready:
                runner.tick(0)
        finally:
            STATE.runner = previous
        handle = runner.kernel_run = cls(runner)
        return handle

    def enter(self) -> None:
        """Make this run the thread's current run (so that nursery's APIs
        find it), until :meth:`leave`. (Setting asyncio's running loop is
        the driving loop's business.)"""
        if STATE.runner is not None:
            raise RuntimeError("another nursery run is active in this thread")
        STATE.runner = self._runner
        self._runner._wakeup.wake_on_signals()

    def leave(self) -> None:
        """Undo :meth:`enter`."""
        runner = self._runner
        runner._wakeup.stop_waking_on_signals()
        STATE.runner = None

    def step(self, max_wait: float = inf) -> None:
        """One turn of the run loop: wait up to *max_wait* seconds for I/O, a
        deadline or a wake-up from another thread (not at all if something is
        ready), then run everything ready. Only while entered."""
        self._runner.tick(max_wait)

    def wakeup_threadsafe(self) -> None:
        """End the current or next :meth:`step`'s wait early. Any thread."""
        self._runner.force_wakeup()

    @property
    def done(self) -> bool:
        """Whether every task of the run has finished."""
        return self._runner.done

    def shutdown(self) -> Any:
        """Cancel every task of the run and step until all have finished;
        then release the run's resources. Returns the run's outcome (an
        :class:`outcome.Outcome`). Only while entered; idempotent."""
        runner = self._runner
        if runner.root_scope is not None:
            runner.root_scope.cancel()
        while not runner.done:
            runner.tick()
        runner.finish()
        return runner.outcome()

    def abandon(self) -> None:
        """Release the run's resources (its poller and wake-up channel)
        without running anything more: tasks still pending are dropped, and
        their coroutines are closed when garbage-collected, as asyncio's
        ``loop.close()`` does. Idempotent; not while entered."""
        self._runner.finish()


async def _wait_for_shutdown() -> None:
    # The main task of a run driven by its loop: it only holds the run open.
    try:
        await sleep_forever()
    except Cancelled:
        pass


def current_kernel_run() -> KernelRun:
    """The :class:`KernelRun` of the run active in this thread."""
    runner = current_runner("current_kernel_run()")
    handle = runner.kernel_run
    if handle is None:
        handle = runner.kernel_run = KernelRun(runner)
    return handle

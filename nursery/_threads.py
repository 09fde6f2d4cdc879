"""Threads: running blocking code in worker threads (``to_thread``), and
calling back into a run from other threads (``from_thread``).

How a ``to_thread.run_sync`` call works: the calling task (the *host task*)
borrows a token of the limiter, hands the job to a cached worker thread
(``_worker_cache``) and blocks. The worker runs the function in a copy of
the host task's context, then posts the result back to the run with the
run's token (the kernel's thread-safe callback queue, which wakes an idle
run loop). The callback returns the limiter token and wakes the host task.

While it waits, the host task also serves the worker's ``from_thread``
requests: a request posted to the run wakes the host task with the request
instead of a result, and the host task runs it (in a copy of the worker's
context, inside the host task's own cancel scopes) and goes back to waiting.
A request from any other thread, or from a worker whose call may be
abandoned, runs in the run's system context instead: a plain callback for
``run_sync``, a system task for ``run``.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from types import CoroutineType
from typing import Any, Awaitable, Callable, TypeVar

import outcome

from . import _worker_cache
from ._core import RunFinishedError
from .lowlevel import (
    Abort,
    RunVar,
    Token,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    current_token,
    in_run,
    reschedule,
    spawn_system_task,
    wait_task_rescheduled,
)

__all__ = [
    "to_thread_run_sync",
    "current_default_thread_limiter",
    "from_thread_run",
    "from_thread_run_sync",
    "from_thread_check_cancelled",
]

T = TypeVar("T")

#: The default limiter's number of tokens: at most this many worker threads
#: run ``to_thread.run_sync`` calls of one run at a time.
DEFAULT_THREAD_LIMIT = 40

_default_limiter: RunVar[Any] = RunVar("nursery.to_thread default limiter")


def current_default_thread_limiter() -> Any:
    """The :class:`~nursery.CapacityLimiter` that
    :func:`nursery.to_thread.run_sync` uses when it is given no ``limiter``:
    one per run, with 40 tokens. Change its
    :attr:`~nursery.CapacityLimiter.total_tokens` to allow more (or fewer)
    threads at once. Not a checkpoint."""
    limiter = _default_limiter.get(None)
    if limiter is None:
        from ._sync import CapacityLimiter

        limiter = CapacityLimiter(DEFAULT_THREAD_LIMIT)
        _default_limiter.set(limiter)
    return limiter


class _WorkerState(threading.local):
    # The _ThreadCall whose function this thread is running, or None.
    call: _ThreadCall | None = None


_worker_state = _WorkerState()


def _name_of(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


# ----------------------------------------------------------------------
# to_thread


class _ThreadCall:
    """One ``to_thread.run_sync`` call; also the limiter token's borrower."""

    __slots__ = ("fn", "args", "context", "token", "task", "abandon", "limiter", "cancel_raiser")

    def __init__(self, fn: Callable[..., Any], args: tuple, token: Token, task: Any, abandon: bool, limiter: Any) -> None:
        self.fn = fn
        self.args = args
        # The worker runs fn in a copy of the host task's context, so it
        # sees the task's context variables; what it sets stays in the copy.
        self.context = contextvars.copy_context()
        self.token = token
        # The host task while it waits for the result; None once it stopped
        # waiting (abandoned on cancellation, or the result was delivered).
        self.task = task
        self.abandon = abandon
        self.limiter = limiter
        # Set (to the kernel's raise_cancel) when a cancellation was
        # delivered to the host task; read by from_thread.check_cancelled()
        # in the worker. A single attribute store/load, atomic in Python.
        self.cancel_raiser: Callable[[], Any] | None = None

    # -- in the worker thread

    def work(self) -> Any:
        state = _worker_state
        state.call = self
        try:
            result = self.context.run(self.fn, *self.args)
        finally:
            state.call = None
        if result.__class__ is CoroutineType:
            result.close()
            raise TypeError(
                f"to_thread.run_sync() expected a sync function, but {_name_of(self.fn)} is an async "
                "function (it returned a coroutine); await it directly instead of running it in a thread"
            )
        return result

    def deliver(self, result: outcome.Outcome) -> None:
        try:
            self.token.run_sync_soon(self.report, result)
        except RunFinishedError:
            # Only an abandoned call can outlive its run: nobody waits for
            # the result any more.
            pass

    # -- in the run's thread

    def report(self, result: outcome.Outcome) -> None:
        try:
            self.limiter.release_on_behalf_of(self)
        except BaseException as exc:
            # A broken limiter: its error replaces the result (chained to
            # the function's own error, if it raised one).
            if isinstance(result, outcome.Error):
                exc.__context__ = result.error
            result = outcome.Error(exc)
            if self.task is None:
                raise  # nobody to tell: crash the run rather than lose it
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, outcome.Value(result))

    def post_request(self, request: _Request) -> None:
        # The host task waits for this worker (abandon is False), so it is
        # blocked in run_sync() until the worker's function returns.
        reschedule(self.task, outcome.Value(request))

    def abort(self, raise_cancel: Callable[[], Any]) -> Abort:
        self.cancel_raiser = raise_cancel
        if self.abandon:
            self.task = None
            return Abort.SUCCEEDED
        return Abort.FAILED

    def __repr__(self) -> str:
        return f"<to_thread.run_sync call of {_name_of(self.fn)}>"


async def to_thread_run_sync(
    fn: Callable[..., T],
    *args: Any,
    abandon_on_cancel: bool = False,
    limiter: Any = None,
) -> T:
    """Call ``fn(*args)`` in a worker thread and return its result (or raise
    its exception), letting the other tasks run meanwhile.

    Use it for blocking calls (file I/O, a blocking library, a CPU-heavy
    function that releases the GIL). ``fn`` runs in a copy of the calling
    task's context, so it sees the task's context variables; from the
    worker, :mod:`nursery.from_thread` calls back into the run.

    At most ``limiter.total_tokens`` calls run at once: the call borrows a
    token of *limiter* (by default :func:`current_default_thread_limiter`,
    40 tokens) before it starts the thread, and returns it when the thread
    is done. Anything with ``acquire_on_behalf_of`` and
    ``release_on_behalf_of`` methods like a :class:`~nursery.CapacityLimiter`
    will do.

    Worker threads are daemon threads, reused from a cache of idle workers;
    an idle worker exits after 10 seconds without work.

    Cancellation: the call checks for cancellation before it starts the
    thread (it is a checkpoint). Once the thread runs, Python cannot stop
    it, so:

    * with ``abandon_on_cancel=False`` (the default), the call is not
      cancellable: it waits for ``fn`` to finish and returns its result, as
      if ``fn`` had been called directly; a cancellation takes effect at the
      task's next checkpoint. ``fn`` can notice it earlier with
      :func:`nursery.from_thread.check_cancelled`.
    * with ``abandon_on_cancel=True``, a cancellation raises
      :exc:`~nursery.Cancelled` at once; the thread keeps running in the
      background and its result or exception is discarded. The limiter token
      is returned only when the thread has finished (never, if the run ended
      first).
    """
    if not in_run():
        raise RuntimeError(
            "to_thread.run_sync() must be called from inside nursery.run(), but no nursery run is active "
            "in this thread (under asyncio, use asyncio.to_thread)"
        )
    await checkpoint_if_cancelled()
    if not callable(fn):
        if inspect.iscoroutine(fn):
            fn.close()
            raise TypeError(
                "to_thread.run_sync() expected a sync function, got a coroutine object (did you write "
                "fn() instead of fn? And to run an async function, await it instead of using a thread)"
            )
        raise TypeError(f"to_thread.run_sync() expected a sync function, got {fn!r}")
    if limiter is None:
        limiter = current_default_thread_limiter()
    task = current_task()
    call = _ThreadCall(fn, args, current_token(), task, bool(abandon_on_cancel), limiter)
    await limiter.acquire_on_behalf_of(call)
    try:
        _worker_cache.start_thread_soon(call.work, call.deliver)
    except BaseException:
        limiter.release_on_behalf_of(call)
        raise
    abort = call.abort
    while True:
        message = await wait_task_rescheduled(abort)
        if message.__class__ is _Request:
            await message.run_in_host_task(task)
            continue
        return message.unwrap()


# ----------------------------------------------------------------------
# from_thread


# How often a thread blocked in from_thread checks whether the run it waits
# for has finished (which would lose a request posted just before the end).
_FINISH_POLL_INTERVAL = 0.1


class _Request:
    """A call posted from another thread into the run; the thread blocks in
    wait() until the run has made it."""

    __slots__ = ("fn", "args", "is_async", "context", "_done", "_result")

    def __init__(self, fn: Callable[..., Any], args: tuple, is_async: bool) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async
        # The calling thread's context (for a worker: the host task's, plus
        # whatever the worker set), copied: a context cannot be entered by
        # two threads at once.
        self.context = contextvars.copy_context()
        self._done = threading.Lock()
        self._done.acquire()
        self._result: outcome.Outcome | None = None

    # -- in the calling thread

    def wait(self, token: Token) -> Any:
        done = self._done
        while not done.acquire(timeout=_FINISH_POLL_INTERVAL):
            if token._run_finished():
                # Nothing runs in a finished run: if the result is not there
                # now, it never will be.
                if done.acquire(blocking=False):
                    break
                raise RunFinishedError(
                    f"the nursery run finished before it could call {_name_of(self.fn)} for this thread"
                )
        result = self._result
        self._result = None
        return result.unwrap()

    # -- in the run's thread

    def _finish(self, result: outcome.Outcome) -> None:
        self._result = result
        self._done.release()

    def _call_sync(self) -> outcome.Outcome:
        result = outcome.capture(self.context.run, self.fn, *self.args)
        if isinstance(result, outcome.Value) and result.value.__class__ is CoroutineType:
            result.value.close()
            return outcome.Error(
                TypeError(
                    f"from_thread.run_sync() expected a sync function, but {_name_of(self.fn)} is an async "
                    "function (it returned a coroutine); use from_thread.run() for async functions"
                )
            )
        return result

    async def _call_async(self) -> Any:
        coro = self.fn(*self.args)
        if not inspect.isawaitable(coro):
            raise TypeError(
                f"from_thread.run() expected an async function, but {_name_of(self.fn)} returned "
                f"{coro!r}; use from_thread.run_sync() for sync functions"
            )
        return await coro

    async def run_in_host_task(self, task: Any) -> None:
        if not self.is_async:
            self._finish(self._call_sync())
            return
        # Run the async function in the request's context: swap the task's
        # context, and let a (shielded) schedule point re-enter the task in
        # it; swap back the same way afterwards.
        host_context = task.context
        task.context = self.context
        try:
            await cancel_shielded_checkpoint()
            result = await outcome.acapture(self._call_async)
        finally:
            task.context = host_context
        await cancel_shielded_checkpoint()
        # Only now, in the same step in which the host task goes back to
        # waiting, may the worker go on (and soon deliver its own result).
        self._finish(result)

    def run_in_system(self) -> None:
        if not self.is_async:
            self._finish(self._call_sync())
            return
        try:
            spawn_system_task(self._system_task, name=self.fn, context=self.context)
        except RuntimeError:
            self._finish(
                outcome.Error(RunFinishedError(f"the nursery run is finishing; it cannot start {_name_of(self.fn)}"))
            )

    async def _system_task(self) -> None:
        self._finish(await outcome.acapture(self._call_async))


def _check_function(fn: Any, where: str, kind: str) -> None:
    if callable(fn):
        return
    if inspect.iscoroutine(fn):
        fn.close()
        raise TypeError(
            f"{where} expected {kind} function, got a coroutine object "
            f"(did you write fn() instead of fn? Pass the function and its arguments: {where[:-2]}(fn, arg1, ...))"
        )
    raise TypeError(f"{where} expected {kind} function, got {fn!r}")


def _send(request: _Request, token: Token | None, where: str, instead: str) -> Any:
    if in_run() or (token is not None and isinstance(token, Token) and threading.get_ident() == token._thread_ident):
        raise RuntimeError(
            f"{where} was called from a thread that is running a nursery run, where waiting for the "
            f"result would block that run forever; {instead}"
        )
    if token is None:
        call = _worker_state.call
        if call is None:
            raise RuntimeError(
                f"{where} was called from a thread that nursery.to_thread.run_sync did not start, so it does "
                f"not know which run to call into: pass token=..., a token you got in that run with "
                f"nursery.lowlevel.current_token()"
            )
        token = call.token
        if call.abandon:
            # The host task may stop waiting at any moment: don't rely on it.
            token.run_sync_soon(request.run_in_system)
        else:
            token.run_sync_soon(call.post_request, request)
    elif isinstance(token, Token):
        token.run_sync_soon(request.run_in_system)
    else:
        raise TypeError(f"{where}: token must be a nursery.lowlevel.Token, got {token!r}")
    return request.wait(token)


def from_thread_run(afn: Callable[..., Awaitable[T]], *args: Any, token: Token | None = None) -> T:
    """Run ``await afn(*args)`` in a nursery run from another thread, block
    this thread until it is done, and return its result (or raise its
    exception).

    From a worker thread started by :func:`nursery.to_thread.run_sync`, no
    token is needed: the function runs in the task that called
    ``to_thread.run_sync`` (inside its cancel scopes, so if that task is
    cancelled, ``afn`` sees :exc:`~nursery.Cancelled`, which this function
    then raises), in a copy of this thread's context. From any other thread,
    pass ``token=`` (see :func:`nursery.lowlevel.current_token`): the
    function then runs as a new system task, in a copy of this thread's
    context; it is cancelled if the run is finishing. A worker whose call
    was made with ``abandon_on_cancel=True`` is treated like any other
    thread (its caller may have stopped waiting for it).

    Raises :exc:`RuntimeError` if called from the thread that runs the run
    (await the function directly there) or, without a token, from a thread
    that ``to_thread.run_sync`` did not start; :exc:`~nursery.RunFinishedError`
    if the run has finished; :exc:`TypeError` if *afn* is not an async
    function.
    """
    _check_function(afn, "from_thread.run()", "an async")
    return _send(_Request(afn, args, True), token, "from_thread.run()", "await the async function directly instead")


def from_thread_run_sync(fn: Callable[..., T], *args: Any, token: Token | None = None) -> T:
    """Call ``fn(*args)`` in a nursery run's thread from another thread,
    block this thread until it is done, and return its result (or raise its
    exception).

    From a worker thread started by :func:`nursery.to_thread.run_sync`, no
    token is needed: ``fn`` is called by the task that called
    ``to_thread.run_sync``, in a copy of this thread's context. From any
    other thread, pass ``token=`` (see :func:`nursery.lowlevel.current_token`):
    ``fn`` is then called from the run loop, in a copy of this thread's
    context. Either way ``fn`` may use any nursery API that does not need to
    ``await`` (setting an :class:`~nursery.Event`, ``send_nowait`` on a
    channel, starting tasks in a nursery).

    Raises :exc:`RuntimeError` if called from the thread that runs the run
    (call the function directly there) or, without a token, from a thread
    that ``to_thread.run_sync`` did not start; :exc:`~nursery.RunFinishedError`
    if the run has finished; :exc:`TypeError` if *fn* is an async function.
    """
    _check_function(fn, "from_thread.run_sync()", "a sync")
    return _send(_Request(fn, args, False), token, "from_thread.run_sync()", "call the function directly instead")


def from_thread_check_cancelled() -> None:
    """In a worker thread started by :func:`nursery.to_thread.run_sync`,
    raise :exc:`~nursery.Cancelled` if the task that started it has been
    cancelled since; otherwise return at once.

    A long-running function calls it from time to time to stop early when
    its caller was cancelled (with ``abandon_on_cancel=False``, the caller
    waits for it; with ``True``, it no longer does). Once it has raised, it
    raises on every later call in the same ``to_thread.run_sync`` call.

    Raises :exc:`RuntimeError` in any other thread.
    """
    call = _worker_state.call
    if call is None:
        raise RuntimeError(
            "from_thread.check_cancelled() can only be called from a worker thread started by "
            "nursery.to_thread.run_sync()"
        )
    raise_cancel = call.cancel_raiser
    if raise_cancel is not None:
        raise_cancel()

"""asyncio's synchronization primitives (Lock, Event, Condition, Semaphore,
BoundedSemaphore, Barrier), written for the kernel.

The behaviour is stock asyncio's, on the running interpreter, down to the
order in which waiters wake and what a cancelled waiter does with a wakeup
it already got. What differs is the machinery: a blocked task waits on a
:class:`_Waiter`, a small object that parks the kernel task itself (one
trap, no asyncio Future, no done-callback hop), so the primitives work in
any task of a run, compat tasks and plain nursery tasks alike.

A waiter has asyncio's three future states, and that is all the algorithms
look at:

* pending: the task is parked on it;
* done: someone woke it (the task is ready, but has not run yet);
* cancelled: the task was cancelled while parked (edge-triggered
  ``Task.cancel()`` or a nursery cancel scope; both reach the task as a
  :exc:`asyncio.CancelledError`, ``nursery.Cancelled`` being a subclass).

"done, and then cancelled before the task ran" is the case that must not
lose a wakeup: the task gets the :exc:`~asyncio.CancelledError`, its waiter
stays "done", and the primitive passes the wakeup on, as asyncio does.
"""

from __future__ import annotations

import collections
import enum
import sys
import types
from asyncio import events as _events
from typing import Any, Callable, Generator

from .. import lowlevel
from ._exceptions import BrokenBarrierError, CancelledError

__all__ = ["Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier"]

_PY313 = sys.version_info >= (3, 13)

_PENDING = 0
_DONE = 1
_CANCELLED = 2

_ABORT_SUCCEEDED = lowlevel.Abort.SUCCEEDED
_current_task = lowlevel.current_task
_get_running_loop = _events._get_running_loop


class _Waiter:
    """One blocked task's place in a primitive's queue (asyncio uses a
    Future here)."""

    __slots__ = ("task", "state")

    def __init__(self) -> None:
        try:
            self.task = _current_task()
        except RuntimeError:
            raise RuntimeError(
                "nursery.compat's locks and queues wait on the nursery kernel, and this code runs "
                f"on another event loop ({_get_running_loop()!r}): run it on nursery.compat's loop "
                "(nursery.compat.run(), new_event_loop(), install()) or inside nursery.run(), or use "
                "stock asyncio's primitives there"
            ) from None
        self.state = _PENDING

    def done(self) -> bool:
        return self.state != _PENDING

    def cancelled(self) -> bool:
        return self.state == _CANCELLED

    def wake(self) -> None:
        # Hot path (every handover of a Lock, Queue, Event). Only called on a
        # pending waiter, whose task is parked in wait(). Benchmarks: lock,
        # pingpong.
        self.state = _DONE
        task = self.task
        task._runner.reschedule(task)

    def set_result(self, value: Any) -> None:
        # asyncio's Future spelling of wake(), for code that treats the
        # waiters as futures (the queues do, so that a Future someone puts
        # in their lines works too).
        self.state = _DONE
        task = self.task
        task._runner.reschedule(task)

    def cancel(self) -> bool:
        if self.state == _PENDING:
            self.state = _CANCELLED
            return True
        return False

    def _abort(self, raise_cancel: Any) -> Any:
        # The task is being cancelled while parked: it leaves the wait, and
        # the kernel throws the cancellation into it.
        self.state = _CANCELLED
        return _ABORT_SUCCEEDED

    @types.coroutine
    def wait(self) -> Generator[Any, Any, None]:
        yield self._abort


class _LoopBound:
    """asyncio's rule: a primitive belongs to the event loop it first blocks
    in (in compat, one loop per run), and using it from another loop is an
    error."""

    _loop: Any = None

    def _check_loop(self) -> None:
        loop = _get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is not self._loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")

    def _repr_with(self, extra: str, waiters: Any) -> str:
        if waiters:
            extra = f"{extra}, waiters:{len(waiters)}"
        module = type(self).__module__
        if module == "nursery.compat":
            # Our own classes print what stock asyncio's print (programs
            # that print a lock must print the same under compat); a
            # user's subclass keeps its own name.
            module = "asyncio.locks"
        return f"<{module}.{type(self).__qualname__} object at {id(self):#x} [{extra}]>"


class _AcquireReleaseContext:
    async def __aenter__(self) -> None:
        await self.acquire()  # type: ignore[attr-defined]
        return None

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.release()  # type: ignore[attr-defined]


def _all_cancelled(waiters: Any) -> bool:
    for waiter in waiters:
        if waiter.state != _CANCELLED:
            return False
    return True


class Lock(_AcquireReleaseContext, _LoopBound):
    """asyncio's mutual-exclusion lock (:class:`asyncio.Lock`): not owned by
    a task, fair (FIFO), ``acquire()`` returns at once without a checkpoint
    when the lock is free and nobody is queued. ``release()`` of an unlocked
    lock raises :exc:`RuntimeError`."""

    def __init__(self) -> None:
        self._waiters: collections.deque[_Waiter] | None = None
        self._locked = False

    def __repr__(self) -> str:
        return self._repr_with("locked" if self._locked else "unlocked", self._waiters)

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._locked

    # Hot path: Benchmark: lock.
    async def acquire(self) -> bool:
        """Acquire the lock, waiting in line if it is held (or others are
        already waiting for it); returns True."""
        waiters = self._waiters
        if not self._locked and (waiters is None or _all_cancelled(waiters)):
            self._locked = True
            return True
        self._check_loop()
        if waiters is None:
            waiters = self._waiters = collections.deque()
        waiter = _Waiter()
        waiters.append(waiter)
        try:
            await waiter.wait()
        except BaseException as exc:
            waiters.remove(waiter)
            # Woken (or not) and cancelled before running: make sure the
            # next in line runs if the lock is free.
            if isinstance(exc, CancelledError) and not self._locked:
                self._wake_up_first()
            raise
        waiters.remove(waiter)
        self._locked = True
        return True

    async def __aenter__(self) -> None:
        # acquire()'s fast path inlined (one coroutine less per "async
        # with"); a subclass that overrides acquire() gets it called.
        if not self._locked and not self._waiters and type(self).acquire is Lock.acquire:
            self._locked = True
            return None
        await self.acquire()
        return None

    def release(self) -> None:
        """Release the lock and let the first waiter (if any) take it. Not a
        checkpoint."""
        if not self._locked:
            raise RuntimeError("Lock is not acquired.")
        self._locked = False
        self._wake_up_first()

    def _wake_up_first(self) -> None:
        # Only the head of the line: if it is already done, it will take
        # the lock (or pass the wakeup on when it is cancelled).
        waiters = self._waiters
        if waiters:
            first = waiters[0]
            if first.state == _PENDING:
                first.wake()


class Event(_LoopBound):
    """asyncio's event (:class:`asyncio.Event`): ``set()`` wakes every
    waiter; ``wait()`` returns True at once, without a checkpoint, if the
    event is set."""

    def __init__(self) -> None:
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._value = False

    def __repr__(self) -> str:
        return self._repr_with("set" if self._value else "unset", self._waiters)

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiting task. Not a checkpoint."""
        if not self._value:
            self._value = True
            for waiter in self._waiters:
                if waiter.state == _PENDING:
                    waiter.wake()

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        """Wait until the flag is set; returns True."""
        if self._value:
            return True
        self._check_loop()
        waiter = _Waiter()
        waiters = self._waiters
        waiters.append(waiter)
        try:
            await waiter.wait()
        finally:
            waiters.remove(waiter)
        return True


class Condition(_AcquireReleaseContext, _LoopBound):
    """asyncio's condition variable (:class:`asyncio.Condition`), over a
    :class:`Lock` (a new one unless *lock* is given). ``wait()`` and
    ``notify()`` require the lock to be held (:exc:`RuntimeError`
    otherwise); ``wait()`` re-acquires it even when cancelled."""

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = Lock()
        self._lock = lock
        self.locked: Callable[[], bool] = lock.locked
        self.acquire: Callable[[], Any] = lock.acquire
        self.release: Callable[[], None] = lock.release
        self._waiters: collections.deque[_Waiter] = collections.deque()

    def __repr__(self) -> str:
        return self._repr_with("locked" if self.locked() else "unlocked", self._waiters)

    async def wait(self) -> bool:
        """Release the lock, wait to be notified, take the lock back;
        returns True."""
        if not self.locked():
            raise RuntimeError("cannot wait on un-acquired lock")
        if _PY313:
            return await self._wait_313()
        self.release()
        try:
            self._check_loop()
            waiter = _Waiter()
            waiters = self._waiters
            waiters.append(waiter)
            try:
                await waiter.wait()
                return True
            finally:
                waiters.remove(waiter)
        finally:
            # The lock comes back whatever happened; a cancellation while
            # re-acquiring is remembered and raised after (3.11/3.12 raise a
            # new, message-less CancelledError).
            cancelled = False
            while True:
                try:
                    await self.acquire()
                    break
                except CancelledError:
                    cancelled = True
            if cancelled:
                raise CancelledError

    async def _wait_313(self) -> bool:
        # 3.13: the last cancellation seen is re-raised as is, and any error
        # passes the notification on to another waiter (a spurious wakeup
        # being allowed, a lost one not).
        self._check_loop()
        waiter = _Waiter()
        self.release()
        try:
            try:
                waiters = self._waiters
                waiters.append(waiter)
                try:
                    await waiter.wait()
                    return True
                finally:
                    waiters.remove(waiter)
            finally:
                error = None
                while True:
                    try:
                        await self.acquire()
                        break
                    except CancelledError as exc:
                        error = exc
                if error is not None:
                    try:
                        raise error
                    finally:
                        error = None
        except BaseException:
            self._notify(1)
            raise

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        """``wait()`` until *predicate()* is true; returns its value."""
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to *n* waiting tasks (they return once they get the lock
        back). Requires the lock. Not a checkpoint."""
        if not self.locked():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._notify(n)

    def _notify(self, n: int) -> None:
        woken = 0
        for waiter in self._waiters:
            if woken >= n:
                break
            if waiter.state == _PENDING:
                woken += 1
                waiter.wake()

    def notify_all(self) -> None:
        """Wake every waiting task. Requires the lock."""
        self.notify(len(self._waiters))


class Semaphore(_AcquireReleaseContext, _LoopBound):
    """asyncio's semaphore (:class:`asyncio.Semaphore`): a counter that
    ``acquire()`` decrements (waiting, in FIFO order, while it is zero) and
    ``release()`` increments."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        self._waiters: collections.deque[_Waiter] | None = None
        self._value = value

    def __repr__(self) -> str:
        extra = "locked" if self.locked() else f"unlocked, value:{self._value}"
        return self._repr_with(extra, self._waiters)

    def locked(self) -> bool:
        """Whether ``acquire()`` would wait."""
        if self._value == 0:
            return True
        waiters = self._waiters
        return bool(waiters) and not _all_cancelled(waiters)

    async def acquire(self) -> bool:
        """Decrement the counter, first waiting while it is zero or others
        are in line; returns True."""
        if not self.locked():
            self._value -= 1
            return True
        self._check_loop()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = collections.deque()
        waiter = _Waiter()
        waiters.append(waiter)
        if _PY313:
            try:
                try:
                    await waiter.wait()
                finally:
                    waiters.remove(waiter)
            except CancelledError:
                # Woken (the unit was set aside for us) but cancelled before
                # running: give the unit back.
                if waiter.state == _DONE:
                    self._value += 1
                raise
            finally:
                # Others may have queued behind us while units were free.
                while self._value > 0:
                    if not self._wake_up_next():
                        break
            return True
        try:
            try:
                await waiter.wait()
            finally:
                waiters.remove(waiter)
        except CancelledError:
            if waiter.state != _CANCELLED:
                self._value += 1
                self._wake_up_next()
            raise
        if self._value > 0:
            self._wake_up_next()
        return True

    def release(self) -> None:
        """Increment the counter and wake the first waiter. Not a
        checkpoint."""
        self._value += 1
        self._wake_up_next()

    def _wake_up_next(self) -> bool:
        # The first pending waiter gets a unit, set aside for it now.
        waiters = self._waiters
        if waiters:
            for waiter in waiters:
                if waiter.state == _PENDING:
                    self._value -= 1
                    waiter.wake()
                    return True
        return False


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore` that refuses to be released above its initial
    value (:exc:`ValueError`)."""

    def __init__(self, value: int = 1) -> None:
        self._bound_value = value
        super().__init__(value)

    def release(self) -> None:
        if self._value >= self._bound_value:
            raise ValueError("BoundedSemaphore released too many times")
        super().release()


class _BarrierState(enum.Enum):
    FILLING = "filling"
    DRAINING = "draining"
    RESETTING = "resetting"
    BROKEN = "broken"


class Barrier(_LoopBound):
    """asyncio's barrier (:class:`asyncio.Barrier`, 3.11+): ``wait()``
    blocks until *parties* tasks are waiting, then releases them all, each
    with its own index. ``reset()`` and ``abort()`` break the waiting tasks
    out with :exc:`asyncio.BrokenBarrierError`."""

    def __init__(self, parties: int) -> None:
        if parties < 1:
            raise ValueError("parties must be > 0")
        self._cond = Condition()
        self._parties = parties
        self._state = _BarrierState.FILLING
        self._count = 0

    def __repr__(self) -> str:
        extra = self._state.value
        if not self.broken:
            extra += f", waiters:{self.n_waiting}/{self.parties}"
        return self._repr_with(extra, None)

    async def __aenter__(self) -> int:
        return await self.wait()

    async def __aexit__(self, *args: Any) -> None:
        pass

    async def wait(self) -> int:
        """Wait until *parties* tasks wait; returns this task's index (0 to
        parties - 1). :exc:`~asyncio.BrokenBarrierError` if the barrier is
        broken or reset meanwhile."""
        cond = self._cond
        async with cond:
            # While the previous round drains or a reset completes, wait.
            await cond.wait_for(self._accepting)
            if self._state is _BarrierState.BROKEN:
                raise BrokenBarrierError("Barrier aborted")
            try:
                index = self._count
                self._count = index + 1
                if index + 1 == self._parties:
                    self._state = _BarrierState.DRAINING
                    cond.notify_all()
                else:
                    await cond.wait_for(self._not_filling)
                    if self._state is _BarrierState.BROKEN or self._state is _BarrierState.RESETTING:
                        raise BrokenBarrierError("Abort or reset of barrier")
                return index
            finally:
                self._count -= 1
                if self._count == 0:
                    if self._state is _BarrierState.RESETTING or self._state is _BarrierState.DRAINING:
                        self._state = _BarrierState.FILLING
                    cond.notify_all()

    def _accepting(self) -> bool:
        return self._state is not _BarrierState.DRAINING and self._state is not _BarrierState.RESETTING

    def _not_filling(self) -> bool:
        return self._state is not _BarrierState.FILLING

    async def reset(self) -> None:
        """Return the barrier to its empty state; tasks waiting now get
        :exc:`~asyncio.BrokenBarrierError`."""
        async with self._cond:
            if self._count > 0:
                self._state = _BarrierState.RESETTING
            else:
                self._state = _BarrierState.FILLING
            self._cond.notify_all()

    async def abort(self) -> None:
        """Break the barrier: waiting and future ``wait()`` calls raise
        :exc:`~asyncio.BrokenBarrierError`."""
        async with self._cond:
            self._state = _BarrierState.BROKEN
            self._cond.notify_all()

    @property
    def parties(self) -> int:
        """How many tasks it takes to pass the barrier."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """How many tasks are waiting (while the barrier is filling)."""
        return self._count if self._state is _BarrierState.FILLING else 0

    @property
    def broken(self) -> bool:
        """Whether the barrier is broken (after ``abort()``)."""
        return self._state is _BarrierState.BROKEN

"""Synchronization primitives: Lock, StrictFIFOLock, Condition, Semaphore and
CapacityLimiter.

Two invariants hold for every primitive here, and are kept in one place each:

* Hand-off. When a holder releases while tasks are waiting, the lock, permit
  or token goes straight to the first waiter (it is woken already owning it);
  the resource is never "free" while anyone waits. That is what makes them
  fair (a task that releases and re-acquires in a loop queues behind the
  others instead of barging in) and what lets an acquire decide on the spot:
  free means nobody waits, so a free resource is taken at once.
* Cancellation safety. A waiter is a task parked in the primitive's
  :class:`~nursery.lowlevel.ParkingLot`. A cancelled waiter leaves the lot and
  owns nothing; a woken waiter already owns what it waited for, and can no
  longer be cancelled out of that wait (the kernel does not offer a
  cancellation to a task that has been rescheduled). So nothing is lost or
  owned twice, whatever the timing.

Every acquire is a checkpoint, also when it does not wait: it first raises
``Cancelled`` if the task's scope is cancelled (acquiring nothing), then takes
the resource and lets the other tasks run with a cancel-shielded checkpoint
(which cannot raise, so the acquired resource cannot be lost to a
cancellation there). Releases are not checkpoints.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Generator, Hashable

if TYPE_CHECKING:
    from . import lowlevel

from ._core import (
    STATE,
    CancelScope,
    ParkingLot,
    Task,
    WouldBlock,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    no_run_error,
)

__all__ = [
    "Lock",
    "StrictFIFOLock",
    "LockStatistics",
    "Condition",
    "ConditionStatistics",
    "Semaphore",
    "SemaphoreStatistics",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
]


def _current_task(what: str) -> Task:
    runner = STATE.runner
    if runner is None:
        raise no_run_error(what)
    return runner.current_task


class _AsyncContextManagerMixin:
    """``async with x:`` acquires on entry and releases on exit."""

    __slots__ = ()

    def __aenter__(self) -> Awaitable[Any]:
        return self.acquire()  # type: ignore[attr-defined]

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()  # type: ignore[attr-defined]


# ----------------------------------------------------------------------
# Lock


@dataclass(frozen=True)
class LockStatistics:
    """``locked``: whether the lock is held; ``owner``: the task holding it
    (None if free); ``tasks_waiting``: tasks blocked in ``acquire``."""

    locked: bool
    owner: lowlevel.Task | None
    tasks_waiting: int


class Lock(_AsyncContextManagerMixin):
    """A mutual-exclusion lock: one task at a time may hold it.

    Use ``async with lock:``, or :meth:`acquire` and :meth:`release`. The
    task that acquired the lock owns it, and only that task may release it.
    The lock is not re-entrant: acquiring it again in the task that holds it
    raises :exc:`RuntimeError` instead of deadlocking.

    The lock is fair: when it is released while tasks wait, it passes
    directly to the one that has waited longest, so a task that releases and
    re-acquires in a loop takes its turn behind the others.
    """

    __slots__ = ("_owner", "_lot")

    def __init__(self) -> None:
        self._owner: Task | None = None
        self._lot = ParkingLot()

    def locked(self) -> bool:
        """Whether some task holds the lock."""
        return self._owner is not None

    # Hot path (benchmark: lock). A generator rather than an async def (one
    # frame less per acquire); while contended it is one yield from the
    # parking lot.
    @types.coroutine
    def acquire(self) -> Generator[Any, Any, None]:
        """Wait until the lock is free, then take it. A checkpoint (also when
        the lock is free).

        Raises :exc:`RuntimeError` if the current task already holds it.
        """
        task = _current_task("Lock.acquire()")
        owner = self._owner
        if owner is None:
            yield from checkpoint_if_cancelled()
            self._owner = task
            yield from cancel_shielded_checkpoint()
        elif owner is task:
            raise RuntimeError(f"attempt to re-acquire {self!r}, which is already held by this task")
        else:
            # release() makes us the owner before waking us.
            yield from self._lot.park()

    def acquire_nowait(self) -> None:
        """Take the lock if it is free; raise :exc:`~nursery.WouldBlock` if
        another task holds it (:exc:`RuntimeError` if this one does). Not a
        checkpoint."""
        task = _current_task("Lock.acquire_nowait()")
        owner = self._owner
        if owner is None:
            self._owner = task
        elif owner is task:
            raise RuntimeError(f"attempt to re-acquire {self!r}, which is already held by this task")
        else:
            raise WouldBlock

    # Hot path (benchmark: lock).
    def release(self) -> None:
        """Release the lock; the longest-waiting task, if any, gets it. Not a
        checkpoint.

        Raises :exc:`RuntimeError` if the current task does not hold it.
        """
        task = _current_task("Lock.release()")
        if task is not self._owner:
            if self._owner is None:
                raise RuntimeError(f"release of {self!r}, which is not locked")
            raise RuntimeError(f"release of {self!r} by a task that does not hold it (the owner is {self._owner!r})")
        lot = self._lot
        if lot:
            (self._owner,) = lot.unpark()
        else:
            self._owner = None

    def statistics(self) -> LockStatistics:
        """A :class:`LockStatistics` snapshot, for debugging."""
        return LockStatistics(locked=self._owner is not None, owner=self._owner, tasks_waiting=len(self._lot))

    def __repr__(self) -> str:
        state = "unlocked" if self._owner is None else f"locked by {self._owner!r}"
        return f"<{type(self).__qualname__} at {id(self):#x}, {state}, {len(self._lot)} waiting>"


class StrictFIFOLock(Lock):
    """A :class:`Lock` that promises strict first-in, first-out order:
    waiting tasks get the lock exactly in the order in which they called
    :meth:`~Lock.acquire`, and a task that releases it while others wait
    always goes to the back of the queue.

    Use it where the order itself matters (say, a lock that serializes
    writes to a stream, whose bytes must go out in request order), so that
    the requirement is written down. nursery's :class:`Lock` behaves the
    same way today; this class is the one that guarantees it.
    """

    __slots__ = ()


# ----------------------------------------------------------------------
# Condition


@dataclass(frozen=True)
class ConditionStatistics:
    """``tasks_waiting``: tasks blocked in :meth:`Condition.wait`;
    ``lock_statistics``: the underlying lock's :class:`LockStatistics`."""

    tasks_waiting: int
    lock_statistics: LockStatistics


class Condition(_AsyncContextManagerMixin):
    """A condition variable: tasks wait (holding a lock) until another task
    tells them that something they care about may have changed.

    *lock* is the :class:`Lock` (or :class:`StrictFIFOLock`) it uses; a new
    one by default. The usual shape is::

        async with condition:
            while not ready():
                await condition.wait()
            ...  # use the state, still holding the lock

    while the other side changes the state and calls :meth:`notify` or
    :meth:`notify_all`, holding the lock too.
    """

    __slots__ = ("_lock", "_lot")

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        elif not isinstance(lock, Lock):
            raise TypeError(f"Condition() needs a nursery.Lock (or StrictFIFOLock), got {lock!r}")
        self._lock = lock
        self._lot = ParkingLot()

    def locked(self) -> bool:
        """Whether the underlying lock is held."""
        return self._lock.locked()

    def acquire(self) -> Awaitable[None]:
        """Acquire the underlying lock (see :meth:`Lock.acquire`). A
        checkpoint."""
        return self._lock.acquire()

    def acquire_nowait(self) -> None:
        """Acquire the underlying lock if it is free, else raise
        :exc:`~nursery.WouldBlock`. Not a checkpoint."""
        self._lock.acquire_nowait()

    def release(self) -> None:
        """Release the underlying lock. Not a checkpoint."""
        self._lock.release()

    def _check_holder(self, what: str) -> None:
        if _current_task(f"Condition.{what}()") is not self._lock._owner:
            raise RuntimeError(f"Condition.{what}() must be called by the task holding the condition's lock")

    async def wait(self) -> None:
        """Release the lock, wait to be notified, then re-acquire the lock
        before returning. A checkpoint.

        The current task must hold the lock (:exc:`RuntimeError` otherwise).
        If the wait is cancelled, the lock is still re-acquired before
        ``Cancelled`` propagates, so the caller's ``async with`` block exits
        holding it, as it expects.
        """
        self._check_holder("wait")
        # Park on our lot; notify() moves us to the lock's lot, where the
        # lock's release hands us the lock before waking us. So a normal
        # wake-up returns already holding the lock.
        self._lock.release()
        try:
            await self._lot.park()
        except BaseException:
            # Cancelled (from either lot): take the lock back first. The
            # shield keeps this acquire from being cancelled in turn.
            with CancelScope(shield=True):
                await self._lock.acquire()
            raise

    def notify(self, n: int = 1) -> None:
        """Wake up to *n* waiting tasks, longest-waiting first. They return
        from :meth:`wait` one at a time, as the lock becomes theirs. The
        current task must hold the lock. Not a checkpoint."""
        self._check_holder("notify")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"notify() needs a non-negative int, got {n!r}")
        self._lot.repark(self._lock._lot, count=n)

    def notify_all(self) -> None:
        """Wake every waiting task (see :meth:`notify`). The current task
        must hold the lock. Not a checkpoint."""
        self._check_holder("notify_all")
        self._lot.repark_all(self._lock._lot)

    def statistics(self) -> ConditionStatistics:
        """A :class:`ConditionStatistics` snapshot, for debugging."""
        return ConditionStatistics(tasks_waiting=len(self._lot), lock_statistics=self._lock.statistics())

    def __repr__(self) -> str:
        return f"<Condition at {id(self):#x}, {len(self._lot)} waiting, lock {self._lock!r}>"


# ----------------------------------------------------------------------
# Semaphore


@dataclass(frozen=True)
class SemaphoreStatistics:
    """``value``: permits available now; ``max_value``: the upper bound (or
    None); ``tasks_waiting``: tasks blocked in ``acquire``."""

    value: int
    max_value: int | None
    tasks_waiting: int


def _check_count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return value


class Semaphore(_AsyncContextManagerMixin):
    """A counter of permits: :meth:`acquire` takes one (waiting while there
    are none), :meth:`release` gives one back.

    *initial_value* is the number of permits to start with. With
    *max_value*, releasing beyond that many permits raises
    :exc:`ValueError` (a bounded semaphore, which catches extra releases).
    Unlike a lock, a semaphore has no owner: any task may release.

    Fair: a released permit goes directly to the task that has waited
    longest.
    """

    __slots__ = ("_value", "_max_value", "_lot")

    def __init__(self, initial_value: int, *, max_value: int | None = None) -> None:
        _check_count(initial_value, "Semaphore initial_value")
        if max_value is not None:
            _check_count(max_value, "Semaphore max_value")
            if max_value < initial_value:
                raise ValueError(f"Semaphore initial_value ({initial_value}) must not exceed max_value ({max_value})")
        self._value = initial_value
        self._max_value = max_value
        self._lot = ParkingLot()

    @property
    def value(self) -> int:
        """The number of permits available now."""
        return self._value

    @property
    def max_value(self) -> int | None:
        """The upper bound given at construction, or None."""
        return self._max_value

    @types.coroutine
    def acquire(self) -> Generator[Any, Any, None]:
        """Take a permit, waiting until one is available. A checkpoint (also
        when a permit is available)."""
        _current_task("Semaphore.acquire()")
        if self._value:
            yield from checkpoint_if_cancelled()
            self._value -= 1
            yield from cancel_shielded_checkpoint()
        else:
            # release() hands its permit to us before waking us.
            yield from self._lot.park()

    def acquire_nowait(self) -> None:
        """Take a permit if one is available, else raise
        :exc:`~nursery.WouldBlock`. Not a checkpoint."""
        _current_task("Semaphore.acquire_nowait()")
        if not self._value:
            raise WouldBlock
        self._value -= 1

    def release(self) -> None:
        """Give a permit back; the longest-waiting task, if any, gets it. Not
        a checkpoint.

        Raises :exc:`ValueError` if that would exceed *max_value*.
        """
        lot = self._lot
        if lot:
            # Waiters mean the value is 0: the permit goes to the first one.
            lot.unpark()
            return
        if self._max_value is not None and self._value >= self._max_value:
            raise ValueError(
                f"Semaphore released too many times: its value is already max_value ({self._max_value})"
            )
        self._value += 1

    def statistics(self) -> SemaphoreStatistics:
        """A :class:`SemaphoreStatistics` snapshot, for debugging."""
        return SemaphoreStatistics(value=self._value, max_value=self._max_value, tasks_waiting=len(self._lot))

    def __repr__(self) -> str:
        bound = "" if self._max_value is None else f"/{self._max_value}"
        return f"<Semaphore at {id(self):#x}, value {self._value}{bound}, {len(self._lot)} waiting>"


# ----------------------------------------------------------------------
# CapacityLimiter


@dataclass(frozen=True)
class CapacityLimiterStatistics:
    """``borrowed_tokens``: tokens held now; ``total_tokens``: the limit;
    ``borrowers``: who holds them (tasks, or the objects passed to
    ``acquire_on_behalf_of``); ``tasks_waiting``: tasks blocked in
    ``acquire``."""

    borrowed_tokens: int
    total_tokens: int | float
    borrowers: list[Any]
    tasks_waiting: int


def _check_total_tokens(value: object) -> int | float:
    if isinstance(value, bool) or not (isinstance(value, int) or value == math.inf):
        raise TypeError(f"total_tokens must be an int or math.inf, got {value!r}")
    if value < 1:
        raise ValueError(f"total_tokens must be >= 1, got {value!r}")
    return value  # type: ignore[return-value]


class CapacityLimiter(_AsyncContextManagerMixin):
    """Limits how many things may use a resource at once: at most
    :attr:`total_tokens` borrowers hold a token at a time.

    Like a semaphore, but each token is held by a *borrower*: the current
    task for :meth:`acquire`/:meth:`release`, or any hashable object for
    :meth:`acquire_on_behalf_of`/:meth:`release_on_behalf_of`. A borrower
    holds at most one token, and only a borrower that holds one can give it
    back, which catches double acquires and stray releases. The limit can be
    changed at any time by setting :attr:`total_tokens`.

    Fair: a returned token goes directly to the task that has waited
    longest.
    """

    __slots__ = ("_total_tokens", "_borrowers", "_lot", "_pending")

    def __init__(self, total_tokens: int | float) -> None:
        self._total_tokens = _check_total_tokens(total_tokens)
        self._borrowers: set[Hashable] = set()
        self._lot = ParkingLot()
        # Waiting task -> the borrower it waits for, to be entered in
        # _borrowers when the task is handed a token.
        self._pending: dict[Task, Hashable] = {}

    @property
    def total_tokens(self) -> int | float:
        """The limit: an int >= 1, or ``math.inf``. Settable; raising it
        wakes waiting tasks at once (lowering it takes effect as tokens are
        returned: no token is taken back)."""
        return self._total_tokens

    @total_tokens.setter
    def total_tokens(self, value: int | float) -> None:
        self._total_tokens = _check_total_tokens(value)
        self._hand_off()

    @property
    def borrowed_tokens(self) -> int:
        """How many tokens are held now."""
        return len(self._borrowers)

    @property
    def available_tokens(self) -> int | float:
        """How many more tokens could be borrowed now (never negative, also
        after :attr:`total_tokens` was lowered below the number held)."""
        return max(0, self._total_tokens - len(self._borrowers))

    def _hand_off(self) -> None:
        # Give free tokens to waiting tasks, longest-waiting first.
        lot = self._lot
        while lot and len(self._borrowers) < self._total_tokens:
            (task,) = lot.unpark()
            self._borrowers.add(self._pending.pop(task))

    def acquire_nowait(self) -> None:
        """Borrow a token for the current task, or raise
        :exc:`~nursery.WouldBlock`. Not a checkpoint."""
        self.acquire_on_behalf_of_nowait(_current_task("CapacityLimiter.acquire_nowait()"))

    def acquire_on_behalf_of_nowait(self, borrower: Hashable) -> None:
        """Borrow a token for *borrower*, or raise :exc:`~nursery.WouldBlock`
        if none is free. Not a checkpoint.

        Raises :exc:`RuntimeError` if *borrower* already holds one.
        """
        if borrower in self._borrowers:
            raise RuntimeError(f"{borrower!r} already holds one of this CapacityLimiter's tokens")
        if self._lot or len(self._borrowers) >= self._total_tokens:
            raise WouldBlock
        self._borrowers.add(borrower)

    def acquire(self) -> Awaitable[None]:
        """Borrow a token for the current task, waiting until one is free.
        A checkpoint. Raises :exc:`RuntimeError` if the task already holds
        one."""
        return self.acquire_on_behalf_of(_current_task("CapacityLimiter.acquire()"))

    async def acquire_on_behalf_of(self, borrower: Hashable) -> None:
        """Borrow a token for *borrower*, waiting until one is free. A
        checkpoint (also when a token is free).

        Raises :exc:`RuntimeError` if *borrower* already holds one, or is
        already waiting for one in another task.
        """
        task = _current_task("CapacityLimiter.acquire_on_behalf_of()")
        await checkpoint_if_cancelled()
        try:
            self.acquire_on_behalf_of_nowait(borrower)
        except WouldBlock:
            # A borrower may wait in one task at most: two waits for it would
            # both be granted, but enter it in _borrowers only once.
            if borrower in self._pending.values():
                raise RuntimeError(
                    f"{borrower!r} is already waiting for one of this CapacityLimiter's tokens in another task"
                ) from None
            self._pending[task] = borrower
            try:
                # _hand_off() enters our borrower before waking us.
                await self._lot.park()
            except BaseException:
                # Cancelled while waiting: we left the lot without a token.
                del self._pending[task]
                raise
        else:
            await cancel_shielded_checkpoint()

    def release(self) -> None:
        """Return the current task's token. Not a checkpoint."""
        self.release_on_behalf_of(_current_task("CapacityLimiter.release()"))

    def release_on_behalf_of(self, borrower: Hashable) -> None:
        """Return *borrower*'s token; the longest-waiting task, if any, gets
        it. Not a checkpoint.

        Raises :exc:`RuntimeError` if *borrower* holds no token.
        """
        try:
            self._borrowers.remove(borrower)
        except KeyError:
            raise RuntimeError(f"{borrower!r} does not hold any of this CapacityLimiter's tokens") from None
        self._hand_off()

    def statistics(self) -> CapacityLimiterStatistics:
        """A :class:`CapacityLimiterStatistics` snapshot, for debugging."""
        return CapacityLimiterStatistics(
            borrowed_tokens=len(self._borrowers),
            total_tokens=self._total_tokens,
            borrowers=list(self._borrowers),
            tasks_waiting=len(self._lot),
        )

    def __repr__(self) -> str:
        return (
            f"<CapacityLimiter at {id(self):#x}, {len(self._borrowers)}/{self._total_tokens} borrowed, "
            f"{len(self._lot)} waiting>"
        )

"""assert_checkpoints / assert_no_checkpoints: check that a block of async
code does (or does not) yield to the scheduler."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .. import lowlevel

__all__ = ["assert_checkpoints", "assert_no_checkpoints"]


class _StepCounter(lowlevel.Instrument):
    """Counts how often one task is resumed by the scheduler.

    Every time a task yields to the scheduler (a checkpoint, a shielded
    checkpoint, a blocking wait), it is later resumed with a new step. So
    the number of ``before_task_step`` calls for the task while the block
    runs is the number of times the block yielded. (Counting
    ``after_task_step`` instead would depend on whether the step that
    installs the instrument, the one that yields first, is itself reported
    when it ends; resumptions are always seen, since the instrument is in
    place before any of them.)
    """

    __slots__ = ("task", "resumptions")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.resumptions = 0

    def before_task_step(self, task: Any) -> None:
        if task is self.task:
            self.resumptions += 1


class _CheckpointAssertion:
    __slots__ = ("_expect", "_counter")

    def __init__(self, expect: bool) -> None:
        self._expect = expect
        self._counter: _StepCounter | None = None

    def __enter__(self) -> None:
        if self._counter is not None:
            raise RuntimeError(f"{self._name()}() objects cannot be entered twice; make a new one")
        self._counter = _StepCounter(lowlevel.current_task())
        lowlevel.add_instrument(self._counter)

    def _name(self) -> str:
        return "assert_checkpoints" if self._expect else "assert_no_checkpoints"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        counter = self._counter
        assert counter is not None
        lowlevel.remove_instrument(counter)
        count = counter.resumptions
        if self._expect:
            # A block that raised reports its own error; an AssertionError
            # on top of it would only hide it.
            if exc_type is None and count == 0:
                raise AssertionError(
                    "assert_checkpoints: the block did not execute a checkpoint "
                    "(the task never yielded to the scheduler inside it)"
                )
        elif count:
            # Checked however the block exits: a checkpoint that raised
            # Cancelled, swallowed by a cancel scope around this block, must
            # not go unnoticed.
            times = "once" if count == 1 else f"{count} times"
            raise AssertionError(
                f"assert_no_checkpoints: the block executed a checkpoint (the task yielded to the scheduler {times})"
            )


def assert_checkpoints() -> _CheckpointAssertion:
    """A context manager (plain ``with``, inside a task) that raises
    :exc:`AssertionError` when its block exits without having executed a
    checkpoint, that is, without the task yielding to the scheduler at least
    once: ``await nursery.sleep(0)``, :func:`lowlevel.checkpoint`, a wait that
    blocked, and also :func:`lowlevel.cancel_shielded_checkpoint` (a schedule
    point that cannot be cancelled) count.

    What is checked is that the task *let other tasks run*; it is not checked
    separately that the block could be cancelled (a block whose only yield is
    a cancel-shielded checkpoint passes). :func:`lowlevel.checkpoint_if_cancelled`
    does not count unless it found a cancellation, since otherwise it does not
    yield. If the block raises, its exception propagates unchanged and nothing
    is asserted.

    Installs an instrument for the duration of the block, so the run takes
    its slower, instrumented path meanwhile.
    """
    return _CheckpointAssertion(True)


def assert_no_checkpoints() -> _CheckpointAssertion:
    """A context manager (plain ``with``, inside a task) that raises
    :exc:`AssertionError` if the task yielded to the scheduler inside its
    block: any checkpoint, shielded or not, or a wait that blocked. This is
    checked even when the block raises (for example ``Cancelled`` from a
    checkpoint), so that a cancel scope around the block cannot hide the
    failure. A :func:`lowlevel.checkpoint_if_cancelled` that found no
    cancellation does not yield and is allowed.
    """
    return _CheckpointAssertion(False)

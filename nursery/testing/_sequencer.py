"""Sequencer: force blocks of code in different tasks to run in a chosen
order, to write tests about orderings without sleeps."""

from __future__ import annotations

import operator
from types import TracebackType

from .._event import Event

__all__ = ["Sequencer"]


class Sequencer:
    """Makes blocks of code in different tasks run one after the other, in
    the order of the numbers you give them::

        seq = Sequencer()

        async def first():
            async with seq(0):
                ...  # runs first
            async with seq(2):
                ...  # runs third

        async def second():
            async with seq(1):
                ...  # runs second

    ``async with seq(n):`` waits until the block of step ``n - 1`` has been
    exited (step 0 never waits), runs the block, and on exit lets step
    ``n + 1`` go. Entering is not a checkpoint when it is already the step's
    turn; otherwise it blocks until then.

    A step is done when its block exits, however it exits (normally, with an
    exception, or cancelled). A step whose task is cancelled while it is still
    *waiting* for its turn can never run, so the sequence is broken: every
    later step, waiting or yet to come, raises :exc:`RuntimeError` ("sequence
    broken") instead of running out of order. Earlier steps are not affected.

    Each number may be used once; using one again raises :exc:`RuntimeError`.
    Numbers must be non-negative integers.
    """

    __slots__ = ("_turn", "_used", "_waiting", "_broken_at")

    def __init__(self) -> None:
        # The step whose turn it is: every step below it has exited.
        self._turn = 0
        self._used: set[int] = set()
        # One Event per step that is waiting for its turn.
        self._waiting: dict[int, Event] = {}
        # The lowest step abandoned while waiting, or None.
        self._broken_at: int | None = None

    def __call__(self, position: int) -> _Step:
        try:
            position = operator.index(position)
        except TypeError:
            raise TypeError(f"Sequencer positions are integers, got {position!r}") from None
        if position < 0:
            raise ValueError(f"Sequencer positions start at 0, got {position}")
        return _Step(self, position)

    def __repr__(self) -> str:
        state = "broken" if self._broken_at is not None else f"turn {self._turn}"
        return f"<Sequencer {state}, {len(self._waiting)} waiting>"

    def _check_not_broken(self, position: int) -> None:
        broken_at = self._broken_at
        if broken_at is not None and broken_at < position:
            raise RuntimeError(
                f"Sequencer: sequence broken: step {broken_at} was cancelled while waiting "
                f"for its turn, so step {position} cannot run in order"
            )

    async def _enter(self, position: int) -> None:
        if position in self._used:
            raise RuntimeError(f"Sequencer: step {position} was already used; each step number may be used once")
        self._used.add(position)
        self._check_not_broken(position)
        if self._turn == position:
            return
        event = self._waiting[position] = Event()
        try:
            await event.wait()
        except BaseException:
            # Only cancellation can end the wait early. This step will never
            # run, so no later step can run in order either.
            del self._waiting[position]
            self._break(position)
            raise
        self._check_not_broken(position)

    def _exit(self, position: int) -> None:
        self._turn = position + 1
        event = self._waiting.pop(position + 1, None)
        if event is not None:
            event.set()

    def _break(self, position: int) -> None:
        if self._broken_at is None or position < self._broken_at:
            self._broken_at = position
        for later in [p for p in self._waiting if p > position]:
            self._waiting.pop(later).set()


class _Step:
    """What ``Sequencer(n)`` returns: an async context manager for one step."""

    __slots__ = ("_sequencer", "_position")

    def __init__(self, sequencer: Sequencer, position: int) -> None:
        self._sequencer = sequencer
        self._position = position

    async def __aenter__(self) -> None:
        await self._sequencer._enter(self._position)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sequencer._exit(self._position)

    def __repr__(self) -> str:
        return f"<Sequencer step {self._position}>"

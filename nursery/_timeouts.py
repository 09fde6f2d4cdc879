"""Timeouts: cancel scopes with deadlines, in the shapes people reach for."""

from __future__ import annotations

from math import inf
from types import TracebackType

from ._core import CancelScope, TooSlowError, check_time, current_runner

__all__ = [
    "move_on_at",
    "move_on_after",
    "fail_at",
    "fail_after",
    "current_effective_deadline",
]


def _check_seconds(seconds: float, what: str) -> float:
    return check_time(
        seconds,
        f"{what}() takes a number of seconds, got {{value!r}}",
        f"{what}() timeout must not be NaN",
        f"{what}() timeout must be non-negative, got {{value!r}}",
    )


def move_on_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A cancel scope that is cancelled when the clock reaches *deadline*;
    the code inside simply stops and execution continues after the block.
    Check ``scope.cancelled_caught`` to see whether the deadline fired."""
    return CancelScope(deadline=deadline, shield=shield)


# Hot path (benchmark: timeouts): one validation, then a plain scope.
def move_on_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A cancel scope with a deadline *seconds* after it is entered (see
    :func:`move_on_at`)."""
    cls = seconds.__class__
    if (cls is not float and cls is not int) or not seconds >= 0:
        seconds = _check_seconds(seconds, "move_on_after")
    return CancelScope._with_relative_deadline(seconds, shield)


class _FailScope:
    """Wraps a scope so that a fired deadline raises TooSlowError."""

    __slots__ = ("_scope",)

    def __init__(self, scope: CancelScope) -> None:
        self._scope = scope

    def __enter__(self) -> CancelScope:
        return self._scope.__enter__()

    def __exit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        suppressed = self._scope.__exit__(etype, exc, tb)
        if self._scope.cancelled_caught:
            raise TooSlowError(f"deadline of {self._scope.deadline:.3f} exceeded")
        return suppressed


def fail_at(deadline: float, *, shield: bool = False) -> _FailScope:
    """Like :func:`move_on_at`, but if the deadline fires and the block is
    cancelled, raise :exc:`TooSlowError` (a :exc:`TimeoutError`) after it.
    ``with fail_at(d) as scope`` gives the underlying :class:`CancelScope`."""
    return _FailScope(CancelScope(deadline=deadline, shield=shield))


def fail_after(seconds: float, *, shield: bool = False) -> _FailScope:
    """Like :func:`move_on_after`, but raise :exc:`TooSlowError` if the
    deadline cancels the block."""
    seconds = _check_seconds(seconds, "fail_after")
    return _FailScope(CancelScope(relative_deadline=seconds, shield=shield))


def current_effective_deadline() -> float:
    """The deadline that applies to the current task: the earliest deadline
    of its enclosing scopes up to the nearest shield; ``-inf`` if it is
    already cancelled; ``inf`` if none."""
    scope = current_runner("current_effective_deadline()").current_task._cancel_scope
    if scope._effectively_cancelled:
        return -inf
    deadline = inf
    while scope is not None:
        if scope._deadline < deadline:
            deadline = scope._deadline
        if scope._shield:
            break
        scope = scope._parent
    return deadline

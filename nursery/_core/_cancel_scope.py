"""Cancel scopes: the centre of the kernel.

The scopes of a run form one tree. A scope's parent is the scope that was
innermost in the entering task when it was entered; the root scope of a task
spawned in a nursery is that nursery's scope. Every task points at its
innermost scope (``Task._cancel_scope``).

The invariant everything else relies on, kept by ``_propagate``:

    scope._effectively_cancelled ==
        scope._cancel_called
        or (not scope._shield and scope._parent._effectively_cancelled)

So a checkpoint decides whether to raise ``Cancelled`` by reading one flag on
the task's innermost scope, whatever the depth of the tree. The price is paid
when a scope is cancelled or its shield changes: the change is pushed down
the subtree, and every task that becomes cancelled while blocked is offered
the cancellation through its abort function.

Which scope catches ``Cancelled``: the outermost cancelled scope that the
exception reaches, i.e. a cancelled scope whose parent's cancellation it
cannot see (no parent, shielded, or the parent is not cancelled). An inner
cancelled scope inside a cancelled outer one lets the exception through, so
that the code between the two exits does not run.
"""

from __future__ import annotations

import sys
from math import inf
from types import TracebackType
from typing import Any

from ._exceptions import Cancelled
from ._time_values import check_time
from ._state import current_runner

__all__ = ["CancelScope"]

_NEW, _ACTIVE, _EXITED = 0, 1, 2


def _check_deadline(value: float, what: str) -> float:
    return check_time(value, f"{what} must be a number, got {{value!r}}", f"{what} must not be NaN")


class CancelScope:
    """A region of code that can be cancelled as a whole, explicitly with
    :meth:`cancel` or when its :attr:`deadline` passes.

    Use it as a (synchronous) context manager; each scope can be entered
    once. Inside a cancelled scope every checkpoint raises
    :exc:`~nursery.Cancelled`; the scope catches it on exit and records that
    in :attr:`cancelled_caught`. With ``shield=True``, cancellation of the
    scopes around it does not reach the code inside.

    ``relative_deadline`` (seconds) sets the deadline relative to the moment
    the scope is entered. Give either ``deadline`` or ``relative_deadline``,
    not both.
    """

    __slots__ = (
        "_deadline",
        "_relative_deadline",
        "_shield",
        "_cancel_called",
        "cancelled_caught",
        "_effectively_cancelled",
        "_parent",
        "_children",
        "_owner",
        "_nursery",
        "_runner",
        "_state",
        "_timer_seq",
    )

    def __init__(
        self,
        *,
        deadline: float = inf,
        relative_deadline: float = inf,
        shield: bool = False,
    ) -> None:
        if deadline != inf:
            deadline = _check_deadline(deadline, "deadline")
            if relative_deadline != inf:
                raise ValueError("give either deadline or relative_deadline, not both")
        if relative_deadline != inf:
            relative_deadline = _check_deadline(relative_deadline, "relative_deadline")
            if relative_deadline < 0:
                raise ValueError(f"relative_deadline must be non-negative, got {relative_deadline!r}")
        self._deadline = deadline
        self._relative_deadline = relative_deadline
        self._shield = bool(shield)
        self._cancel_called = False
        #: Whether this scope caught a :exc:`Cancelled` when it exited.
        self.cancelled_caught = False
        self._effectively_cancelled = False
        self._parent: CancelScope | None = None
        self._children: dict[CancelScope, None] | None = None
        self._owner = None
        self._nursery = None
        self._runner = None
        self._state = _NEW
        self._timer_seq = 0

    @classmethod
    def _with_relative_deadline(cls, seconds: float, shield: bool) -> CancelScope:
        # For callers that validated *seconds* already (move_on_after): the
        # constructor's checks are a third of the cost of a short scope.
        # Benchmark: timeouts.
        self = cls.__new__(cls)
        self._deadline = inf
        self._relative_deadline = seconds
        self._shield = bool(shield)
        self._cancel_called = False
        self.cancelled_caught = False
        self._effectively_cancelled = False
        self._parent = None
        self._children = None
        self._owner = None
        self._nursery = None
        self._runner = None
        self._state = _NEW
        self._timer_seq = 0
        return self

    # ------------------------------------------------------------------
    # entering and leaving

    # Hot path (every move_on_after/fail_after block). Benchmark: timeouts.
    def __enter__(self) -> CancelScope:
        runner = current_runner("CancelScope.__enter__() (with CancelScope(), move_on_after(), fail_after(), ...)")
        task = runner.current_task
        if task is None:
            raise RuntimeError("a CancelScope can only be entered from inside a task")
        if self._state:
            raise RuntimeError(
                f"{self!r} has already been entered; each CancelScope can be used "
                "for only one 'with' block (create a new one)"
            )
        self._state = _ACTIVE
        self._owner = task
        self._runner = runner
        parent = task._cancel_scope
        self._attach(parent)
        self._effectively_cancelled = self._cancel_called or (
            not self._shield and parent._effectively_cancelled
        )
        task._cancel_scope = self
        if self._relative_deadline != inf:
            if self._relative_deadline > 0:
                self._deadline = deadline = runner.clock.current_time() + self._relative_deadline
                if not self._cancel_called:
                    runner.timers.add(deadline, self)
            else:
                self._deadline = runner.clock.current_time()
                self.cancel()
        elif self._deadline != inf:
            self._register_deadline()
        return self

    def _attach(self, parent: CancelScope) -> None:
        self._parent = parent
        children = parent._children
        if children is None:
            parent._children = {self: None}
        else:
            children[self] = None

    def _register_deadline(self) -> None:
        runner = self._runner
        if self._deadline <= runner.clock.current_time():
            self.cancel()
        elif not self._cancel_called:
            runner.timers.add(self._deadline, self)

    def _expire(self) -> None:
        # Called by the deadline registry when the deadline passes.
        self.cancel()

    def _detach(self) -> None:
        # Leave the tree; the caller has made sure nothing still hangs off
        # this scope (a nursery waits for its children before closing).
        self._state = _EXITED
        del self._parent._children[self]
        if self._timer_seq:
            self._runner.timers.discard(self)

    def __exit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task = self._owner
        if self._state != _ACTIVE:
            if self._state == _EXITED:
                # Already closed by force when an outer scope was exited out
                # of order; that error has been reported there.
                return False
            raise RuntimeError(f"{self!r} was exited without being entered")
        if self._runner.current_task is not task:
            raise RuntimeError(
                f"{self!r} was entered in task {task.name!r} but exited in another "
                f"task; a cancel scope must be exited by the task that entered it"
            )
        if task._cancel_scope is not self:
            self._exit_out_of_order(task)
        task._cancel_scope = self._parent
        self._detach()
        if exc is None:
            return False
        return self._catch(exc)

    def _catch(self, exc: BaseException) -> bool:
        """Decide what of *exc* this scope swallows. Returns True to suppress
        it entirely; raises a replacement group when only part is caught."""
        if not self._effectively_cancelled:
            return False
        parent = self._parent
        if not self._shield and parent is not None and parent._effectively_cancelled:
            # The enclosing scope is cancelled too: let it catch this, so the
            # code between the two exits does not run.
            return False
        if isinstance(exc, Cancelled):
            self.cancelled_caught = True
            return True
        if isinstance(exc, BaseExceptionGroup):
            matched, rest = exc.split(Cancelled)
            if matched is None:
                return False
            self.cancelled_caught = True
            if rest is None:
                return True
            # Re-raise the remainder with the context it had, not the group
            # we are replacing (which would read as a second failure).
            context = rest.__context__
            try:
                raise rest
            finally:
                rest.__context__ = context
                del rest, context, matched, exc
        return False

    def _exit_out_of_order(self, task) -> None:
        # The task is still inside scopes opened after this one (a scope held
        # across a yield in an async generator, or exited by hand). Close
        # them by force so the tree stays consistent, then report.
        inner = task._cancel_scope
        abandoned = []
        while inner is not self:
            if inner is None or inner._owner is not task:
                raise RuntimeError(
                    f"{self!r} is not the current scope of task {task.name!r}; "
                    "cancel scopes must be exited in the order they were entered"
                )
            abandoned.append(inner)
            inner = inner._parent
        # Formatted before the scopes are closed, so the reprs show them as
        # they were (active), not as "exited".
        message = (
            f"cancel scopes exited out of order in task {task.name!r}: {self!r} was "
            f"exited while {abandoned[-1]!r}, entered inside it, was still open. This "
            "usually means a cancel scope or nursery was held open across a 'yield' "
            "in an async generator; use an async context manager instead, or keep "
            "the scope inside the generator's body between yields"
        )
        for scope in abandoned:
            task._cancel_scope = scope._parent
            scope._detach()
        task._cancel_scope = self._parent
        self._detach()
        raise RuntimeError(message)

    # ------------------------------------------------------------------
    # cancellation

    def cancel(self) -> None:
        """Cancel this scope, now or (if not yet entered) as soon as it is
        entered. Idempotent; not a checkpoint."""
        if self._cancel_called:
            return
        self._cancel_called = True
        if self._state == _ACTIVE:
            if self._timer_seq:
                self._runner.timers.discard(self)
            self._propagate()

    def _propagate(self) -> None:
        """Restore the invariant in the subtree under this scope after its
        own inputs changed, and offer the cancellation to every task that is
        now cancelled and blocked."""
        deliver = self._runner.deliver_cancel
        stack = [self]
        while stack:
            scope = stack.pop()
            parent = scope._parent
            value = scope._cancel_called or (
                not scope._shield and parent is not None and parent._effectively_cancelled
            )
            if value == scope._effectively_cancelled:
                continue
            scope._effectively_cancelled = value
            if value:
                deliver(scope._owner)
                nursery = scope._nursery
                if nursery is not None:
                    for child in list(nursery._children):
                        deliver(child)
            children = scope._children
            if children:
                stack.extend(reversed(children))

    @property
    def cancel_called(self) -> bool:
        """Whether :meth:`cancel` was called or the deadline passed. It does
        not mean that anything was actually cancelled; see
        :attr:`cancelled_caught`."""
        return self._cancel_called

    # ------------------------------------------------------------------
    # deadline and shield

    @property
    def deadline(self) -> float:
        """The absolute deadline, in :func:`~nursery.current_time` terms
        (``inf`` for none). Settable at any time, also while the scope is
        active. For a scope created with ``relative_deadline`` that has not
        been entered yet, this is the deadline it would get if entered now."""
        if self._state == _NEW and self._relative_deadline != inf:
            return current_runner("CancelScope.deadline").clock.current_time() + self._relative_deadline
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        value = _check_deadline(value, "deadline")
        self._relative_deadline = inf
        self._deadline = value
        if self._state == _ACTIVE and not self._cancel_called:
            if self._timer_seq:
                self._runner.timers.discard(self)
            if value != inf:
                self._register_deadline()

    @property
    def relative_deadline(self) -> float:
        """Seconds from entry (before the scope is entered) or from now
        (while it is active) to the deadline. Setting it while active moves
        the deadline to ``current_time() + value``."""
        if self._state == _NEW:
            if self._deadline != inf:
                return self._deadline - current_runner("CancelScope.relative_deadline").clock.current_time()
            return self._relative_deadline
        if self._deadline == inf:
            return inf
        return self._deadline - self._runner.clock.current_time()

    @relative_deadline.setter
    def relative_deadline(self, value: float) -> None:
        value = _check_deadline(value, "relative_deadline")
        if value < 0:
            raise ValueError(f"relative_deadline must be non-negative, got {value!r}")
        if self._state == _NEW:
            self._deadline = inf
            self._relative_deadline = value
        elif self._state == _ACTIVE:
            self.deadline = self._runner.clock.current_time() + value
        else:
            self._relative_deadline = value

    @property
    def shield(self) -> bool:
        """While true, cancellation of enclosing scopes does not reach
        inside this one. Settable at any time."""
        return self._shield

    @shield.setter
    def shield(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"shield must be a bool, got {value!r}")
        self._shield = value
        if self._state == _ACTIVE:
            self._propagate()

    def __repr__(self) -> str:
        state = ("unbound", "active", "exited")[self._state]
        bits = [state]
        if self._cancel_called:
            bits.append("cancelled")
        if self._shield:
            bits.append("shielded")
        if self._deadline != inf:
            bits.append(f"deadline={self._deadline:.3f}")
        return f"<CancelScope at {id(self):#x}, {', '.join(bits)}>"

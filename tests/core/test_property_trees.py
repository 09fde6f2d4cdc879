"""Property-based test of the kernel's core semantics: random trees of
nurseries and cancel scopes, run under an autojump clock, checked against an
independent reference model and against invariants that need no model.

The trees
---------
A tree is built from these kinds of node:

* ``nursery``: opens a nursery and starts each child subtree in it, in
  order, with ``start_soon``, or with ``await nursery.start(...)`` for a
  ``start`` child, which runs a *pre* subtree, calls
  ``task_status.started()``, then runs a *post* subtree. (If the caller is
  cancelled by the time ``started()`` is called, the task stays under the
  caller and ``start()`` waits for all of it.) Zero children is allowed: an
  empty nursery.
* ``scope``: ``CancelScope(relative_deadline=...)``, ``move_on_after(...)``
  or ``fail_after(...)`` (shielded or not) around one subtree, with an
  optional deadline and an optional explicit ``cancel()`` made by another
  task (a "canceller" started in a harness nursery when the scope is
  entered) a given time after the scope was entered. ``fail_after`` raises
  ``TooSlowError`` (labelled with the scope's id) when its scope caught the
  cancellation.
* ``seq``: two or three subtrees run one after the other in the same task
  (so that scopes and nurseries are also entered later than time 0, and
  relative deadlines are measured from a later entry).
* leaves: ``sleep`` (sleep d), ``raise`` (sleep d, then raise an exception
  labelled with the leaf's id), ``catch`` (sleep d; if cancelled, swallow the
  Cancelled once and checkpoint again, which must raise Cancelled at once,
  since cancellation is level-triggered), and ``forever``
  (``sleep_forever()``). Each leaf also records
  ``current_effective_deadline()`` when it starts.

Every ``sleep_forever()`` runs inside a private guard scope whose deadline is
its *rescue time*, later than anything else in the tree can happen. So
every tree terminates, and whether a leaf had to be rescued (nothing in the
tree ever cancelled it) is part of the outcome that is checked. (A kernel
that hangs anyway, e.g. a deadline that never fires, is caught by the
suite's pytest timeout.)

Two families of trees
---------------------
Durations, deadlines and cancel delays have a whole number of virtual
seconds. In the *tie-free* family each of these values also gets its own
binary tie-breaker, 2**-(k+1) for the k-th value in the tree, so every value
reads like ``3.25`` or ``0.0625``. Every instant at which something happens
is then the sum of a distinct set of these values, so no two unrelated
events ever fall on the same instant. That makes the outcome independent of
the scheduling order (FIFO or any ``random_seed``), and the reference model
below predicts it exactly: which leaves finish, raise, are cancelled or
rescued and when; which scope catches each Cancelled and at what clock time
it exits; when each nursery first sees a child fail; and the exact shape of
the exception group that escapes the run.

In the *whole-seconds* family the values are plain integers (0 included:
``sleep(0)`` is a bare checkpoint and a relative deadline of 0 cancels the
scope on entry), so unrelated events collide all the time and the order in
which they are handled legitimately depends on the scheduler. These trees
are checked against the model-free invariants only, which must hold whatever
the order.

Both families check that a run replays identically (the same event log, in
the same order, at the same clock times) for the same ``random_seed``.

When hypothesis finds a failing tree it prints it as a call of ``build(...)``
with the raw tree (add it as an ``@example(tree=build(...), seed=...)`` to
replay it, or use the printed ``@reproduce_failure``), and, as a note, the
tree as an indented program with every node's id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Union

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

import nursery
import nursery.lowlevel
from nursery.testing import MockClock

INF = math.inf


# ==========================================================================
# the trees


@dataclass(frozen=True)
class Leaf:
    id: int
    kind: str  # "sleep", "raise", "catch" or "forever"
    # The duration; for "forever", the offset of the leaf's own rescue time
    # from the tree's rescue_base (0 in the whole-seconds family).
    d: Fraction

    @property
    def label(self) -> str:
        return f"L{self.id}"


@dataclass(frozen=True)
class Scope:
    id: int
    how: str  # "CancelScope", "move_on_after" or "fail_after"
    shield: bool
    deadline: Fraction | None  # relative to entry
    cancel_after: Fraction | None  # relative to entry
    body: Node


@dataclass(frozen=True)
class NurseryNode:
    id: int
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Seq:
    id: int
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Started:
    """A nursery child started with ``await nursery.start(...)``: it runs
    *pre*, calls ``task_status.started()``, then runs *post*."""

    id: int
    pre: Node
    post: Node


Node = Union[Leaf, Scope, NurseryNode, Seq, Started]


class Tree:
    """A built tree: nodes with ids, time values with tie-breakers (or
    without), each node's parent, and the rescue time."""

    def __init__(self, raw: Any, tie_free: bool) -> None:
        self.raw = raw
        self.tie_free = tie_free
        self.nodes: dict[int, Node] = {}
        self.parent: dict[int, int | None] = {}
        self._slots = 0
        self._total = Fraction(0)
        self.root = self._build(raw, None)
        # Later than any event not caused by a rescue: every instant is a
        # sum of distinct values of the tree. Each sleep_forever() has its own
        # rescue time, rescue_base plus its own tie-breaker, so that two
        # rescues never coincide.
        self.rescue_base = Fraction(math.floor(self._total) + 1)
        # Upper bound for the whole run: after a rescue, at most every value
        # once more.
        self.time_bound = self.rescue_base + 2 * self._total + 1

    def rescue_time(self, leaf: Leaf) -> Fraction:
        return self.rescue_base + leaf.d

    @property
    def slots(self) -> int:
        return self._slots

    def _time(self, whole: int) -> Fraction:
        value = Fraction(whole)
        if self.tie_free:
            value += Fraction(1, 2 ** (self._slots + 1))
        self._slots += 1
        self._total += value
        return value

    def _build(self, raw: Any, parent: int | None) -> Node:
        node_id = len(self.nodes)
        self.nodes[node_id] = None  # reserve the id (pre-order numbering)
        self.parent[node_id] = parent
        kind = raw[0]
        node: Node
        if kind in ("sleep", "raise", "catch"):
            node = Leaf(node_id, kind, self._time(raw[1]))
        elif kind == "forever":
            node = Leaf(node_id, kind, self._time(0) if self.tie_free else Fraction(0))
        elif kind == "scope":
            _, how, shield, deadline, cancel_after, body = raw
            deadline = None if deadline is None else self._time(deadline)
            cancel_after = None if cancel_after is None else self._time(cancel_after)
            node = Scope(node_id, how, shield, deadline, cancel_after, self._build(body, node_id))
        elif kind == "nursery":
            node = NurseryNode(node_id, tuple(self._build(child, node_id) for child in raw[1]))
        elif kind == "seq":
            node = Seq(node_id, tuple(self._build(child, node_id) for child in raw[1]))
        elif kind == "start":
            pre = self._build(raw[1], node_id)
            node = Started(node_id, pre, self._build(raw[2], node_id))
        else:  # pragma: no cover
            raise ValueError(f"unknown node kind {kind!r}")
        self.nodes[node_id] = node
        return node

    def ancestors(self, node_id: int) -> list[Node]:
        """The node's ancestors, innermost first."""
        result = []
        parent = self.parent[node_id]
        while parent is not None:
            result.append(self.nodes[parent])
            parent = self.parent[parent]
        return result

    def subtree(self, node: Node) -> list[Node]:
        result = [node]
        for child in _children(node):
            result.extend(self.subtree(child))
        return result

    def describe(self) -> str:
        lines: list[str] = []

        def walk(node: Node, depth: int) -> None:
            pad = "    " * depth
            if isinstance(node, Leaf):
                what = {"sleep": "sleep", "raise": "sleep, then raise", "catch": "sleep, swallowing Cancelled once"}
                if node.kind == "forever":
                    lines.append(f"{pad}#{node.id} sleep_forever() (rescued at {_fmt(self.rescue_time(node))})")
                else:
                    suffix = f" {node.label}" if node.kind == "raise" else ""
                    lines.append(f"{pad}#{node.id} {what[node.kind]} {_fmt(node.d)}{suffix}")
            elif isinstance(node, Scope):
                bits = []
                if node.how == "CancelScope":
                    if node.deadline is not None:
                        bits.append(f"relative_deadline={_fmt(node.deadline)}")
                else:
                    bits.append("inf" if node.deadline is None else _fmt(node.deadline))
                if node.shield:
                    bits.append("shield=True")
                canceller = "" if node.cancel_after is None else f"  (cancel() after {_fmt(node.cancel_after)})"
                lines.append(f"{pad}#{node.id} with {node.how}({', '.join(bits)}):{canceller}")
                walk(node.body, depth + 1)
            elif isinstance(node, NurseryNode):
                lines.append(f"{pad}#{node.id} nursery{' (empty)' if not node.children else ''}:")
                for child in node.children:
                    if isinstance(child, Started):
                        lines.append(f"{pad}    #{child.id} await start:")
                        walk(child.pre, depth + 2)
                        lines.append(f"{pad}        task_status.started()")
                        walk(child.post, depth + 2)
                    else:
                        lines.append(f"{pad}    start_soon:")
                        walk(child, depth + 2)
            else:
                lines.append(f"{pad}#{node.id} in sequence:")
                for child in node.children:
                    walk(child, depth + 1)

        walk(self.root, 0)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"build({self.raw!r}, tie_free={self.tie_free})"


def build(raw: Any, tie_free: bool) -> Tree:
    return Tree(raw, tie_free)


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Leaf):
        return ()
    if isinstance(node, Scope):
        return (node.body,)
    if isinstance(node, Started):
        return (node.pre, node.post)
    return node.children


def _fmt(value: Any) -> str:
    if isinstance(value, Fraction):
        return str(float(value)) if value.denominator != 1 else str(value.numerator)
    return repr(value)


# --------------------------------------------------------------------------
# the strategy


MAX_DEPTH = 5


@st.composite
def raw_trees(draw: Any, max_whole: int, depth: int = 0) -> Any:
    """A raw tree as nested tuples. The root is always a nursery, scope or
    sequence; below it a node is a leaf with probability depth/(depth+2)
    (a little less: hypothesis favours the 0 draw, i.e. a container)."""
    whole = st.integers(0, max_whole)
    if depth >= MAX_DEPTH or draw(st.integers(0, depth + 1)) > 1:
        # Raising leaves are drawn most often: exception groups with several
        # labels need several of them, some under shields so that they
        # raise after their nursery was cancelled.
        # (An empty nursery counts as a leaf here.)
        kind = draw(st.sampled_from(["raise", "raise", "sleep", "catch", "forever", "empty"]))
        if kind == "empty":
            return ("nursery", [])
        return (kind,) if kind == "forever" else (kind, draw(whole))
    child = raw_trees(max_whole, depth + 1)
    kind = draw(st.sampled_from(["nursery", "scope", "nursery", "scope", "seq"]))
    if kind == "nursery":
        # Some children are started with start(): ("start", pre, post).
        started = st.tuples(st.just("start"), child, child)
        return (kind, draw(st.lists(st.one_of(child, child, child, started), min_size=1, max_size=3)))
    if kind == "seq":
        return (kind, draw(st.lists(child, min_size=2, max_size=3)))
    # Scopes are often shielded and often without deadline or canceller:
    # that is what lets a task raise after its nursery was cancelled.
    # fail_after raises TooSlowError when its scope caught a Cancelled;
    # move_on_after builds its scope through a faster path than
    # CancelScope(relative_deadline=...), so both are worth running.
    maybe_time = st.one_of(st.none(), st.none(), whole)
    how = draw(st.sampled_from(["CancelScope", "move_on_after", "fail_after"]))
    return (kind, how, draw(st.booleans()), draw(maybe_time), draw(maybe_time), draw(child))


def trees(*, tie_free: bool) -> st.SearchStrategy:
    # Small whole parts make collisions likely in the whole-seconds family,
    # which is the point of that family.
    # At most 40 tie-breakers keep every instant exact in a float (whole
    # parts stay below 2**10, the finest tie-breaker is 2**-41).
    return raw_trees(6 if tie_free else 3).map(lambda raw: build(raw, tie_free)).filter(lambda t: t.slots <= 40)


# ==========================================================================
# the interpreter: runs a tree on the kernel and records what happened


class Boom(Exception):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


@dataclass
class RunResult:
    log: list[tuple[Fraction, int, str, Any]]
    escaped: BaseException | None
    finished_at: Fraction
    end_time: Fraction


class _Interpreter:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.log: list[tuple[Fraction, int, str, Any]] = []
        self.harness: Any = None
        self.escaped: BaseException | None = None
        self.finished_at = Fraction(-1)
        self.end_time = Fraction(-1)

    def record(self, node_id: int, event: str, value: Any = None) -> None:
        self.log.append((Fraction(nursery.current_time()), node_id, event, value))

    async def main(self) -> None:
        async with nursery.open_nursery() as harness:
            self.harness = harness
            try:
                await self.node(self.tree.root)
            except BaseException as exc:  # noqa: BLE001 - recorded and checked
                self.escaped = exc
            self.finished_at = Fraction(nursery.current_time())
            # Only the cancellers are left in the harness.
            harness.cancel_scope.cancel()
        self.end_time = Fraction(nursery.current_time())

    async def node(self, node: Node) -> None:
        self.record(node.id, "enter")
        try:
            if isinstance(node, Leaf):
                await self.leaf(node)
            elif isinstance(node, Scope):
                await self.scope(node)
            elif isinstance(node, NurseryNode):
                await self.nursery(node)
            else:
                for child in node.children:
                    await self.node(child)
        finally:
            self.record(node.id, "finally")

    async def leaf(self, leaf: Leaf) -> None:
        deadline = nursery.current_effective_deadline()
        self.record(leaf.id, "effective deadline", deadline if math.isinf(deadline) else Fraction(deadline))
        if leaf.kind == "forever":
            with nursery.CancelScope(deadline=float(self.tree.rescue_time(leaf))) as guard:
                try:
                    await nursery.sleep_forever()
                except nursery.Cancelled:
                    self.record(leaf.id, "cancelled")
                    raise
            if guard.cancelled_caught:
                self.record(leaf.id, "rescued")
            return
        try:
            await nursery.sleep(float(leaf.d))
        except nursery.Cancelled:
            self.record(leaf.id, "cancelled")
            if leaf.kind != "catch":
                raise
            self.record(leaf.id, "swallowed")
            try:
                await nursery.lowlevel.checkpoint()
            except nursery.Cancelled:
                self.record(leaf.id, "cancelled")
                raise
            # Level-triggered cancellation is broken if we get here.
            self.record(leaf.id, "done")
            return
        if leaf.kind == "raise":
            self.record(leaf.id, "raised")
            raise Boom(leaf.label)
        self.record(leaf.id, "done")

    async def scope(self, node: Scope) -> None:
        relative = INF if node.deadline is None else float(node.deadline)
        if node.how == "CancelScope":
            manager: Any = nursery.CancelScope(shield=node.shield, relative_deadline=relative)
        elif node.how == "move_on_after":
            manager = nursery.move_on_after(relative, shield=node.shield)
        else:
            manager = nursery.fail_after(relative, shield=node.shield)
        cs = None
        try:
            with manager as cs:
                if node.cancel_after is not None:
                    when = nursery.current_time() + float(node.cancel_after)
                    self.harness.start_soon(self._cancel_at, cs, when)
                await self.node(node.body)
        except nursery.TooSlowError as exc:
            if not hasattr(exc, "label"):  # not one from a fail_after inside
                exc.label = f"T{node.id}"
                self.record(node.id, "too slow")
            raise
        finally:
            if cs is not None:
                self.record(node.id, "exit", (cs.cancelled_caught, cs.cancel_called))

    @staticmethod
    async def _cancel_at(cs: nursery.CancelScope, when: float) -> None:
        await nursery.sleep_until(when)
        cs.cancel()

    async def nursery(self, node: NurseryNode) -> None:
        n = None
        try:
            async with nursery.open_nursery() as n:
                try:
                    for child in node.children:
                        if isinstance(child, Started):
                            await n.start(self._started, n, node.id, child)
                        else:
                            n.start_soon(self._child, node.id, child)
                except BaseException:
                    self.record(node.id, "child failed")  # (the body, in fact)
                    raise
        finally:
            if n is not None:
                self.record(node.id, "exit", (n.cancel_scope.cancelled_caught, len(n.child_tasks)))

    async def _started(self, n: Any, nursery_id: int, node: Started, task_status: Any) -> None:
        self.record(node.id, "enter")
        moved = False
        try:
            await self.node(node.pre)
            task_status.started()
            # If the caller is cancelled by now, the task stays under it and
            # start() waits for the whole task.
            moved = nursery.lowlevel.current_task().parent_nursery is n
            self.record(node.id, "started" if moved else "started, kept by the caller")
            await self.node(node.post)
        except BaseException:
            if moved:
                self.record(nursery_id, "child failed")
            raise
        finally:
            self.record(node.id, "finally")

    async def _child(self, nursery_id: int, child: Node) -> None:
        try:
            await self.node(child)
        except BaseException:
            self.record(nursery_id, "child failed")
            raise


def run_tree(tree: Tree, seed: int | None) -> RunResult:
    interp = _Interpreter(tree)
    nursery.run(interp.main, clock=MockClock(autojump_threshold=0), random_seed=seed)
    return RunResult(interp.log, interp.escaped, interp.finished_at, interp.end_time)


# --------------------------------------------------------------------------
# what a run did, per node, in a form the model also produces

CANCELLED = "<Cancelled>"


def shape(exc: BaseException | None) -> Any:
    """An exception as plain data: a label, CANCELLED, a tuple for a group
    (in order), or ("unexpected", ...)."""
    if exc is None:
        return None
    if isinstance(exc, BaseExceptionGroup):
        if exc.message != "Exceptions from nursery":
            return ("unexpected group message", exc.message)
        return tuple(shape(e) for e in exc.exceptions)
    if isinstance(exc, Boom) or (isinstance(exc, nursery.TooSlowError) and hasattr(exc, "label")):
        return exc.label
    if isinstance(exc, nursery.Cancelled):
        return CANCELLED
    return ("unexpected", repr(exc))


def facts_of(result: RunResult) -> dict[int, dict[str, Any]]:
    facts: dict[int, dict[str, Any]] = {}
    for time, node_id, event, value in result.log:
        f = facts.setdefault(node_id, {})
        if event == "enter":
            f.setdefault("enter", []).append(time)
        elif event == "finally":
            f.setdefault("finally", []).append(time)
        elif event == "exit":
            f.setdefault("exit", []).append((time, value))
        elif event == "child failed":
            f.setdefault("failed", time)
        elif event == "effective deadline":
            f["effective deadline"] = value
        else:
            f.setdefault("events", []).append((event, time))
    return facts


# ==========================================================================
# the reference model
#
# A node's outcome is computed from its entry time and its environment: the
# cancel scopes around it, innermost first, each as (time its cancel() is
# called, shield, deadline). A point in the tree is effectively cancelled from the
# earliest cancel time among the scopes out to (and including) the first
# shielded one. A nursery's scope is cancelled when a child first finishes
# with an exception: the model first runs the children as if it never were,
# takes the earliest exceptional finish f, and runs the other children again
# with the nursery cancelled at f (nothing before f changes). The child that
# failed first keeps its outcome: the nursery's cancellation is a
# consequence of its exit, so it never sees it. In the tie-free family every
# other comparison of two instants compares distinct instants, or an event
# with its own consequence; the model raises ModelTie if that reasoning is
# ever wrong.


class ModelTie(Exception):
    pass


Env = tuple[tuple[Any, bool, Any], ...]


def _cancel_time(env: Env) -> Any:
    earliest: Any = INF
    for when, shield, _ in env:
        earliest = min(earliest, when)
        if shield:
            break
    return earliest


def _effective_deadline(env: Env, now: Any) -> Any:
    """What current_effective_deadline() says at *now*."""
    if _cancel_time(env) <= now:
        return -INF
    earliest: Any = INF
    for _, shield, deadline in env:
        earliest = min(earliest, deadline)
        if shield:
            break
    return earliest


def _without_cancelled(exc: Any) -> Any:
    if exc == CANCELLED:
        return None
    if isinstance(exc, tuple):
        kept = tuple(x for x in (_without_cancelled(e) for e in exc) if x is not None)
        return kept or None
    return exc


def _contains_cancelled(exc: Any) -> bool:
    return exc == CANCELLED or (isinstance(exc, tuple) and any(_contains_cancelled(e) for e in exc))


def _contains_label(exc: Any) -> bool:
    if isinstance(exc, tuple):
        return any(_contains_label(e) for e in exc)
    return isinstance(exc, str) and exc != CANCELLED


def _scope_exit(own: Any, shield: bool, outer: Env, time: Any, exc: Any) -> tuple[Any, bool]:
    """What a scope does with *exc* when it exits at *time*: returns (what
    propagates, cancelled_caught). The outermost effectively cancelled scope
    (up to a shield) catches every Cancelled; the rest propagates."""
    if exc is None:
        return None, False
    outer_cancelled = not shield and _cancel_time(outer) <= time
    if not (own <= time or outer_cancelled) or outer_cancelled:
        return exc, False
    if not _contains_cancelled(exc):
        return exc, False
    return _without_cancelled(exc), True


def _wait(start: Any, wake: Any, cancel: Any) -> tuple[str, Any]:
    """A blocking wait from *start* that ends by itself at *wake*, in an
    environment cancelled from *cancel*."""
    if cancel <= start:
        return "cancelled", start
    if cancel == wake:
        raise ModelTie(f"a wait ends at {wake} exactly when its scope is cancelled")
    if cancel < wake:
        return "cancelled", cancel
    return "done", wake


class Model:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def run(self) -> tuple[dict[int, dict[str, Any]], Any, Fraction]:
        end, exc, facts = self.node(self.tree.root, Fraction(0), ())
        assert not _contains_cancelled(exc), "model error: a Cancelled escapes the run"
        return facts, exc, end

    def node(self, node: Node, start: Fraction, env: Env) -> tuple[Fraction, Any, dict]:
        if isinstance(node, Leaf):
            end, exc, facts = self.leaf(node, start, env)
        elif isinstance(node, Scope):
            end, exc, facts = self.scope(node, start, env)
        elif isinstance(node, NurseryNode):
            end, exc, facts = self.nursery(node, start, env)
        else:
            end, exc, facts = start, None, {}
            for child in node.children:
                end, exc, child_facts = self.node(child, end, env)
                facts.update(child_facts)
                if exc is not None:
                    break
        facts.setdefault(node.id, {}).update(enter=[start], **{"finally": [end]})
        return end, exc, facts

    def leaf(self, leaf: Leaf, start: Fraction, env: Env) -> tuple[Fraction, Any, dict]:
        cancel = _cancel_time(env)
        events: list[tuple[str, Fraction]] = []
        facts = {leaf.id: {"events": events, "effective deadline": _effective_deadline(env, start)}}
        if leaf.kind == "forever":
            rescue = self.tree.rescue_time(leaf)
            _, when = _wait(start, INF, min(cancel, rescue))
            events.append(("cancelled", when))
            exc, caught = _scope_exit(rescue, False, env, when, CANCELLED)
            if caught:
                events.append(("rescued", when))
            return when, exc, facts
        how, when = _wait(start, start + leaf.d, cancel)
        if how == "done":
            events.append(("raised" if leaf.kind == "raise" else "done", when))
            exc = leaf.label if leaf.kind == "raise" else None
        else:
            events.append(("cancelled", when))
            if leaf.kind == "catch":
                # The checkpoint right after: the scope is still cancelled.
                events.extend([("swallowed", when), ("cancelled", when)])
            exc = CANCELLED
        return when, exc, facts

    def scope(self, node: Scope, start: Fraction, env: Env) -> tuple[Fraction, Any, dict]:
        deadline: Any = INF if node.deadline is None else start + node.deadline
        own = deadline
        if node.cancel_after is not None:
            own = min(own, start + node.cancel_after)
        end, exc, facts = self.node(node.body, start, ((own, node.shield, deadline),) + env)
        exc, caught = _scope_exit(own, node.shield, env, end, exc)
        f = facts.setdefault(node.id, {})
        f["exit"] = [(end, (caught, own <= end))]
        if node.how == "fail_after" and caught and exc is None:
            # (If only part of a group was caught, the rest propagates
            # instead of TooSlowError.)
            exc = f"T{node.id}"
            f["events"] = [("too slow", end)]
        return end, exc, facts

    def nursery(self, node: NurseryNode, start: Fraction, env: Env) -> tuple[Fraction, Any, dict]:
        # The nursery's "units" are its body (key -1) and its children (key
        # i): each unit that fails cancels the nursery. The first to fail
        # never sees that cancellation; the others are run again with it.
        body_end, body_exc, units, facts = self._nursery_units(node, start, env, INF, None)
        failures = [(end, key) for end, exc, key in units if exc is not None]
        if body_exc is not None:
            failures.append((body_end, -1))
        own: Any = INF
        if failures:
            own, cause = min(failures)
            body_end, body_exc, units, facts = self._nursery_units(node, start, env, own, cause)
            facts[node.id] = {"failed": own}
        finished = sorted((end, key, exc) for end, exc, key in units if exc is not None)
        if body_exc is not None:
            finished = sorted(finished + [(body_end, -1, body_exc)])
        if not any(end >= body_end for end, _, _ in units):
            # No child left when the body ends: leaving the nursery is a
            # plain checkpoint, which raises Cancelled into the group if the
            # nursery is cancelled (by then, also by the body's failure).
            own_now = own if own <= body_end else INF
            if min(own_now, _cancel_time(env)) <= body_end:
                finished.append((body_end, len(node.children), CANCELLED))
                own = min(own, body_end)
        for (t1, _, e1), (t2, _, e2) in zip(finished, finished[1:]):
            if t1 == t2 and _contains_label(e1) and _contains_label(e2):
                raise ModelTie(f"two units finish at {t1} with exceptions to report: {e1}, {e2}")
        end = max([body_end] + [end for end, _, _ in units])
        group = tuple(exc for _, _, exc in finished) or None
        exc, caught = _scope_exit(own, False, env, end, group)
        facts.setdefault(node.id, {})["exit"] = [(end, (caught, 0))]
        return end, exc, facts

    def _nursery_units(self, node: NurseryNode, start: Fraction, env: Env, own: Any, cause: int | None) -> tuple:
        """Run the body and the children with the nursery cancelled at *own*
        (except for unit *cause*). Returns (body end, body exception, [(end,
        exception, key) per child unit], facts)."""

        def env_of(key: int) -> Env:
            return ((INF if key == cause else own, False, INF),) + env

        facts: dict[int, dict] = {}
        units: list[tuple[Fraction, Any, int]] = []
        now = start
        body_env = env_of(-1)
        # start() runs the new task in a private nursery of the caller until
        # it calls started(); that nursery is only ever cancelled with ours.
        caller_env = ((INF, False, INF),) + body_env
        for i, child in enumerate(node.children):
            if not isinstance(child, Started):
                end, exc, child_facts = self.node(child, now, env_of(i))
                facts.update(child_facts)
                units.append((end, exc, i))
                continue
            started_facts: dict[str, Any] = {"enter": [now]}
            facts[child.id] = started_facts
            pre_end, exc, child_facts = self.node(child.pre, now, caller_env)
            facts.update(child_facts)
            if exc is None and _cancel_time(caller_env) <= pre_end:
                # started() in a cancelled caller: the task stays under it
                # and start() waits for all of it.
                started_facts["events"] = [("started, kept by the caller", pre_end)]
                post_end, exc, child_facts = self.node(child.post, pre_end, caller_env)
                facts.update(child_facts)
                started_facts["finally"] = [post_end]
                now = post_end
            elif exc is None:
                started_facts["events"] = [("started", pre_end)]
                post_end, post_exc, child_facts = self.node(child.post, pre_end, env_of(i))
                facts.update(child_facts)
                started_facts["finally"] = [post_end]
                units.append((post_end, post_exc, i))
                now = pre_end
                continue
            else:
                started_facts["finally"] = [pre_end]
                now = pre_end
            if exc is not None:
                # The task failed under the caller: its private nursery
                # passes the exception on (a Cancelled in it is never its
                # own to catch) and start() raises it as itself.
                passed, caught = _scope_exit(now, False, body_env, now, (exc,))
                if caught or passed != (exc,):
                    raise ModelTie(f"start()'s private nursery would catch part of {exc!r}")
                return now, exc, units, facts
        return now, None, units, facts


# ==========================================================================
# invariants that need no model (they hold whatever the scheduling order)


def _own_cancel_times(tree: Tree, facts: dict[int, dict]) -> dict[int, Any]:
    """When each entered scope or nursery had its cancel() called, as far as
    the tree itself causes it: a scope's deadline or canceller, a nursery's
    first failing child."""
    times: dict[int, Any] = {}
    for node_id, f in facts.items():
        node = tree.nodes[node_id]
        if "enter" not in f:
            continue
        entered = f["enter"][0]
        if isinstance(node, Scope):
            own: Any = INF
            if node.deadline is not None:
                own = min(own, entered + node.deadline)
            if node.cancel_after is not None:
                own = min(own, entered + node.cancel_after)
            times[node_id] = own
        elif isinstance(node, NurseryNode):
            times[node_id] = f.get("failed", INF)
    return times


def _chain_cancel_time(tree: Tree, leaf: Leaf, own: dict[int, Any], guard: bool = True) -> Any:
    """From when the leaf's checkpoints see a cancellation: the earliest
    cancel among its enclosing scopes and nurseries, out to the first shield
    (and the rescue guard of a sleep_forever(), unless guard is false)."""
    earliest: Any = tree.rescue_time(leaf) if leaf.kind == "forever" and guard else INF
    for ancestor in tree.ancestors(leaf.id):
        if ancestor.id in own:
            earliest = min(earliest, own[ancestor.id])
        if isinstance(ancestor, Scope) and ancestor.shield:
            break
    return earliest


def _labels_with_paths(exc: Any, path: tuple[int, ...] = ()) -> list[tuple[str, tuple[int, ...]]]:
    """Each label in a shape, with the path of group indices to it."""
    if isinstance(exc, tuple):
        result = []
        for i, sub in enumerate(exc):
            result.extend(_labels_with_paths(sub, path + (i,)))
        return result
    return [(exc, path)]


def check_invariants(tree: Tree, result: RunResult) -> None:
    facts = facts_of(result)
    escaped = shape(result.escaped)

    # (1) The run ended, in bounded virtual time, right after the tree did.
    assert result.finished_at <= tree.time_bound, f"the run took until {result.finished_at}"
    assert result.end_time == result.finished_at, "something happened after the tree finished"
    assert facts.get(tree.root.id, {}).get("enter") == [Fraction(0)]

    # (2) Every node that was entered was entered once and its finally ran
    # exactly once; no nursery closed with a task still in it; a node is
    # entered only inside its parent.
    for node_id, f in facts.items():
        assert len(f.get("enter", [])) == 1, f"node #{node_id} entered {len(f.get('enter', []))} times"
        assert len(f.get("finally", [])) == 1, f"finally of node #{node_id} ran {len(f.get('finally', []))} times"
        if isinstance(tree.nodes[node_id], (Scope, NurseryNode)):
            assert len(f.get("exit", [])) == 1, f"node #{node_id} exited {len(f.get('exit', []))} times"
        parent = tree.parent[node_id]
        assert parent is None or "enter" in facts.get(parent, {}), f"#{node_id} ran without its parent"
        node = tree.nodes[node_id]
        if isinstance(node, NurseryNode):
            (_, (_, left)) = f["exit"][0]
            assert left == 0, f"nursery #{node_id} exited with {left} tasks still running"
            # Children start in order; only a failing start() stops the rest.
            ran = [child.id in facts for child in node.children]
            assert ran == sorted(ran, reverse=True), f"nursery #{node_id} started children {ran}"
            assert all(ran) or "failed" in f, f"nursery #{node_id} skipped children {ran}"
        if isinstance(node, Scope):
            assert node.body.id in facts, f"body of scope #{node_id} never ran"
        # A node exits no earlier than it was entered.
        assert f["finally"][0] >= f["enter"][0]

    # (3) + (4) Every label that was raised escapes exactly once, none that
    # was not; nothing else escapes (no Cancelled, no stray exception), and
    # every group is a nursery's.
    raised = sorted(
        node.label if isinstance(node, Leaf) else f"T{node.id}"
        for node in tree.nodes.values()
        if any(e in ("raised", "too slow") for e, _ in facts.get(node.id, {}).get("events", []))
    )
    found = _labels_with_paths(escaped) if escaped is not None else []
    labels = sorted(label for label, _ in found)
    assert labels == raised, f"raised {raised}, but the run raised {escaped!r}"
    assert escaped is None or isinstance(escaped, (str, tuple)), f"unexpected exception: {escaped!r}"

    # (5) Scopes: a scope that caught a Cancelled had been cancelled, and not
    # before its deadline or canceller; without a shield inside it, it exits
    # at the very instant it was cancelled. A scope still open after its
    # deadline has been cancelled.
    own = _own_cancel_times(tree, facts)
    for node_id, f in facts.items():
        node = tree.nodes[node_id]
        if not isinstance(node, (Scope, NurseryNode)) or "exit" not in f:
            continue
        (exit_time, (caught, called)) = f["exit"][0]
        if isinstance(node, NurseryNode):
            if caught:
                assert own[node_id] <= exit_time, f"nursery #{node_id} caught a Cancelled with no failed child"
            continue
        if caught:
            assert called, f"scope #{node_id} caught a Cancelled without being cancelled"
            assert exit_time >= own[node_id], f"scope #{node_id} was cancelled before {own[node_id]}"
            shielded_inside = any(isinstance(n, Scope) and n.shield for n in tree.subtree(node.body))
            if not shielded_inside:
                assert exit_time == own[node_id], (
                    f"scope #{node_id} was cancelled at {own[node_id]} but exited only at {exit_time}"
                )
        if exit_time > own[node_id]:
            assert called, f"scope #{node_id} outlived its deadline/canceller without being cancelled"

    # (6) Leaves: a leaf is cancelled only when a scope it can see (out to
    # the first shield) was cancelled, and a leaf that such a scope
    # cancelled before its wait ended was indeed cancelled. Cancellation is
    # level-triggered: the catching leaf is cancelled again at once.
    for node in tree.nodes.values():
        if not isinstance(node, Leaf) or node.id not in facts:
            continue
        events = facts[node.id].get("events", [])
        entered = facts[node.id]["enter"][0]
        cancel = _chain_cancel_time(tree, node, own)
        # current_effective_deadline() on entry: -inf if cancelled, else the
        # earliest deadline out to the first shield.
        deadlines = [INF]
        for ancestor in tree.ancestors(node.id):
            if isinstance(ancestor, Scope):
                if ancestor.deadline is not None:
                    deadlines.append(facts[ancestor.id]["enter"][0] + ancestor.deadline)
                if ancestor.shield:
                    break
        effective = facts[node.id]["effective deadline"]
        assert effective == -INF or (effective == min(deadlines) and effective > entered), (
            f"leaf #{node.id}: current_effective_deadline() was {effective} at {entered}, deadlines {deadlines}"
        )
        if _chain_cancel_time(tree, node, own, guard=False) < entered:
            assert effective == -INF, f"leaf #{node.id} entered a cancelled scope at {entered}; deadline {effective}"
        assert events, f"leaf #{node.id} neither finished nor was cancelled"
        first, when = events[0]
        if first == "cancelled":
            assert cancel <= when, f"leaf #{node.id} was cancelled at {when}, but nothing it sees was cancelled by then"
            assert when >= entered
        else:
            wake = entered + node.d
            assert when == wake, f"leaf #{node.id} woke at {when}, expected {wake}"
            assert not cancel < wake, f"leaf #{node.id} slept on through a cancellation at {cancel}"
        if node.kind == "catch" and first == "cancelled":
            assert [e for e, _ in events] == ["cancelled", "swallowed", "cancelled"], events
            assert events[2][1] == when, "a swallowed Cancelled was not re-raised at the next checkpoint"
        elif node.kind == "forever":
            assert [e for e, _ in events] in (["cancelled"], ["cancelled", "rescued"]), events
            if len(events) == 2:
                assert when == max(entered, tree.rescue_time(node)), f"leaf #{node.id} rescued at {when}"
        else:
            assert len(events) == 1, events

    # (7) Exception groups mirror nursery nesting: each label sits under one
    # group per nursery around its leaf, and two labels share a group exactly
    # when they share the nursery that made it.
    nursery_paths = {
        label: [a.id for a in reversed(tree.ancestors(int(label[1:]))) if isinstance(a, NurseryNode)]
        for label, _ in found
    }
    group_owner: dict[tuple[int, ...], int] = {}
    for label, path in found:
        nurseries = nursery_paths[label]
        assert len(path) == len(nurseries), (
            f"{label} is nested in {len(path)} groups but raised inside {len(nurseries)} nurseries: {escaped!r}"
        )
        for depth in range(len(path)):
            owner = group_owner.setdefault(path[:depth], nurseries[depth])
            assert owner == nurseries[depth], f"group at {path[:depth]} mixes nurseries: {escaped!r}"
    assert len(set(group_owner.values())) == len(group_owner), f"a nursery raised two groups: {escaped!r}"


def check_against_model(tree: Tree, result: RunResult, expected: tuple) -> None:
    facts, escaped, end = expected
    actual = facts_of(result)
    problems = []
    for node_id in sorted(set(facts) | set(actual)):
        want, got = facts.get(node_id, {}), actual.get(node_id, {})
        if want != got:
            problems.append(f"node #{node_id}: model {want}\n{'':>10}kernel {got}")
    assert not problems, "the run differs from the model:\n  " + "\n  ".join(problems)
    assert shape(result.escaped) == escaped, f"model: {escaped!r}, kernel: {shape(result.escaped)!r}"
    assert result.finished_at == end


# ==========================================================================
# the tests


def check_tree(tree: Tree, seed: int) -> None:
    note(tree.describe())
    expected = Model(tree).run() if tree.tie_free else None
    for run_seed in (None, seed):
        result = run_tree(tree, run_seed)
        check_invariants(tree, result)
        if expected is not None:
            check_against_model(tree, result, expected)
    replay = run_tree(tree, seed)
    assert replay.log == result.log, f"random_seed={seed} did not replay identically"
    assert shape(replay.escaped) == shape(result.escaped)


_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
_seeds = st.integers(0, 2**32 - 1)

# A few shapes worth running every time, whatever hypothesis draws.
_EXAMPLES_TIE_FREE = [
    # a deadline inside a cancelled nursery, with a shielded sleeper
    (
        "nursery",
        [
            ("raise", 1),
            ("scope", "CancelScope", True, None, None, ("sleep", 3)),
            ("scope", "move_on_after", False, 2, None, ("forever",)),
        ],
    ),
    # level-triggered re-cancellation, and a canceller
    ("scope", "CancelScope", False, None, 1, ("seq", [("catch", 5), ("sleep", 1)])),
    # a shield delaying a cancelled scope's exit; an outer deadline meanwhile
    (
        "scope",
        "fail_after",
        False,
        4,
        None,
        (
            "scope",
            "fail_after",
            False,
            1,
            None,
            ("seq", [("scope", "CancelScope", True, None, None, ("sleep", 6)), ("sleep", 1)]),
        ),
    ),
    # an empty nursery in a cancelled scope; a nested nursery failing
    (
        "nursery",
        [
            ("scope", "CancelScope", False, 0, None, ("nursery", [])),
            ("nursery", [("raise", 2), ("forever",)]),
            ("raise", 3),
        ],
    ),
    # fail_after whose scope catches only part of a group: no TooSlowError
    (
        "scope",
        "fail_after",
        False,
        2,
        None,
        ("nursery", [("scope", "CancelScope", True, None, None, ("raise", 3)), ("sleep", 5)]),
    ),
    # start(): started() while the caller is cancelled keeps the task under
    # the caller, and start() waits for all of it (here it raises)
    (
        "nursery",
        [
            ("raise", 1),
            ("start", ("scope", "CancelScope", True, None, None, ("sleep", 3)), ("scope", "CancelScope", True, None, None, ("raise", 2))),
        ],
    ),
    # start(): the task fails before started(); the later child never starts
    ("nursery", [("sleep", 4), ("start", ("raise", 1), ("sleep", 1)), ("raise", 0)]),
]


@settings(max_examples=700, **_COMMON)
@given(tree=trees(tie_free=True), seed=_seeds)
@example(tree=build(_EXAMPLES_TIE_FREE[0], True), seed=1)
@example(tree=build(_EXAMPLES_TIE_FREE[1], True), seed=2)
@example(tree=build(_EXAMPLES_TIE_FREE[2], True), seed=3)
@example(tree=build(_EXAMPLES_TIE_FREE[3], True), seed=4)
@example(tree=build(_EXAMPLES_TIE_FREE[4], True), seed=5)
@example(tree=build(_EXAMPLES_TIE_FREE[5], True), seed=6)
@example(tree=build(_EXAMPLES_TIE_FREE[6], True), seed=7)
def test_random_trees_match_reference_model(tree: Tree, seed: int) -> None:
    check_tree(tree, seed)


@settings(max_examples=700, **_COMMON)
@given(tree=trees(tie_free=False), seed=_seeds)
@example(
    tree=build(("scope", "CancelScope", False, 1, None, ("nursery", [("raise", 1), ("catch", 1), ("sleep", 0)])), False),
    seed=5,
)
def test_random_trees_with_simultaneous_events_keep_invariants(tree: Tree, seed: int) -> None:
    check_tree(tree, seed)


@pytest.mark.slow
@settings(max_examples=5000, **_COMMON)
@given(tree=trees(tie_free=True), seed=_seeds)
def test_random_trees_match_reference_model_soak(tree: Tree, seed: int) -> None:
    check_tree(tree, seed)


@pytest.mark.slow
@settings(max_examples=5000, **_COMMON)
@given(tree=trees(tie_free=False), seed=_seeds)
def test_random_trees_with_simultaneous_events_soak(tree: Tree, seed: int) -> None:
    check_tree(tree, seed)

"""Run CPython's own asyncio test suite against ``nursery.compat``'s event loop.

The suite ships with every interpreter (``test.test_asyncio``); this runner
imports the installed copy (nothing of it lives in this repository) and runs
the modules of issue 5 with every event loop the tests make generically
pointed at compat's :class:`nursery.compat.EventLoop`:

* an event loop policy whose ``new_event_loop()`` returns a compat loop is
  installed before every test, so ``asyncio.new_event_loop()``,
  ``asyncio.run()``, ``asyncio.Runner()`` and ``IsolatedAsyncioTestCase``
  run on compat;
* ``test_utils.TestCase.new_test_loop(gen)`` (the suite's virtual-time
  ``TestLoop``) returns a compat loop on a :class:`nursery.testing.MockClock`:
  with autojump when the test gives no time generator; otherwise the clock
  moves as TestLoop's does, by what the generator answers after each loop
  iteration (``advance_time(dt)`` jumps it too).
* ``test_runners``' loop factory (a mocked ``BaseEventLoop``) makes a compat
  loop instead.

A test counts as *run on compat* if it created at least one compat loop
(``EventLoop.__init__`` is instrumented); the rest (tests of stock classes
with no loop, or with a loop of their own) are reported but not counted.
The pass rate is ``passed / ran-on-compat``; the expected failures, each
with a reason, are in ``expected_failures.py`` next to this file.

Usage::

    python tests/cpython/run_asyncio_suite.py [MODULE ...] [--json FILE]
        [--check] [-v] [-k SUBSTRING]

``--check`` exits non-zero when the pass rate is below 99% or a test failed
that is not in the expected-failure list. CI runs it through
``tests/cpython/test_cpython_asyncio_suite.py`` (marker ``cpython``).

Results: docs/compat.rst, "Conformance: CPython's test suite" has the
per-module table for 3.11, 3.12 and 3.13 (100% of the tests that ran on
compat passed on each, with an empty expected-failure list).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib
import json
import os
import sys
import time
import unittest
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

MODULES = [
    "test_tasks",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_queues",
    "test_timeouts",
    "test_taskgroups",
    "test_waitfor",
    "test_runners",
    "test_pep492",
    "test_context",
    "test_threads",
]

TARGET = 0.99
#: A test that takes longer than this (seconds) is assumed hung: the runner
#: dumps every thread's stack and exits.
HANG_TIMEOUT = 120


def _import_suite() -> Any:
    try:
        import test.test_asyncio  # noqa: F401
    except ImportError:
        # Some installs keep the test package out of the venv's path: use the
        # base interpreter's.
        stdlib = os.path.join(
            sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}"
        )
        sys.path.append(stdlib)
        sys.modules.pop("test", None)
        import test.test_asyncio  # noqa: F401
    from test.test_asyncio import utils as test_utils

    return test_utils


# ----------------------------------------------------------------------
# instrumentation


class _State:
    current: str | None = None
    #: test ids that created a compat loop
    on_compat: set[str] = set()


def _instrument() -> None:
    from nursery import compat
    from nursery.compat import _loop
    from nursery.testing import MockClock

    test_utils = _import_suite()

    original_init = _loop.EventLoop.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if _State.current is not None:
            _State.on_compat.add(_State.current)

    _loop.EventLoop.__init__ = __init__  # type: ignore[method-assign]

    policy_cls = getattr(compat, "EventLoopPolicy", None)
    if policy_cls is None:

        class policy_cls(asyncio.DefaultEventLoopPolicy):  # type: ignore[no-redef]
            def new_event_loop(self) -> Any:
                return compat.EventLoop()

    _State.policy_cls = policy_cls  # type: ignore[attr-defined]

    class SuiteTestLoop(compat.EventLoop):
        """compat's loop on virtual time, standing in for the suite's
        TestLoop.

        Without a time generator the MockClock autojumps. With one, the
        clock moves as TestLoop's does: after each loop iteration, the
        generator is told the deadline of every timer scheduled during it
        and answers how far to advance the clock (and it may assert on those
        deadlines)."""

        def __init__(self, gen: Any = None) -> None:
            self._suite_gen = None
            self._suite_timers: list[float] = []
            if gen is None:
                self._suite_clock = MockClock(autojump_threshold=0)
            else:
                self._suite_clock = MockClock()
                self._suite_gen = gen()
                next(self._suite_gen)
            super().__init__(clock=self._suite_clock)

        def advance_time(self, advance: float) -> None:
            if advance:
                self._suite_clock.jump(advance)

        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
            if self._suite_gen is not None:
                self._suite_timers.append(when)
            return super().call_at(when, callback, *args, context=context)

        def _run_once(self) -> None:
            if self._suite_gen is None:
                return super()._run_once()
            # TestLoop never waits: its time moves only by the generator.
            self._kernel_run.step(0)
            exc = self._interrupt
            if exc is not None:
                self._interrupt = None
                raise exc
            timers, self._suite_timers = self._suite_timers, []
            for when in timers:
                self.advance_time(self._suite_gen.send(when))

        def close(self) -> None:
            super().close()
            if self._suite_gen is not None:
                try:
                    self._suite_gen.send(0)
                except StopIteration:
                    pass
                else:
                    raise AssertionError("Time generator is not finished")

    def new_test_loop(self: Any, gen: Any = None) -> Any:
        loop = SuiteTestLoop(gen)
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = new_test_loop


def _patch_module(name: str, module: Any) -> None:
    from nursery import compat

    if name == "test_runners":

        def new_loop(self: Any) -> Any:
            loop = compat.EventLoop()
            loop.shutdown_ag_run = False
            original = loop.shutdown_asyncgens

            async def shutdown_asyncgens() -> None:
                loop.shutdown_ag_run = True
                await original()

            loop.shutdown_asyncgens = shutdown_asyncgens
            return loop

        module.BaseTest.new_loop = new_loop
    elif name == "test_pep492":
        # Its BaseTest makes a mocked BaseEventLoop: make a compat loop.
        base = module.BaseTest

        def setUp(self: Any) -> None:
            super(base, self).setUp()
            self.loop = compat.EventLoop()
            self.set_event_loop(self.loop)

        base.setUp = setUp


# ----------------------------------------------------------------------
# running


class _Result(unittest.TestResult):
    def __init__(self, module: str, verbose: bool) -> None:
        super().__init__()
        self.module = module
        self.verbose = verbose
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def _id(self, test: Any) -> str:
        return f"{self.module}::{type(test).__name__}.{test._testMethodName}"

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        tid = self._id(test)
        _State.current = tid
        asyncio.set_event_loop_policy(_State.policy_cls())  # type: ignore[attr-defined]
        faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True)
        if self.verbose:
            print(tid, "...", end=" ", flush=True)

    def stopTest(self, test: Any) -> None:
        faulthandler.cancel_dump_traceback_later()
        tid = self._id(test)
        self.outcomes.setdefault(tid, "passed")
        if self.verbose:
            print(self.outcomes[tid], flush=True)
        _State.current = None
        super().stopTest(test)

    def _fail(self, test: Any, err: Any, kind: str) -> None:
        tid = self._id(test)
        self.outcomes[tid] = "failed"
        self.details[tid] = self.details.get(tid, "") + self._exc_info_to_string(err, test)

    def addError(self, test: Any, err: Any) -> None:
        if isinstance(test, unittest.TestCase):
            self._fail(test, err, "error")
        else:  # a module or class fixture
            self.outcomes[f"{self.module}::{test}"] = "failed"
            self.details[f"{self.module}::{test}"] = self._exc_info_to_string(err, None)  # type: ignore[arg-type]

    def addFailure(self, test: Any, err: Any) -> None:
        self._fail(test, err, "failure")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            self._fail(test, err, "subtest")

    def addSkip(self, test: Any, reason: str) -> None:
        self.outcomes[self._id(test)] = "skipped"

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        # CPython's own @expectedFailure (fails on stock asyncio too).
        self.outcomes[self._id(test)] = "cpython-xfail"

    def addUnexpectedSuccess(self, test: Any) -> None:
        self.outcomes[self._id(test)] = "passed"


def run_module(name: str, *, verbose: bool = False, keyword: str | None = None) -> dict[str, Any]:
    _import_suite()
    module = importlib.import_module(f"test.test_asyncio.{name}")
    _patch_module(name, module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    if keyword:

        def keep(s: Any) -> Any:
            out = unittest.TestSuite()
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    out.addTest(keep(t))
                elif keyword in t.id():
                    out.addTest(t)
            return out

        suite = keep(suite)
    result = _Result(name, verbose)
    start = time.monotonic()
    suite.run(result)
    asyncio.set_event_loop_policy(None)
    return {"module": name, "seconds": time.monotonic() - start, "outcomes": result.outcomes, "details": result.details}


def summarize(runs: list[dict[str, Any]], expected: dict[str, str]) -> dict[str, Any]:
    table = []
    unexpected: list[str] = []
    fixed: list[str] = []
    total = {"ran": 0, "passed": 0, "failed": 0, "xfail": 0, "not_compat": 0, "skipped": 0}
    for run in runs:
        row = {"module": run["module"], "ran": 0, "passed": 0, "failed": 0, "xfail": 0, "not_compat": 0, "skipped": 0}
        for tid, outcome in sorted(run["outcomes"].items()):
            if outcome == "skipped":
                row["skipped"] += 1
                continue
            if tid not in run["on_compat"]:
                # Not counted; but a failure here is still a failure (of
                # the runner's patching, or of stock asyncio with compat
                # imported).
                row["not_compat"] += 1
                if outcome == "failed" and tid not in expected:
                    unexpected.append(tid + " (not on compat)")
                continue
            row["ran"] += 1
            if outcome in ("passed", "cpython-xfail"):
                row["passed"] += 1
                if tid in expected:
                    fixed.append(tid)
            elif tid in expected:
                row["xfail"] += 1
            else:
                row["failed"] += 1
                unexpected.append(tid)
        table.append(row)
        for k in total:
            total[k] += row[k]
    rate = total["passed"] / total["ran"] if total["ran"] else 0.0
    return {"table": table, "total": total, "rate": rate, "unexpected": unexpected, "fixed": fixed}


def format_table(summary: dict[str, Any]) -> str:
    lines = [
        f"Python {sys.version.split()[0]}",
        f"{'module':<18} {'on compat':>9} {'passed':>7} {'failed':>7} {'xfail':>6} {'not compat':>10} {'skipped':>8}",
    ]
    for row in summary["table"] + [dict(summary["total"], module="total")]:
        lines.append(
            f"{row['module']:<18} {row['ran']:>9} {row['passed']:>7} {row['failed']:>7} {row['xfail']:>6}"
            f" {row['not_compat']:>10} {row['skipped']:>8}"
        )
    lines.append(f"pass rate on compat: {summary['rate']:.2%} (target {TARGET:.0%})")
    return "\n".join(lines)


def load_expected() -> dict[str, str]:
    sys.path.insert(0, HERE)
    try:
        from expected_failures import expected_failures
    finally:
        sys.path.remove(HERE)
    return expected_failures(sys.version_info[:2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--check", action="store_true", help="fail below the target or on an unexpected failure")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-k", dest="keyword", help="only tests whose id contains this")
    parser.add_argument("--details", action="store_true", help="print the tracebacks of failures")
    args = parser.parse_args(argv)

    _import_suite()
    _instrument()
    expected = load_expected()
    runs = []
    for name in args.modules:
        _State.on_compat = set()
        run = run_module(name, verbose=args.verbose, keyword=args.keyword)
        run["on_compat"] = sorted(_State.on_compat)
        runs.append(run)
    summary = summarize(runs, expected)
    print(format_table(summary))
    details = {k: v for run in runs for k, v in run["details"].items()}
    if summary["unexpected"]:
        print("\nunexpected failures:")
        for tid in summary["unexpected"]:
            print("  ", tid)
            if args.details:
                print(details.get(tid.split(" ")[0], ""))
    if summary["fixed"]:
        print("\nin the expected-failure list but passed (remove them):")
        for tid in summary["fixed"]:
            print("  ", tid)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=1)
    if args.check and (summary["rate"] < TARGET or summary["unexpected"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

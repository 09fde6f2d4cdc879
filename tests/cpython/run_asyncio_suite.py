"""Run CPython's own asyncio test suite against ``nursery.compat``'s event loop.

The suite ships with every interpreter (``test.test_asyncio``); this runner
imports the installed copy (nothing of it lives in this repository) and runs
its modules with every event loop the tests make generically pointed at
compat's :class:`nursery.compat.EventLoop`:

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
* in the I/O modules, the test classes that are generic over the loop
  (``create_event_loop``/``new_loop`` factories) get a ``Compat...`` twin
  whose factory makes a compat loop, and their stock-selector twins are
  dropped; classes bound to stock internals keep stock loops. The details
  are in ``io_patches.py`` next to this file.

Each module runs in a child interpreter (the suite changes global state:
policies, signal handlers, child watchers). A test that hangs for
``--hang-timeout`` seconds, or crashes the interpreter, is recorded as failed
with every thread's stack, and the module resumes after it.

A test counts as *run on compat* if it created at least one compat loop
(``EventLoop.__init__`` is instrumented); the rest (tests of stock classes
with no loop, or with a loop of their own) are reported but not counted.
The pass rate is ``passed / ran-on-compat``, per group of modules: the
coordination modules of issue 5 ("part 1", target 99%), the I/O modules of
issue 6 ("I/O", 97%) and both together ("whole suite", 98%). The expected
failures, each with a reason, are in ``expected_failures.py`` next to this
file.

Usage::

    python tests/cpython/run_asyncio_suite.py [MODULE ...] [--json FILE]
        [--check] [-v] [-k REGEX] [--details] [--hang-timeout S]

``--check`` exits non-zero when a group's pass rate is below its target or a
test failed that is not in the expected-failure list (in an I/O module, only
if the module is in ``GATED_IO_MODULES``).
CI runs it through ``tests/cpython/test_cpython_asyncio_suite.py`` (marker
``cpython``).

Results: docs/compat.rst, "Conformance: CPython's test suite" has the
per-module table for 3.11, 3.12 and 3.13.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any, TextIO

HERE = os.path.dirname(os.path.abspath(__file__))

#: issue 5: the loop's coordination functions.
PART1_MODULES = [
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

#: issue 6: the loop's I/O.
IO_MODULES = [
    "test_streams",
    "test_server",
    "test_sock_lowlevel",
    "test_subprocess",
    "test_events",
    "test_sendfile",
    "test_buffered_proto",
    "test_protocols",
    "test_ssl",
    "test_sslproto",
    "test_unix_events",
]

MODULES = PART1_MODULES + IO_MODULES

#: The I/O modules whose unlisted failures fail ``--check`` (all). One left
#: out (while a module is being wired) is run and reported, its failures
#: listed apart, but they do not fail the check by themselves; the groups'
#: targets always do.
GATED_IO_MODULES: set[str] = set(IO_MODULES)

GROUPS = {"part 1": PART1_MODULES, "I/O": IO_MODULES, "whole suite": MODULES}
TARGETS = {"part 1": 0.99, "I/O": 0.97, "whole suite": 0.98}

#: A test (or the gap between two) that takes longer than this (seconds) is
#: taken as hung: the child dumps every thread's stack and exits.
HANG_TIMEOUT = 60
#: Hung or crashed tests after which a module is given up.
MAX_RESTARTS = 20


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
    #: the child's event stream (JSON lines) to the parent
    events: TextIO | None = None
    #: the child's pid: a process forked by a test must not write events
    pid = 0


def _emit(event: dict[str, Any]) -> None:
    if _State.events is not None and os.getpid() == _State.pid:
        _State.events.write(json.dumps(event) + "\n")
        _State.events.flush()


def _instrument() -> None:
    from nursery import compat
    from nursery.compat import _loop
    from nursery.testing import MockClock

    test_utils = _import_suite()

    original_init = _loop.EventLoop.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        tid = _State.current
        if tid is not None and tid not in _State.on_compat:
            _State.on_compat.add(tid)
            _emit({"event": "compat", "tid": tid})

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

    _State.stock_new_test_loop = test_utils.TestCase.new_test_loop  # type: ignore[attr-defined]
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
    elif name in IO_MODULES:
        sys.path.insert(0, HERE)
        try:
            from io_patches import patch_io_module
        finally:
            sys.path.remove(HERE)
        _State.dropped = patch_io_module(  # type: ignore[attr-defined]
            name,
            module,
            new_loop=compat.new_event_loop,
            stock_new_test_loop=_State.stock_new_test_loop,  # type: ignore[attr-defined]
        )


# ----------------------------------------------------------------------
# the child: runs one module, streams events to the parent


class _Result(unittest.TestResult):
    def __init__(self, module: str, verbose: bool, hang_file: TextIO, hang_timeout: float) -> None:
        super().__init__()
        self.module = module
        self.verbose = verbose
        self.hang_file = hang_file
        self.hang_timeout = hang_timeout
        self.outcome: str | None = None
        self.detail = ""

    def _id(self, test: Any) -> str:
        return f"{self.module}::{type(test).__name__}.{test._testMethodName}"

    def _arm(self) -> None:
        faulthandler.dump_traceback_later(self.hang_timeout, exit=True, file=self.hang_file)

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        tid = self._id(test)
        _State.current = tid
        self.outcome = None
        self.detail = ""
        # As under stock unittest, the policy persists from test to test
        # (some tests depend on what earlier ones left in it, e.g. a
        # set_event_loop(None) that stops get_event_loop() from making a
        # loop); a test that reset or replaced it gets a new compat one.
        if type(asyncio.get_event_loop_policy()) is not _State.policy_cls:  # type: ignore[attr-defined]
            asyncio.set_event_loop_policy(_State.policy_cls())  # type: ignore[attr-defined]
        _emit({"event": "start", "tid": tid})
        self._arm()
        if self.verbose:
            print(tid, "...", end=" ", flush=True)

    def stopTest(self, test: Any) -> None:
        self._arm()
        tid = self._id(test)
        outcome = self.outcome or "passed"
        _emit({"event": "end", "tid": tid, "outcome": outcome, "detail": self.detail})
        if self.verbose:
            print(outcome, flush=True)
        _State.current = None
        super().stopTest(test)

    def _fail(self, test: Any, err: Any) -> None:
        self.outcome = "failed"
        self.detail += self._exc_info_to_string(err, test)

    def addError(self, test: Any, err: Any) -> None:
        if isinstance(test, unittest.TestCase):
            self._fail(test, err)
        else:  # a module or class fixture
            tid = f"{self.module}::{test}"
            _emit({"event": "end", "tid": tid, "outcome": "failed", "detail": self._exc_info_to_string(err, None)})  # type: ignore[arg-type]

    def addFailure(self, test: Any, err: Any) -> None:
        self._fail(test, err)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            self._fail(test, err)

    def addSkip(self, test: Any, reason: str) -> None:
        if isinstance(test, unittest.TestCase) and self.outcome is None:
            self.outcome = "skipped"

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        # CPython's own @expectedFailure (fails on stock asyncio too).
        self.outcome = "cpython-xfail"

    def addUnexpectedSuccess(self, test: Any) -> None:
        self.outcome = "passed"


def _filter(suite: Any, keep: Any) -> unittest.TestSuite:
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTest(_filter(t, keep))
        elif keep(t):
            out.addTest(t)
    return out


def _child(args: argparse.Namespace) -> int:
    name = args.child
    _State.pid = os.getpid()
    _State.events = open(args.events, "a")
    hang_file = open(args.hang_file, "w")
    faulthandler.enable(file=hang_file, all_threads=True)
    faulthandler.dump_traceback_later(args.hang_timeout, exit=True, file=hang_file)
    _import_suite()
    _instrument()
    with open(args.skip) as f:
        skip = set(json.load(f))
    # (A name not in the suite is a module of its own: the runner's tests.)
    module = importlib.import_module(f"test.test_asyncio.{name}" if name in MODULES else name)
    _patch_module(name, module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)

    dropped = getattr(_State, "dropped", set())

    def keep(t: Any) -> bool:
        tid = f"{name}::{type(t).__name__}.{getattr(t, '_testMethodName', '')}"
        return (
            type(t).__name__ not in dropped
            and tid not in skip
            and (not args.keyword or re.search(args.keyword, tid) is not None)
        )

    suite = _filter(suite, keep)
    result = _Result(name, args.verbose, hang_file, args.hang_timeout)
    suite.run(result)
    faulthandler.cancel_dump_traceback_later()
    asyncio.set_event_loop_policy(None)
    _emit({"event": "done"})
    # Not a normal exit: what a failed test left behind (a broken
    # ProcessPoolExecutor's workers, say) can block the interpreter's exit
    # handlers forever. The parent has every result and kills the leftovers.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ----------------------------------------------------------------------
# the parent: one child per module, resumed after a hung or crashed test


def _read_events(path: str) -> list[dict[str, Any]]:
    events = []
    with open(path) as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:  # a line cut short by the child's death
                pass
    return events


def _tail(path: str, n: int = 6000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def run_module(
    name: str, *, verbose: bool = False, keyword: str | None = None, hang_timeout: float = HANG_TIMEOUT
) -> dict[str, Any]:
    outcomes: dict[str, str] = {}
    details: dict[str, str] = {}
    on_compat: set[str] = set()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpython-suite-") as tmp:
        events_path = os.path.join(tmp, "events")
        skip_path = os.path.join(tmp, "skip")
        hang_path = os.path.join(tmp, "hang")
        log_path = os.path.join(tmp, "log")
        for attempt in range(MAX_RESTARTS + 1):
            open(events_path, "w").close()
            with open(skip_path, "w") as f:
                json.dump(sorted(outcomes), f)
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                name,
                "--events",
                events_path,
                "--skip",
                skip_path,
                "--hang-file",
                hang_path,
                "--hang-timeout",
                str(hang_timeout),
            ]
            if verbose:
                cmd.append("-v")
            if keyword:
                cmd += ["-k", keyword]
            with open(log_path, "w") as log:
                # Its own session, so what a crashed test left running can
                # be killed with it.
                proc = subprocess.Popen(
                    cmd, stdout=None if verbose else log, stderr=None if verbose else log, start_new_session=True
                )
                rc = proc.wait()
            done = False
            dangling = None
            for ev in _read_events(events_path):
                kind = ev["event"]
                if kind == "start":
                    dangling = ev["tid"]
                elif kind == "compat":
                    on_compat.add(ev["tid"])
                elif kind == "end":
                    outcomes[ev["tid"]] = ev["outcome"]
                    if ev["detail"]:
                        details[ev["tid"]] = ev["detail"]
                    if ev["tid"] == dangling:
                        dangling = None
                elif kind == "done":
                    done = True
            # The child's session: whatever its tests left running.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if done and rc == 0:
                break
            why = (
                f"hung for more than {hang_timeout:g} s"
                if "Timeout (" in _tail(hang_path)
                else f"crashed the interpreter (exit status {rc})"
            )
            report = f"{why}; stacks and output:\n{_tail(hang_path)}\n{_tail(log_path, 3000)}"
            if dangling is None:
                outcomes[f"{name}::<module>"] = "failed"
                details[f"{name}::<module>"] = f"the module's child {report}"
                break
            outcomes[dangling] = "failed"
            details[dangling] = f"the test {report}"
            if verbose:
                print(f"\n{dangling}: {why}; resuming after it", flush=True)
        else:
            outcomes[f"{name}::<module>"] = "failed"
            details[f"{name}::<module>"] = f"given up after {MAX_RESTARTS} hung or crashed tests"
    return {
        "module": name,
        "seconds": time.monotonic() - start,
        "outcomes": outcomes,
        "details": details,
        "on_compat": sorted(on_compat),
    }


def _gated(module: str) -> bool:
    return module in PART1_MODULES or module in GATED_IO_MODULES


def summarize(runs: list[dict[str, Any]], expected: dict[str, str]) -> dict[str, Any]:
    table = []
    unexpected: list[str] = []
    ungated: list[str] = []
    fixed: list[str] = []
    keys = ("ran", "passed", "failed", "xfail", "not_compat", "skipped")
    for run in runs:
        row: dict[str, Any] = {"module": run["module"], "seconds": round(run["seconds"], 1)}
        row.update({k: 0 for k in keys})
        failures = unexpected if _gated(run["module"]) else ungated
        on_compat = set(run["on_compat"])
        for tid, outcome in sorted(run["outcomes"].items()):
            if outcome == "skipped":
                row["skipped"] += 1
                continue
            if tid not in on_compat:
                # Not counted; but a failure here is still a failure (of
                # the runner's patching, or of stock asyncio with compat
                # imported).
                row["not_compat"] += 1
                if outcome == "failed" and tid not in expected:
                    failures.append(tid + " (not on compat)")
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
                failures.append(tid)
        table.append(row)
    groups = {}
    for group, modules in GROUPS.items():
        rows = [row for row in table if row["module"] in modules]
        if not rows:
            continue
        total = {k: sum(row[k] for row in rows) for k in keys}
        total["seconds"] = round(sum(row["seconds"] for row in rows), 1)
        groups[group] = {
            "total": total,
            "rate": total["passed"] / total["ran"] if total["ran"] else 0.0,
            "target": TARGETS[group],
        }
    whole = groups.get("whole suite", {"total": {k: 0 for k in keys}, "rate": 0.0})
    return {
        "table": table,
        "groups": groups,
        "total": whole["total"],
        "rate": whole["rate"],
        "unexpected": unexpected,
        "ungated_failures": ungated,
        "fixed": fixed,
    }


def below_target(summary: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {g['rate']:.2%} < {g['target']:.0%}"
        for name, g in summary["groups"].items()
        if g["rate"] < g["target"]
    ]


def format_table(summary: dict[str, Any]) -> str:
    header = (
        f"{'module':<20} {'on compat':>9} {'passed':>7} {'failed':>7} {'xfail':>6}"
        f" {'not compat':>10} {'skipped':>8} {'seconds':>8}"
    )
    lines = [f"Python {sys.version.split()[0]}", header]

    def line(name: str, row: dict[str, Any]) -> str:
        return (
            f"{name:<20} {row['ran']:>9} {row['passed']:>7} {row['failed']:>7} {row['xfail']:>6}"
            f" {row['not_compat']:>10} {row['skipped']:>8} {row['seconds']:>8}"
        )

    for row in summary["table"]:
        mark = "" if _gated(row["module"]) else " *"
        lines.append(line(row["module"] + mark, row))
    lines.append("-" * len(header))
    for name, g in summary["groups"].items():
        lines.append(line(name, g["total"]))
    for name, g in summary["groups"].items():
        lines.append(f"pass rate on compat, {name}: {g['rate']:.2%} (target {g['target']:.0%})")
    if any(not _gated(row["module"]) for row in summary["table"]):
        lines.append("* its unlisted failures do not fail --check by themselves (GATED_IO_MODULES)")
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
    parser.add_argument("--check", action="store_true", help="fail below a target or on an unexpected failure")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-k", dest="keyword", help="only tests whose id matches this regular expression")
    parser.add_argument("--details", action="store_true", help="print the tracebacks of failures")
    parser.add_argument("--hang-timeout", type=float, default=HANG_TIMEOUT)
    # internal: run one module in this process (the parent's child)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--skip", help=argparse.SUPPRESS)
    parser.add_argument("--hang-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    for name in args.modules:
        if name not in MODULES:
            parser.error(f"unknown module {name!r} (known: {', '.join(MODULES)})")
    expected = load_expected()
    runs = [
        run_module(name, verbose=args.verbose, keyword=args.keyword, hang_timeout=args.hang_timeout)
        for name in args.modules
    ]
    summary = summarize(runs, expected)
    print(format_table(summary))
    details = {k: v for run in runs for k, v in run["details"].items()}
    for title, tids, show in (
        ("unexpected failures", summary["unexpected"], args.details),
        ("unlisted failures in modules not gating (*)", summary["ungated_failures"], args.details),
    ):
        if tids:
            print(f"\n{title}:")
            for tid in tids:
                print("  ", tid)
                if show:
                    print(details.get(tid.split(" ")[0], ""))
    if summary["fixed"]:
        print("\nin the expected-failure list but passed (remove them):")
        for tid in summary["fixed"]:
            print("  ", tid)
    low = below_target(summary)
    if low:
        print("\nbelow target:", "; ".join(low))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=1)
    if args.check and (low or summary["unexpected"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CPython-suite runner's own machinery (default run, no marker): a
module runs in a child interpreter; a hung test is recorded as failed with
its stack and the module resumes after it; only tests that made a compat
loop count; expected failures, gating and targets."""

from __future__ import annotations

import os
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import run_asyncio_suite as runner
finally:
    sys.path.remove(HERE)

FAKE_MODULE = """
import asyncio
import time
import unittest

from nursery import compat


class T(unittest.TestCase):
    def test_a_stock_pass(self):
        pass

    def test_b_compat_fail(self):
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        self.assertEqual(1, 2)

    def test_c_hang(self):
        asyncio.new_event_loop().close()
        time.sleep(60)

    def test_d_compat_pass(self):
        loop = asyncio.new_event_loop()
        try:
            self.assertIsInstance(loop, compat.EventLoop)
            self.assertEqual(loop.run_until_complete(asyncio.sleep(0, "x")), "x")
        finally:
            loop.close()

    def test_e_skip(self):
        self.skipTest("no")
"""


def test_hung_test_is_recorded_and_the_module_resumes(tmp_path, monkeypatch) -> None:
    (tmp_path / "h4_fake_suite_module.py").write_text(textwrap.dedent(FAKE_MODULE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    run = runner.run_module("h4_fake_suite_module", hang_timeout=1.5)
    prefix = "h4_fake_suite_module::T."
    assert run["outcomes"] == {
        prefix + "test_a_stock_pass": "passed",
        prefix + "test_b_compat_fail": "failed",
        prefix + "test_c_hang": "failed",
        prefix + "test_d_compat_pass": "passed",
        prefix + "test_e_skip": "skipped",
    }
    assert set(run["on_compat"]) == {prefix + t for t in ("test_b_compat_fail", "test_c_hang", "test_d_compat_pass")}
    assert "AssertionError: 1 != 2" in run["details"][prefix + "test_b_compat_fail"]
    hang = run["details"][prefix + "test_c_hang"]
    assert hang.startswith("the test hung for more than 1.5 s")
    assert "in test_c_hang" in hang  # the stack dump


def _run(module: str, outcomes: dict[str, str], on_compat: list[str]) -> dict:
    return {"module": module, "seconds": 1.0, "outcomes": outcomes, "details": {}, "on_compat": on_compat}


def test_summary_counts_only_compat_tests_and_gates_by_group(monkeypatch) -> None:
    monkeypatch.setattr(runner, "GATED_IO_MODULES", set())
    part1 = _run(
        "test_locks",
        {
            "test_locks::A.t1": "passed",
            "test_locks::A.t2": "cpython-xfail",
            "test_locks::A.t3": "failed",  # expected
            "test_locks::A.t4": "passed",  # not on compat
            "test_locks::A.t5": "skipped",
        },
        ["test_locks::A.t1", "test_locks::A.t2", "test_locks::A.t3"],
    )
    io = _run(
        "test_streams",
        {"test_streams::S.t1": "failed", "test_streams::S.t2": "passed"},
        ["test_streams::S.t1", "test_streams::S.t2"],
    )
    expected = {"test_locks::A.t3": "a reason", "test_locks::A.t9": "not run here"}
    summary = runner.summarize([part1, io], expected)
    row = summary["table"][0]
    assert (row["ran"], row["passed"], row["failed"], row["xfail"], row["not_compat"], row["skipped"]) == (3, 2, 0, 1, 1, 1)
    assert summary["groups"]["part 1"]["rate"] == 2 / 3
    # An I/O module not gating: its failure is reported, not unexpected; the
    # targets gate all the same.
    assert summary["unexpected"] == []
    assert summary["ungated_failures"] == ["test_streams::S.t1"]
    assert summary["groups"]["whole suite"]["rate"] == 3 / 5
    assert runner.below_target(summary) == [
        "part 1: 66.67% < 99%",
        "I/O: 50.00% < 97%",
        "whole suite: 60.00% < 98%",
    ]

    monkeypatch.setattr(runner, "GATED_IO_MODULES", {"test_streams"})
    summary = runner.summarize([part1, io], expected)
    assert summary["unexpected"] == ["test_streams::S.t1"]
    assert summary["ungated_failures"] == []
    assert runner.below_target(summary) == [
        "part 1: 66.67% < 99%",
        "I/O: 50.00% < 97%",
        "whole suite: 60.00% < 98%",
    ]
    assert "whole suite" in runner.format_table(summary)

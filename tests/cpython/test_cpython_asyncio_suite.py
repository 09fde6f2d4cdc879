"""CPython's own asyncio test suite against compat's loop (marker ``cpython``:
not in the default run; CI runs it on every supported Python).

The work is done by ``run_asyncio_suite.py`` in a child interpreter (the
suite changes global asyncio state: policies, loops, warnings filters). The
test fails if the pass rate of the tests that ran on compat's loop is below
99% or a test failed that is not in ``expected_failures.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = [pytest.mark.cpython, pytest.mark.timeout(1800)]


def test_cpython_asyncio_suite_on_compat(tmp_path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "run_asyncio_suite.py"), "--check", "--details", "--json", str(out)],
        capture_output=True,
        text=True,
    )
    # The table, for CI's log (pytest -s, or the failure report).
    print(proc.stdout)
    assert out.exists(), proc.stdout + proc.stderr[-5000:]
    summary = json.loads(out.read_text())["summary"]
    assert not summary["unexpected"], proc.stdout
    assert summary["rate"] >= 0.99, proc.stdout
    assert summary["total"]["ran"] > 1000, proc.stdout  # the suite did run on compat
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]

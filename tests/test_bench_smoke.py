"""The benchmark suite runs end to end (quick sizes, stdlib peers only).

Performance itself is never asserted here: ratios are measured by
``make bench``, not by timed unit tests. This only proves the harness and
nursery's workloads work, so a broken benchmark is caught by CI.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from bench import WORKLOADS

ROOT = Path(__file__).resolve().parents[1]

#: Workloads that only the asyncio-shaped implementations have.
ASYNCIO_ONLY = {"echo_proto": ("compat",), "aiohttp": ("compat",)}


def test_bench_quick_run_reports_every_workload(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-plot", "--impls", "nursery,asyncio,compat-loop,compat", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "quick.json").read_text())
    assert set(data["results"]) == set(WORKLOADS)
    has_aiohttp = importlib.util.find_spec("aiohttp") is not None
    for workload, by_impl in data["results"].items():
        for impl in ("nursery", "asyncio", "compat-loop", "compat"):
            cell = by_impl[impl]
            if impl == "nursery" and workload in ASYNCIO_ONLY or impl in ASYNCIO_ONLY.get(workload, ()):
                assert cell["status"] == "n/a", (workload, impl, cell)
            elif workload == "aiohttp" and not has_aiohttp:
                assert cell == {"status": "skipped", "reason": "aiohttp is not installed"}, (impl, cell)
            else:
                assert cell["status"] == "ok", (workload, impl, cell)
                assert cell.get("median_cpu", cell.get("median_kib")) is not None
    table = (tmp_path / "quick.md").read_text()
    assert "asyncio ÷ nursery" in table
    assert "nursery.compat on asyncio networking code" in table
    if has_aiohttp:
        assert "| asyncio | " in table and "requests/s" in table


def test_bench_worker_past_its_timeout_is_a_failed_cell_not_a_crash():
    from bench import suite

    verdict = suite.call_worker("asyncio", "echo_tcp", 200, 5, timeout=0.2)
    assert verdict == {"status": "error", "error": "worker timed out after 0.2 s"}

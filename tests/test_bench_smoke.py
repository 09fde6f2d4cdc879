"""The benchmark suite runs end to end (quick sizes, stdlib peers only).

Performance itself is never asserted here: ratios are measured by
``make bench``, not by timed unit tests. This only proves the harness and
nursery's workloads work, so a broken benchmark is caught by CI.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    assert set(data["results"]) == {"spawn", "switch", "pingpong", "pingpong_event", "lock", "timeouts", "fanin", "gather", "to_thread", "echo_tcp", "echo_bulk", "memory"}
    for workload, by_impl in data["results"].items():
        # compat's loop has no sockets yet (streams come in a later part of compat).
        compat = () if workload.startswith("echo_") else ("compat-loop", "compat")
        for impl in ("nursery", "asyncio", *compat):
            assert by_impl[impl]["status"] == "ok", (workload, impl, by_impl[impl])
            assert by_impl[impl].get("median_cpu", by_impl[impl].get("median_kib")) is not None
    table = (tmp_path / "quick.md").read_text()
    assert "asyncio ÷ nursery" in table

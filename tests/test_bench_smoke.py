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

#: Workloads that need sockets on compat's loop.
IO_WORKLOADS = {"echo_tcp", "echo_bulk", "echo_proto", "aiohttp"}
#: Workloads that only the asyncio-shaped implementations have.
ASYNCIO_ONLY = {"echo_proto": ("compat",), "aiohttp": ("compat",)}


PROBE = """
import asyncio
from nursery import compat

async def main():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    server.close()
    await server.wait_closed()

asyncio.run(main(), loop_factory=compat.new_event_loop)
"""


def compat_loop_serves():
    """Whether compat's loop can run a TCP server yet (its I/O is being
    built); in a child, so that a half-made server leaks nothing here."""
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, timeout=60).returncode == 0


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
    serves = compat_loop_serves()
    has_aiohttp = importlib.util.find_spec("aiohttp") is not None
    for workload, by_impl in data["results"].items():
        for impl in ("nursery", "asyncio", "compat-loop", "compat"):
            cell = by_impl[impl]
            if impl == "nursery" and workload in ASYNCIO_ONLY or impl in ASYNCIO_ONLY.get(workload, ()):
                assert cell["status"] == "n/a", (workload, impl, cell)
            elif workload == "aiohttp" and not has_aiohttp:
                assert cell == {"status": "skipped", "reason": "aiohttp is not installed"}, (impl, cell)
            elif impl.startswith("compat") and workload in IO_WORKLOADS and not serves:
                # Reported as a failed cell, and the run went on.
                assert cell["status"] == "error", (workload, impl, cell)
            else:
                assert cell["status"] == "ok", (workload, impl, cell)
                assert cell.get("median_cpu", cell.get("median_kib")) is not None
    table = (tmp_path / "quick.md").read_text()
    assert "asyncio ÷ nursery" in table
    assert "nursery.compat on asyncio networking code" in table

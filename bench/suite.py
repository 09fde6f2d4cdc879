"""Run the benchmark suite: ``python -m bench [--rounds N] [--quick] ...``.

Every (workload, implementation) measurement is a fresh worker process.  The
implementations are interleaved within each round, and their order rotates
from round to round, so that the machine's noise (other tenants, thermal
state) lands on all of them alike instead of on whichever ran last.
"""

import argparse
import compileall
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

from bench import IMPLS, QUICK_REPS, QUICK_SIZES, REPS, SIZES, WORKLOADS, loadgen, report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PLOT = ROOT / "docs" / "_static" / "bench.png"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all implementations (default 5)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of: %(default)s")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated subset of: %(default)s")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, tiny sizes: a smoke test; writes bench/results/raw/quick.* and leaves the published results alone",
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds a worker may take before it is failed (default 300)"
    )
    parser.add_argument("--no-plot", action="store_true", help="don't draw the plot")
    parser.add_argument("--output", type=Path, help="write results here instead of bench/results/")
    args = parser.parse_args(argv)
    args.workloads = _subset(parser, "workload", args.workloads, WORKLOADS)
    args.impls = _subset(parser, "implementation", args.impls, IMPLS)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.quick:
        args.rounds = 1
    return args


def _subset(parser, what, text, known):
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        parser.error(f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    return chosen


def call_worker(impl, *args, timeout):
    """Run one worker process and return its JSON verdict."""
    command = [sys.executable, "-m", "bench.worker", impl, *map(str, args)]
    # A session of its own, so that a worker that times out is killed with
    # whatever it started (the aiohttp workload's load generator).
    worker = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()
        return {"status": "error", "error": f"worker timed out after {timeout:g} s"}
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        stderr = stderr.strip().splitlines()
        last = stderr[-1] if stderr else "no output"
        return {"status": "error", "error": f"worker exited with code {worker.returncode}: {last}"}


def compile_bytecode():
    """Byte-compile nursery and bench, so that every worker imports them from
    .pyc files, as it imports asyncio, uvloop and aiohttp (installed packages
    come compiled).

    Without this, a checkout under PYTHONDONTWRITEBYTECODE=1 (this project's
    machines set it) compiles nursery from source in every worker, and the
    compiler's garbage changes the layout of the C heap the workloads then
    run in: on echo_bulk, whose 64 KiB buffers are malloc'd and freed by the
    thousand, glibc trims and regrows the heap more often, ~5% more page
    faults (38.5k -> 40-44k per repetition) and 2-4% more CPU time for the
    implementation that imported more source. The same happens to stock
    asyncio when nursery is merely imported first."""
    for package in ("nursery", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)


def run_suite(args, log=print):
    """Probe each implementation, then measure every runnable cell over the rounds; return the raw data."""
    sizes = QUICK_SIZES if args.quick else SIZES
    reps = QUICK_REPS if args.quick else REPS
    timeout = min(args.timeout, 60) if args.quick else args.timeout

    compile_bytecode()
    impls = {impl: call_worker(impl, "--probe", timeout=timeout) for impl in args.impls}
    for impl, probe in impls.items():
        if probe["status"] != "ok":
            log(f"{impl}: {probe['status']}: {probe.get('reason') or probe.get('error')}")
    runnable = [impl for impl in args.impls if impl in impls and impls[impl]["status"] == "ok"]

    cells = {w: {impl: {"status": "ok", "cpu": [], "wall": [], "kib": []} for impl in runnable} for w in args.workloads}
    for rnd in range(args.rounds):
        shift = rnd % len(runnable) if runnable else 0
        order = runnable[shift:] + runnable[:shift]
        for workload in args.workloads:
            for impl in order:
                cell = cells[workload][impl]
                if cell["status"] != "ok":
                    continue  # failed in an earlier round: report that once
                verdict = call_worker(impl, workload, sizes[workload], reps, timeout=timeout)
                if verdict["status"] != "ok":
                    cells[workload][impl] = verdict
                    log(f"{impl} {workload}: {verdict['status']}: {verdict.get('error') or verdict.get('reason')}")
                    continue
                for key in ("cpu", "wall", "kib"):
                    cell[key].extend(verdict.get(key, []))
        log(f"round {rnd + 1}/{args.rounds} done")

    for workload in args.workloads:
        for impl in args.impls:
            if impl in runnable:
                cell = cells[workload][impl]
                cells[workload][impl] = {k: v for k, v in cell.items() if v != []}  # drop the unused sample kind
            else:
                cells[workload][impl] = {k: v for k, v in impls[impl].items() if k != "traceback"}

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *args.argv]),
        "commit": _git_commit(),
        "python": sys.version,
        "python_implementation": platform.python_implementation(),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or _cpu_model(),
            "cpu_count": os.cpu_count(),
        },
        "rounds": args.rounds,
        "reps": reps,
        "quick": args.quick,
        "sizes": {w: sizes[w] for w in args.workloads},
        "loadgen": loadgen.describe() if "aiohttp" in args.workloads else None,
        "impls": {impl: impls[impl] for impl in args.impls},
        "results": cells,
    }


def _git_commit():
    """The checkout's commit, with "+dirty" if nursery/ has uncommitted changes; None outside git."""
    head = _git("rev-parse", "--short", "HEAD")
    if not head:
        return None
    return head + ("+dirty" if _git("status", "--porcelain", "--", "nursery") else "")


def _git(*args):
    try:
        done = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def main(argv=None):
    """Run the suite, write its results and print the table; return the data."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    data = report.summarize(run_suite(args, log=lambda msg: print(msg, file=sys.stderr, flush=True)))

    # A full run publishes latest.* and the docs plot (kept in git) and keeps
    # a timestamped copy in raw/ (ignored by git); a quick run only writes
    # raw/quick.*, so that a smoke test never overwrites published numbers.
    publish = args.output is None and not args.quick
    stem = "quick" if args.quick else "latest"
    out = args.output or (RESULTS if publish else RESULTS / "raw")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(data, indent=1) + "\n")
    paths[1].write_text(report.markdown(data))
    if publish:
        stamp = data["date"].replace(":", "").replace("-", "")[:15]
        (RESULTS / "raw").mkdir(exist_ok=True)
        (RESULTS / "raw" / f"run-{stamp}.json").write_text(paths[0].read_text())
    if not args.no_plot:
        plot = PLOT if publish else out / f"{stem}.png"
        if report.plot(data, plot):
            paths.append(plot)
        else:
            print("matplotlib is not installed: no plot", file=sys.stderr)

    print(report.markdown(data))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return data

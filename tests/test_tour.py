"""The guided tour (``python -m nursery``, what ``make tour`` runs) works and
shows what it says it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_tour(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "nursery", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@pytest.fixture(scope="module")
def tour() -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = run_tour()
    return proc, time.monotonic() - start


def lines_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in proc.stdout.splitlines()]


def test_tour_exits_cleanly_and_quickly(tour) -> None:
    proc, elapsed = tour
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # The sleeps add up to about 1 s; interpreter start-up comes on top.
    assert elapsed < 10


def test_tour_sections_in_order(tour) -> None:
    proc, _ = tour
    headers = [line for line in lines_of(proc) if line.startswith("== ")]
    assert headers == [
        "== 1. Nurseries: children run concurrently, the parent waits for them all",
        "== 2. Timeouts: move_on_after and fail_after",
        "== 3. Errors: a failing child cancels its siblings; errors come as a group",
        "== 4. start(): wait until a background task is ready",
        "== 5. The task tree: what is everything waiting for?",
        "== 6. A TCP echo server and a few clients",
        "== 7. asyncio code on the kernel",
        "== 8. asyncio streams and subprocesses on the kernel",
        "== End of the tour. Next: the docs (make docs) and the tests (make test).",
    ]


def test_tour_nurseries_run_children_concurrently(tour) -> None:
    proc, _ = tour
    lines = lines_of(proc)
    ready = [line for line in lines if re.match(r"\[[\d.]+s\] .* is ready$", line)]
    # Finishing order follows the sleeps, not the start order: the last one
    # started finished first, so they ran at the same time.
    assert [re.sub(r"^\[[\d.]+s\] ", "", line) for line in ready] == [
        "espresso is ready",
        "coffee is ready",
        "tea is ready",
    ]
    (done,) = [line for line in lines if "all three done" in line]
    # Not before the slowest child finished (no upper bound: real time on a
    # loaded machine).
    seconds = float(re.match(r"\[([\d.]+)s\]", done).group(1))
    assert seconds >= 0.3


def test_tour_timeouts(tour) -> None:
    lines = lines_of(tour[0])
    assert any(line.endswith("moved on; scope.cancelled_caught = True") for line in lines)
    assert any(line.endswith("fail_after raised TooSlowError") for line in lines)
    assert "TooSlowError is a TimeoutError: True" in lines
    assert "this line is never reached" not in lines


def test_tour_error_group(tour) -> None:
    lines = lines_of(tour[0])
    i = lines.index("caught ExceptionGroup with 2 errors:")
    assert sorted(lines[i + 1 : i + 3]) == [
        "ConnectionError: example.net is unreachable",
        "ConnectionError: example.org is unreachable",
    ]
    # The sibling's cleanup ran before the group reached the caller.
    assert lines.index("the patient sibling was cancelled, and its 'finally' ran") < i


def test_tour_start(tour) -> None:
    lines = lines_of(tour[0])
    ready = lines.index("the server is ready on port 8080; start() returned")
    assert lines.index("server shut down") > ready


def test_tour_task_tree(tour) -> None:
    out = tour[0].stdout
    tree = out[out.index("== 5.") :]
    # A running task shows the line that is running (here: the call that dumps the tree).
    assert re.search(r"task '__main__\.tour' \(running\): tour_task_tree at __main__\.py:\d+ \(in format_task_tree\)", tree)
    assert re.search(r"├── task 'pipeline' \(blocked\): pipeline at __main__\.py:\d+ \(in __aexit__\)", tree)
    assert re.search(r"task 'consumer-1' \(blocked\): consumer at __main__\.py:\d+ \(in park\)", tree)
    assert re.search(r"└── task 'consumer-2' \(blocked\): consumer at __main__\.py:\d+ \(in park\)", tree)
    # A task whose function is the kernel's own sleep() names sleep, not the
    # innermost trap it is suspended in.
    assert re.search(r"└── task 'timer' \(blocked\): _?sleep(_for)? at _sleep\.py:\d+ \(in sleep_until\)", tree)


def test_tour_tcp_echo(tour) -> None:
    out = tour[0].stdout
    lines = [line.strip() for line in out[out.index("== 6.") :].splitlines()]
    start = lines.index("serving on 127.0.0.1, on a port the kernel picked")
    assert lines[start : start + 6] == [
        "serving on 127.0.0.1, on a port the kernel picked",
        "ada got back: hello from ada | bye from ada",
        "bob got back: hello from bob | bye from bob",
        "cy got back: hello from cy | bye from cy",
        "the server handled 3 connections at once",
        "server stopped; its listening socket is closed: True",
    ]


def test_tour_asyncio_on_the_kernel(tour) -> None:
    out = tour[0].stdout
    lines = [line.strip() for line in out[out.index("== 7.") :].splitlines()]
    start = lines.index("Task A: Compute factorial(2), currently i=2...")
    # The seed's gather example prints what stock asyncio prints (its
    # "Expected output"), then the TaskGroup and timeout examples.
    assert lines[start : start + 15] == [
        "Task A: Compute factorial(2), currently i=2...",
        "Task B: Compute factorial(3), currently i=2...",
        "Task C: Compute factorial(4), currently i=2...",
        "Task A: factorial(2) = 2",
        "Task B: Compute factorial(3), currently i=3...",
        "Task C: Compute factorial(4), currently i=3...",
        "Task B: factorial(3) = 6",
        "Task C: Compute factorial(4), currently i=4...",
        "Task C: factorial(4) = 24",
        "gather returned [2, 6, 24]",
        "Both tasks have completed now: 0.1, 0.05",
        "The long operation timed out, but we've handled it.",
        "the running loop is a nursery.compat.EventLoop: True",
        "a nursery scope cancelled asyncio.sleep: True",
        "",
    ]


def test_tour_asyncio_streams_and_subprocesses(tour) -> None:
    out = tour[0].stdout
    lines = [line.strip() for line in out[out.index("== 8.") :].splitlines()]
    start = lines.index("Send: 'Hello World!'")
    # The seed's echo client prints what it prints against stock asyncio.
    assert lines[start : start + 5] == [
        "Send: 'Hello World!'",
        "Received: 'Hello World!'",
        "Close the connection",
        "child said: 'hello from a child process, Python 3'; exit status 0",
        "",
    ]


def test_tour_runs_selected_sections() -> None:
    proc = run_tour("4")
    assert proc.returncode == 0, proc.stderr
    headers = [line for line in lines_of(proc) if line.startswith("== ")]
    assert headers == [
        "== 4. start(): wait until a background task is ready",
        "== End of the tour. Next: the docs (make docs) and the tests (make test).",
    ]


def test_tour_list_and_bad_arguments() -> None:
    proc = run_tour("--list")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "1. Nurseries: children run concurrently, the parent waits for them all"
    assert len(proc.stdout.splitlines()) == 8

    proc = run_tour("99")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "no such section: [99]; try --list"

    proc = run_tour("nope")
    assert proc.returncode == 2
    assert "usage: python -m nursery" in proc.stderr

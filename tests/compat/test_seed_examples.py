"""Every example program of the seed document runs under compat as it does
under stock asyncio.

The examples are in tests/compat/seed_examples/ (one complete program each,
as in the seed; the header of each file says what was completed and what is
wrong on purpose). Each runs in a subprocess three ways (see _runner.py):
stock asyncio (the reference), stock asyncio on compat's loop, and the compat
module in place of asyncio, all on virtual time. The compat runs must print
the same stdout, end with the same exception (type and message) or none,
emit the same warnings and exit with the same status as the reference.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES_DIR = Path(__file__).resolve().parent / "seed_examples"
RUNNER = EXAMPLES_DIR / "_runner.py"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("[0-9]*.py"))
COMPAT_MODES = ("compat-loop", "compat-module")

#: (example, mode) -> why it is expected to fail for now. Each entry is a
#: strict xfail: when it starts passing, the test says so and the entry goes.
XFAIL: dict[tuple[str, str], str] = {}


#: Examples whose threads do real work: compat runs them on the real clock
#: (see _runner.py); they take about a second.
REAL_CLOCK = {"16_to_thread.py", "17_run_coroutine_threadsafe.py"}


@dataclass(frozen=True)
class Outcome:
    stdout: str
    #: The last line of the traceback ("Type: message"), or None.
    exception: str | None
    #: Sorted "Category: message" of every warning printed on stderr.
    warnings: tuple[str, ...]
    #: Sorted messages the event loop logged (never-retrieved exceptions,
    #: pending tasks destroyed, failing callbacks).
    logged: tuple[str, ...]
    returncode: int
    stderr: str  # raw, for the failure message


_WALL_CLOCK = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?"), "<datetime>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x<address>"),
]
_WARNING_RE = re.compile(r"^(?:.*?):\d+: (\w*Warning): (.*)$")
_LOGGED_RE = re.compile(r"^(\w+ exception was never retrieved|Task was destroyed but it is pending!|Exception in callback )")


def normalise(text: str) -> str:
    """Printed dates, times and object addresses differ from run to run."""
    for pattern, replacement in _WALL_CLOCK:
        text = pattern.sub(replacement, text)
    return text


def parse(proc: subprocess.CompletedProcess[str]) -> Outcome:
    lines = proc.stderr.splitlines()
    exception = None
    if any(line.startswith("Traceback (most recent call last)") or line.startswith("SyntaxError") for line in lines):
        # The last line that starts in column 0 and names an exception.
        for line in reversed(lines):
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Group)\b", line):
                exception = normalise(line)
                break
    warnings = tuple(sorted(normalise(f"{m[1]}: {m[2]}") for m in map(_WARNING_RE.match, lines) if m))
    logged = tuple(sorted(m[1] for m in map(_LOGGED_RE.match, lines) if m))
    return Outcome(normalise(proc.stdout), exception, warnings, logged, proc.returncode, proc.stderr)


def run_example(example: str, mode: str) -> Outcome:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONWARNINGS", None)
    env.pop("PYTHONASYNCIODEBUG", None)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), mode, example, *(["--real-clock"] if example in REAL_CLOCK else [])],
        cwd=EXAMPLES_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    return parse(proc)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> dict[tuple[str, str], Outcome]:
    """The outcomes of every run the selected tests need, run in parallel
    (the runs are subprocesses that mostly wait for interpreter start-up, so
    this takes seconds, not a minute) and all finished before any test
    starts, so no test sees another's threads or pipes."""
    wanted: set[tuple[str, str]] = set()
    for item in request.session.items:
        if item.module is not request.module:
            continue
        callspec = getattr(item, "callspec", None)
        examples = [callspec.params["example"]] if callspec and "example" in callspec.params else EXAMPLES
        modes = [callspec.params["mode"]] if callspec and "mode" in callspec.params else []
        for example in examples:
            wanted.update((example, mode) for mode in ("stock", *modes))
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) * 2)) as pool:
        futures = {key: pool.submit(run_example, *key) for key in sorted(wanted)}
    return {key: future.result() for key, future in futures.items()}


def test_every_seed_example_is_here() -> None:
    # 24 code blocks in the seed, plus the fixed versions of two wrong ones
    # and the module-level form of the create_task fragment.
    assert len(EXAMPLES) == 27
    assert len({name[:2] for name in EXAMPLES}) == 24


def _port_8888_is_free() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 8888)) != 0


def _params() -> list[object]:
    params = []
    for example in EXAMPLES:
        for mode in COMPAT_MODES:
            marks = []
            reason = XFAIL.get((example, mode))
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            params.append(pytest.param(example, mode, marks=marks, id=f"{example[:-3]}-{mode}"))
    return params


@pytest.mark.parametrize(("example", "mode"), _params())
def test_seed_example(outcomes: dict[tuple[str, str], Outcome], example: str, mode: str) -> None:
    if example == "18_streams_echo_client.py" and not _port_8888_is_free():
        pytest.skip("something listens on 127.0.0.1:8888; the example expects nobody does")
    expected = outcomes[(example, "stock")]
    got = outcomes[(example, mode)]
    context = f"\n--- stock stderr ---\n{expected.stderr}\n--- {mode} stderr ---\n{got.stderr}"
    assert got.stdout == expected.stdout, context
    assert got.exception == expected.exception, context
    assert got.warnings == expected.warnings, context
    assert got.logged == expected.logged, context
    assert got.returncode == expected.returncode, context


# What the reference prints, checked once against the seed's own expected
# output (so the virtual-time stock loop is known to behave as asyncio does).
def test_reference_matches_the_seed_expected_output(outcomes: dict[tuple[str, str], Outcome]) -> None:
    assert outcomes[("09_gather_factorial.py", "stock")].stdout.splitlines() == [
        "Task A: Compute factorial(2), currently i=2...",
        "Task B: Compute factorial(3), currently i=2...",
        "Task C: Compute factorial(4), currently i=2...",
        "Task A: factorial(2) = 2",
        "Task B: Compute factorial(3), currently i=3...",
        "Task C: Compute factorial(4), currently i=3...",
        "Task B: factorial(3) = 6",
        "Task C: Compute factorial(4), currently i=4...",
        "Task C: factorial(4) = 24",
        "[2, 6, 24]",
    ]
    assert outcomes[("13_wait_for.py", "stock")].stdout == "timeout!\n"
    assert outcomes[("16_to_thread.py", "stock")].stdout.splitlines() == [
        "started main at <time>",
        "start blocking_io at <time>",
        "blocking_io complete at <time>",
        "finished main at <time>",
    ]
    assert outcomes[("08_sleep_display_date.py", "stock")].stdout == "<datetime>\n" * 5
    assert outcomes[("01_run.py", "stock")].exception == "SyntaxError: '(' was never closed"
    assert outcomes[("12_timeout_at.py", "stock")].exception == "NameError: name 'get_running_loop' is not defined"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["python", "python -m nursery.compat"])
@pytest.mark.parametrize(
    "example", ["08_sleep_display_date.py", "09_gather_factorial.py", "10_shield.py", "07_taskgroup.py"]
)
def test_virtual_time_reference_matches_real_time(
    outcomes: dict[tuple[str, str], Outcome], example: str, how: str
) -> None:
    """The virtual clock changes nothing but the waiting: the example run
    for real (plain ``python``, and ``python -m nursery.compat`` with no mock
    clock) prints what the virtual-time reference prints."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, *how.split()[1:], example]
    proc = subprocess.run(command, cwd=EXAMPLES_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert parse(proc).stdout == outcomes[(example, "stock")].stdout

"""Shared test configuration for nursery's test suite.

The nursery pytest plugin (``nursery_mode``, clock fixtures, ...) is
registered through the ``pytest11`` entry point in pyproject.toml, so no
``pytest_plugins`` line is needed here.

Every test is checked for leaks (``_leak_check`` below): a test that leaves a
thread, a file descriptor or a child process behind fails at teardown with a
list of what it left. Tasks cannot outlive their run by construction; the
check still asserts that no run is active after the test. A test that
legitimately leaves something behind says so with
``@pytest.mark.allow_leaks("threads", "fds", "processes")`` (no argument:
all three).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

import pytest

import nursery._worker_cache
import nursery.lowlevel

LEAK_KINDS = ("threads", "fds", "processes")

# How long a thread or child process that is on its way out (a worker that
# was told to stop, a child that was killed and is being reaped by a
# watcher) may take after the test before it counts as leaked.
GRACE_PERIOD = 2.0
_POLL_INTERVAL = 0.01
# How long an idle worker thread lingers during the tests (see pytest_configure).
WORKER_IDLE_TIMEOUT = 0.1


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_leaks(*kinds): let this test leave behind the given kinds of resources "
        f"({', '.join(LEAK_KINDS)}; all of them if none is given); the leak check ignores them",
    )
    # Idle worker threads (to_thread.run_sync) exit after 10 s by default,
    # longer than the leak check's grace period: let them go sooner here.
    nursery._worker_cache.IDLE_TIMEOUT = WORKER_IDLE_TIMEOUT


# --------------------------------------------------------------------------
# snapshots


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def _fds() -> dict[int, str] | None:
    """The open file descriptors, each with what it points to, or None where
    /proc/self/fd does not exist."""
    try:
        numbers = os.listdir("/proc/self/fd")
    except OSError:
        return None
    fds: dict[int, str] = {}
    for name in numbers:
        fd = int(name)
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            # The descriptor listdir itself used (closed by now), or one
            # another thread closed meanwhile.
            continue
    return fds


def _child_pids() -> set[int] | None:
    """Our child processes (including exited, unreaped ones), or None where
    /proc cannot tell.

    Read from /proc rather than found with os.waitpid(-1, WNOHANG): waitpid
    would reap the children, stealing their exit status from whoever owns
    them (subprocess.Popen, the library's process support)."""
    try:
        task_ids = os.listdir("/proc/self/task")
    except OSError:
        return None
    pids: set[int] = set()
    try:
        for tid in task_ids:
            try:
                with open(f"/proc/self/task/{tid}/children") as f:
                    pids.update(int(pid) for pid in f.read().split())
            except FileNotFoundError:
                if os.path.exists(f"/proc/self/task/{tid}"):
                    raise  # no 'children' files on this kernel
        return pids
    except FileNotFoundError:
        pass
    # Fallback: every process whose parent is us.
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses
        # and may itself contain spaces or parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            pids.add(int(name))
    return pids


# --------------------------------------------------------------------------
# descriptions for the failure message


def _describe_thread(thread: threading.Thread) -> str:
    where = ""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is not None:
        where = f", at {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
    return f"thread {thread.name!r} (ident {thread.ident}, daemon={thread.daemon}{where})"


def _describe_process(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = ""
    state = "?"
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        state = stat[stat.rfind(")") + 2 :].split()[0]
    except (OSError, IndexError):
        pass
    what = "zombie: exited but never waited for" if state == "Z" else f"state {state}"
    return f"child process {pid} ({what}){': ' + cmdline if cmdline else ''}"


# --------------------------------------------------------------------------
# the check


class _Snapshot:
    def __init__(self) -> None:
        self.threads = _threads()
        self.fds = _fds()
        self.children = _child_pids()

    def leaked_threads(self) -> list[threading.Thread]:
        return sorted(_threads() - self.threads, key=lambda t: t.name)

    def leaked_fds(self) -> dict[int, str]:
        if self.fds is None:
            return {}
        now = _fds() or {}
        # A descriptor is leaked if it is new, or if its number now points
        # elsewhere (closed by the test and reused for something new).
        return {fd: target for fd, target in now.items() if self.fds.get(fd) != target}

    def leaked_children(self) -> set[int]:
        if self.children is None:
            return set()
        return (_child_pids() or set()) - self.children


def _settle(check: Any, deadline: float) -> Any:
    """Poll *check* until it finds nothing or *deadline* passes."""
    leaked = check()
    while leaked and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)
        leaked = check()
    return leaked


def _allowed_kinds(item: pytest.Item) -> set[str]:
    allowed: set[str] = set()
    for marker in item.iter_markers("allow_leaks"):
        kinds = marker.args or LEAK_KINDS
        unknown = set(kinds) - set(LEAK_KINDS)
        if unknown:
            raise pytest.UsageError(
                f"allow_leaks() got unknown kinds {sorted(unknown)}; the kinds are {', '.join(LEAK_KINDS)}"
            )
        allowed.update(kinds)
    return allowed


@pytest.fixture(autouse=True)
def _leak_check(request: pytest.FixtureRequest) -> Any:
    """Fail the test if it left a thread, a file descriptor or a child
    process behind, or a nursery run active (see the module docstring)."""
    allowed = _allowed_kinds(request.node)
    before = _Snapshot()
    yield
    problems: list[str] = []
    if nursery.lowlevel.in_run():
        problems.append("a nursery run is still active in the test's thread")
    deadline = time.monotonic() + GRACE_PERIOD
    if "threads" not in allowed:
        for thread in _settle(before.leaked_threads, deadline):
            problems.append(_describe_thread(thread))
    if "processes" not in allowed:
        for pid in sorted(_settle(before.leaked_children, deadline)):
            problems.append(_describe_process(pid))
    if "fds" not in allowed:
        fds = before.leaked_fds()
        if fds:
            # An unreachable object in a reference cycle (a socket in a
            # traceback's frames, say) holds its descriptor until the cycle
            # collector runs: collect once before calling it a leak. A
            # thread on its way out may also still be closing one.
            gc.collect()
            fds = _settle(before.leaked_fds, deadline)
        for fd, target in sorted(fds.items()):
            problems.append(f"file descriptor {fd} -> {target}")
    if problems:
        pytest.fail(
            "the test left resources behind (mark it @pytest.mark.allow_leaks(...) if that is intended):\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )

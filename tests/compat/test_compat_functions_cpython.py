"""CPython's own tests of asyncio's timeouts, TaskGroup, wait_for and tasks
module, run against nursery.compat's implementations of those functions.

The installed suite (``test.test_asyncio``; nothing of it is copied here) is
run in a child process in which asyncio's names (``asyncio.timeout``,
``asyncio.TaskGroup``, ``asyncio.gather``, ...) are bound to compat's, with
compat's event loop policy installed, so the stock tests exercise compat's
coordination functions on compat's loop. (The loop itself, with stock
asyncio's functions, is covered by tests/cpython/.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.cpython

_CHILD = r"""
import asyncio, importlib, sys, unittest
import asyncio.taskgroups, asyncio.tasks, asyncio.timeouts
from nursery import compat

for name in ("sleep", "gather", "shield", "wait", "wait_for", "as_completed"):
    setattr(asyncio, name, getattr(compat, name))
    setattr(asyncio.tasks, name, getattr(compat, name))
for name in ("timeout", "timeout_at", "Timeout"):
    setattr(asyncio, name, getattr(compat, name))
    setattr(asyncio.timeouts, name, getattr(compat, name))
asyncio.TaskGroup = asyncio.taskgroups.TaskGroup = compat.TaskGroup

policy = compat.EventLoopPolicy()
module = importlib.import_module("test.test_asyncio." + sys.argv[1])
set_policy = asyncio.set_event_loop_policy
set_policy(policy)
# The suite resets the policy after each test: keep compat's.
asyncio.set_event_loop_policy = lambda p: set_policy(policy if p is None else p)
suite = unittest.defaultTestLoader.loadTestsFromModule(module)
result = unittest.TextTestRunner(verbosity=0, stream=sys.stderr).run(suite)
for test, _ in result.failures + result.errors:
    print("FAILED", test.id().rsplit(".", 2)[-2] + "." + test.id().rsplit(".", 1)[-1])
print("RAN", result.testsRun)
"""

# (version) -> {test: reason}: failures that are not compat's functions'
# own. None at present.
EXPECTED_FAILURES: dict[tuple[int, int], dict[str, str]] = {}


@pytest.mark.parametrize("module", ["test_timeouts", "test_taskgroups", "test_waitfor", "test_tasks"])
def test_cpython_suite_passes_on_compat_functions(module):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, module], capture_output=True, text=True, timeout=600, check=False
    )
    lines = proc.stdout.splitlines()
    ran = [int(line.split()[1]) for line in lines if line.startswith("RAN ")]
    assert ran and ran[0] > 10, proc.stdout + proc.stderr[-3000:]
    failed = {line.split()[1] for line in lines if line.startswith("FAILED ")}
    expected = EXPECTED_FAILURES.get(sys.version_info[:2], {})
    unexpected = failed - set(expected)
    assert not unexpected, proc.stderr[-6000:]

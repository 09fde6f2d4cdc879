"""CPython's own stream tests (the installed ``test.test_asyncio.test_streams``)
run against compat's stream classes.

In a child interpreter, ``asyncio.StreamReader``, ``StreamWriter``,
``StreamReaderProtocol``, ``open_connection``, ``start_server``,
``open_unix_connection`` and ``start_unix_server`` (and their
``asyncio.streams`` twins) are replaced by ``nursery.compat``'s; then the
suite runs, on stock asyncio's loop and, with compat's policy installed, on
compat's loop. Every test must pass; the child also checks that the tests
really made compat's readers (and no stock ones).

(The suite is read from the interpreter, not copied; tests/cpython/ runs the
same module with stock streams on compat's loop.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = (
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
    "open_unix_connection",
    "start_unix_server",
)

#: (loop kind, test id) -> why it may fail for reasons that are not the
#: streams'. Not strict: an entry that passes is fine.
EXPECTED_FAILURES: dict[tuple[str, str], str] = {}
if sys.version_info < (3, 12):
    EXPECTED_FAILURES[("compat-loop", "test.test_asyncio.test_streams.StreamTests.test_read_all_from_pipe_reader")] = (
        "3.11's test attaches asyncio's SafeChildWatcher to the loop, which needs asyncio's self-pipe for "
        "signal.set_wakeup_fd; compat's loop has none (it waits for children on the kernel)"
    )


def _child(loop_kind: str) -> None:
    import asyncio
    import asyncio.streams
    import unittest

    from nursery import compat
    from nursery.compat import _streams

    made = {"compat": 0, "stock": 0}

    def counting(cls: type, key: str) -> None:
        original = cls.__init__

        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            made[key] += 1
            original(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[misc]

    counting(_streams.StreamReader, "compat")
    counting(asyncio.streams.StreamReader, "stock")
    for name in NAMES:
        setattr(asyncio, name, getattr(_streams, name))
        setattr(asyncio.streams, name, getattr(_streams, name))
    asyncio.streams.FlowControlMixin = _streams.FlowControlMixin  # type: ignore[attr-defined]
    if loop_kind == "compat-loop":
        compat.install()

    from test.test_asyncio import test_streams

    suite = unittest.defaultTestLoader.loadTestsFromModule(test_streams)
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(suite)
    report = {
        "ran": result.testsRun,
        "skipped": len(result.skipped),
        "failed": sorted(t.id() for t, _ in result.failures + result.errors),
        "made": made,
    }
    print("REPORT " + json.dumps(report))


@pytest.mark.parametrize("loop_kind", ["stock-loop", "compat-loop"])
def test_cpython_stream_suite_on_compat_streams(loop_kind: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONASYNCIODEBUG", None)
    proc = subprocess.run(
        [sys.executable, __file__, loop_kind],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, proc.stderr[-5000:]
    report = json.loads(lines[-1][len("REPORT ") :])
    unexpected = sorted(t for t in report["failed"] if (loop_kind, t) not in EXPECTED_FAILURES)
    assert unexpected == [], proc.stderr[-10000:]
    assert report["ran"] - report["skipped"] >= 60
    assert report["made"]["compat"] >= 60 and report["made"]["stock"] == 0, report


if __name__ == "__main__":
    _child(sys.argv[1])

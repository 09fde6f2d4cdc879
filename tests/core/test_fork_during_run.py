"""A child process forked during a run (a process pool started from a task,
say) starts runs of its own: it shares neither the parent's run nor its
signal wake-up socket."""

from __future__ import annotations

import os
import signal
import sys

import pytest

import nursery

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(check) -> int:
    # Runs *check* in a forked child; returns the child's exit status.
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if check() else 2
        except BaseException as exc:  # report, whatever it is
            print(f"child failed: {exc!r}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


async def test_a_child_forked_during_a_run_can_start_its_own_run() -> None:
    async def child_main() -> str:
        await nursery.sleep(0)
        return "child run"

    assert _in_child(lambda: nursery.run(child_main) == "child run") == 0
    # The parent's run goes on.
    await nursery.sleep(0)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_a_forked_child_does_not_inherit_the_runs_signal_wakeup_fd() -> None:
    ours = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(ours)
    assert ours != -1  # the run set one (main thread)
    assert _in_child(lambda: signal.set_wakeup_fd(-1) == -1) == 0


def test_compat_loop_in_a_child_forked_from_a_compat_loop() -> None:
    import asyncio

    import nursery.compat

    async def main() -> int:
        return _in_child(lambda: nursery.compat.new_event_loop().run_until_complete(asyncio.sleep(0, "ok")) == "ok")

    loop = nursery.compat.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == 0
    finally:
        loop.close()

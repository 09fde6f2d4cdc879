"""Which run (if any) is active in this thread.

Kept in its own module so that every part of the kernel can find the active
runner without importing the run loop.
"""

from __future__ import annotations

import os
import threading


class _RunState(threading.local):
    # The runner driving this thread, or None. A guest run sets it only
    # while one of its ticks runs on the host loop.
    runner = None


STATE = _RunState()


def _forget_runs_in_forked_child() -> None:
    # A child forked while a run was active in the forking thread (a
    # process pool started from a task, say) must be able to start runs of
    # its own: the parent's run, with its epoll set and wake-up socket,
    # is not the child's. (asyncio forgets its running loop the same way.)
    STATE.runner = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_runs_in_forked_child)

_NO_RUN_MESSAGE = (
    "{what} must be called from inside nursery.run(), but no nursery run is "
    "active in this thread. If this is asyncio code, run it under "
    "nursery.compat, or start the kernel with nursery.run(main)."
)


def no_run_error(what: str) -> RuntimeError:
    return RuntimeError(_NO_RUN_MESSAGE.format(what=what))


def current_runner(what: str):
    runner = STATE.runner
    if runner is None:
        raise no_run_error(what)
    return runner


class AsyncioBridge:
    """How a run meets asyncio, without the kernel importing it.

    The defaults keep a run to itself; ``nursery`` (the package) replaces
    them at import so that every run has an asyncio event loop
    (``nursery.compat``'s) that ``asyncio.get_running_loop()`` returns, and
    ``asyncio.current_task()`` sees the kernel task being stepped.
    """

    def __init__(self) -> None:
        #: asyncio's registry of the task each loop is running.
        self.current_tasks: dict = {}

    def make_loop(self, runner):
        """The asyncio loop object of a new run (any hashable key here)."""
        return object()

    def enter(self, runner) -> None:
        """The run starts driving this thread."""

    def leave(self, runner) -> None:
        """The run stops driving this thread."""


ASYNCIO_BRIDGE = AsyncioBridge()

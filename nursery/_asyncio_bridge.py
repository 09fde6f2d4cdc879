"""Every nursery run gets an asyncio event loop (nursery.compat's), so that
``asyncio.get_running_loop()`` works inside it and stock asyncio code and
libraries run in nursery programs unchanged.

The kernel may not import asyncio (DESIGN.md, "Layers"); it calls this
bridge, installed at import of the package, instead.
"""

from __future__ import annotations

import asyncio.tasks
from typing import Any

from ._core import KernelRun
from ._core._state import ASYNCIO_BRIDGE, AsyncioBridge


class _CompatBridge(AsyncioBridge):
    def __init__(self) -> None:
        super().__init__()
        # asyncio's registry of running tasks per loop, which
        # asyncio.current_task() reads; the run loop keeps it current.
        self.current_tasks = asyncio.tasks._current_tasks

    def make_loop(self, runner: Any) -> Any:
        from .compat._loop import EventLoop

        return EventLoop(_kernel_run=KernelRun(runner))

    def enter(self, runner: Any) -> None:
        runner.asyncio_loop._attach()

    def leave(self, runner: Any) -> None:
        runner.asyncio_loop._detach()


def install_bridge() -> None:
    bridge = _CompatBridge()
    ASYNCIO_BRIDGE.__class__ = _CompatBridge
    ASYNCIO_BRIDGE.__dict__.update(bridge.__dict__)

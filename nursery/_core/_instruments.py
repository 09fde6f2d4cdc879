"""Instruments: objects whose methods the run loop calls at defined points,
for tracing and debugging. Nothing on the hot path pays for them unless one
is installed."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Instrument", "Instruments", "HOOKS"]

HOOKS = (
    "before_run",
    "after_run",
    "task_spawned",
    "task_scheduled",
    "before_task_step",
    "after_task_step",
    "task_exited",
    "before_io_wait",
    "after_io_wait",
)

logger = logging.getLogger("nursery.instruments")


class Instrument:
    """Base class for instruments: override the hooks you want. Every hook is
    optional; an instrument may also be any object with some of these
    methods. A hook that raises is logged and its instrument removed."""

    __slots__ = ()

    def before_run(self) -> None:
        """Called once, before the run starts."""

    def after_run(self) -> None:
        """Called once, after the run finished."""

    def task_spawned(self, task: Any) -> None:
        """Called when a task is created."""

    def task_scheduled(self, task: Any) -> None:
        """Called when a blocked task becomes ready to run."""

    def before_task_step(self, task: Any) -> None:
        """Called right before a task runs a step."""

    def after_task_step(self, task: Any) -> None:
        """Called right after a task's step ended."""

    def task_exited(self, task: Any) -> None:
        """Called when a task exits."""

    def before_io_wait(self, timeout: float) -> None:
        """Called before the run loop waits for I/O (up to *timeout* s)."""

    def after_io_wait(self, timeout: float) -> None:
        """Called after the I/O wait."""


class Instruments(dict):
    """Maps each hook name to the instruments that implement it (a dict used
    as an ordered set). A hook name is present only while some instrument
    implements it, so ``"hook" in instruments`` is the whole cost when none
    does."""

    def add_instrument(self, instrument: Any) -> None:
        found = False
        for name in HOOKS:
            method = getattr(type(instrument), name, None)
            if method is None or method is getattr(Instrument, name):
                continue
            found = True
            self.setdefault(name, {})[instrument] = None
        if not found and not isinstance(instrument, Instrument):
            raise TypeError(
                f"{instrument!r} is not an instrument: it has none of the hook methods {', '.join(HOOKS)}"
            )

    def remove_instrument(self, instrument: Any) -> None:
        present = False
        for name in list(self):
            hooks = self[name]
            if instrument in hooks:
                present = True
                del hooks[instrument]
                if not hooks:
                    del self[name]
        if not present:
            raise KeyError(f"{instrument!r} is not installed in this run")

    def call(self, hook: str, *args: Any) -> None:
        for instrument in list(self.get(hook, ())):
            try:
                getattr(instrument, hook)(*args)
            except BaseException:
                self.remove_instrument(instrument)
                logger.exception(
                    "instrument %r raised in %s(); it has been removed from the run", instrument, hook
                )

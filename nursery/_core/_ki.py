"""Ctrl-C: the run's SIGINT handler is installed for the duration of the run.

What the handler does is ``Runner.ki_handler``; this module only decides
whether to install it, and puts the previous handler back.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class SigintHandler:
    """Installs the run's Ctrl-C handler for the duration of a run, if this
    is the main thread and nobody installed a custom handler."""

    __slots__ = ("_runner", "_previous", "_installed")

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return
        self._previous = signal.signal(signal.SIGINT, self._runner.ki_handler)
        self._installed = True

    def __exit__(self, *exc_info: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

"""Run one seed example as ``__main__``, one of three ways, on virtual time.

    python _runner.py MODE EXAMPLE.py [--real-clock]

MODE is

* ``stock``: stock asyncio, the reference. Its event loop is stock asyncio's
  own selector loop; only the clock is virtual (see ``_VirtualTimeSelector``).
* ``compat-loop``: the unmodified program with stock asyncio, run by
  ``python -m nursery.compat``'s ``main()``: compat's event loop policy is
  installed, so ``asyncio.run`` and ``asyncio.new_event_loop()`` give a
  ``nursery.compat.EventLoop``.
* ``compat-module``: the program with ``import asyncio`` replaced by ``from
  nursery import compat as asyncio`` (and ``from asyncio import ...`` by
  ``from nursery.compat import ...``); stock asyncio is not used by it at all.

Every loop runs on virtual time that jumps to the next timer as soon as the
loop has nothing else to do: stock asyncio's loop through its selector,
compat's through the kernel's ``MockClock(autojump_threshold=0)``. So an
example that sleeps an hour finishes at once, and the three ways see the
same times. The program is compiled under its own file name in every mode,
so tracebacks, warnings and task reprs name the same file and line.
"""

from __future__ import annotations

import asyncio
import re
import selectors
import sys
import threading
from typing import Any

MODES = ("stock", "compat-loop", "compat-module")


class _VirtualTimeSelector(selectors.BaseSelector):
    """A selector whose idle waits advance a virtual clock instead of
    sleeping: the stock loop asks it to wait until the next timer, and it
    returns at once with the clock moved to that timer. A wait without a timer
    (e.g. for a worker thread's result) really waits for I/O.

    While other threads exist, a timer is jumped to only after a short real
    wait found nothing to do: a worker thread finishing its work (or being
    joined, as in 3.12+'s shutdown_default_executor, which waits with a 300
    second timeout) must not be overtaken by a virtual jump that an idle
    loop would not have made in real time."""

    GRACE = 2.0  # seconds of real waiting before a jump, while threads exist

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.now = 0.0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return self._real.select(None)
        if threading.active_count() > 1:
            ready = self._real.select(min(timeout, self.GRACE))
            if ready:
                return ready
        self.now += timeout
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Any:
        return self._real.get_map()


class _VirtualTimeLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    def __init__(self) -> None:
        self._virtual = _VirtualTimeSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


class _Policy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    def __init__(self, factory: Any) -> None:
        super().__init__()
        self._factory = factory

    def new_event_loop(self) -> Any:
        return self._factory()


def _use_mock_clock_in_compat() -> None:
    """Make every loop compat creates for itself (``compat.run``,
    ``compat.Runner``, ``compat.new_event_loop()``) run on a fresh
    ``MockClock(autojump_threshold=0)``, without changing the program."""
    from nursery.compat import _loop
    from nursery.testing import MockClock

    original_init = _loop.EventLoop.__init__

    def __init__(self: Any, *, clock: Any = None, _kernel_run: Any = None) -> None:
        if clock is None and _kernel_run is None:
            clock = MockClock(autojump_threshold=0)
        original_init(self, clock=clock, _kernel_run=_kernel_run)

    _loop.EventLoop.__init__ = __init__  # type: ignore[method-assign]


def to_compat_module(source: str) -> str:
    """The program with stock asyncio's imports replaced by compat's (line
    numbers unchanged)."""
    source = re.sub(r"^(\s*)import asyncio\s*$", r"\1from nursery import compat as asyncio", source, flags=re.M)
    return re.sub(r"^(\s*)from asyncio import ", r"\1from nursery.compat import ", source, flags=re.M)


def main(mode: str, path: str, *options: str) -> None:
    real_clock = "--real-clock" in options
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if mode == "stock":
        asyncio.set_event_loop_policy(_Policy(_VirtualTimeLoop))
    elif mode == "compat-loop":
        from nursery.compat.__main__ import main as compat_main

        if not real_clock:
            _use_mock_clock_in_compat()
        compat_main([path])
        return
    elif mode == "compat-module":
        if not real_clock:
            _use_mock_clock_in_compat()
        source = to_compat_module(source)
    else:
        raise SystemExit(f"unknown mode {mode!r}; expected one of {MODES}")
    sys.argv = [path]
    # Run as __main__ (as `python example.py` would), so warnings attributed
    # to the program are shown with the default filters.
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    code = compile(source, path, "exec")
    exec(code, module.__dict__)


if __name__ == "__main__":
    main(*sys.argv[1:])

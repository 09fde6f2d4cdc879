"""The exceptions of the asyncio-shaped module.

They are stock asyncio's own classes, not look-alikes: code that writes
``except asyncio.QueueEmpty`` catches what ``nursery.compat.Queue`` raises,
and the other way round. ``TimeoutError`` is the builtin, as in asyncio on
3.11+; ``QueueShutDown`` exists only where stock asyncio has it (3.13+).
"""

from __future__ import annotations

import asyncio as _asyncio

CancelledError = _asyncio.CancelledError
TimeoutError = _asyncio.TimeoutError
InvalidStateError = _asyncio.InvalidStateError
BrokenBarrierError = _asyncio.BrokenBarrierError
QueueEmpty = _asyncio.QueueEmpty
QueueFull = _asyncio.QueueFull
IncompleteReadError = _asyncio.IncompleteReadError
LimitOverrunError = _asyncio.LimitOverrunError

__all__ = [
    "BrokenBarrierError",
    "CancelledError",
    "IncompleteReadError",
    "InvalidStateError",
    "LimitOverrunError",
    "QueueEmpty",
    "QueueFull",
    "TimeoutError",
]

if hasattr(_asyncio, "QueueShutDown"):
    QueueShutDown = _asyncio.QueueShutDown
    __all__.append("QueueShutDown")

"""Differential testing for compat: run one scenario on stock asyncio's own
loop, on compat's loop (virtual time) and inside nursery.run, and require the
same outcome and trace.

A scenario is ``async def scenario(aio, log)``: *aio* is the asyncio-shaped
module to use (stock ``asyncio`` or ``nursery.compat``), *log* a list to
append observations to.
"""

from __future__ import annotations

import asyncio

import nursery
from nursery import compat
from nursery.testing import MockClock


def describe(exc: BaseException) -> object:
    """An exception as comparable data (groups recursively)."""
    if isinstance(exc, BaseExceptionGroup):
        return (type(exc).__name__, exc.message, [describe(e) for e in exc.exceptions])
    return (type(exc).__name__, str(exc))


def run_on(aio, scenario):
    """Run the scenario on stock asyncio's loop (aio is asyncio) or on
    compat's loop on an autojump MockClock; return (outcome, log)."""
    log: list = []
    if aio is asyncio:
        loop = asyncio.new_event_loop()
    else:
        loop = compat.new_event_loop(clock=MockClock(autojump_threshold=0))
    try:
        result = ("value", loop.run_until_complete(scenario(aio, log)))
    except BaseException as exc:  # noqa: BLE001 - compared by the caller
        result = ("error", describe(exc))
    finally:
        loop.close()
    return result, log


def run_in_nursery(scenario):
    """Run the scenario with compat's API inside nursery.run (plain kernel
    tasks, autojump MockClock); return (outcome, log)."""
    log: list = []
    try:
        result = ("value", nursery.run(scenario, compat, log, clock=MockClock(autojump_threshold=0)))
    except BaseException as exc:  # noqa: BLE001 - compared by the caller
        result = ("error", describe(exc))
    return result, log


def same(scenario, *, in_nursery: bool = True):
    """Run *scenario* the three ways; all must agree. Returns stock's
    (outcome, log)."""
    stock = run_on(asyncio, scenario)
    assert run_on(compat, scenario) == stock
    if in_nursery:
        assert run_in_nursery(scenario) == stock
    return stock

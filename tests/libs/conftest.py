"""Real asyncio libraries, unmodified, on stock asyncio and on compat's loop.

Every test here is marked ``libs`` (deselected by default; CI runs them) and
takes the ``run`` fixture, which runs an asyncio ``main()`` coroutine function
one way per parameter:

* ``asyncio``: stock asyncio's own loop (``asyncio.Runner()``), the reference;
* ``compat``: ``asyncio.Runner(loop_factory=nursery.compat.new_event_loop)``,
  the library runs on the nursery kernel through stock asyncio's API;
* ``nursery`` (the ``run_mixed`` fixture only): inside ``nursery.run``, where
  the test may mix nursery constructs (nurseries, cancel scopes) with the
  library (``run.flavor == "nursery"`` tells it so).

Besides the test's own assertions, every run checks that the loop's exception
handler was never called (an unclosed session, a task's exception never
retrieved, a failing callback: asyncio reports these there, not by raising),
after a garbage collection while the loop is still open, so that finalizers
that report to the handler do so. The autouse leak check in tests/conftest.py
covers fds, threads and child processes.

The ``postgres`` fixture starts a throwaway PostgreSQL server for the session
(libs_harness.start_postgres: as root it runs as the postgres user; without
PostgreSQL it skips, or fails under CI=true).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from libs_harness import FLAVORS, LoopRunner, Postgres, start_postgres

@pytest.fixture(params=FLAVORS)
def run(request: pytest.FixtureRequest) -> LoopRunner:
    """Runs an asyncio main() on stock asyncio and on compat's loop."""
    return LoopRunner(request.param)


@pytest.fixture(params=(*FLAVORS, "nursery"))
def run_mixed(request: pytest.FixtureRequest) -> LoopRunner:
    """As ``run``, plus a run inside ``nursery.run``."""
    return LoopRunner(request.param)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server on 127.0.0.1 for the whole session (see
    libs_harness.start_postgres)."""
    with start_postgres() as server:
        yield server

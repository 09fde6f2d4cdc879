"""Helpers for the real-library tests (tests/libs): running an asyncio main()
on each kind of loop with the exception-handler check, and a throwaway
PostgreSQL server. The fixtures that use them are in this directory's
conftest.py (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import glob
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator

import pytest

import nursery
from nursery import compat

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: The loops every library test runs on.
FLAVORS = ("asyncio", "compat")


def require(module: str) -> Any:
    """Import a library under test: skip the module where it is not installed
    on a developer's machine (``pip install -e '.[test,libs]'`` installs it),
    but fail in CI, where a missing library is a broken install step."""
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test,libs]')")


def unavailable(reason: str) -> None:
    """Skip on a developer's machine, fail in CI (where .ci/run installs
    everything the tests need, so an absence is a bug)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the CI script must provide it)", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------------------
# running a main() on each loop


class LoopRunner:
    """``run(main, *args)`` runs ``main(*args)`` to completion on one kind of
    loop and returns its result; see the module docstring."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor

    def __repr__(self) -> str:
        return f"<LoopRunner {self.flavor}>"

    def __call__(self, main: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        calls: list[dict[str, Any]] = []

        def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            calls.append(context)

        if self.flavor == "nursery":

            async def in_run() -> Any:
                loop = asyncio.get_running_loop()
                loop.set_exception_handler(record)
                result = await main(*args)
                gc.collect()
                await asyncio.sleep(0)
                return result

            result = nursery.run(in_run)
        else:
            factory = compat.new_event_loop if self.flavor == "compat" else None
            with asyncio.Runner(loop_factory=factory) as runner:
                loop = runner.get_loop()
                if self.flavor == "compat":
                    assert isinstance(loop, compat.EventLoop)
                loop.set_exception_handler(record)
                result = runner.run(main(*args))
                # Finalizers of unclosed resources report to the handler:
                # collect while the loop is open, and let what they
                # scheduled run.
                gc.collect()
                runner.run(asyncio.sleep(0))
        assert calls == [], f"the loop's exception handler was called: {calls!r}"
        return result


async def gather_all(runner: LoopRunner, *aws: Awaitable[Any]) -> list[Any]:
    """Run *aws* concurrently and return their results in order: with a
    nursery inside ``nursery.run``, with asyncio.gather elsewhere."""
    if runner.flavor != "nursery":
        return list(await asyncio.gather(*aws))
    results: list[Any] = [None] * len(aws)

    async def one(i: int, aw: Awaitable[Any]) -> None:
        results[i] = await aw

    async with nursery.open_nursery() as n:
        for i, aw in enumerate(aws):
            n.start_soon(one, i, aw)
    return results


# ---------------------------------------------------------------------------
# PostgreSQL


@dataclass(frozen=True)
class Postgres:
    """A running throwaway server: connect as ``user`` (trust auth) to
    ``host``:``port`` over TCP, or through the socket in ``socket_dir``."""

    host: str
    port: int
    socket_dir: str
    user: str
    database: str

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def _postgres_bindir() -> str | None:
    """Where initdb and pg_ctl are: $PG_BINDIR, else Debian's
    /usr/lib/postgresql/<newest>/bin, else PATH."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return explicit
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if debian:
        return os.path.dirname(debian[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """A PostgreSQL server on 127.0.0.1 for the test session, in a temporary
    directory (data, socket and log), stopped and removed at the end.

    As root, the server runs as the ``postgres`` user (PostgreSQL refuses to
    run as root). Without the binaries, the tests that need it skip, except
    in CI, where they fail."""
    bindir = _postgres_bindir()
    if bindir is None or not os.path.exists(os.path.join(bindir, "pg_ctl")):
        unavailable("PostgreSQL is not installed (Debian: apt-get install postgresql; or set PG_BINDIR)")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root, and there is no 'postgres' user to run the server as")
        run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}
    base = tempfile.mkdtemp(prefix="nursery-pg-")
    if run_as:
        shutil.chown(base, "postgres", "postgres")
    data = os.path.join(base, "data")
    log = os.path.join(base, "server.log")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}

    def pg(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [os.path.join(bindir, argv[0]), *argv[1:]],
            cwd=base,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            **run_as,
        )

    started = False
    try:
        pg("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        try:
            pg("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", log, "-o", options)
        except subprocess.CalledProcessError as exc:
            with open(log) as f:
                server_log = f.read()
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr}\n{server_log}") from None
        started = True
        yield Postgres(host="127.0.0.1", port=port, socket_dir=base, user="postgres", database="postgres")
    finally:
        if started:
            pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", data, check=False)
        shutil.rmtree(base, ignore_errors=True)

"""The pytest plugin: ``async def`` tests and async fixtures run under
:func:`nursery.run`.

Enable it for every async test with ``nursery_mode = "auto"`` in the pytest
configuration, or mark single tests with ``@pytest.mark.nursery``. Each test
is one run; its async fixtures are set up inside that run, in the test's
task, before the test body, and torn down after it in reverse order, so a
fixture may ``yield`` from inside a nursery or a cancel scope and the test
runs inside them. If the test requests ``mock_clock`` or ``autojump_clock``,
the run uses that clock.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

import pytest

import nursery
from .._core import MockClock


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "nursery_mode",
        "'auto': run every async def test under nursery.run; "
        "'strict' (default): only tests marked @pytest.mark.nursery",
        default="strict",
    )
    parser.addini(
        "nursery_random_seed",
        "if set, run every nursery test with this random scheduling seed",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nursery: run this async test (and its async fixtures) under nursery.run")
    mode = config.getini("nursery_mode")
    if mode not in ("auto", "strict"):
        raise pytest.UsageError(f"nursery_mode must be 'auto' or 'strict', got {mode!r}")


def _applies(item: Any) -> bool:
    if item.get_closest_marker("nursery") is not None:
        return True
    return item.config.getini("nursery_mode") == "auto"


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


class _AsyncFixture:
    """Stands in for an async fixture's value until the test's run sets it
    up."""

    __slots__ = ("func", "kwargs", "name")

    def __init__(self, func: Any, kwargs: dict[str, Any], name: str) -> None:
        self.func = func
        self.kwargs = kwargs
        self.name = name

    def __repr__(self) -> str:
        return f"<async fixture {self.name!r}, set up only inside an async nursery test>"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    func = fixturedef.func
    if not _is_async(func) or not _applies(request.node):
        return (yield)
    if fixturedef.scope != "function":
        raise pytest.UsageError(
            f"async fixture {fixturedef.argname!r} has scope {fixturedef.scope!r}; under "
            "nursery each test is its own run, so async fixtures must be function-scoped"
        )

    def placeholder(**kwargs: Any) -> _AsyncFixture:
        return _AsyncFixture(func, kwargs, fixturedef.argname)

    fixturedef.func = placeholder
    try:
        return (yield)
    finally:
        fixturedef.func = func


@pytest.fixture
def mock_clock() -> MockClock:
    """A :class:`~nursery.testing.MockClock` (time stands still until
    jumped) that the test's run uses."""
    return MockClock()


@pytest.fixture
def autojump_clock() -> MockClock:
    """A :class:`~nursery.testing.MockClock` with ``autojump_threshold=0``:
    whenever every task is blocked, time jumps to the next deadline."""
    return MockClock(autojump_threshold=0)


async def _run_test(fn: Any, kwargs: dict[str, Any]) -> None:
    async with contextlib.AsyncExitStack() as stack:
        resolved: dict[int, Any] = {}

        async def resolve(value: Any) -> Any:
            if not isinstance(value, _AsyncFixture):
                return value
            if id(value) not in resolved:
                kw = {name: await resolve(v) for name, v in value.kwargs.items()}
                if inspect.isasyncgenfunction(value.func):
                    manager = contextlib.asynccontextmanager(value.func)(**kw)
                    resolved[id(value)] = await stack.enter_async_context(manager)
                else:
                    resolved[id(value)] = await value.func(**kw)
            return resolved[id(value)]

        args = {name: await resolve(value) for name, value in kwargs.items()}
        await fn(**args)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn) or not _applies(pyfuncitem):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    clocks = [v for v in pyfuncitem.funcargs.values() if isinstance(v, MockClock)]
    if len(clocks) > 1:
        raise pytest.UsageError(f"{pyfuncitem.name} requests more than one MockClock")
    seed = pyfuncitem.config.getini("nursery_random_seed")
    nursery.run(
        _run_test,
        fn,
        kwargs,
        clock=clocks[0] if clocks else None,
        random_seed=int(seed) if seed else None,
    )
    return True

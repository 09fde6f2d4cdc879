"""The pytest plugin: ``async def`` tests and async fixtures run under
:func:`nursery.run`.

Enable it for every async test with ``nursery_mode = "auto"`` in the pytest
configuration, or mark single tests with ``@pytest.mark.nursery``. Each test
is one run; its async fixtures are set up inside that run, in the test's
task, before the test body, and torn down after it in reverse order, so a
fixture may ``yield`` from inside a nursery or a cancel scope and the test
runs inside them. If the test requests ``mock_clock`` or ``autojump_clock``,
the run uses that clock.

Tests marked ``@pytest.mark.nursery_compat`` are asyncio-style tests instead:
the test runs as an asyncio task on a :mod:`nursery.compat` event loop (with
the requested ``MockClock``, if any), as ``asyncio.Runner().run(test())``
would. The ``compat_loop`` fixture gives sync tests a compat loop on an
autojump clock.
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
    config.addinivalue_line(
        "markers",
        "nursery_compat: run this async test as an asyncio task on a nursery.compat event loop "
        "(on the test's MockClock, if it requests one)",
    )
    mode = config.getini("nursery_mode")
    if mode not in ("auto", "strict"):
        raise pytest.UsageError(f"nursery_mode must be 'auto' or 'strict', got {mode!r}")
    seed = config.getini("nursery_random_seed")
    if seed:
        try:
            int(seed)
        except ValueError:
            raise pytest.UsageError(f"nursery_random_seed must be an integer, got {seed!r}") from None


def _applies(item: Any) -> bool:
    if item.get_closest_marker("nursery_compat") is not None:
        return False
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
    if not _applies(request.node):
        return (yield)
    if not _is_async(func):
        # A sync fixture runs before the test's run starts, so it cannot use
        # an async fixture's value: say so, instead of handing it the
        # placeholder.
        for name in fixturedef.argnames:
            if isinstance(request.getfixturevalue(name), _AsyncFixture):
                raise pytest.UsageError(
                    f"fixture {fixturedef.argname!r} is not async but depends on async fixture "
                    f"{name!r}; async fixtures only exist inside the test's run, so make "
                    f"{fixturedef.argname!r} an async fixture too"
                )
        return (yield)
    test = getattr(request.node, "obj", None)
    if fixturedef.scope == "function" and not inspect.iscoroutinefunction(test):
        raise pytest.UsageError(
            f"async fixture {fixturedef.argname!r} was requested by {request.node.name}, which is "
            "not an async test; async fixtures are set up inside the test's nursery.run, so "
            "only 'async def' tests can use them (an autouse async fixture applies to every "
            "test in its scope: make the test async, or move it out of that scope)"
        )
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


@pytest.fixture
def compat_loop() -> Any:
    """A :mod:`nursery.compat` event loop on its own autojump
    :class:`~nursery.testing.MockClock`, for sync tests that drive asyncio
    code with ``compat_loop.run_until_complete(...)``; closed (after its
    leftover tasks are cancelled) when the test ends."""
    from .. import compat

    runner = compat.Runner(loop_factory=lambda: compat.new_event_loop(clock=MockClock(autojump_threshold=0)))
    with runner:
        yield runner.get_loop()


class _FixtureContext:
    """Wraps an async generator fixture's context manager to notice when
    its teardown swallows the exception the test raised."""

    __slots__ = ("name", "manager", "swallowed")

    def __init__(self, name: str, manager: Any, swallowed: list[tuple[str, BaseException]]) -> None:
        self.name = name
        self.manager = manager
        self.swallowed = swallowed

    async def __aenter__(self) -> Any:
        return await self.manager.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        suppress = await self.manager.__aexit__(exc_type, exc, tb)
        if suppress and exc is not None:
            self.swallowed.append((self.name, exc))
        return bool(suppress)


async def _run_test(fn: Any, argnames: tuple[str, ...], fixtures: dict[str, Any]) -> None:
    # The test runs inside its async generator fixtures' `yield`s, in the
    # same task, like nested `async with` blocks: a fixture that yields from
    # inside a nursery or a cancel scope has the test run inside it, and an
    # exception from the test is thrown into the fixture at its `yield`.
    swallowed: list[tuple[str, BaseException]] = []
    test_error: BaseException | None = None
    async with contextlib.AsyncExitStack() as stack:
        resolved: dict[int, Any] = {}

        async def resolve(value: Any) -> Any:
            if not isinstance(value, _AsyncFixture):
                return value
            if id(value) not in resolved:
                kw = {name: await resolve(v) for name, v in value.kwargs.items()}
                if inspect.isasyncgenfunction(value.func):
                    manager = contextlib.asynccontextmanager(value.func)(**kw)
                    context = _FixtureContext(value.name, manager, swallowed)
                    resolved[id(value)] = await stack.enter_async_context(context)
                else:
                    resolved[id(value)] = await value.func(**kw)
            return resolved[id(value)]

        # Every async fixture the test uses, also those it does not name
        # (autouse, usefixtures, dependencies), in pytest's setup order.
        for value in fixtures.values():
            await resolve(value)
        args = {name: await resolve(fixtures[name]) for name in argnames}
        try:
            await fn(**args)
        except BaseException as exc:
            test_error = exc
            raise
    if swallowed:
        # A fixture's teardown ate what the test raised (an `except` around
        # its `yield`, or a cancel scope of the fixture that cancelled the
        # test). The test did not pass: it failed or did not finish.
        name, exc = swallowed[0]
        if isinstance(exc, nursery.Cancelled):
            message = (
                f"the test was cancelled by a cancel scope in async fixture {name!r} "
                "(a timeout, or a cancel() of the fixture's nursery) and did not finish"
            )
        else:
            message = f"async fixture {name!r} swallowed the exception raised by the test: {exc!r}"
        raise pytest.fail.Exception(message) from test_error


def _the_clock(pyfuncitem: Any) -> MockClock | None:
    clocks: list[MockClock] = []
    for value in pyfuncitem.funcargs.values():
        if isinstance(value, MockClock) and not any(value is c for c in clocks):
            clocks.append(value)
    if len(clocks) > 1:
        names = sorted(name for name, v in pyfuncitem.funcargs.items() if isinstance(v, MockClock))
        raise pytest.UsageError(
            f"{pyfuncitem.name} uses more than one MockClock (from fixtures {', '.join(names)}); "
            "a run has one clock, so request only one of them"
        )
    return clocks[0] if clocks else None


def _run_compat_test(pyfuncitem: Any) -> None:
    from .. import compat

    clock = _the_clock(pyfuncitem)
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    with compat.Runner(loop_factory=lambda: compat.new_event_loop(clock=clock)) as runner:
        runner.run(pyfuncitem.obj(**args))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    if pyfuncitem.get_closest_marker("nursery_compat") is not None:
        _run_compat_test(pyfuncitem)
        return True
    if not _applies(pyfuncitem):
        return None
    clock = _the_clock(pyfuncitem)
    seed = pyfuncitem.config.getini("nursery_random_seed")
    try:
        nursery.run(
            _run_test,
            fn,
            pyfuncitem._fixtureinfo.argnames,
            dict(pyfuncitem.funcargs),
            clock=clock,
            random_seed=int(seed) if seed else None,
        )
    except BaseExceptionGroup as group:
        _raise_lone_outcome(group)
        raise
    return True


_OUTCOMES = (pytest.skip.Exception, pytest.fail.Exception, pytest.xfail.Exception)


def _raise_lone_outcome(group: BaseExceptionGroup) -> None:
    # pytest.skip()/fail()/xfail() called inside a nursery (in a fixture's
    # nursery, or a task of the test) arrive wrapped in exception groups;
    # pytest only understands them bare. Unwrap when that outcome is all
    # there is (besides the Cancelled it caused), so a skip stays a skip.
    outcomes, rest = group.split(_OUTCOMES)
    if outcomes is None or (rest is not None and rest.split(nursery.Cancelled)[1] is not None):
        return
    while isinstance(outcomes, BaseExceptionGroup):
        if len(outcomes.exceptions) != 1:
            return
        outcomes = outcomes.exceptions[0]
    raise outcomes

"""The pytest plugin, tested by running pytest on small test files with the
``pytester`` fixture."""

from __future__ import annotations

import json
import textwrap

import pytest

pytest_plugins = ["pytester"]


def _ini(pytester: pytest.Pytester, **options: str) -> None:
    lines = "\n".join(f"{key} = {value}" for key, value in options.items())
    pytester.makeini(f"[pytest]\n{lines}\n")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # (hypothesis' plugin costs most of a second per run and is not needed.)
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


# ----------------------------------------------------------------------
# which tests run


def test_auto_mode_runs_every_async_test(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import nursery
        from nursery import lowlevel

        async def test_in_a_run():
            assert lowlevel.in_run()
            await nursery.sleep(0)

        async def test_fails():
            await nursery.sleep(0)
            assert 1 == 2, "failing on purpose"

        class TestInAClass:
            async def test_method(self):
                assert lowlevel.in_task()

        def test_sync_is_left_alone():
            assert not lowlevel.in_run()
        """
    )
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_fails FAILED*", "*AssertionError: failing on purpose*"])


def test_strict_mode_runs_only_marked_tests(pytester):
    _ini(pytester, nursery_mode="strict")
    pytester.makepyfile(
        """
        import pytest
        from nursery import lowlevel

        @pytest.mark.nursery
        async def test_marked():
            assert lowlevel.in_run()

        async def test_unmarked():
            raise AssertionError("must not run under nursery")
        """
    )
    result = _run(pytester, "-v", "-W", "ignore")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    result.stdout.fnmatch_lines(["*test_marked PASSED*"])
    # pytest itself handles the unmarked one (it does not run async tests).
    result.stdout.no_fnmatch_line("*must not run under nursery*")


def test_strict_is_the_default_mode(pytester):
    pytester.makepyfile(
        """
        import pytest
        from nursery import lowlevel

        @pytest.mark.nursery
        async def test_marked():
            assert lowlevel.in_run()

        async def test_unmarked():
            raise AssertionError("must not run under nursery")
        """
    )
    result = _run(pytester, "-v", "-W", "ignore")
    result.stdout.fnmatch_lines(["*test_marked PASSED*"])
    result.stdout.no_fnmatch_line("*must not run under nursery*")


def test_bad_mode_is_a_usage_error(pytester):
    _ini(pytester, nursery_mode="sometimes")
    pytester.makepyfile("def test_x(): pass")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nursery_mode must be 'auto' or 'strict', got 'sometimes'*"])


# ----------------------------------------------------------------------
# async fixtures


def test_async_fixtures_set_up_in_order_and_torn_down_in_reverse(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makeconftest(
        """
        import pytest
        import nursery
        from nursery import lowlevel

        LOG = []

        @pytest.fixture
        def sync_value():
            LOG.append("sync setup")
            yield 1
            LOG.append("sync teardown")

        @pytest.fixture
        async def coro_fixture(sync_value):
            await nursery.sleep(0)
            LOG.append("coro setup")
            return sync_value + 10

        @pytest.fixture
        async def gen_fixture(coro_fixture):
            assert lowlevel.in_task()
            LOG.append("gen setup")
            yield coro_fixture + 100
            await nursery.sleep(0)
            LOG.append("gen teardown")

        @pytest.fixture
        async def outer(gen_fixture, coro_fixture):
            LOG.append("outer setup")
            yield (gen_fixture, coro_fixture)
            LOG.append("outer teardown")

        @pytest.fixture
        def log():
            return LOG
        """
    )
    pytester.makepyfile(
        """
        from nursery import lowlevel

        async def test_values(outer, log):
            task = lowlevel.current_task()
            assert outer == (111, 11)
            assert log == ["sync setup", "coro setup", "gen setup", "outer setup"]
            log.append("test")

        def test_after(log):
            assert log == [
                "sync setup", "coro setup", "gen setup", "outer setup", "test",
                "outer teardown", "gen teardown", "sync teardown",
            ]
        """
    )
    result = _run(pytester, "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_autouse_and_usefixtures_async_fixtures_are_set_up(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest

        LOG = []

        @pytest.fixture(autouse=True)
        async def auto():
            LOG.append("auto setup")
            yield
            LOG.append("auto teardown")

        @pytest.fixture
        async def used():
            LOG.append("used setup")
            yield
            LOG.append("used teardown")

        @pytest.mark.usefixtures("used")
        async def test_uses():
            assert LOG == ["auto setup", "used setup"]

        async def test_after():
            assert LOG == ["auto setup", "used setup", "used teardown", "auto teardown", "auto setup"]

        def test_sync_under_async_autouse():
            pass
        """
    )
    result = _run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*async fixture 'auto' was requested by test_sync_under_async_autouse, which is not an async test*"
            "autouse async fixture applies to every test in its scope*"
        ]
    )


def test_fixtures_and_test_run_in_the_same_task(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        from nursery import lowlevel

        @pytest.fixture
        async def fixture_task():
            yield lowlevel.current_task()

        async def test_same_task(fixture_task):
            assert fixture_task is lowlevel.current_task()
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_teardown_runs_when_the_test_fails(pytester, tmp_path):
    _ini(pytester, nursery_mode="auto")
    marker = tmp_path / "torn-down"
    pytester.makepyfile(
        f"""
        import pytest
        import nursery

        @pytest.fixture
        async def resource():
            try:
                yield "r"
            finally:
                await nursery.lowlevel.cancel_shielded_checkpoint()
                open({str(marker)!r}, "w").close()

        async def test_fails(resource):
            raise KeyError("the test's own error")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*KeyError: \"the test's own error\"*"])
    assert marker.exists()


def test_fixture_nursery_child_crash_fails_the_test_with_that_error(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery

        @pytest.fixture
        async def background():
            async def crasher():
                await nursery.sleep(1)
                raise ValueError("background task crashed")

            async with nursery.open_nursery() as n:
                n.start_soon(crasher)
                yield n
                n.cancel_scope.cancel()

        async def test_outlived_by_crash(background, autojump_clock):
            await nursery.sleep(10)
            raise AssertionError("the test must have been cancelled at t=1")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ValueError: background task crashed*"])
    result.stdout.no_fnmatch_line("*the test must have been cancelled at t=1*")


def test_fixture_nursery_is_cancelled_cleanly_after_a_passing_test(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery

        @pytest.fixture
        async def server():
            served = []

            async def serve():
                while True:
                    await nursery.sleep(1)
                    served.append(nursery.current_time())

            async with nursery.open_nursery() as n:
                n.start_soon(serve)
                yield served
                n.cancel_scope.cancel()

        async def test_uses_server(server, autojump_clock):
            await nursery.sleep(3.5)
            assert server == [1, 2, 3]
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_fixture_that_swallows_the_tests_error_does_not_make_it_pass(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery

        @pytest.fixture
        async def careless():
            try:
                yield
            except Exception:
                pass

        @pytest.fixture
        async def timeout():
            with nursery.move_on_after(1):
                yield

        async def test_error_swallowed(careless):
            raise ValueError("lost?")

        async def test_cancelled_by_fixture_scope(timeout, autojump_clock):
            await nursery.sleep(5)
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*async fixture 'careless' swallowed the exception raised by the test: ValueError('lost?')*",
            "*the test was cancelled by a cancel scope in async fixture 'timeout'*did not finish*",
        ]
    )


def test_non_function_scoped_async_fixture_is_a_usage_error(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        async def shared():
            return 1

        async def test_uses_shared(shared):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*async fixture 'shared' has scope 'module'; under nursery each test is its own run*function-scoped*"]
    )


def test_sync_test_requesting_an_async_fixture_is_an_error(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def value():
            return 1

        def test_sync(value):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*async fixture 'value' was requested by test_sync, which is not an async test*"])


def test_sync_fixture_depending_on_an_async_fixture_is_an_error(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def value():
            return 1

        @pytest.fixture
        def doubled(value):
            return value * 2

        async def test_uses(doubled):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*fixture 'doubled' is not async but depends on async fixture 'value'*make 'doubled' an async fixture too*"]
    )


def test_parametrized_async_fixture_and_test(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery

        @pytest.fixture(params=[1, 2])
        async def base(request):
            await nursery.sleep(0)
            return request.param

        @pytest.mark.parametrize("factor", [10, 100])
        async def test_product(base, factor):
            assert base * factor in (10, 20, 100, 200)
        """
    )
    _run(pytester).assert_outcomes(passed=4)


def test_async_fixtures_in_strict_mode_for_marked_tests(pytester):
    _ini(pytester, nursery_mode="strict")
    pytester.makepyfile(
        """
        import pytest
        from nursery import lowlevel

        @pytest.fixture
        async def in_run():
            yield lowlevel.in_run()

        @pytest.mark.nursery
        async def test_marked(in_run):
            assert in_run is True
        """
    )
    _run(pytester).assert_outcomes(passed=1)


# ----------------------------------------------------------------------
# clocks and seeds


def test_clock_fixtures_are_the_runs_clock(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery
        from nursery import lowlevel
        from nursery.testing import MockClock

        async def test_mock(mock_clock):
            assert lowlevel.current_clock() is mock_clock
            assert mock_clock.autojump_threshold == float("inf")
            mock_clock.jump(3)
            assert nursery.current_time() == 3

        async def test_autojump(autojump_clock):
            assert lowlevel.current_clock() is autojump_clock
            await nursery.sleep(1000)
            assert nursery.current_time() == 1000

        async def test_default_is_the_system_clock():
            assert isinstance(lowlevel.current_clock(), lowlevel.SystemClock)

        @pytest.fixture
        def slow_clock(mock_clock):
            mock_clock.autojump_threshold = 0.01
            return mock_clock

        async def test_clock_through_a_fixture(slow_clock):
            # The same clock from two fixtures is one clock.
            assert lowlevel.current_clock() is slow_clock
            await nursery.sleep(7)
            assert nursery.current_time() == 7

        @pytest.fixture
        def own_clock():
            return MockClock(autojump_threshold=0)

        async def test_own_clock(own_clock):
            assert lowlevel.current_clock() is own_clock
        """
    )
    result = _run(pytester, "--durations=0")
    result.assert_outcomes(passed=5)


def test_two_clocks_is_an_error(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        async def test_both(mock_clock, autojump_clock):
            raise AssertionError("must not run")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_both uses more than one MockClock (from fixtures autojump_clock, mock_clock)*request only one*"]
    )
    result.stdout.no_fnmatch_line("*must not run*")


_ORDER_TEST = """
import json
import nursery
from nursery import lowlevel

async def _order():
    log = []

    async def worker(i):
        for step in range(3):
            log.append([i, step])
            await lowlevel.checkpoint()

    async with nursery.open_nursery() as n:
        for i in range(8):
            n.start_soon(worker, i)
    return log

async def test_order():
    log = await _order()
    with open({path!r}, "w") as f:
        json.dump(log, f)
"""


@pytest.mark.parametrize("seed", [None, 5])
def test_random_seed_ini_option(pytester, tmp_path, seed):
    if seed is None:
        _ini(pytester, nursery_mode="auto")
    else:
        _ini(pytester, nursery_mode="auto", nursery_random_seed=str(seed))
    out = tmp_path / "order.json"
    pytester.makepyfile(textwrap.dedent(_ORDER_TEST).replace("{path!r}", repr(str(out))))
    _run(pytester).assert_outcomes(passed=1)
    first = json.loads(out.read_text())
    _run(pytester).assert_outcomes(passed=1)
    second = json.loads(out.read_text())
    assert first == second
    fifo = [[i, step] for step in range(3) for i in range(8)]
    if seed is None:
        assert first == fifo
    else:
        assert first != fifo
        assert sorted(first) == sorted(fifo)


def test_bad_random_seed_is_a_usage_error(pytester):
    _ini(pytester, nursery_mode="auto", nursery_random_seed="lucky")
    pytester.makepyfile("def test_x(): pass")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nursery_random_seed must be an integer, got 'lucky'*"])


def test_skip_and_xfail_inside_a_nursery_keep_their_meaning(pytester):
    _ini(pytester, nursery_mode="auto")
    pytester.makepyfile(
        """
        import pytest
        import nursery

        @pytest.fixture
        async def in_nursery():
            async with nursery.open_nursery() as n:
                yield n

        async def test_skipped_in_a_fixture_nursery(in_nursery):
            pytest.skip("not on this platform")

        async def test_skipped_from_a_child_task():
            async def child():
                pytest.skip("child says skip")

            async with nursery.open_nursery() as n:
                n.start_soon(child)
                await nursery.sleep_forever()

        async def test_xfail_in_a_nursery():
            async with nursery.open_nursery():
                pytest.xfail("known bug")

        async def test_skip_beside_a_real_error_is_a_failure():
            async def boom():
                raise ValueError("real error")

            async with nursery.open_nursery() as n:
                n.start_soon(boom)
                pytest.skip("would hide the error")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(skipped=2, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*ValueError: real error*"])

"""The pytest plugin's support for asyncio-style tests: the nursery_compat
marker, the compat_loop fixture, and asyncio code on the mock clock in
nursery tests."""

from __future__ import annotations

import asyncio

import pytest

from nursery import compat
from nursery.testing import MockClock

pytest_plugins = ["pytester"]


@pytest.mark.nursery_compat
async def test_marked_test_is_an_asyncio_task_on_the_autojump_clock(autojump_clock: MockClock) -> None:
    loop = asyncio.get_running_loop()
    assert type(loop) is compat.EventLoop
    assert isinstance(asyncio.current_task(), compat.Task)
    start = loop.time()
    await asyncio.sleep(3600)
    assert loop.time() - start == 3600
    async with asyncio.timeout(10):
        await asyncio.wait_for(asyncio.sleep(5), 6)
    assert loop.time() - start == 3605


@pytest.mark.nursery_compat
async def test_marked_test_on_a_real_clock_without_a_clock_fixture() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(0.01)
    assert 0.01 <= loop.time() - start < 5


async def test_asyncio_code_in_a_nursery_test_uses_its_mock_clock(autojump_clock: MockClock) -> None:
    # (this repository runs async tests under nursery.run: nursery_mode=auto)
    start = autojump_clock.current_time()
    await asyncio.sleep(7200)
    assert autojump_clock.current_time() - start == 7200


def test_compat_loop_fixture(compat_loop: compat.EventLoop) -> None:
    assert type(compat_loop) is compat.EventLoop

    async def main() -> float:
        start = compat_loop.time()
        await asyncio.sleep(86400)
        return compat_loop.time() - start

    assert compat_loop.run_until_complete(main()) == 86400


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def test_marked_tests_report_failures_and_clean_up(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnursery_mode = auto\n")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        log = []

        @pytest.mark.nursery_compat
        async def test_fails(autojump_clock):
            await asyncio.sleep(10)
            assert asyncio.get_running_loop().time() == 0, "at ten seconds"

        @pytest.mark.nursery_compat
        async def test_leaves_a_task(mock_clock):
            async def forever():
                try:
                    await asyncio.Event().wait()
                finally:
                    log.append("left-over task cancelled")
            asyncio.create_task(forever())
            await asyncio.sleep(0)

        @pytest.mark.nursery_compat
        async def test_two_clocks(mock_clock, autojump_clock):
            pass

        def test_after():
            assert log == ["left-over task cancelled"]
        """
    )
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*at ten seconds*", "*uses more than one MockClock*"])

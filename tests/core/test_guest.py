"""Guest mode: the kernel running on top of a stock asyncio event loop."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import outcome
import pytest

import nursery
from nursery import lowlevel
from nursery._core import current_runner
from nursery.testing import MockClock

GUEST_THREAD_NAME = "nursery guest I/O"


def _guest_threads():
    return [t for t in threading.enumerate() if t.name == GUEST_THREAD_NAME]


async def _host_run(async_fn, *args, **kwargs):
    """Start a guest run on the running asyncio loop and wait for its
    outcome."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    lowlevel.start_guest_run(
        async_fn,
        *args,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=done.set_result,
        **kwargs,
    )
    return await done


def _run_guest(async_fn, *args, **kwargs):
    return asyncio.run(_host_run(async_fn, *args, **kwargs))


def test_guest_value_is_delivered():
    async def guest(x, y):
        await lowlevel.checkpoint()
        return x * y

    result = _run_guest(guest, 6, 7)
    assert isinstance(result, outcome.Value)
    assert result.unwrap() == 42


def test_guest_exception_is_delivered():
    async def guest():
        await lowlevel.checkpoint()
        raise ValueError("guest failed")

    result = _run_guest(guest)
    assert isinstance(result, outcome.Error)
    assert type(result.error) is ValueError
    assert str(result.error) == "guest failed"
    with pytest.raises(ValueError, match="guest failed"):
        result.unwrap()


def test_guest_nursery_error_group_is_delivered(autojump_clock):
    async def bad(delay):
        await nursery.sleep(delay)
        raise KeyError(delay)

    async def guest():
        async with nursery.open_nursery() as n:
            n.start_soon(bad, 1)
            n.start_soon(nursery.sleep_forever)

    result = _run_guest(guest, clock=MockClock(autojump_threshold=0))
    assert isinstance(result, outcome.Error)
    group = result.error
    assert isinstance(group, BaseExceptionGroup)
    assert group.message == "Exceptions from nursery"
    assert [type(e) for e in group.exceptions] == [KeyError]


def test_guest_timeout_error_is_delivered():
    async def guest():
        with nursery.fail_after(0.01):
            await nursery.sleep_forever()

    result = _run_guest(guest)
    assert isinstance(result.error, nursery.TooSlowError)


def test_guest_sleeps_in_real_time_while_host_runs():
    host_ticks = []
    guest_marks = []

    async def guest():
        start = nursery.current_time()
        for _ in range(5):
            await nursery.sleep(0.01)
            guest_marks.append(time.monotonic())
        return nursery.current_time() - start

    async def host_ticker(stop):
        while not stop.is_set():
            host_ticks.append(time.monotonic())
            await asyncio.sleep(0.002)

    async def host():
        stop = asyncio.Event()
        ticker = asyncio.create_task(host_ticker(stop))
        t0 = time.monotonic()
        result = await _host_run(guest)
        elapsed = time.monotonic() - t0
        stop.set()
        await ticker
        return result, t0, elapsed

    result, t0, elapsed = asyncio.run(host())
    guest_elapsed = result.unwrap()
    # The guest really slept (real clock): at least 5 x 10 ms, and not hours.
    assert guest_elapsed >= 0.05
    assert 0.05 <= elapsed < 2.0
    # The host's own task kept running during the guest's sleeps.
    during = [t for t in host_ticks if t0 <= t <= guest_marks[-1]]
    assert len(during) >= 5
    assert any(guest_marks[0] < t < guest_marks[-1] for t in host_ticks)


def test_guest_with_autojump_clock_finishes_at_once():
    async def guest():
        await nursery.sleep(1000)
        await nursery.sleep(500)
        return nursery.current_time()

    t0 = time.monotonic()
    result = _run_guest(guest, clock=MockClock(autojump_threshold=0))
    assert result.unwrap() == 1500
    assert time.monotonic() - t0 < 2.0


def test_guest_helper_thread_is_gone_after_the_run():
    seen_during = []

    async def guest():
        await nursery.sleep(0.01)  # an I/O wait: the helper thread exists now
        seen_during.append(len(_guest_threads()))

    assert _guest_threads() == []
    _run_guest(guest).unwrap()
    assert seen_during == [1]
    assert _guest_threads() == []


def test_guest_that_never_waits_starts_no_thread():
    async def guest():
        for _ in range(3):
            await lowlevel.checkpoint()
        return len(_guest_threads())

    assert _run_guest(guest).unwrap() == 0
    assert _guest_threads() == []


def test_two_guest_runs_one_after_the_other_and_concurrently():
    async def guest(tag, delay):
        await nursery.sleep(delay)
        return tag

    async def host():
        first = await _host_run(guest, "first", 0.01)
        both = await asyncio.gather(_host_run(guest, "a", 0.02), _host_run(guest, "b", 0.01))
        return first.unwrap(), [o.unwrap() for o in both]

    assert asyncio.run(host()) == ("first", ["a", "b"])
    assert _guest_threads() == []


def test_in_run_is_true_only_inside_guest_ticks():
    seen = {}

    async def guest():
        seen["guest"] = (lowlevel.in_run(), lowlevel.in_task())
        await nursery.sleep(0.02)

    async def host_probe():
        await asyncio.sleep(0.005)
        seen["host"] = lowlevel.in_run()

    async def host():
        probe = asyncio.create_task(host_probe())
        result = await _host_run(guest)
        await probe
        return result

    asyncio.run(host()).unwrap()
    assert seen == {"guest": (True, True), "host": False}


def test_guest_call_soon_and_system_tasks():
    async def guest():
        log = []

        async def system():
            log.append("system")

        lowlevel.spawn_system_task(system)
        lowlevel.call_soon(log.append, "callback")
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        return log

    assert _run_guest(guest).unwrap() == ["system", "callback"]


def test_guest_woken_from_another_thread():
    async def guest():
        runner = current_runner("test")
        event = nursery.Event()
        threading.Timer(0.05, runner.run_sync_soon_threadsafe, args=(event.set, ())).start()
        t0 = time.monotonic()
        await event.wait()
        return time.monotonic() - t0

    waited = _run_guest(guest).unwrap()
    assert 0.04 <= waited < 2.0


def test_guest_random_seed_replays():
    async def guest():
        log = []

        async def worker(i):
            log.append(i)
            await lowlevel.checkpoint()
            log.append(i)

        async with nursery.open_nursery() as n:
            for i in range(8):
                n.start_soon(worker, i)
        return log

    a = _run_guest(guest, random_seed=9).unwrap()
    b = _run_guest(guest, random_seed=9).unwrap()
    fifo = _run_guest(guest).unwrap()
    assert a == b
    assert fifo == list(range(8)) * 2
    assert sorted(a) == sorted(fifo)


def test_guest_instruments_see_before_and_after_run():
    log = []

    class Rec:
        def before_run(self):
            log.append("before_run")

        def after_run(self):
            log.append("after_run")

    async def guest():
        log.append("guest")

    _run_guest(guest, instruments=[Rec()]).unwrap()
    assert log == ["before_run", "guest", "after_run"]


def test_guest_only_threadsafe_callback_given():
    async def guest():
        await nursery.sleep(0.005)
        return "ok"

    async def host():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        lowlevel.start_guest_run(guest, run_sync_soon_threadsafe=loop.call_soon_threadsafe, done_callback=done.set_result)
        return await done

    assert asyncio.run(host()).unwrap() == "ok"


def test_start_guest_run_rejects_coroutine_object():
    async def guest():
        pass

    coro = guest()
    posted = []
    try:
        with pytest.raises(TypeError, match="coroutine object"):
            lowlevel.start_guest_run(coro, run_sync_soon_threadsafe=posted.append, done_callback=posted.append)
    finally:
        coro.close()
    assert posted == []
    assert not lowlevel.in_run()


async def test_start_guest_run_inside_a_run_is_an_error():
    posted = []
    fds_before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(
        RuntimeError, match=r"start_guest_run\(\) was called while another nursery run is active in this thread"
    ):
        lowlevel.start_guest_run(
            lowlevel.checkpoint, run_sync_soon_threadsafe=posted.append, done_callback=posted.append
        )
    # Nothing was opened for the refused run (checked before any garbage
    # collection could close a leaked socket).
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
    assert posted == []
    # The outer run is untouched.
    assert lowlevel.in_run()
    await lowlevel.checkpoint()

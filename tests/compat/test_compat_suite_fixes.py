"""Behaviours CPython's asyncio test suite checks that compat's loop got wrong
once (tests/cpython/run_asyncio_suite.py runs the suite itself); each one is
compared with stock asyncio on the same interpreter."""

from __future__ import annotations

import asyncio
import sys
from typing import Any


from nursery import compat
from nursery.testing import MockClock


def both(main: Any) -> list[Any]:
    """Run ``main()`` on stock asyncio and on compat's loop; return both
    results (or exception reprs)."""
    out = []
    for loop in (asyncio.new_event_loop(), compat.new_event_loop(clock=MockClock(autojump_threshold=0))):
        try:
            out.append(loop.run_until_complete(main()))
        except BaseException as exc:  # noqa: BLE001
            out.append(repr(exc))
        finally:
            loop.close()
    return out


def test_cancel_while_awaiting_a_task_cancels_that_task_and_takes_its_outcome() -> None:
    # Task.cancel() on a task awaiting another task cancels the inner one;
    # the outer one then gets the inner one's outcome, which need not be a
    # CancelledError.
    async def main() -> Any:
        async def inner() -> str:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return "inner swallowed it"
            return "not cancelled"

        async def outer() -> str:
            return await asyncio.ensure_future(inner())

        t = asyncio.ensure_future(outer())
        await asyncio.sleep(0.1)
        assert t.cancel("why")
        return await t, t.cancelled(), t.cancelling()

    stock, ours = both(main)
    assert stock == ("inner swallowed it", False, 1)
    assert ours == stock


def test_cancel_message_reaches_the_awaited_future() -> None:
    async def main() -> Any:
        fut = asyncio.get_running_loop().create_future()

        async def waiter() -> Any:
            await fut

        t = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        t.cancel("the message")
        await asyncio.sleep(0)
        return fut.cancelled(), t.done()

    stock, ours = both(main)
    assert stock == (True, True)
    assert ours == stock


def test_cancel_of_a_task_awaiting_a_done_future_is_thrown_in() -> None:
    # The future cannot be cancelled any more (its result is set, the task
    # not yet woken): the CancelledError is thrown in instead.
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def waiter() -> Any:
            return await fut

        t = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        fut.set_result(1)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    stock, ours = both(main)
    assert stock == "cancelled"
    assert ours == stock


def test_task_factory_without_set_name() -> None:
    # 3.11/3.12 accept a factory's task object without set_name() when no
    # name is given.
    class Wrapper(asyncio.Future):
        def __init__(self, loop: Any, coro: Any, **kwargs: Any) -> None:
            super().__init__(loop=loop)
            self.task = asyncio.tasks.Task(coro, loop=loop, **kwargs)
            self.task.add_done_callback(lambda t: self.set_result(t.result()))

    async def answer() -> int:
        return 42

    results = []
    for loop in (asyncio.new_event_loop(), compat.new_event_loop()):
        try:
            loop.set_task_factory(Wrapper)
            coro = answer()
            try:
                results.append(loop.run_until_complete(loop.create_task(coro)))
            except AttributeError as exc:  # 3.13 calls set_name(None)
                coro.close()
                results.append(str(exc))
        finally:
            loop.close()
    assert results[0] == (42 if sys.version_info < (3, 13) else "'Wrapper' object has no attribute 'set_name'")
    assert results[1] == results[0]




def test_ready_shows_pending_callbacks() -> None:
    # asyncio's loop._ready (code and tests drain a loop with
    # ``while loop._ready``): compat's is the kernel's ready queue.
    for loop in (asyncio.new_event_loop(), compat.new_event_loop()):
        try:
            assert not loop._ready
            seen: list[int] = []
            loop.call_soon(seen.append, 1)
            assert len(loop._ready) == 1
            loop.call_soon(loop.stop)
            loop.run_forever()
            assert seen == [1]
            assert not loop._ready
        finally:
            loop.close()


def test_unretrieved_exception_of_a_dropped_task_is_reported_at_once() -> None:
    # A stock Task nobody holds is freed as soon as its last step is over,
    # so "exception was never retrieved" reaches the handler right away
    # (3.12+ runs the handler in the task's context): the loop must not keep
    # the handle that stepped it.
    import contextvars
    import weakref

    name = contextvars.ContextVar("name", default="foo")

    async def main() -> Any:
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: seen.append(name.get()))

        async def fail() -> None:
            name.set("bar")
            1 / 0

        ref = weakref.ref(asyncio.tasks._PyTask(fail()))
        await asyncio.sleep(0)
        return ref() is None, seen

    for debug in (False, True):
        results = []
        for loop in (asyncio.new_event_loop(), compat.new_event_loop()):
            loop.set_debug(debug)
            try:
                results.append(loop.run_until_complete(main()))
            finally:
                loop.close()
        assert results[0][0] is True
        assert results[1] == results[0]


def test_uncancel_to_zero_withdraws_a_pending_cancel() -> None:
    # 3.13: uncancel() that brings the count to 0 also withdraws the
    # CancelledError not yet thrown in; 3.11/3.12 still throw it.
    async def main() -> Any:
        task = asyncio.current_task()
        task.cancel()
        task.uncancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return "cancelled", task.cancelling()
        return "not cancelled", task.cancelling()

    stock, ours = both(main)
    assert stock == (("not cancelled", 0) if sys.version_info >= (3, 13) else ("cancelled", 0))
    assert ours == stock

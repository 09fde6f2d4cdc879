"""A kernel task parked on an asyncio future is woken where asyncio's Task
would be: at the place of the future's done-callback handle in the ready
queue (the loop puts the task there instead of queueing a handle)."""

import asyncio

import nursery
from nursery import compat


async def _order():
    log = []
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    async def waiter():
        log.append(("woke", await fut))

    task = loop.create_task(waiter())
    await asyncio.sleep(0)
    loop.call_soon(log.append, "before")
    fut.set_result(1)
    loop.call_soon(log.append, "after")
    await task
    return log


def _run_stock(coro_fn):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def _run_compat(coro_fn):
    loop = compat.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def test_task_woken_in_the_done_callbacks_place():
    expected = ["before", ("woke", 1), "after"]
    assert _run_stock(_order) == expected
    assert _run_compat(_order) == expected


def test_future_done_then_scope_cancelled_before_the_task_runs():
    # The future's result is taken (no leak, the future stays as it is); the
    # cancellation arrives at the task's next checkpoint.
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        got = []

        async def waiter(scope_box, task_status=nursery.TASK_STATUS_IGNORED):
            with nursery.CancelScope() as scope:
                scope_box.append(scope)
                task_status.started()
                got.append(await fut)
                await nursery.sleep(0)
                got.append("not reached")
            got.append(scope.cancelled_caught)

        box = []
        async with nursery.open_nursery() as n:
            await n.start(waiter, box)
            await nursery.sleep(0)
            fut.set_result("value")
            box[0].cancel()
        assert not fut.cancelled()
        return got

    assert nursery.run(main) == ["value", True]


def test_scope_cancel_while_parked_cancels_the_future():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with nursery.move_on_after(0.01) as scope:
            await fut
        assert scope.cancelled_caught
        assert fut.cancelled()
        # A done-callback that was removed is never called later.
        await nursery.sleep(0.01)
        return "ok"

    assert nursery.run(main) == "ok"


def test_task_cancel_while_parked():
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        task = loop.create_task(fut_waiter(fut))
        await asyncio.sleep(0)
        task.cancel("stop")
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc.args, fut.cancelled()

    async def fut_waiter(fut):
        await fut

    assert _run_stock(main) == _run_compat(main) == (("stop",), True)


def _callback_error_report(loop, debug):
    loop.set_debug(debug)
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    def boom(x):
        raise ValueError(x)

    async def main():
        handle = loop.call_soon(boom, 1)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return handle

    try:
        handle = loop.run_until_complete(main())
    finally:
        loop.close()
    [ctx] = reports
    return (
        ctx["message"].split(" at ")[0],
        type(ctx["exception"]),
        ctx["exception"].args,
        ctx["handle"] is handle,
        bool(ctx.get("source_traceback")),
    )


def test_callback_exception_reported_like_asyncio():
    for debug in (False, True):
        stock = _callback_error_report(asyncio.new_event_loop(), debug)
        assert stock[0].startswith("Exception in callback ")
        assert _callback_error_report(compat.new_event_loop(), debug) == stock
        assert stock[1:] == (ValueError, (1,), True, debug)


def test_done_callbacks_order_and_context():
    import contextvars

    var = contextvars.ContextVar("var", default="unset")

    async def main():
        loop = asyncio.get_running_loop()
        log = []

        async def child():
            return 5

        task = loop.create_task(child())
        ctx = contextvars.copy_context()
        ctx.run(var.set, "ctx")
        task.add_done_callback(lambda t: log.append(("a", t.result(), var.get())), context=ctx)
        task.add_done_callback(lambda t: log.append(("b", var.get())))
        loop.call_soon(log.append, "queued before")
        await task
        loop.call_soon(log.append, "queued after")
        await asyncio.sleep(0)
        return log

    assert _run_stock(main) == _run_compat(main)
    assert _run_compat(main) == ["queued before", ("a", 5, "ctx"), ("b", "unset"), "queued after"]


def test_task_cancel_after_the_future_finished():
    # The future is done and its waiter's wake-up queued when cancel()
    # arrives: the CancelledError is thrown in at the waiter's next step
    # (it never sees the result) and the future keeps its result.
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        seen = []

        async def fut_waiter():
            try:
                seen.append(await fut)
            except asyncio.CancelledError as exc:
                seen.append(("cancelled", exc.args))
                raise

        task = loop.create_task(fut_waiter())
        await asyncio.sleep(0)
        fut.set_result(1)
        assert task.cancel("late")
        try:
            await task
        except asyncio.CancelledError:
            pass
        return seen, fut.result(), task.cancelled()

    assert _run_stock(main) == _run_compat(main) == ([("cancelled", ("late",))], 1, True)


def test_cancel_between_the_awaited_task_finishing_and_the_waiter_waking():
    # A task parked on another task, cancelled after that one finished and
    # before the waiter ran again: each step logged, stock and compat alike.
    async def main():
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        log = []

        async def child():
            log.append("child waits")
            value = await gate
            log.append("child returns")
            return value

        async def parent(child_task):
            try:
                log.append(("parent got", await child_task))
            except asyncio.CancelledError as exc:
                log.append(("parent cancelled", exc.args))
                raise

        child_task = loop.create_task(child())
        parent_task = loop.create_task(parent(child_task))
        await asyncio.sleep(0)
        gate.set_result(7)
        # The child runs in the next iteration and finishes: the parent's
        # wake-up is queued behind this task's.
        await asyncio.sleep(0)
        log.append(("child done", child_task.done()))
        parent_task.cancel("after")
        try:
            await parent_task
        except asyncio.CancelledError:
            log.append("main saw the cancellation")
        return log, child_task.result()

    stock = _run_stock(main)
    assert stock[1] == 7
    assert _run_compat(main) == stock

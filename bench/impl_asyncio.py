"""Workloads for asyncio, run on the stock loop, uvloop's, rloop's or
nursery.compat's, or with ``asyncio`` bound to the ``nursery.compat`` module.

Written the way asyncio code is written today (3.11+): TaskGroup,
asyncio.timeout, Event.clear(), task results.  The loop is chosen with
``asyncio.Runner(loop_factory=...)``, the documented way to run on another
loop, so uvloop, rloop and compat-loop run exactly the same program as stock
asyncio.  The ``compat`` implementation runs this same source too, as a
second copy of this module whose global ``asyncio`` is nursery.compat
(``load_compat_module``): the program ``from nursery import compat as
asyncio`` would be.
"""

import asyncio
import importlib.util
import platform
import types

from bench import rss


def loop_factory(impl):
    """Return (loop factory, version) for IMPL; ImportError if it is missing."""
    if impl == "asyncio":
        return None, platform.python_version()
    if impl == "uvloop":
        import uvloop

        return uvloop.new_event_loop, uvloop.__version__
    if impl == "rloop":
        import rloop

        return rloop.new_event_loop, rloop.__version__
    if impl == "compat-loop":
        from nursery import compat

        return compat.new_event_loop, _nursery_version()
    raise ValueError(f"not an asyncio implementation: {impl!r}")


def _nursery_version():
    import nursery

    return getattr(nursery, "__version__", None) or "dev"


def without_missing_io(workloads):
    """The workloads compat's loop can run: the TCP ones need its sockets
    (``loop._start_serving`` and friends), which a later part of compat adds;
    without them they are reported as n/a rather than as errors."""
    from nursery.compat import EventLoop

    if hasattr(EventLoop, "_start_serving"):
        return workloads
    return {name: fn for name, fn in workloads.items() if not name.startswith("echo_")}


#: The asyncio names the workloads (and make_run) use.
USED_NAMES = (
    "Event",
    "Lock",
    "Queue",
    "TaskGroup",
    "gather",
    "open_connection",
    "run",
    "sleep",
    "start_server",
    "timeout",
    "to_thread",
)


def load_compat_module():
    """Return (run, workloads, version) for the ``compat`` implementation.

    A fresh copy of this module whose ``asyncio`` is a namespace of
    nursery.compat's names.  A name compat does not have yet is taken from
    stock asyncio (it then runs on compat's loop, as compat-loop does) and
    is listed in the version string, so the report says what was measured.
    """
    from nursery import compat

    spec = importlib.util.find_spec(__name__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stock = sorted(name for name in USED_NAMES if not hasattr(compat, name))
    module.asyncio = types.SimpleNamespace(
        **{name: getattr(compat, name) if hasattr(compat, name) else getattr(asyncio, name) for name in USED_NAMES}
    )
    if hasattr(compat, "run"):

        def run(async_fn):
            return compat.run(async_fn())

    else:
        run = make_run(compat.new_event_loop)
    version = _nursery_version()
    if stock:
        version += f" (stock asyncio's {', '.join(stock)})"
    return run, without_missing_io(module.WORKLOADS), version


def make_run(factory):
    """Return a ``run(async_fn)`` that runs async_fn() on a new loop."""

    def run(async_fn):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(async_fn())

    return run


async def noop():
    pass


async def spawn(n):
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(noop())


async def switch(n):
    async def yielder():
        for _ in range(n):
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(yielder())
        tg.create_task(yielder())


async def pingpong(n):
    # asyncio's counterpart of two capacity-1 memory channels: two
    # asyncio.Queue(maxsize=1), one per direction.
    to_player = [asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)]

    async def player(me):
        receive = to_player[me]
        send = to_player[1 - me]
        for _ in range(n):
            ball = await receive.get()
            await send.put(ball + 1)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(player(0))
        tg.create_task(player(1))
        await to_player[0].put(0)
    ball = to_player[0].get_nowait()
    assert ball == 2 * n, ball


async def pingpong_event(n):
    has_ball = [asyncio.Event(), asyncio.Event()]
    ball = 0

    async def player(me):
        nonlocal ball
        other = 1 - me
        for _ in range(n):
            await has_ball[me].wait()
            has_ball[me].clear()
            ball += 1
            has_ball[other].set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(player(0))
        tg.create_task(player(1))
        has_ball[0].set()
    assert ball == 2 * n, ball


async def lock(n):
    the_lock = asyncio.Lock()
    turns = 0

    async def worker():
        nonlocal turns
        for _ in range(n):
            async with the_lock:
                turns += 1
                await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        for _ in range(100):
            tg.create_task(worker())
    assert turns == 100 * n, turns


async def timeouts(n):
    for _ in range(n):
        async with asyncio.timeout(60):
            await asyncio.sleep(0)


async def fanin(n):
    async def child(i):
        await asyncio.sleep(0)
        return i

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(child(i)) for i in range(n)]
    total = sum(task.result() for task in tasks)
    assert total == n * (n - 1) // 2, total


async def value(i):
    return i


async def gather(n):
    results = await asyncio.gather(*[value(i) for i in range(n)])
    assert sum(results) == n * (n - 1) // 2


def noop_sync():
    pass


async def to_thread(n):
    for _ in range(n):
        await asyncio.to_thread(noop_sync)


# -- TCP over loopback, with asyncio streams ----------------------------------

ECHO_CLIENTS = 50
MESSAGE = b"x" * 1024
CHUNK = b"y" * 65536


async def echo_handler(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def with_echo_server(clients):
    """Serve echo on a loopback port while clients(port) runs."""
    server = await asyncio.start_server(echo_handler, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await clients(port)
        server.close()
        await server.wait_closed()


async def echo_tcp(n):
    echoed = 0

    async def client(port):
        nonlocal echoed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(n):
                writer.write(MESSAGE)
                await writer.drain()
                echo = await reader.readexactly(1024)
                echoed += len(echo)
        finally:
            writer.close()
            await writer.wait_closed()

    async def clients(port):
        async with asyncio.TaskGroup() as tg:
            for _ in range(ECHO_CLIENTS):
                tg.create_task(client(port))

    await with_echo_server(clients)
    assert echoed == ECHO_CLIENTS * n * 1024, echoed


async def echo_bulk(n):
    total = n * len(CHUNK)
    received = 0

    async def clients(port):
        nonlocal received
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def sender():
            for _ in range(n):
                writer.write(CHUNK)
                await writer.drain()

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sender())
                while received < total:
                    data = await reader.read(65536)
                    received += len(data)
        finally:
            writer.close()
            await writer.wait_closed()

    await with_echo_server(clients)
    assert received == total, received


async def memory(n):
    """Return the peak RSS growth, in KiB, while n tasks are blocked."""
    release = asyncio.Event()
    blocked = 0

    async def waiter():
        nonlocal blocked
        blocked += 1  # no suspension between this and parking in wait()
        await release.wait()

    baseline = rss.current_kib()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(waiter())
        while blocked < n:
            await asyncio.sleep(0)
        peak = rss.peak_kib()
        release.set()
    return peak - baseline


WORKLOADS = {
    "spawn": spawn,
    "switch": switch,
    "pingpong": pingpong,
    "pingpong_event": pingpong_event,
    "lock": lock,
    "timeouts": timeouts,
    "fanin": fanin,
    "gather": gather,
    "to_thread": to_thread,
    "echo_tcp": echo_tcp,
    "echo_bulk": echo_bulk,
    "memory": memory,
}

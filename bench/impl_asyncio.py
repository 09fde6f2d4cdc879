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
import socket
import time
import types

from bench import loadgen, rss


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


#: Workloads that use the loop's own API (protocols, create_server) or a
#: library that imports asyncio itself: the ``compat`` module has nothing of
#: its own to measure there (they would run exactly as on compat-loop).
LOOP_LEVEL = ("echo_proto", "aiohttp")


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
    workloads = {name: fn for name, fn in module.WORKLOADS.items() if name not in LOOP_LEVEL}
    return run, workloads, version


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


# -- the same echo with asyncio.Protocol on both ends --------------------------


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoClientProtocol(asyncio.Protocol):
    """Sends MESSAGE, waits for all of it to come back, n times; then closes."""

    def __init__(self, n, closed):
        self.left = n
        self.pending = 0
        self.echoed = 0
        self.closed = closed

    def connection_made(self, transport):
        self.transport = transport
        transport.write(MESSAGE)

    def data_received(self, data):
        self.echoed += len(data)
        self.pending += len(data)
        if self.pending < len(MESSAGE):
            return
        self.pending = 0  # one message is in flight at a time
        self.left -= 1
        if self.left:
            self.transport.write(MESSAGE)
        else:
            self.transport.close()

    def connection_lost(self, exc):
        if exc is None:
            self.closed.set_result(self.echoed)
        else:
            self.closed.set_exception(exc)


async def echo_proto(n):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServerProtocol, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    async with server:
        closed = [loop.create_future() for _ in range(ECHO_CLIENTS)]
        for fut in closed:
            await loop.create_connection(lambda fut=fut: EchoClientProtocol(n, fut), "127.0.0.1", port)
        echoed = sum(await asyncio.gather(*closed))
        server.close()
        await server.wait_closed()
    assert echoed == ECHO_CLIENTS * n * len(MESSAGE), echoed


# -- an aiohttp hello-world server under load ---------------------------------


async def aiohttp_server(n):
    """Serve n requests from a load generator in another process.

    Returns the server process's own CPU and wall time from starting the
    generator to the n-th request served; n over that wall time is the
    server's requests per second.
    """
    from aiohttp import web

    served = 0
    load = end = None

    async def hello(request):
        nonlocal served, end
        served += 1
        if served == n:
            end = time.process_time(), time.perf_counter()
            load.stop()
        return web.Response(text="Hello, World!")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = sock.getsockname()[1]  # now: rloop's server detaches the socket object
    try:
        await web.SockSite(runner, sock).start()
        start = time.process_time(), time.perf_counter()
        load = loadgen.Load(port)
        try:
            # A thread waits for the generator, so that the loop only serves.
            await asyncio.get_running_loop().run_in_executor(None, load.wait)
        finally:
            load.stop()
        # The generator's last requests and its connections' closing are
        # still in the server's buffers: serve them before shutting down
        # (aiohttp fails a request that arrives during cleanup).
        await asyncio.sleep(0.1)
    finally:
        await runner.cleanup()
    assert end is not None, f"served {served} of {n} requests"
    return {"cpu": end[0] - start[0], "wall": end[1] - start[1]}


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
    "echo_proto": echo_proto,
    "aiohttp": aiohttp_server,
    "memory": memory,
}

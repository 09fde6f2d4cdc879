"""The guided tour: ``python -m nursery`` (or ``make tour``).

A one-minute, narrated demo of what the library is for. Each section is an
async function registered with ``@section(title)``; the tour runs them in
order, each under the same :func:`nursery.run`. To add a section, write one
more function below and decorate it; its docstring is printed as the
section's introduction.

``python -m nursery 2 4`` runs only sections 2 and 4; ``python -m nursery
--list`` lists them.

The tour uses the real clock, with short sleeps: the whole thing takes a
couple of seconds.
"""

from __future__ import annotations

import functools
import inspect
import sys
import textwrap
from typing import Awaitable, Callable

import nursery
from nursery import lowlevel

SectionFn = Callable[[], Awaitable[None]]

#: The tour's sections, in order: (title, async function).
SECTIONS: list[tuple[str, SectionFn]] = []


def section(title: str) -> Callable[[SectionFn], SectionFn]:
    """Register an async function as the next section of the tour."""

    def register(fn: SectionFn) -> SectionFn:
        SECTIONS.append((title, fn))
        return fn

    return register


class _Stopwatch:
    """Seconds since the section started, rounded for printing: the tour runs
    on the real clock, so show tenths, not the jitter."""

    def __init__(self) -> None:
        self.start = nursery.current_time()

    def __str__(self) -> str:
        return f"{nursery.current_time() - self.start:.1f}s"


def say(text: str) -> None:
    print("  " + text)


# ----------------------------------------------------------------------
# 1. nurseries


@section("Nurseries: children run concurrently, the parent waits for them all")
async def tour_nurseries() -> None:
    """Every task runs inside a nursery. The 'async with' block does not end
    until all the tasks started in it have finished, so nothing runs on in
    the background once you have moved on."""
    clock = _Stopwatch()

    async def brew(drink: str, seconds: float) -> None:
        await nursery.sleep(seconds)
        say(f"[{clock}] {drink} is ready")

    async with nursery.open_nursery() as n:
        n.start_soon(brew, "tea", 0.3)
        n.start_soon(brew, "coffee", 0.2)
        n.start_soon(brew, "espresso", 0.1)
        say("three drinks started; the block now waits for them")
    say(f"[{clock}] all three done: 0.3s in total, not 0.6s")


# ----------------------------------------------------------------------
# 2. timeouts


@section("Timeouts: move_on_after and fail_after")
async def tour_timeouts() -> None:
    """A timeout is a cancel scope with a deadline. move_on_after() quietly
    stops the code inside and carries on after the block; fail_after()
    raises TooSlowError (a TimeoutError) instead."""
    clock = _Stopwatch()
    with nursery.move_on_after(0.2) as scope:
        say("waiting for a reply that never comes...")
        await nursery.sleep(10)
        say("this line is never reached")
    say(f"[{clock}] moved on; scope.cancelled_caught = {scope.cancelled_caught}")

    try:
        with nursery.fail_after(0.1):
            await nursery.sleep(10)
    except nursery.TooSlowError as exc:
        say(f"[{clock}] fail_after raised {type(exc).__name__}")
        say(f"TooSlowError is a TimeoutError: {isinstance(exc, TimeoutError)}")


# ----------------------------------------------------------------------
# 3. error groups


@section("Errors: a failing child cancels its siblings; errors come as a group")
async def tour_errors() -> None:
    """When a child raises, the nursery cancels everything else in it, waits
    for the cleanup, and raises everything that went wrong together as one
    ExceptionGroup. 'except*' picks out the kinds you handle."""

    async def fetch(url: str, delay: float) -> None:
        await nursery.sleep(delay)
        raise ConnectionError(f"{url} is unreachable")

    async def patient() -> None:
        try:
            await nursery.sleep(10)
        finally:
            say("the patient sibling was cancelled, and its 'finally' ran")

    try:
        async with nursery.open_nursery() as n:
            n.start_soon(patient)
            n.start_soon(fetch, "example.org", 0.1)
            n.start_soon(fetch, "example.net", 0.1)
    except* ConnectionError as group:
        say(f"caught {type(group).__name__} with {len(group.exceptions)} errors:")
        for exc in group.exceptions:
            say(f"  {type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------
# 4. start()


@section("start(): wait until a background task is ready")
async def tour_start() -> None:
    """nursery.start() runs a task and waits until it calls
    task_status.started(value), then returns that value while the task
    keeps running. Typical use: a server reports the port it listens on."""

    async def fake_server(task_status: nursery.TaskStatus[int] = nursery.TASK_STATUS_IGNORED) -> None:
        await nursery.sleep(0.1)  # binding, loading config, ...
        task_status.started(8080)
        try:
            await nursery.sleep_forever()  # serving until cancelled
        finally:
            say("server shut down")

    async with nursery.open_nursery() as n:
        port = await n.start(fake_server, name="server")
        say(f"the server is ready on port {port}; start() returned")
        say("... talk to it here ...")
        n.cancel_scope.cancel()


# ----------------------------------------------------------------------
# 5. the task tree


@section("The task tree: what is everything waiting for?")
async def tour_task_tree() -> None:
    """Because every task lives in a nursery, the running program is a tree.
    lowlevel.format_task_tree() prints it, with the line each task waits at:
    the first thing to look at when a program hangs."""
    lot = lowlevel.ParkingLot()

    async def consumer() -> None:
        await lot.park()

    async def pipeline() -> None:
        async with nursery.open_nursery() as inner:
            inner.start_soon(consumer, name="consumer-1")
            inner.start_soon(consumer, name="consumer-2")

    async with nursery.open_nursery() as n:
        n.start_soon(pipeline, name="pipeline")
        n.start_soon(nursery.sleep, 5, name="timer")
        await nursery.sleep(0.05)  # let them all block
        # The tree under this task (the whole run's tree also shows the
        # kernel's own root task).
        print(textwrap.indent(lowlevel.format_task_tree(lowlevel.current_task()), "    "))
        n.cancel_scope.cancel()


# ----------------------------------------------------------------------
# 6. networking


@section("A TCP echo server and a few clients")
async def tour_tcp_echo() -> None:
    """serve_tcp() listens and runs the handler in a new task for every
    connection. Started with nursery.start(), it returns once the server
    accepts connections, with its listeners: port 0 lets the kernel pick a
    free port, and the listener tells which. Three clients talk to it at the
    same time; cancelling the nursery stops the server and closes its
    sockets."""
    names = ["ada", "bob", "cy"]
    everyone_connected = nursery.Event()
    open_connections = 0
    peak = 0

    async def echo(stream: nursery.SocketStream) -> None:
        nonlocal open_connections, peak
        open_connections += 1
        peak = max(peak, open_connections)
        if open_connections == len(names):
            everyone_connected.set()
        try:
            async for chunk in stream:
                await stream.send_all(chunk)
        finally:
            open_connections -= 1

    async def read_line(stream: nursery.SocketStream, buffer: bytearray) -> str:
        while b"\n" not in buffer:
            chunk = await stream.receive_some()
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        return line.decode()

    replies: dict[str, list[str]] = {}

    async def client(name: str, port: int) -> None:
        async with await nursery.open_tcp_stream("127.0.0.1", port) as stream:
            replies[name] = []
            # Talk once the server has all three connections open.
            await everyone_connected.wait()
            buffer = bytearray()
            for line in (f"hello from {name}", f"bye from {name}"):
                await stream.send_all(line.encode() + b"\n")
                replies[name].append(await read_line(stream, buffer))

    async with nursery.open_nursery() as n:
        listeners = await n.start(functools.partial(nursery.serve_tcp, echo, 0, host="127.0.0.1"))
        host, port = listeners[0].socket.getsockname()
        say(f"serving on {host}, on a port the kernel picked")
        async with nursery.open_nursery() as clients:
            for name in names:
                clients.start_soon(client, name, port)
        for name in names:
            say(f"{name} got back: {' | '.join(replies[name])}")
        say(f"the server handled {peak} connections at once")
        n.cancel_scope.cancel()
    say(f"server stopped; its listening socket is closed: {listeners[0].socket.fileno() == -1}")


# ----------------------------------------------------------------------
# 7. asyncio code on the kernel


@section("asyncio code on the kernel")
async def tour_asyncio() -> None:
    """nursery.compat is asyncio on the nursery kernel: 'from nursery import
    compat as asyncio' and asyncio code runs unchanged, here inside the
    tour's own nursery.run, next to nursery code. Three examples from the
    asyncio docs, with the delays shortened: gather, TaskGroup and a
    timeout."""
    from nursery import compat as asyncio

    async def factorial(name: str, number: int) -> int:
        f = 1
        for i in range(2, number + 1):
            say(f"Task {name}: Compute factorial({number}), currently i={i}...")
            await asyncio.sleep(0.05)
            f *= i
        say(f"Task {name}: factorial({number}) = {f}")
        return f

    results = await asyncio.gather(factorial("A", 2), factorial("B", 3), factorial("C", 4))
    say(f"gather returned {results}")

    async def some_coro(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async with asyncio.TaskGroup() as tg:
        task1 = tg.create_task(some_coro(0.1))
        task2 = tg.create_task(some_coro(0.05))
    say(f"Both tasks have completed now: {task1.result()}, {task2.result()}")

    try:
        async with asyncio.timeout(0.1):
            await asyncio.sleep(3600)  # a long running task
    except TimeoutError:
        say("The long operation timed out, but we've handled it.")

    loop = asyncio.get_running_loop()
    say(f"the running loop is a nursery.compat.EventLoop: {isinstance(loop, asyncio.EventLoop)}")
    # And nursery code around asyncio code: a cancel scope stops asyncio.sleep.
    with nursery.move_on_after(0.05) as scope:
        await asyncio.sleep(3600)
    say(f"a nursery scope cancelled asyncio.sleep: {scope.cancelled_caught}")


# ----------------------------------------------------------------------
# 8. asyncio networking and subprocesses on the kernel


@section("asyncio streams and subprocesses on the kernel")
async def tour_asyncio_io() -> None:
    """The seed's streams example (an echo client) against an asyncio echo
    server, and its subprocess example, with compat's streams and
    subprocesses: sockets and pipes are waited on by the nursery kernel."""
    import sys

    from nursery import compat as asyncio

    async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = "Hello World!"
        say(f"Send: {message!r}")
        writer.write(message.encode())
        await writer.drain()
        data = await reader.read(100)
        say(f"Received: {data.decode()!r}")
        say("Close the connection")
        writer.close()
        await writer.wait_closed()

    code = "import sys; print('hello from a child process, Python', sys.version_info[0])"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE)
    line = (await proc.stdout.readline()).decode().rstrip()
    say(f"child said: {line!r}; exit status {await proc.wait()}")


# ----------------------------------------------------------------------


async def tour(selected: list[tuple[int, str, SectionFn]]) -> None:
    for number, title, fn in selected:
        print()
        print(f"== {number}. {title}")
        doc = inspect.getdoc(fn)
        if doc:
            print(textwrap.indent(textwrap.fill(" ".join(doc.split()), 76), "  "))
            print()
        await fn()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    numbered = [(i, title, fn) for i, (title, fn) in enumerate(SECTIONS, 1)]
    if args in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if args == ["--list"]:
        for number, title, _ in numbered:
            print(f"{number}. {title}")
        return 0
    if args:
        try:
            wanted = {int(a) for a in args}
        except ValueError:
            print(f"usage: python -m nursery [--list] [SECTION-NUMBER ...]; got {args}", file=sys.stderr)
            return 2
        unknown = wanted - {n for n, _, _ in numbered}
        if unknown:
            print(f"no such section: {sorted(unknown)}; try --list", file=sys.stderr)
            return 2
        numbered = [s for s in numbered if s[0] in wanted]
    print("A tour of nursery: structured concurrency for Python")
    nursery.run(tour, numbered)
    print()
    print("== End of the tour. Next: the docs (make docs) and the tests (make test).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

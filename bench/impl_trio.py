"""Workloads for trio-shaped libraries: nursery and trio itself.

nursery's public API mirrors trio's, so one program runs on both and the two
are compared on exactly the same code.  ``make_workloads(lib)`` returns each
workload as an async function of its size, to be run inside ``lib.run``.
"""

from bench import rss

#: The names the workloads use; a library lacking one cannot be measured.
REQUIRED = ("run", "open_nursery", "sleep", "move_on_after", "Event", "open_memory_channel")


def missing_names(lib):
    return [name for name in REQUIRED if not hasattr(lib, name)]


def make_workloads(lib):
    async def noop():
        pass

    async def spawn(n):
        async with lib.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(noop)

    async def switch(n):
        async def yielder():
            for _ in range(n):
                await lib.sleep(0)

        async with lib.open_nursery() as nursery:
            nursery.start_soon(yielder)
            nursery.start_soon(yielder)

    async def pingpong(n):
        # The ball goes back and forth over two capacity-1 memory channels,
        # one per direction: the idiomatic trio program for a hand-off.
        to_player = [lib.open_memory_channel(1), lib.open_memory_channel(1)]

        async def player(me):
            receive = to_player[me][1]
            send = to_player[1 - me][0]
            for _ in range(n):
                ball = await receive.receive()
                await send.send(ball + 1)

        async with lib.open_nursery() as nursery:
            nursery.start_soon(player, 0)
            nursery.start_soon(player, 1)
            await to_player[0][0].send(0)
        ball = to_player[0][1].receive_nowait()
        assert ball == 2 * n, ball

    async def pingpong_event(n):
        # The same ping-pong over Events (the pingpong workload before memory
        # channels existed): trio's Event cannot be cleared, so each player
        # re-creates its own after waking (safe: the other player only sets
        # it after our next move).
        has_ball = [lib.Event(), lib.Event()]
        ball = 0

        async def player(me):
            nonlocal ball
            other = 1 - me
            for _ in range(n):
                await has_ball[me].wait()
                has_ball[me] = lib.Event()
                ball += 1
                has_ball[other].set()

        async with lib.open_nursery() as nursery:
            nursery.start_soon(player, 0)
            nursery.start_soon(player, 1)
            has_ball[0].set()
        assert ball == 2 * n, ball

    async def lock(n):
        # 100 tasks take turns on one Lock, each holding it across a
        # checkpoint, so nearly every acquire waits and every release hands
        # the lock over to the next task in line.
        the_lock = lib.Lock()
        turns = 0

        async def worker():
            nonlocal turns
            for _ in range(n):
                async with the_lock:
                    turns += 1
                    await lib.sleep(0)

        async with lib.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(worker)
        assert turns == 100 * n, turns

    async def timeouts(n):
        for _ in range(n):
            with lib.move_on_after(60):
                await lib.sleep(0)

    async def fanin(n):
        results = [None] * n

        async def child(i):
            await lib.sleep(0)
            results[i] = i

        async with lib.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(child, i)
        total = sum(results)
        assert total == n * (n - 1) // 2, total

    async def gather(n):
        # asyncio.gather's counterpart: n tasks that return at once, their
        # values collected in order by the parent.
        results = [None] * n

        async def value(i):
            results[i] = i

        async with lib.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(value, i)
        assert sum(results) == n * (n - 1) // 2

    def noop_sync():
        pass

    async def to_thread(n):
        run_sync = lib.to_thread.run_sync
        for _ in range(n):
            await run_sync(noop_sync)

    async def memory(n):
        """Return the peak RSS growth, in KiB, while n tasks are blocked."""
        release = lib.Event()
        blocked = 0

        async def waiter():
            nonlocal blocked
            blocked += 1  # no checkpoint between this and parking in wait()
            await release.wait()

        baseline = rss.current_kib()
        async with lib.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(waiter)
            while blocked < n:
                await lib.sleep(0)
            peak = rss.peak_kib()
            release.set()
        return peak - baseline

    # -- TCP over loopback ------------------------------------------------
    # Server and clients use the high-level helpers (open_tcp_listeners,
    # serve_listeners, open_tcp_stream), which nursery and trio both have
    # under the same names and with the same signatures.

    ECHO_CLIENTS = 50
    MESSAGE = b"x" * 1024
    CHUNK = b"y" * 65536

    async def echo_handler(stream):
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                await stream.send_all(data)

    async def with_echo_server(clients):
        """Serve echo on a loopback port while clients(port) runs."""
        listeners = await lib.open_tcp_listeners(0, host="127.0.0.1", backlog=1024)
        port = listeners[0].socket.getsockname()[1]
        async with lib.open_nursery() as server_nursery:
            await server_nursery.start(lib.serve_listeners, echo_handler, listeners)
            await clients(port)
            server_nursery.cancel_scope.cancel()

    async def tcp_connect(port):
        return await lib.open_tcp_stream("127.0.0.1", port)

    async def echo_tcp(n):
        # 50 clients at once, each sending n messages of 1 KiB and waiting for
        # each echo before the next: many small messages on many connections.
        echoed = 0

        async def client(port):
            nonlocal echoed
            stream = await tcp_connect(port)
            async with stream:
                for _ in range(n):
                    await stream.send_all(MESSAGE)
                    got = 0
                    while got < 1024:
                        got += len(await stream.receive_some(65536))
                    echoed += got

        async def clients(port):
            async with lib.open_nursery() as client_nursery:
                for _ in range(ECHO_CLIENTS):
                    client_nursery.start_soon(client, port)

        await with_echo_server(clients)
        assert echoed == ECHO_CLIENTS * n * 1024, echoed

    async def echo_bulk(n):
        # n chunks of 64 KiB through one echo connection, one task sending
        # while another receives: throughput of a single stream.
        total = n * len(CHUNK)
        received = 0

        async def clients(port):
            nonlocal received
            stream = await tcp_connect(port)

            async def sender():
                for _ in range(n):
                    await stream.send_all(CHUNK)

            async with stream:
                async with lib.open_nursery() as client_nursery:
                    client_nursery.start_soon(sender)
                    while received < total:
                        data = await stream.receive_some(65536)
                        received += len(data)

        await with_echo_server(clients)
        assert received == total, received

    return {
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

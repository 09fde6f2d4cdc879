"""nursery's benchmark suite, run as ``python -m bench`` from the repo root.

Each (workload, implementation) measurement runs in a fresh process
(``bench.worker``); ``bench.suite`` interleaves them over several rounds and
``bench.report`` turns the samples into JSON, a markdown table and a plot.
docs/performance.rst explains the method.
"""

#: Workloads in report order.  "memory" is measured in KiB, the rest in seconds.
WORKLOADS = (
    "spawn",
    "switch",
    "pingpong",
    "pingpong_event",
    "lock",
    "timeouts",
    "fanin",
    "gather",
    "to_thread",
    "echo_tcp",
    "echo_bulk",
    "echo_proto",
    "aiohttp",
    "memory",
)

#: Implementations in report order.  nursery is the one under test; the others
#: are peers.  uvloop and rloop run the asyncio workloads on their own loops.
#: compat-loop runs the same stock asyncio workloads on nursery.compat's event
#: loop; compat runs them with ``asyncio`` bound to the ``nursery.compat``
#: module (``from nursery import compat as asyncio``).
IMPLS = ("nursery", "trio", "asyncio", "uvloop", "rloop", "compat-loop", "compat")

#: The implementations that run the asyncio workloads (bench.impl_asyncio).
ASYNCIO_SHAPED = ("asyncio", "uvloop", "rloop", "compat-loop", "compat")

#: Problem size of each workload (what the number counts is in SIZE_UNITS).
SIZES = {
    "spawn": 10_000,
    "switch": 50_000,
    "pingpong": 50_000,
    "pingpong_event": 50_000,
    "lock": 500,
    "timeouts": 50_000,
    "fanin": 5_000,
    "gather": 5_000,
    "to_thread": 2_000,
    "echo_tcp": 200,
    "echo_bulk": 1024,
    "echo_proto": 200,
    "aiohttp": 10_000,
    "memory": 10_000,
}
SIZE_UNITS = {
    "spawn": "no-op tasks started and joined",
    "switch": "sleep(0) in each of 2 tasks",
    "pingpong": "round trips between 2 tasks over 2 capacity-1 channels",
    "pingpong_event": "round trips between 2 tasks, one Event per hand-off",
    "lock": "acquire/release of one Lock (sleep(0) held inside) in each of 100 tasks",
    "timeouts": "timeout scopes around sleep(0)",
    "fanin": "tasks returning a value to the parent",
    "gather": "trivial coroutines gathered (asyncio.gather; a nursery collecting results for trio-shaped)",
    "to_thread": "sequential calls of a no-op function in a worker thread",
    "echo_tcp": "1 KiB messages echoed over loopback TCP to each of 50 concurrent clients",
    "echo_bulk": "64 KiB chunks sent through one loopback TCP echo connection",
    "echo_proto": "1 KiB messages echoed to each of 50 concurrent clients, asyncio.Protocol on both ends",
    "aiohttp": (
        "requests served by an aiohttp hello-world server, loaded over loopback by wrk "
        "(or bench.loadgen) in another process with 50 keep-alive connections; the server's times"
    ),
    "memory": "live tasks blocked on an event",
}

#: Timed repetitions inside one worker process, after one untimed warm-up.
#: memory is always measured once per process (peak RSS only goes up).
REPS = 5

#: --quick: sizes and repetitions small enough for a smoke test.
QUICK_SIZES = {name: max(10, size // 100) for name, size in SIZES.items()}
QUICK_SIZES["aiohttp"] = 500  # 100 requests would mostly measure the 50 connections' set-up
QUICK_REPS = 1

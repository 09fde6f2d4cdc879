"""One measurement, in a fresh process.

    python -m bench.worker IMPL --probe
    python -m bench.worker IMPL WORKLOAD SIZE REPS

Prints one JSON object as the last line of stdout, whose "status" is
"ok", "skipped" (a peer that is not installed) or "error".  A probe reports
the implementation's version; a measurement reports "cpu" and "wall" (seconds
per repetition) or, for memory, "kib".
"""

import gc
import importlib
import importlib.metadata
import json
import sys
import time
import traceback

TRIO_SHAPED = ("nursery", "trio")

#: Libraries a workload imports (from the bench extra); without one, the
#: workload is reported as skipped, not as an error.
OPTIONAL_LIBRARIES = ("aiohttp",)


def load(impl):
    """Return (run, workloads, version) for IMPL."""
    if impl in TRIO_SHAPED:
        from bench import impl_trio

        lib = importlib.import_module(impl)
        missing = impl_trio.missing_names(lib)
        if missing:
            where = getattr(lib, "__file__", None) or list(lib.__path__)
            raise RuntimeError(f"{impl} ({where}) has no {', '.join(missing)}")
        version = getattr(lib, "__version__", None) or _dist_version(impl)
        return lib.run, impl_trio.make_workloads(lib), version
    from bench import impl_asyncio

    if impl == "compat":
        return impl_asyncio.load_compat_module()
    factory, version = impl_asyncio.loop_factory(impl)
    return impl_asyncio.make_run(factory), impl_asyncio.WORKLOADS, version


def _dist_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def measure(run, workload, size, reps):
    """Run workload(size) once untimed, then REPS timed times, in one run().

    A workload that returns {"cpu": ..., "wall": ...} has timed its own
    measured part (a server under an outside load): those times are kept.
    """

    async def timed():
        await workload(size)  # warm-up: first-call costs, caches, free lists
        cpu, wall = [], []
        for _ in range(reps):
            gc.collect()  # don't bill this repetition for the last one's garbage
            c0, w0 = time.process_time(), time.perf_counter()
            own = await workload(size)
            c1, w1 = time.process_time(), time.perf_counter()
            if isinstance(own, dict):
                c0, w0, c1, w1 = 0, 0, own["cpu"], own["wall"]
            cpu.append(c1 - c0)
            wall.append(w1 - w0)
        return {"cpu": cpu, "wall": wall}

    return run(timed)


def measure_memory(run, workload, size):
    """Peak RSS growth for size blocked tasks; once, as the peak only rises."""

    async def once():
        await workload(min(size, 100))  # warm up code paths, not the heap
        gc.collect()
        return {"kib": [await workload(size)]}

    return run(once)


def describe(exc):
    """One line for the report; exception groups are shown by their leaves."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def main(argv):
    impl, rest = argv[0], argv[1:]
    try:
        run, workloads, version = load(impl)
    except ModuleNotFoundError as exc:
        # A missing peer is skipped; a missing nursery is an error, as that
        # is the library under test.
        if impl != "nursery" and exc.name == impl:
            return {"status": "skipped", "reason": f"{impl} is not installed"}
        raise
    if rest == ["--probe"]:
        return {"status": "ok", "version": version}
    workload, size, reps = rest[0], int(rest[1]), int(rest[2])
    if workload not in workloads:
        return {"status": "n/a", "reason": f"no {workload} workload for {impl}"}
    try:
        if workload == "memory":
            result = measure_memory(run, workloads[workload], size)
        else:
            result = measure(run, workloads[workload], size, reps)
    except ModuleNotFoundError as exc:
        # A workload's own library (aiohttp) is a peer too: skipped if missing.
        if exc.name in OPTIONAL_LIBRARIES:
            return {"status": "skipped", "reason": f"{exc.name} is not installed"}
        raise
    return {"status": "ok", **result}


if __name__ == "__main__":
    try:
        outcome = main(sys.argv[1:])
    except BaseException as exc:  # report anything, even SystemExit from a library
        outcome = {
            "status": "error",
            "error": describe(exc),
            "traceback": traceback.format_exc(),
        }
    print(json.dumps(outcome))

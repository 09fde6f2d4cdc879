"""Child processes through asyncio's API on compat: create_subprocess_exec /
create_subprocess_shell and Process, loop.subprocess_exec's transport.

Each scenario runs five ways and all must agree with the first:

* stock: stock asyncio's module on stock asyncio's loop (the reference);
* module-on-stock: compat's module (its Process and protocol) on stock
  asyncio's loop and transports;
* loop: stock asyncio's module on compat's loop (compat's transport, the
  child waited for on the kernel);
* compat: compat's module on compat's loop;
* nursery: compat's module inside nursery.run.

Everything runs on the real clock: children take real time.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import threading

import pytest

import nursery
import nursery._subprocess_wait
from nursery import compat

from differential import describe

PY = sys.executable

WAYS = ["stock", "module-on-stock", "loop", "compat", "nursery"]


def run(way: str, scenario):
    """Run ``scenario(aio, log)`` one way; return (outcome, log)."""
    log: list = []
    aio = asyncio if way in ("stock", "loop") else compat
    try:
        if way == "nursery":
            value = nursery.run(scenario, aio, log)
        else:
            loop = asyncio.new_event_loop() if way in ("stock", "module-on-stock") else compat.new_event_loop()
            try:
                value = loop.run_until_complete(scenario(aio, log))
            finally:
                loop.close()
        result = ("value", value)
    except BaseException as exc:  # noqa: BLE001 - compared by the caller
        result = ("error", describe(exc))
    return result, log


def same(scenario):
    """Run *scenario* every way; all must agree. Returns stock's (outcome, log)."""
    stock = run("stock", scenario)
    for way in WAYS[1:]:
        assert run(way, scenario) == stock, way
    return stock


def python(code: str) -> list[str]:
    return [PY, "-c", code]


# ----------------------------------------------------------------------
# results


def test_communicate_feeds_stdin_and_collects_both_outputs():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data.upper()); sys.stderr.write('err'); sys.exit(3)"),
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
            stderr=aio.subprocess.PIPE,
        )
        log.append(proc.returncode)
        out, err = await proc.communicate(b"hello")
        log.append(proc.returncode)
        return out, err

    assert same(scenario) == (("value", (b"HELLO", b"err")), [None, 3])


def test_stderr_into_stdout_and_streams_that_are_not_pipes():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import os; os.write(1, b'out '); os.write(2, b'err')"),
            stdout=aio.subprocess.PIPE,
            stderr=aio.subprocess.STDOUT,
        )
        log.append((proc.stdin, proc.stderr))
        log.append(await proc.communicate())
        proc = await aio.create_subprocess_exec(
            *python("print('dropped')"), stdout=aio.subprocess.DEVNULL, stdin=aio.subprocess.DEVNULL
        )
        log.append(await proc.communicate())
        return await proc.wait()

    assert same(scenario) == (("value", 0), [(None, None), (b"out err", None), (None, None)])


def test_reading_lines_as_they_come_then_waiting():
    # The seed's example: read one line, then wait for the exit.
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import sys\nfor i in range(3): print('line', i, flush=True)\nsys.exit(7)"),
            stdout=aio.subprocess.PIPE,
        )
        log.append(await proc.stdout.readline())
        async for line in proc.stdout:
            log.append(line)
        log.append(proc.stdout.at_eof())
        return await proc.wait()

    assert same(scenario) == (("value", 7), [b"line 0\n", b"line 1\n", b"line 2\n", True])


def test_writing_stdin_with_drain_and_close():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import sys; print(len(sys.stdin.buffer.read()))"),
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
        )
        for _ in range(10):
            proc.stdin.write(b"x" * 100_000)
            await proc.stdin.drain()
        log.append(proc.stdin.can_write_eof())
        proc.stdin.close()
        await proc.stdin.wait_closed()
        log.append(await proc.stdout.read())
        return await proc.wait()

    assert same(scenario) == (("value", 0), [True, b"1000000\n"])


def test_shell_commands():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_shell(
            "echo $((6 * 7)); echo oops >&2; exit 4", stdout=aio.subprocess.PIPE, stderr=aio.subprocess.PIPE
        )
        log.append(await proc.communicate())
        return proc.returncode

    assert same(scenario) == (("value", 4), [(b"42\n", b"oops\n")])


def test_communicate_without_input_closes_stdin_as_the_running_version_does():
    # The child says whether its stdin reached end of file (3.12+: closed by
    # communicate()) or is still open a moment later (3.11).
    code = "import select, sys; r, _, _ = select.select([0], [], [], 0.2); print('eof' if r and not sys.stdin.read() else 'open')"

    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(*python(code), stdin=aio.subprocess.PIPE, stdout=aio.subprocess.PIPE)
        log.append(await proc.communicate())

    expected = b"eof\n" if sys.version_info >= (3, 12) else b"open\n"
    assert same(scenario)[1] == [(expected, None)]


def test_a_child_that_does_not_read_its_input_is_not_an_error():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import os; os.close(0); print('closed')"), stdin=aio.subprocess.PIPE, stdout=aio.subprocess.PIPE
        )
        log.append(await proc.communicate(b"y" * 1_000_000))
        return proc.returncode

    assert same(scenario) == (("value", 0), [(b"closed\n", None)])


def test_stream_limit_applies_to_the_readers():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(*python("import os; os.write(1, b'a' * 100 + b'\\n')"), stdout=aio.subprocess.PIPE, limit=10)
        await aio.sleep(0.2)  # the whole line is buffered by now
        try:
            await proc.stdout.readline()
        except ValueError as exc:
            log.append(describe(exc))
        log.append(await proc.stdout.read())
        return await proc.wait()

    assert same(scenario) == (("value", 0), [("ValueError", "Separator is found, but chunk is longer than limit"), b""])


# ----------------------------------------------------------------------
# exit statuses, signals


def test_exit_statuses_and_signals():
    async def scenario(aio, log):
        sleeper = python("import time; time.sleep(60)")
        proc = await aio.create_subprocess_exec(*python("import sys; sys.exit(5)"))
        log.append(await proc.wait())
        log.append(await proc.wait())  # again: the same status
        for stop in ("terminate", "kill"):
            proc = await aio.create_subprocess_exec(*sleeper)
            getattr(proc, stop)()
            log.append(await proc.wait())
        proc = await aio.create_subprocess_exec(*sleeper)
        proc.send_signal(signal.SIGUSR1)
        log.append(await proc.wait())
        # Once the process is gone (its transport closed), signalling it is
        # asyncio's ProcessLookupError.
        try:
            proc.kill()
        except ProcessLookupError as exc:
            log.append(describe(exc))

    assert same(scenario)[1] == [5, 5, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGUSR1, ("ProcessLookupError", "")]


def test_a_signal_the_child_handles():
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: (print('got', signal.Signals(a[0]).name, flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )

    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(*python(code), stdout=aio.subprocess.PIPE)
        log.append(await proc.stdout.readline())
        proc.send_signal(signal.SIGUSR1)
        log.append(await proc.stdout.readline())
        return await proc.wait()

    assert same(scenario) == (("value", 0), [b"ready\n", b"got SIGUSR1\n"])


def test_pid_and_repr():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(*python("import os; print(os.getpid())"), stdout=aio.subprocess.PIPE)
        out, _ = await proc.communicate()
        log.append(int(out) == proc.pid)
        log.append(repr(proc) == f"<Process {proc.pid}>")

    assert same(scenario)[1] == [True, True]


# ----------------------------------------------------------------------
# errors


def test_bad_arguments_and_missing_programs():
    async def scenario(aio, log):
        attempts = [
            lambda: aio.create_subprocess_exec("/nonexistent/program"),
            lambda: aio.create_subprocess_exec(PY, "-c", "pass", text=True),
            lambda: aio.create_subprocess_exec(PY, "-c", "pass", universal_newlines=True),
            lambda: aio.create_subprocess_exec(PY, "-c", "pass", encoding="utf-8"),
            lambda: aio.create_subprocess_exec(PY, "-c", "pass", bufsize=1),
            lambda: aio.create_subprocess_exec(PY, "-c", "pass", shell=True),
            lambda: aio.create_subprocess_shell("exit 0", shell=False),
            lambda: aio.create_subprocess_shell(["echo", "x"]),
        ]
        for attempt in attempts:
            try:
                proc = await attempt()
            except Exception as exc:  # noqa: BLE001
                log.append(describe(exc))
            else:
                log.append(("started", await proc.wait()))

    _, log = same(scenario)
    assert log[0] == ("FileNotFoundError", "[Errno 2] No such file or directory: '/nonexistent/program'")
    assert {kind for kind, _ in log[1:]} == {"ValueError"}


# ----------------------------------------------------------------------
# no deadlock, no leak


def big_io_scenario(size: int):
    # The child echoes its input to stdout and, reversed, to stderr, while
    # we are still writing: communicate() must write and read at once.
    code = (
        "import sys, threading\n"
        "data = bytearray()\n"
        "while chunk := sys.stdin.buffer.read1(1 << 16):\n"
        "    data += chunk\n"
        "    sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.flush()\n"
        "sys.stderr.buffer.write(bytes(reversed(data)))\n"
    )

    async def scenario(aio, log):
        payload = bytes(range(256)) * (size // 256)
        proc = await aio.create_subprocess_exec(
            *python(code), stdin=aio.subprocess.PIPE, stdout=aio.subprocess.PIPE, stderr=aio.subprocess.PIPE
        )
        out, err = await proc.communicate(payload)
        log.append((len(out), out == payload, err == payload[::-1]))
        return proc.returncode

    return scenario


def test_communicate_large_data_in_both_directions():
    size = 2 * 1024 * 1024
    assert same(big_io_scenario(size)) == (("value", 0), [(size, True, True)])


@pytest.mark.slow
def test_communicate_very_large_data_in_both_directions():
    size = 64 * 1024 * 1024
    assert same(big_io_scenario(size)) == (("value", 0), [(size, True, True)])


def many_children_scenario(count: int):
    async def scenario(aio, log):
        async def one(i):
            proc = await aio.create_subprocess_exec(
                "/bin/sh", "-c", f"echo {i * 2}; exit {i % 3}", stdout=aio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
            return int(out), proc.returncode

        return await aio.gather(*(one(i) for i in range(count)))

    return scenario


def test_many_children_at_once():
    assert same(many_children_scenario(20)) == (("value", [(i * 2, i % 3) for i in range(20)]), [])


@pytest.mark.slow
def test_hundreds_of_children_at_once():
    assert same(many_children_scenario(300)) == (("value", [(i * 2, i % 3) for i in range(300)]), [])


# ----------------------------------------------------------------------
# cancellation


def test_cancelling_wait_leaves_the_child_running():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(*python("import sys; sys.stdin.read()"), stdin=aio.subprocess.PIPE)
        try:
            await aio.wait_for(proc.wait(), 0.1)
        except TimeoutError as exc:
            log.append(describe(exc))
        log.append(proc.returncode)
        proc.stdin.close()
        return await proc.wait()

    assert same(scenario) == (("value", 0), [("TimeoutError", ""), None])


def test_cancelling_communicate_then_killing():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import sys, time; print('started', flush=True); time.sleep(60)"),
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
        )
        log.append(await proc.stdout.readline())
        task = aio.ensure_future(proc.communicate(b"ignored"))
        await aio.sleep(0.05)
        task.cancel()
        try:
            await task
        except aio.CancelledError:
            log.append("cancelled")
        log.append(proc.returncode)
        proc.kill()
        return await proc.wait()

    assert same(scenario) == (("value", -signal.SIGKILL), [b"started\n", "cancelled", None])


def test_a_cancel_scope_around_wait_inside_nursery_run():

    async def main():
        proc = await compat.create_subprocess_exec(*python("import time; time.sleep(60)"))
        with nursery.move_on_after(0.1) as scope:
            await proc.wait()
        assert scope.cancelled_caught
        assert proc.returncode is None
        proc.kill()
        return await proc.wait()

    assert nursery.run(main) == -signal.SIGKILL


def test_a_child_outliving_an_owned_loop_is_killed_by_its_transport():
    # A transport closed with its child running kills it (asyncio's
    # contract); the child is then reaped once it has died.
    loop = compat.new_event_loop()
    try:
        transport, _ = loop.run_until_complete(
            loop.subprocess_exec(asyncio.SubprocessProtocol, *python("import time; time.sleep(60)"))
        )
        transport.close()
        returncode = loop.run_until_complete(transport._wait())
    finally:
        loop.close()
    assert returncode == -signal.SIGKILL


# ----------------------------------------------------------------------
# the thread fallback


@pytest.fixture
def no_pidfd(monkeypatch):
    monkeypatch.setattr(nursery._subprocess_wait, "pidfd_open", None)


@pytest.mark.usefixtures("no_pidfd")
def test_waiting_in_a_thread_where_there_are_no_pidfds():
    async def scenario(aio, log):
        proc = await aio.create_subprocess_exec(
            *python("import sys; print(sys.stdin.read()); sys.exit(2)"), stdin=aio.subprocess.PIPE, stdout=aio.subprocess.PIPE
        )
        log.append(await proc.communicate(b"via thread"))
        proc = await aio.create_subprocess_exec(*python("import time; time.sleep(60)"))
        proc.kill()
        log.append(await proc.wait())
        return proc.returncode

    assert same(scenario) == (("value", -signal.SIGKILL), [(b"via thread\n", None), -signal.SIGKILL])


def test_repr_of_the_transport_is_asyncios():
    async def scenario(aio, log):
        loop = aio.get_running_loop()
        transport, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, *python("pass"), stdout=aio.subprocess.PIPE)
        log.append(re.sub(r"\d+", "N", repr(transport)))
        log.append(await transport._wait())
        transport.close()

    assert same(scenario)[1][1] == 0


def test_children_are_waited_for_on_the_kernel_without_a_child_watcher(monkeypatch):
    # No asyncio child watcher (nor its thread): where there are pidfds,
    # waiting for a child costs no thread at all.

    def no_watcher(*args):
        raise AssertionError("compat's loop must not use asyncio's child watcher")

    monkeypatch.setattr(asyncio.events, "get_child_watcher", no_watcher, raising=False)
    monkeypatch.setattr(asyncio, "get_child_watcher", no_watcher, raising=False)
    threads = []

    async def main():
        proc = await compat.create_subprocess_exec(*python("import sys; sys.stdin.read()"), stdin=compat.subprocess.PIPE)
        threads.append(threading.active_count())
        await compat.sleep(0.05)
        proc.stdin.close()
        threads.append(threading.active_count())
        return await proc.wait()

    assert nursery.run(main) == 0
    loop = compat.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == 0
    finally:
        loop.close()
    pidfd = nursery._subprocess_wait.open_pidfd(os.getpid())
    if pidfd is not None:
        os.close(pidfd)
        assert len(set(threads)) == 1, threads

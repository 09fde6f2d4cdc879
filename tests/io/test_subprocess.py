"""nursery.run_process, nursery.Process and nursery.lowlevel.open_process.

Children are ``sys.executable -c ...`` scripts. The autouse leak check
(tests/conftest.py) fails any test that leaves a child unreaped, a pipe open
or a waiter thread running, so every test here also checks that.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from functools import partial

import pytest

import nursery
import nursery._subprocess_wait
from nursery import Process, run_process
from nursery.lowlevel import open_process
from nursery.testing import assert_checkpoints, wait_all_tasks_blocked

PY = sys.executable


def python(code: str) -> list[str]:
    return [PY, "-c", code]


# A child that tells us it is ready, then waits to be stopped.
WAIT_FOREVER = python("import sys, time; print('ready', flush=True); time.sleep(60)")
# The same, ignoring SIGTERM.
IGNORE_SIGTERM = python(
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)"
)
# Copies each chunk as soon as it arrives (a buffered read would wait for a
# full buffer).
COPY_STDIN_TO_STDOUT = python(
    "import os\n"
    "while data := os.read(0, 1 << 16):\n"
    "    os.write(1, data)\n"
)


async def wait_for_ready(stream) -> None:
    got = b""
    while not got.endswith(b"ready\n"):
        chunk = await stream.receive_some()
        assert chunk, f"the child exited before it was ready: {got!r}"
        got += chunk


def assert_reaped(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# ----------------------------------------------------------------------
# run_process: results


async def test_run_process_returns_a_completed_process():
    result = await run_process(python("pass"))
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.args == python("pass")
    assert result.returncode == 0
    assert result.stdout is None and result.stderr is None


async def test_capture_stdout_and_stderr_separately():
    result = await run_process(
        python("import sys; sys.stdout.write('out'); sys.stderr.write('err')"),
        capture_stdout=True,
        capture_stderr=True,
    )
    assert (result.stdout, result.stderr) == (b"out", b"err")


async def test_stderr_into_stdout():
    result = await run_process(
        python("import sys; sys.stdout.write('out'); sys.stdout.flush(); sys.stderr.write('err')"),
        capture_stdout=True,
        stderr=subprocess.STDOUT,
    )
    assert result.stdout == b"outerr"
    assert result.stderr is None


async def test_stdin_as_bytes():
    result = await run_process(
        python("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().upper())"),
        stdin=b"hello",
        capture_stdout=True,
    )
    assert result.stdout == b"HELLO"


async def test_default_stdin_is_empty():
    result = await run_process(python("import sys; print(repr(sys.stdin.read()))"), capture_stdout=True)
    assert result.stdout == b"''\n"


async def test_stdin_as_a_file_and_as_a_file_descriptor(tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"from a file")
    code = python("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())")
    with open(path, "rb") as f:
        result = await run_process(code, stdin=f, capture_stdout=True)
    assert result.stdout == b"from a file"
    fd = os.open(path, os.O_RDONLY)
    try:
        result = await run_process(code, stdin=fd, capture_stdout=True)
    finally:
        os.close(fd)
    assert result.stdout == b"from a file"


async def test_stdout_to_a_file(tmp_path):
    path = tmp_path / "output.txt"
    with open(path, "wb") as f:
        await run_process(python("print('to the file')"), stdout=f)
    assert path.read_bytes() == b"to the file\n"


async def test_other_options_reach_popen(tmp_path):
    result = await run_process(
        python("import os; print(os.getcwd()); print(os.environ['NURSERY_TEST'])"),
        cwd=tmp_path,
        env={**os.environ, "NURSERY_TEST": "yes"},
        capture_stdout=True,
    )
    assert result.stdout.decode().splitlines() == [str(tmp_path), "yes"]


async def test_check_raises_called_process_error_with_the_output():
    code = python("import sys; sys.stdout.write('partial'); sys.stderr.write('boom'); sys.exit(3)")
    with pytest.raises(subprocess.CalledProcessError) as info:
        await run_process(code, capture_stdout=True, capture_stderr=True)
    error = info.value
    assert error.returncode == 3
    assert error.cmd == code
    assert (error.output, error.stdout, error.stderr) == (b"partial", b"partial", b"boom")
    assert str(error) == f"Command '{code!r}' returned non-zero exit status 3."


async def test_check_false_returns_the_failure():
    result = await run_process(python("import sys; sys.exit(7)"), check=False)
    assert result.returncode == 7


async def test_a_child_killed_by_a_signal():
    code = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    result = await run_process(code, check=False)
    assert result.returncode == -signal.SIGKILL
    with pytest.raises(subprocess.CalledProcessError, match=r"died with <Signals.SIGKILL: 9>\.$"):
        await run_process(code)


async def test_large_input_and_output_at_once_do_not_deadlock():
    # The child writes its whole output to stdout and stderr before it has
    # read all of its input: only concurrent transfers get through this.
    payload = os.urandom(4 * 1024 * 1024)
    code = python(
        "import sys\n"
        "data = sys.stdin.buffer.read(1 << 20)\n"
        "sys.stderr.buffer.write(data[::-1] * 3)\n"
        "sys.stderr.flush()\n"
        "sys.stdout.buffer.write(data)\n"
        "sys.stdout.buffer.write(sys.stdin.buffer.read())\n"
    )
    result = await run_process(code, stdin=payload, capture_stdout=True, capture_stderr=True)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()
    assert result.stderr == payload[: 1 << 20][::-1] * 3


@pytest.mark.slow
async def test_very_large_transfer_through_a_child():
    payload = os.urandom(256 * 1024 * 1024)
    result = await run_process(COPY_STDIN_TO_STDOUT, stdin=payload, capture_stdout=True)
    assert len(result.stdout) == len(payload)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()


async def test_child_that_exits_without_reading_its_input():
    result = await run_process(python("print('bye')"), stdin=b"x" * (1 << 20), capture_stdout=True)
    assert result.stdout == b"bye\n"


async def test_run_process_is_a_checkpoint():
    with nursery.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(nursery.Cancelled):
            await run_process(python("pass"))
    with assert_checkpoints():
        await run_process(python("pass"))


# ----------------------------------------------------------------------
# bad input


async def test_missing_executable_is_a_file_not_found_error_naming_it():
    with pytest.raises(FileNotFoundError, match="no-such-program-xyz") as info:
        await run_process(["no-such-program-xyz", "arg"])
    assert info.value.filename == "no-such-program-xyz"
    with pytest.raises(FileNotFoundError, match="/no/such/dir/prog"):
        await run_process(["prog"], executable="/no/such/dir/prog")


async def test_no_shell_unless_asked():
    result = await run_process(["echo", "$((6*7))", "a;b"], capture_stdout=True)
    assert result.stdout == b"$((6*7)) a;b\n"
    result = await run_process("echo $((6*7))", shell=True, capture_stdout=True)
    assert result.stdout == b"42\n"


async def test_string_command_without_shell_is_refused():
    with pytest.raises(
        TypeError,
        match=r"^the command must be a sequence of arguments, e\.g\. \['ls', '-l'\], not a string \('ls -l'\); "
        r"split it with shlex\.split\(\), or pass shell=True to have a shell run it$",
    ):
        await run_process("ls -l")
    with pytest.raises(TypeError, match="not a string"):
        await open_process(b"ls")


async def test_sequence_command_with_shell_is_refused():
    with pytest.raises(
        TypeError, match=r"^with shell=True the command must be a string \(the shell parses it\), got \['ls'\]$"
    ):
        await run_process(["ls"], shell=True)


async def test_empty_command_is_refused():
    with pytest.raises(ValueError, match=r"^the command is empty: it needs at least the program to run$"):
        await run_process([])


async def test_text_mode_options_are_refused():
    for option in ("text", "universal_newlines", "encoding", "errors"):
        value = True if option in ("text", "universal_newlines") else "utf-8"
        with pytest.raises(
            TypeError, match=rf"^open_process\(\) does not support the {option}= option: the pipes are byte streams"
        ):
            await open_process(python("pass"), **{option: value})


async def test_run_process_option_mistakes_are_explained():
    cmd = python("pass")
    with pytest.raises(
        TypeError, match=r"^run_process\(\) got stdin as a str; pass bytes \(e\.g\. text\.encode\(\)\)$"
    ):
        await run_process(cmd, stdin="text")
    with pytest.raises(TypeError, match=r"as stdin=, not input=$"):
        await run_process(cmd, input=b"x")
    with pytest.raises(TypeError, match=r"no capture_output=; use capture_stdout=True and/or capture_stderr=True$"):
        await run_process(cmd, capture_output=True)
    with pytest.raises(TypeError, match=r"no timeout=; wrap it in nursery\.fail_after"):
        await run_process(cmd, timeout=1)
    with pytest.raises(TypeError, match=r"^deliver_cancel must be an async function taking the Process, got 5$"):
        await run_process(cmd, deliver_cancel=5)
    with pytest.raises(
        ValueError, match=r"^run_process\(\) got both capture_stdout=True and stdout=; pass one of them$"
    ):
        await run_process(cmd, capture_stdout=True, stdout=subprocess.DEVNULL)
    with pytest.raises(ValueError, match=r"^run_process\(\) got both capture_stderr=True and stderr="):
        await run_process(cmd, capture_stderr=True, stderr=subprocess.DEVNULL)
    hints = {"stdin": "stdin=<bytes>", "stdout": "capture_stdout=True", "stderr": "capture_stderr=True"}
    for name, hint in hints.items():
        with pytest.raises(
            ValueError,
            match=rf"^run_process\(\) with {name}=subprocess\.PIPE needs nursery\.start\(run_process, \.\.\.\), "
            rf"which returns the Process and so the pipe; or use {hint}$",
        ):
            await run_process(cmd, **{name: subprocess.PIPE})


def test_process_objects_come_from_open_process():
    with pytest.raises(
        TypeError, match=r"^Process objects cannot be created directly; use nursery\.lowlevel\.open_process\(\)"
    ):
        Process()


# ----------------------------------------------------------------------
# cancellation


async def test_cancelled_run_process_terminates_the_child():
    async with nursery.open_nursery() as n:
        process = await n.start(partial(run_process, WAIT_FOREVER, stdout=subprocess.PIPE))
        async with process.stdout:
            await wait_for_ready(process.stdout)
            n.cancel_scope.cancel()
    assert process.returncode == -signal.SIGTERM
    assert_reaped(process.pid)


async def test_move_on_after_around_run_process():
    # Real time: under an autojump clock the grace period would pass before
    # the child has had a chance to die of its SIGTERM.
    with nursery.move_on_after(0.2) as scope:
        await run_process(WAIT_FOREVER, stdout=subprocess.DEVNULL)
    assert scope.cancelled_caught


async def test_sigterm_ignored_then_sigkill_after_the_grace_period(autojump_clock, wait_mode):
    with pytest.warns(RuntimeWarning, match=r"was still running 5 seconds after SIGTERM; sending SIGKILL") as record:
        async with nursery.open_nursery() as n:
            process = await n.start(partial(run_process, IGNORE_SIGTERM, stdout=subprocess.PIPE))
            async with process.stdout:
                await wait_for_ready(process.stdout)
                start = nursery.current_time()
                n.cancel_scope.cancel()
                await nursery.sleep_forever()
    assert len(record) == 1
    assert process.returncode == -signal.SIGKILL
    assert nursery.current_time() - start == pytest.approx(5)
    assert_reaped(process.pid)


async def test_custom_deliver_cancel():
    calls = []

    async def deliver_cancel(process):
        calls.append(process)
        process.send_signal(signal.SIGUSR1)

    async with nursery.open_nursery() as n:
        process = await n.start(
            partial(run_process, WAIT_FOREVER, stdout=subprocess.PIPE, deliver_cancel=deliver_cancel)
        )
        async with process.stdout:
            await wait_for_ready(process.stdout)
            n.cancel_scope.cancel()
    assert calls == [process]
    assert process.returncode == -signal.SIGUSR1


async def test_failing_deliver_cancel_still_kills_and_reaps_the_child():
    processes = []

    async def deliver_cancel(process):
        processes.append(process)
        raise ValueError("could not deliver")

    with pytest.raises(ValueError, match="^could not deliver$") as info:
        with nursery.move_on_after(0.2):
            await run_process(IGNORE_SIGTERM, stdout=subprocess.DEVNULL, deliver_cancel=deliver_cancel)
    # The cancellation it replaced is its context.
    assert isinstance(info.value.__context__, BaseExceptionGroup)
    assert isinstance(info.value.__context__.exceptions[0], nursery.Cancelled)
    (process,) = processes
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_deliver_cancel_that_times_out_still_kills_and_reaps_the_child():
    processes = []

    async def deliver_cancel(process):
        processes.append(process)
        with nursery.fail_after(0.1):
            await nursery.sleep_forever()

    with pytest.raises(nursery.TooSlowError):
        with nursery.move_on_after(0.2):
            await run_process(IGNORE_SIGTERM, stdout=subprocess.DEVNULL, deliver_cancel=deliver_cancel)
    (process,) = processes
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_deliver_cancel_is_stopped_once_the_child_exits():
    events = []

    async def deliver_cancel(process):
        process.terminate()
        try:
            await nursery.sleep_forever()
        except nursery.Cancelled:
            events.append("deliver_cancel cancelled")
            raise

    with nursery.move_on_after(0.2):
        await run_process(WAIT_FOREVER, stdout=subprocess.DEVNULL, deliver_cancel=deliver_cancel)
    assert events == ["deliver_cancel cancelled"]


# ----------------------------------------------------------------------
# start(): the Process and its pipes


async def test_start_returns_the_process_with_the_pipes_asked_for():
    async with nursery.open_nursery() as n:
        process = await n.start(
            partial(run_process, COPY_STDIN_TO_STDOUT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        )
        assert isinstance(process, Process)
        async with process.stdio:
            await process.stdio.send_all(b"ping")
            assert await process.stdio.receive_some() == b"ping"
            await process.stdio.send_eof()
            assert await process.stdio.receive_some() == b""
    assert process.returncode == 0


async def test_start_with_captured_output_leaves_no_streams_on_the_process():
    async with nursery.open_nursery() as n:
        process = await n.start(partial(run_process, python("print(1)"), stdin=b"", capture_stdout=True))
        assert process.stdin is None and process.stdout is None and process.stdio is None


# ----------------------------------------------------------------------
# Process: wait, poll, returncode, signals


async def test_wait_poll_and_returncode(wait_mode):
    process = await open_process(python("import sys; sys.stdin.read(); sys.exit(4)"), stdin=subprocess.PIPE)
    assert (process._pidfd is not None) == (wait_mode == "pidfd")
    assert process.poll() is None and process.returncode is None
    assert repr(process) == f"<nursery.Process {process.args!r}: running with pid {process.pid}>"
    await process.stdin.aclose()
    assert await process.wait() == 4
    assert process.poll() == 4 and process.returncode == 4
    assert process._pidfd is None  # closed once reaped
    assert repr(process) == f"<nursery.Process {process.args!r}: exited with status 4>"
    with assert_checkpoints():
        assert await process.wait() == 4
    assert_reaped(process.pid)


async def test_several_tasks_wait_at_once(wait_mode):
    process = await open_process(python("import sys; sys.stdin.read()"), stdin=subprocess.PIPE)
    results = []

    async def waiter():
        results.append(await process.wait())

    async with nursery.open_nursery() as n:
        for _ in range(3):
            n.start_soon(waiter)
        await wait_all_tasks_blocked(0.01)
        assert results == []
        await process.stdin.aclose()
    assert results == [0, 0, 0]


async def test_cancelled_wait_leaves_the_child_running(wait_mode):
    process = await open_process(WAIT_FOREVER, stdout=subprocess.PIPE)
    async with process.stdout:
        await wait_for_ready(process.stdout)
    with nursery.move_on_after(0.05) as scope:
        await process.wait()
    assert scope.cancelled_caught
    assert process.poll() is None
    process.kill()
    assert await process.wait() == -signal.SIGKILL
    assert repr(process) == f"<nursery.Process {process.args!r}: killed by SIGKILL>"


async def test_poll_reaps_a_child_while_another_task_waits(wait_mode):
    process = await open_process(python("import sys; sys.stdin.read()"), stdin=subprocess.PIPE)
    async with nursery.open_nursery() as n:
        n.start_soon(process.wait)
        await wait_all_tasks_blocked(0.01)
        await process.stdin.aclose()
        while process.poll() is None:
            await nursery.sleep(0.005)
    assert process.returncode == 0


@pytest.mark.parametrize(
    "method, signum",
    [("terminate", signal.SIGTERM), ("kill", signal.SIGKILL), ("send_signal", signal.SIGUSR1)],
)
async def test_signals(method, signum, wait_mode):
    process = await open_process(WAIT_FOREVER, stdout=subprocess.PIPE)
    async with process:
        await wait_for_ready(process.stdout)
        if method == "send_signal":
            process.send_signal(signum)
        else:
            getattr(process, method)()
        assert await process.wait() == -signum
    # Signalling a reaped child does nothing (its pid may be someone else's).
    process.kill()
    process.send_signal(signal.SIGTERM)


# ----------------------------------------------------------------------
# Process as a resource, open_process with streams


async def test_process_as_async_context_manager_closes_pipes_and_waits(wait_mode):
    async with await open_process(COPY_STDIN_TO_STDOUT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        await process.stdin.send_all(b"data")
        assert await process.stdout.receive_some() == b"data"
    # Closing stdin ended the child; the block waited for it.
    assert process.returncode == 0
    with pytest.raises(nursery.ClosedResourceError):
        await process.stdin.send_all(b"more")
    await process.aclose()  # again: a no-op


async def test_cancelled_aclose_kills_and_reaps_the_child(wait_mode, autojump_clock):
    process = await open_process(IGNORE_SIGTERM, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    await wait_for_ready(process.stdout)
    with nursery.move_on_after(1) as scope:
        await process.aclose()
    assert scope.cancelled_caught
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_open_process_streams_in_a_nursery():
    code = python(
        "import sys\n"
        "for line in sys.stdin:\n"
        "    print(line.strip().upper(), flush=True)\n"
        "    print('log:', line.strip(), file=sys.stderr, flush=True)\n"
    )
    process = await open_process(code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert isinstance(process.stdio, nursery.StapledStream)
    out = bytearray()
    err = bytearray()

    async def collect(stream, into):
        async for chunk in stream:
            into += chunk

    async with process, nursery.open_nursery() as n:
        n.start_soon(collect, process.stdout, out)
        n.start_soon(collect, process.stderr, err)
        for word in (b"alpha", b"beta"):
            await process.stdin.send_all(word + b"\n")
        await process.stdin.aclose()
    assert out == b"ALPHA\nBETA\n"
    assert err == b"log: alpha\nlog: beta\n"
    assert process.returncode == 0


async def test_open_process_failure_closes_the_pipes_it_made():
    # The leak check would report the pipes' descriptors.
    with pytest.raises(FileNotFoundError):
        await open_process(
            ["no-such-program-xyz"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


async def test_thread_fallback_cancelled_wait_still_reaps(monkeypatch, autojump_clock):
    monkeypatch.setattr(nursery._subprocess_wait, "pidfd_open", None)
    process = await open_process(IGNORE_SIGTERM, stdout=subprocess.PIPE)
    async with process.stdout:
        await wait_for_ready(process.stdout)
    with nursery.move_on_after(1):
        await process.wait()
    # The abandoned waiter thread still blocks in waitpid; killing the child
    # ends it, and it records the status for us.
    process.kill()
    assert await process.wait() == -signal.SIGKILL
    assert_reaped(process.pid)

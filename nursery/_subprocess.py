"""Child processes: :class:`Process`, :func:`open_process` and
:func:`run_process`.

Spawning is ``subprocess.Popen``'s job (argument handling, the fork/exec,
reporting a failed exec as an exception in the parent), run in a worker
thread because a fork can take a while in a big parent. The pipes are ours:
we create them, hand the child's ends to Popen and wrap ours in
:class:`~nursery.lowlevel.FdStream`, so Popen's buffered file objects never
exist.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import warnings
from contextlib import ExitStack
from typing import Any, Awaitable, Callable, Sequence, Union

from ._abc import AsyncResource, ReceiveStream, SendStream
from ._core import (
    TASK_STATUS_IGNORED,
    BrokenResourceError,
    Cancelled,
    CancelScope,
    ClosedResourceError,
    TaskStatus,
    checkpoint,
    in_run,
    notify_closing,
    open_nursery,
    sleep,
    wait_readable,
)
from ._stapled import StapledStream
from ._subprocess_wait import open_pidfd, wait_in_thread
from ._sync import Lock
from ._unix_pipes import FdStream

__all__ = ["Process", "open_process", "run_process"]

StrOrBytesPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Command = Union[StrOrBytesPath, Sequence[StrOrBytesPath]]

#: How long the default ``deliver_cancel`` of :func:`run_process` waits
#: after SIGTERM before it sends SIGKILL, in seconds (of the run's clock).
TERMINATE_GRACE_PERIOD = 5.0

_pidfd_send_signal = getattr(signal, "pidfd_send_signal", None)


class Process(AsyncResource):
    """A child process started by :func:`nursery.lowlevel.open_process` (or
    by :func:`nursery.run_process` under ``nursery.start()``).

    Attributes:

    * ``args``: the command, as given.
    * ``pid``: the process id.
    * ``stdin``: a :class:`~nursery.SendStream` writing to the child's
      standard input if it was opened with ``stdin=subprocess.PIPE``, else
      None. Close it to send end of file.
    * ``stdout``, ``stderr``: :class:`~nursery.ReceiveStream` objects reading
      the child's output, for ``subprocess.PIPE``; else None.
    * ``stdio``: a :class:`~nursery.StapledStream` of ``stdin`` and
      ``stdout`` when both are pipes, else None.

    The process is an async context manager: leaving ``async with process:``
    calls :meth:`aclose`, which closes the pipes and waits for the child to
    exit (it does not ask the child to exit: closing its stdin is often
    what does that). Process objects are only made by ``open_process``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "Process objects cannot be created directly; use "
            "nursery.lowlevel.open_process() or nursery.run_process()"
        )

    @classmethod
    def _create(
        cls,
        popen: subprocess.Popen[bytes],
        stdin: SendStream | None,
        stdout: ReceiveStream | None,
        stderr: ReceiveStream | None,
    ) -> Process:
        self = cls.__new__(cls)
        self._popen = popen
        self.args = popen.args
        self.pid = popen.pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdio = StapledStream(stdin, stdout) if stdin is not None and stdout is not None else None
        self._pidfd = open_pidfd(popen.pid)
        # Serializes waits: two tasks cannot both wait for the pidfd to
        # become readable (BusyResourceError), so the second waits its turn
        # and then finds the status already recorded.
        self._wait_lock = Lock()
        return self

    # -- status

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while the child runs: ``0`` or the
        argument of ``exit()``; ``-N`` if signal ``N`` killed it. Reading it
        reaps an exited child (it is :meth:`poll`). Not a checkpoint."""
        return self.poll()

    def poll(self) -> int | None:
        """Return :attr:`returncode` without waiting: None if the child is
        still running. Not a checkpoint."""
        result = self._popen.poll()
        if result is not None:
            self._close_pidfd()
        return result

    async def wait(self) -> int:
        """Wait for the child to exit, reap it and return its
        :attr:`returncode`. Several tasks may wait at once. A checkpoint
        (also when the child has already exited). Cancelling the wait leaves
        the child running."""
        if self._popen.returncode is not None:
            await checkpoint()
            return self._popen.returncode
        async with self._wait_lock:
            if self.poll() is None:
                pidfd = self._pidfd
                if pidfd is not None:
                    try:
                        await wait_readable(pidfd)
                    except ClosedResourceError:
                        # poll() found the child exited and closed the pidfd.
                        pass
                else:
                    await wait_in_thread(self._popen)
                # Exited: this reaps it at once (no blocking).
                self._popen.wait()
                self._close_pidfd()
        return self._popen.returncode  # type: ignore[return-value]

    def _close_pidfd(self) -> None:
        pidfd = self._pidfd
        if pidfd is not None:
            self._pidfd = None
            if in_run():
                notify_closing(pidfd)
            os.close(pidfd)

    # -- signals

    def send_signal(self, sig: int) -> None:
        """Send signal *sig* to the child; nothing if it has already exited
        and been reaped (its pid may belong to another process by then).
        Where pidfds exist, the signal goes through the pidfd, so it can
        never reach a different process. Not a checkpoint."""
        if self.poll() is not None:
            return
        pidfd = self._pidfd
        if pidfd is not None and _pidfd_send_signal is not None:
            try:
                _pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                pass  # exited (not yet reaped) meanwhile
        else:
            self._popen.send_signal(sig)

    def terminate(self) -> None:
        """Ask the child to exit: SIGTERM. Not a checkpoint."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the child: SIGKILL, which it cannot catch. Not a checkpoint."""
        self.send_signal(signal.SIGKILL)

    # -- closing

    async def aclose(self) -> None:
        """Close the pipes, then wait for the child to exit. If the wait is
        cancelled (or fails), the child is killed and reaped before the
        cancellation propagates: no child outlives ``aclose()``. A
        checkpoint."""
        with CancelScope(shield=True):
            for stream in (self.stdin, self.stdout, self.stderr):
                if stream is not None:
                    await stream.aclose()
        try:
            await self.wait()
        finally:
            if self._popen.returncode is None:
                self.kill()
                with CancelScope(shield=True):
                    await self.wait()

    def __del__(self) -> None:
        pidfd = getattr(self, "_pidfd", None)
        if pidfd is not None:
            self._pidfd = None
            os.close(pidfd)

    def __repr__(self) -> str:
        code = self._popen.returncode
        if code is None:
            status = f"running with pid {self.pid}"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            status = f"killed by {name}"
        else:
            status = f"exited with status {code}"
        return f"<nursery.Process {self.args!r}: {status}>"


# ----------------------------------------------------------------------
# open_process

# Options that would make Popen wrap the pipes in text or buffered file
# objects: we hand out byte streams instead.
_TEXT_OPTIONS = ("text", "universal_newlines", "encoding", "errors", "bufsize")


def _is(constant: int, value: Any) -> bool:
    """Whether *value* is one of subprocess's special ints (PIPE, STDOUT),
    and not, say, a file object that happens to compare equal."""
    return value.__class__ is int and value == constant


def _check_command(command: Any, shell: bool) -> None:
    if shell:
        if not isinstance(command, (str, bytes)):
            raise TypeError(
                f"with shell=True the command must be a string (the shell parses it), got {command!r}"
            )
        return
    if isinstance(command, os.PathLike):
        return  # a program to run without arguments
    if isinstance(command, (str, bytes)):
        raise TypeError(
            f"the command must be a sequence of arguments, e.g. ['ls', '-l'], not a string ({command!r}); "
            "split it with shlex.split(), or pass shell=True to have a shell run it"
        )
    try:
        empty = len(command) == 0
    except TypeError:
        raise TypeError(f"the command must be a sequence of arguments, e.g. ['ls', '-l'], got {command!r}") from None
    if empty:
        raise ValueError("the command is empty: it needs at least the program to run")


async def open_process(
    command: Command,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    **options: Any,
) -> Process:
    """Start a child process and return its :class:`~nursery.Process` at
    once, without waiting for it to exit.

    *command* is a sequence of arguments (the program first), run without a
    shell; a string is refused (:exc:`TypeError`) unless ``shell=True``,
    where it must be a string. *stdin*, *stdout* and *stderr* take what
    :class:`subprocess.Popen` takes: ``None`` (inherit ours),
    ``subprocess.DEVNULL``, a file descriptor or file object, or
    ``subprocess.PIPE``, for which the Process gets a stream
    (``stderr=subprocess.STDOUT`` merges stderr into stdout). Other keyword
    options (``cwd``, ``env``, ``start_new_session``, ``pass_fds``, ...) go
    to Popen; the text-mode options (``text``, ``encoding``, ...) are
    refused: the streams carry bytes.

    Raises what starting the process raises, for example
    :exc:`FileNotFoundError` naming the program when it does not exist. A
    checkpoint (the spawn runs in a worker thread and is not cancellable
    once started).

    You own the process: :meth:`Process.aclose` (or ``async with``) closes
    the pipes and waits for it. For a process that runs to completion in
    the background of a task, :func:`nursery.run_process` is simpler.
    """
    for key in _TEXT_OPTIONS:
        if options.get(key):
            raise TypeError(
                f"open_process() does not support the {key}= option: the pipes are byte streams "
                "(decode what you receive, encode what you send)"
            )
        options.pop(key, None)
    _check_command(command, bool(options.get("shell")))

    our_stdin: FdStream | None = None
    our_stdout: FdStream | None = None
    our_stderr: FdStream | None = None
    # The child's ends of the pipes are closed in the parent whatever
    # happens (else we would never see end of file); our ends only if the
    # spawn fails.
    with ExitStack() as child_ends, ExitStack() as on_failure:
        if _is(subprocess.PIPE, stdin):
            child_fd, our_fd = os.pipe()
            child_ends.callback(os.close, child_fd)
            our_stdin = FdStream(our_fd)
            on_failure.callback(our_stdin.close)
            stdin = child_fd
        if _is(subprocess.PIPE, stdout):
            our_fd, child_fd = os.pipe()
            child_ends.callback(os.close, child_fd)
            our_stdout = FdStream(our_fd)
            on_failure.callback(our_stdout.close)
            stdout = child_fd
        if _is(subprocess.STDOUT, stderr):
            # Into whatever stdout is (if stdout is inherited, Popen dups it).
            if stdout is not None:
                stderr = stdout
        elif _is(subprocess.PIPE, stderr):
            our_fd, child_fd = os.pipe()
            child_ends.callback(os.close, child_fd)
            our_stderr = FdStream(our_fd)
            on_failure.callback(our_stderr.close)
            stderr = child_fd
        # Imported here: nursery.lowlevel imports this module, and the
        # threads module imports nursery.lowlevel.
        from ._threads import to_thread_run_sync

        popen = await to_thread_run_sync(
            functools.partial(subprocess.Popen, command, stdin=stdin, stdout=stdout, stderr=stderr, **options)
        )
        on_failure.pop_all()
    return Process._create(popen, our_stdin, our_stdout, our_stderr)


# ----------------------------------------------------------------------
# run_process


async def terminate_then_kill(process: Process) -> None:
    """The default ``deliver_cancel`` of :func:`run_process`: SIGTERM, then
    SIGKILL (with a :exc:`RuntimeWarning`) if the child is still running
    ``TERMINATE_GRACE_PERIOD`` seconds later."""
    process.terminate()
    await sleep(TERMINATE_GRACE_PERIOD)
    warnings.warn(
        RuntimeWarning(
            f"{process!r} was still running {TERMINATE_GRACE_PERIOD:g} seconds after SIGTERM; "
            "sending SIGKILL (pass deliver_cancel= to run_process() to stop it another way)"
        ),
        stacklevel=1,
    )
    process.kill()


async def _stop_and_reap(process: Process, deliver_cancel: Callable[[Process], Awaitable[Any]]) -> None:
    """Make the child exit (deliver_cancel, and SIGKILL if that fails) and
    reap it; not cancellable. Raises what deliver_cancel raised, once the
    child is reaped."""
    with CancelScope(shield=True):
        if process.poll() is not None:
            return
        failure: BaseException | None = None
        killer_scope = CancelScope()

        async def killer() -> None:
            nonlocal failure
            with killer_scope:
                try:
                    await deliver_cancel(process)
                except BaseException as exc:
                    if killer_scope.cancel_called and isinstance(exc, Cancelled):
                        raise  # we stopped it, because the child has exited
                    # It failed (or was cancelled by a scope of its own):
                    # fall back on the one signal the child cannot ignore.
                    if not isinstance(exc, Cancelled):
                        failure = exc
                    with contextlib.suppress(OSError):
                        process.kill()

        async with open_nursery() as tasks:
            tasks.start_soon(killer)
            await process.wait()
            # Exited: whatever deliver_cancel is still doing (sleeping out
            # the grace period, say) is moot.
            killer_scope.cancel()
        if failure is not None:
            raise failure


async def _feed(stream: SendStream, data: bytes | bytearray | memoryview) -> None:
    async with stream:
        try:
            await stream.send_all(data)
        except BrokenResourceError:
            pass  # the child exited (or closed its stdin) without reading it all


async def _collect(stream: ReceiveStream, chunks: list[bytes | bytearray]) -> None:
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)


async def run_process(
    command: Command,
    *,
    stdin: Any = b"",
    capture_stdout: bool = False,
    capture_stderr: bool = False,
    check: bool = True,
    deliver_cancel: Callable[[Process], Awaitable[Any]] | None = None,
    task_status: TaskStatus[Process] = TASK_STATUS_IGNORED,
    **options: Any,
) -> subprocess.CompletedProcess[bytes]:
    """Run a child process to completion and return a
    :class:`subprocess.CompletedProcess`.

    *command* and *options* are as for :func:`nursery.lowlevel.open_process`
    (no shell unless ``shell=True``).

    * *stdin*: bytes to feed to the child's standard input, which is then
      closed (the default, ``b""``, gives it end of file at once); or
      ``None`` to let it inherit ours; or a file descriptor or file object.
    * *capture_stdout*, *capture_stderr*: collect the output, returned as
      the result's ``stdout`` and ``stderr`` (else they are None and the
      child writes wherever ``stdout=``/``stderr=`` say, by default our own).
      Input and output are transferred concurrently, so a child that
      writes a lot before it reads all its input does not deadlock.
    * *check*: if true (the default) and the child's exit status is not 0,
      raise :exc:`subprocess.CalledProcessError`, with the captured
      ``output`` and ``stderr`` attached.

    Cancellation: when ``run_process`` is cancelled, it calls
    ``await deliver_cancel(process)`` to make the child exit, then waits for
    it and reaps it (shielded from the cancellation) before it lets the
    cancellation propagate. The default sends SIGTERM and, if the child is
    still running 5 seconds later (of the run's clock), SIGKILL with a
    :exc:`RuntimeWarning`. If ``deliver_cancel`` returns, we keep
    waiting for the child; if it raises, the child is killed with SIGKILL,
    reaped, and the error propagates. The child is always reaped.

    Under ``await a_nursery.start(run_process, ...)``, ``start`` returns the
    :class:`Process` as soon as it is running, and only then may
    ``stdin``, ``stdout`` or ``stderr`` be ``subprocess.PIPE`` (the
    streams, on the Process, are yours to use and close).

    Raises what :func:`~nursery.lowlevel.open_process` raises (e.g.
    :exc:`FileNotFoundError`), :exc:`TypeError`/:exc:`ValueError` for
    conflicting options. A checkpoint.
    """
    if isinstance(stdin, str):
        raise TypeError("run_process() got stdin as a str; pass bytes (e.g. text.encode())")
    if "input" in options:
        raise TypeError("run_process() takes the data for the child's standard input as stdin=, not input=")
    if "capture_output" in options:
        raise TypeError("run_process() has no capture_output=; use capture_stdout=True and/or capture_stderr=True")
    if "timeout" in options:
        raise TypeError(
            "run_process() has no timeout=; wrap it in nursery.fail_after(seconds) or move_on_after(seconds)"
        )
    if deliver_cancel is not None and not callable(deliver_cancel):
        raise TypeError(f"deliver_cancel must be an async function taking the Process, got {deliver_cancel!r}")
    if task_status is TASK_STATUS_IGNORED:
        for name, value in (("stdin", stdin), ("stdout", options.get("stdout")), ("stderr", options.get("stderr"))):
            if _is(subprocess.PIPE, value):
                raise ValueError(
                    f"run_process() with {name}=subprocess.PIPE needs nursery.start(run_process, ...), which "
                    f"returns the Process and so the pipe; or use "
                    + ("stdin=<bytes>" if name == "stdin" else f"capture_{name}=True")
                )
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        data: bytes | bytearray | memoryview | None = stdin
        options["stdin"] = subprocess.PIPE
    else:
        data = None
        options["stdin"] = stdin
    if capture_stdout:
        if options.get("stdout") is not None:
            raise ValueError("run_process() got both capture_stdout=True and stdout=; pass one of them")
        options["stdout"] = subprocess.PIPE
    if capture_stderr:
        if options.get("stderr") is not None:
            raise ValueError("run_process() got both capture_stderr=True and stderr=; pass one of them")
        options["stderr"] = subprocess.PIPE
    if deliver_cancel is None:
        deliver_cancel = terminate_then_kill

    process = await open_process(command, **options)
    stdout_chunks: list[bytes | bytearray] = []
    stderr_chunks: list[bytes | bytearray] = []
    try:
        async with open_nursery() as transfers:
            if data is not None:
                transfers.start_soon(_feed, process.stdin, data)
                process.stdin = process.stdio = None
            if capture_stdout:
                transfers.start_soon(_collect, process.stdout, stdout_chunks)
                process.stdout = process.stdio = None
            if capture_stderr:
                transfers.start_soon(_collect, process.stderr, stderr_chunks)
                process.stderr = None
            task_status.started(process)
            await process.wait()
    except BaseException:
        await _stop_and_reap(process, deliver_cancel)
        raise

    stdout = b"".join(stdout_chunks) if capture_stdout else None
    stderr = b"".join(stderr_chunks) if capture_stderr else None
    returncode = process._popen.returncode
    assert returncode is not None
    if check and returncode != 0:
        raise subprocess.CalledProcessError(returncode, process.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(process.args, returncode, stdout, stderr)

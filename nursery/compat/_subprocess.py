"""asyncio's high-level subprocess API: :func:`create_subprocess_exec`,
:func:`create_subprocess_shell` and :class:`Process`, whose ``stdin`` is a
:class:`StreamWriter` and whose ``stdout``/``stderr`` are
:class:`StreamReader` objects.

They sit on the running loop's ``subprocess_exec``/``subprocess_shell``
(compat's loop waits for the child on the kernel: see ``_loop_subprocess``).
Where 3.11 and 3.12+ differ, the running interpreter's behaviour is followed:

* 3.12+: ``communicate()`` without input still closes a piped stdin (3.11
  leaves it open);
* 3.12+: ``send_signal()`` on an exited but not yet reaped child is a no-op
  rather than reaping it first (this is the loop's transport, which is
  asyncio's own).
"""

from __future__ import annotations

import subprocess
import sys
from asyncio import protocols
from asyncio.log import logger
from typing import Any

from ._gather import gather
from ._policy import get_running_loop
from ._streams import _DEFAULT_LIMIT, FlowControlMixin, StreamReader, StreamWriter

__all__ = ["DEVNULL", "PIPE", "STDOUT", "Process", "SubprocessStreamProtocol", "create_subprocess_exec", "create_subprocess_shell"]

#: The special values for ``stdin``/``stdout``/``stderr`` (subprocess's).
PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL

#: 3.12+: communicate() closes a piped stdin also when given no input.
_CLOSE_STDIN_WITHOUT_INPUT = sys.version_info >= (3, 12)

# The child's standard streams, by file descriptor.
_STDIN, _STDOUT, _STDERR = 0, 1, 2


class SubprocessStreamProtocol(FlowControlMixin, protocols.SubprocessProtocol):
    """The protocol between a subprocess transport and the streams of a
    :class:`Process` (``asyncio.subprocess.SubprocessStreamProtocol``):
    it makes a :class:`StreamReader` for each piped output and a
    :class:`StreamWriter` for a piped stdin, and closes the transport once
    the child has exited and both outputs are at end of file."""

    def __init__(self, limit: int, loop: Any) -> None:
        super().__init__(loop=loop)
        self._limit = limit
        self.stdin: StreamWriter | None = None
        self.stdout: StreamReader | None = None
        self.stderr: StreamReader | None = None
        self._transport: Any = None
        self._process_exited = False
        # The output pipes still open: the transport is closed when there
        # are none left and the child has exited.
        self._pipe_fds: list[int] = []
        self._stdin_closed = self._loop.create_future()

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        for name in ("stdin", "stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None:
                parts.append(f"{name}={stream!r}")
        return f"<{' '.join(parts)}>"

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self._transport = transport
        for fd in (_STDOUT, _STDERR):
            pipe = transport.get_pipe_transport(fd)
            if pipe is not None:
                reader = StreamReader(limit=self._limit, loop=self._loop)
                reader.set_transport(pipe)
                setattr(self, "stdout" if fd == _STDOUT else "stderr", reader)
                self._pipe_fds.append(fd)
        pipe = transport.get_pipe_transport(_STDIN)
        if pipe is not None:
            self.stdin = StreamWriter(pipe, protocol=self, reader=None, loop=self._loop)

    def _reader(self, fd: int) -> StreamReader | None:
        if fd == _STDOUT:
            return self.stdout
        if fd == _STDERR:
            return self.stderr
        return None

    def pipe_data_received(self, fd: int, data: bytes) -> None:  # type: ignore[override]
        reader = self._reader(fd)
        if reader is not None:
            reader.feed_data(data)

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        if fd == _STDIN:
            if self.stdin is not None:
                self.stdin.close()
            # Wakes drain() calls waiting on a paused stdin.
            self.connection_lost(exc)
            if exc is None:
                self._stdin_closed.set_result(None)
            else:
                self._stdin_closed.set_exception(exc)
                # Awaiting stdin.wait_closed() is optional: an error nobody
                # asked for is not "never retrieved".
                self._stdin_closed._log_traceback = False
            return
        reader = self._reader(fd)
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        if fd in self._pipe_fds:
            self._pipe_fds.remove(fd)
        self._maybe_close_transport()

    def process_exited(self) -> None:
        self._process_exited = True
        self._maybe_close_transport()

    def _maybe_close_transport(self) -> None:
        if self._process_exited and not self._pipe_fds:
            self._transport.close()
            self._transport = None

    def _get_close_waiter(self, stream: Any) -> Any:
        # What StreamWriter.wait_closed() waits for.
        if stream is self.stdin:
            return self._stdin_closed
        return None


class Process:
    """A child process started by :func:`create_subprocess_exec` or
    :func:`create_subprocess_shell` (``asyncio.subprocess.Process``).

    ``stdin`` is a :class:`StreamWriter` and ``stdout``/``stderr`` are
    :class:`StreamReader` objects for the streams opened with ``PIPE``
    (None otherwise); ``pid`` is the child's process id and ``returncode``
    its exit status once it has exited (``-N`` if signal ``N`` killed it),
    None before."""

    def __init__(self, transport: Any, protocol: SubprocessStreamProtocol, loop: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = loop
        self.stdin = protocol.stdin
        self.stdout = protocol.stdout
        self.stderr = protocol.stderr
        self.pid: int = transport.get_pid()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid}>"

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    async def wait(self) -> int:
        """Wait for the child to exit and return its exit status.
        Cancelling the wait leaves the child running.

        With ``stdout=PIPE`` or ``stderr=PIPE``, a child that writes more
        than the pipe holds blocks until someone reads: read the streams (or
        use :meth:`communicate`), or this waits forever."""
        return await self._transport._wait()

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the child. :exc:`ProcessLookupError` once the
        process is known to be gone (its transport is closed)."""
        self._transport.send_signal(signal)

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        self._transport.terminate()

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        self._transport.kill()

    async def communicate(self, input: bytes | None = None) -> tuple[bytes | None, bytes | None]:
        """Send *input* to stdin (then close it), read stdout and stderr to
        their end, wait for the child to exit, and return ``(stdout_data,
        stderr_data)`` (None for a stream that is not a pipe). Reading and
        writing go on at once, so a child that writes a lot while it reads
        does not deadlock. A child that stops reading its input early
        (``BrokenPipeError``, ``ConnectionResetError``) is not an error.
        Cancelling it leaves the child running."""
        if self.stdin is not None and (input is not None or _CLOSE_STDIN_WITHOUT_INPUT):
            feed = self._feed_stdin(input)
        else:
            feed = self._nothing()
        out = self._read_to_end(_STDOUT) if self.stdout is not None else self._nothing()
        err = self._read_to_end(_STDERR) if self.stderr is not None else self._nothing()
        _, stdout_data, stderr_data = await gather(feed, out, err)
        await self.wait()
        return stdout_data, stderr_data

    async def _feed_stdin(self, input: bytes | None) -> None:
        stdin = self.stdin
        assert stdin is not None
        debug = self._loop.get_debug()
        try:
            if input is not None:
                stdin.write(input)
                if debug:
                    logger.debug("%r communicate: feed stdin (%s bytes)", self, len(input))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The child exited (or closed its stdin) without reading it all.
            if debug:
                logger.debug("%r communicate: stdin got %r", self, exc)
        if debug:
            logger.debug("%r communicate: close stdin", self)
        stdin.close()

    async def _read_to_end(self, fd: int) -> bytes:
        stream = self.stdout if fd == _STDOUT else self.stderr
        assert stream is not None
        name = "stdout" if fd == _STDOUT else "stderr"
        debug = self._loop.get_debug()
        if debug:
            logger.debug("%r communicate: read %s", self, name)
        data = await stream.read()
        if debug:
            logger.debug("%r communicate: close %s", self, name)
        self._transport.get_pipe_transport(fd).close()
        return data

    @staticmethod
    async def _nothing() -> None:
        return None


async def create_subprocess_exec(
    program: Any,
    *args: Any,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Start ``program`` with ``args`` (no shell) and return its
    :class:`Process`. ``stdin``/``stdout``/``stderr`` take ``PIPE``,
    ``DEVNULL``, ``STDOUT`` (stderr only), a file object or a descriptor;
    ``limit`` is the buffer limit of the output :class:`StreamReader`
    objects; other keyword arguments go to :class:`subprocess.Popen`
    (``text``, ``encoding``, ``errors``, ``universal_newlines`` and a
    ``bufsize`` other than 0 are refused with :exc:`ValueError`: the streams
    carry bytes)."""
    loop = get_running_loop()

    def protocol_factory() -> SubprocessStreamProtocol:
        return SubprocessStreamProtocol(limit=limit, loop=loop)

    transport, protocol = await loop.subprocess_exec(
        protocol_factory, program, *args, stdin=stdin, stdout=stdout, stderr=stderr, **kwds
    )
    return Process(transport, protocol, loop)


async def create_subprocess_shell(
    cmd: str | bytes,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run the shell command line *cmd* (``/bin/sh -c cmd``) and return its
    :class:`Process`; the options are :func:`create_subprocess_exec`'s. The
    caller quotes anything it interpolates (:func:`shlex.quote`)."""
    loop = get_running_loop()

    def protocol_factory() -> SubprocessStreamProtocol:
        return SubprocessStreamProtocol(limit=limit, loop=loop)

    transport, protocol = await loop.subprocess_shell(
        protocol_factory, cmd, stdin=stdin, stdout=stdout, stderr=stderr, **kwds
    )
    return Process(transport, protocol, loop)

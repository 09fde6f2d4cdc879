"""HTTP load for the aiohttp workload, from a separate process.

``Load(port)`` starts a generator that sends keep-alive ``GET /`` requests
over CONNECTIONS connections to 127.0.0.1:port (one request in flight per
connection, no pipelining) until ``stop()``; ``wait()`` returns how many
completed.  The server under test calls ``stop()`` when it has served what it
measures, so the measured window is the server's own.

The generator is wrk (Debian package ``wrk``) when it is on PATH, so that
the load costs little next to the server; otherwise this module itself, run
as ``python -m bench.loadgen PORT``: a selectors loop over raw non-blocking
sockets.  Both stop on SIGINT and print ``loadgen: requests=N errors=E``.
"""

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

CONNECTIONS = 50
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SCRIPT = Path(__file__).with_name("wrk_report.lua")
#: Seconds a generator runs at most: a stuck server fails the measurement
#: instead of hanging it.
LIMIT = 120


def describe():
    """Which generator Load uses, for the report."""
    wrk = shutil.which("wrk")
    if wrk:
        done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        version = (done.stdout or done.stderr).split()[1:2]
        return f"wrk {version[0] if version else '?'}, 1 thread, {CONNECTIONS} connections"
    return f"bench.loadgen (Python), {CONNECTIONS} connections"


#: The CPUs this process may use, read before Load pins it to one of them: a
#: worker makes a Load per repetition, and the later ones must split the same
#: CPUs, not the one the first Load left the server on (then wrk inherited that
#: CPU and shared it with the server, ~1 context switch per request).
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _split_cpus():
    """(server's CPU, generator's CPU), or (None, None) when they can't be kept apart."""
    cpus = _CPUS
    if len(cpus) < 2 or not shutil.which("taskset"):
        return None, None
    return cpus[0], cpus[-1]


class Load:
    """A running load generator process aimed at 127.0.0.1:port."""

    def __init__(self, port):
        wrk = shutil.which("wrk")
        if wrk:
            command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{LIMIT}s", "--timeout", "10s"]
            command += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}/"]
        else:
            command = [sys.executable, "-m", "bench.loadgen", str(port)]
        server_cpu, load_cpu = _split_cpus()
        if load_cpu is not None:
            # Server and generator on cores of their own: sharing them made
            # the requests per second swing by up to 40% between runs.
            os.sched_setaffinity(0, {server_cpu})
            command = ["taskset", "-c", str(load_cpu), *command]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """Ask the generator to finish (it reports what it did so far)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)

    def wait(self):
        """Wait for the generator to end; return its completed requests, or raise on any error."""
        try:
            out, err = self.process.communicate(timeout=LIMIT + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise RuntimeError("load generator did not stop") from None
        found = re.search(r"^loadgen: requests=(\d+) errors=(\d+)$", out, re.MULTILINE)
        if not found:
            raise RuntimeError(f"load generator failed ({self.process.returncode}): {(err or out).strip()[-500:]}")
        requests, errors = map(int, found.groups())
        if errors:
            raise RuntimeError(f"load generator: {errors} errors in {requests} requests")
        return requests


class _Connection:
    """One keep-alive connection: send a request, read its whole response, repeat."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = b""

    def response_done(self):
        """True once the buffer holds a whole response (then consumed); needs Content-Length."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = self.buffer[:head_end].lower()
        if not head.startswith(b"http/1.1 200 "):
            raise RuntimeError(f"bad response: {self.buffer[:200]!r}")
        end = head_end + 4 + int(re.search(rb"\r\ncontent-length: *(\d+)", head).group(1))
        if len(self.buffer) < end:
            return False
        self.buffer = self.buffer[end:]
        return True


def generate(port):
    """The fallback generator: load until SIGINT (or LIMIT); return the completed requests."""
    completed = 0
    selector = selectors.DefaultSelector()
    connections = [_Connection(port) for _ in range(CONNECTIONS)]
    try:
        for conn in connections:
            conn.sock.sendall(REQUEST)
            selector.register(conn.sock, selectors.EVENT_READ, conn)
        signal.alarm(LIMIT)
        while True:
            for key, _ in selector.select():
                conn = key.data
                data = conn.sock.recv(65536)
                if not data:
                    raise RuntimeError("server closed a connection")
                conn.buffer += data
                while conn.response_done():
                    completed += 1
                    conn.sock.sendall(REQUEST)
    except KeyboardInterrupt:
        return completed
    finally:
        for conn in connections:
            conn.sock.close()
        selector.close()


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, signal.default_int_handler)
    print(f"loadgen: requests={generate(int(sys.argv[1]))} errors=0", flush=True)

"""The seed's stream example (seed_examples/18_streams_echo_client.py) with
the echo server it expects on 127.0.0.1:8888, run the three ways of
test_seed_examples.py (stock asyncio, stock asyncio on compat's loop, the
compat module): each prints what the asyncio documentation shows.
(test_seed_examples.py runs it with nobody listening: ConnectionRefusedError
everywhere.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES_DIR = Path(__file__).resolve().parent / "seed_examples"
EXAMPLE = "18_streams_echo_client.py"
MODES = ("stock", "compat-loop", "compat-module")


def _echo_server(listener: socket.socket, stop: threading.Event) -> None:
    # One connection at a time (the runs are sequential), until told to stop.
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(60)
            while data := conn.recv(4096):
                conn.sendall(data)


def test_streams_example_against_an_echo_server() -> None:
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 8888))
    except OSError:
        listener.close()
        pytest.skip("127.0.0.1:8888 is in use")
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()
    server = threading.Thread(target=_echo_server, args=(listener, stop))
    server.start()
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONASYNCIODEBUG", None)
    outputs = {}
    try:
        for mode in MODES:
            proc = subprocess.run(
                [sys.executable, str(EXAMPLES_DIR / "_runner.py"), mode, EXAMPLE],
                cwd=EXAMPLES_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            outputs[mode] = (proc.returncode, proc.stdout, proc.stderr)
    finally:
        stop.set()
        server.join(timeout=60)
        listener.close()
    for mode in MODES:
        assert outputs[mode] == (
            0,
            "Send: 'Hello World!'\nReceived: 'Hello World!'\nClose the connection\n",
            "",
        ), mode

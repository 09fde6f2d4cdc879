"""Fixtures shared by the kernel's I/O tests."""

from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest

import nursery._core._run as _run_module
from nursery._core._io_epoll import EpollIOManager
from nursery._core._io_select import SelectIOManager

BACKENDS = {"epoll": EpollIOManager, "select": SelectIOManager}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run the test's kernel with each I/O backend in turn."""
    cls = BACKENDS[request.param]
    monkeypatch.setattr(_run_module, "make_io_manager", lambda runner, wakeup: cls(runner, wakeup))
    return cls


@pytest.fixture
def sockpair() -> Iterator[tuple[Any, Any]]:
    """A connected pair of non-blocking sockets, closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()

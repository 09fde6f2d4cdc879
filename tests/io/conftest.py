"""Fixtures shared by the subprocess tests."""

from __future__ import annotations

import os

import pytest

import nursery._subprocess_wait


def _has_pidfd() -> bool:
    if getattr(os, "pidfd_open", None) is None:
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


@pytest.fixture(params=["pidfd", "thread"])
def wait_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each way of waiting for a child: the pidfd (where
    this system has one) and the waiter-thread fallback."""
    if request.param == "pidfd":
        if not _has_pidfd():
            pytest.skip("no pidfd_open on this system")
    else:
        monkeypatch.setattr(nursery._subprocess_wait, "pidfd_open", None)
    return request.param

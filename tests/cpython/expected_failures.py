"""CPython asyncio suite tests that are expected to fail on compat's loop,
each with the reason. Keys are ``module::Class.test``.

Only tests that depend on stock asyncio internals compat's loop legitimately
does not share belong here; a compat bug is fixed, not listed.
"""

from __future__ import annotations

#: On every supported Python.
COMMON: dict[str, str] = {
    "test_subprocess::GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher": (
        "installs a mock child watcher and expects create_subprocess_exec to consult it; "
        "compat's loop waits for its children on the kernel (pidfd or a waiter thread), "
        "never through the policy's child watcher"
    ),
}

#: Only on one minor version.
BY_VERSION: dict[tuple[int, int], dict[str, str]] = {
    (3, 11): {},
    (3, 12): {},
    (3, 13): {},
}


def expected_failures(version: tuple[int, int]) -> dict[str, str]:
    out = dict(COMMON)
    out.update(BY_VERSION.get(tuple(version), {}))
    return out

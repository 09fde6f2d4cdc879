"""CPython asyncio suite tests that are expected to fail on compat's loop,
each with the reason. Keys are ``module::Class.test``."""

from __future__ import annotations

#: On every supported Python.
COMMON: dict[str, str] = {}

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

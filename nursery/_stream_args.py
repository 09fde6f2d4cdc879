"""Checking the arguments of stream methods, so that every stream in the
library rejects bad input the same way, with the same messages."""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["check_max_bytes", "check_payload"]


def check_max_bytes(max_bytes: Any, what: str = "receive_some()") -> int | None:
    """Return *max_bytes* as an int (or None), or raise :exc:`TypeError` /
    :exc:`ValueError` saying what is wrong with it."""
    if max_bytes is None:
        return None
    try:
        count = operator.index(max_bytes)
    except TypeError:
        raise TypeError(
            f"{what} max_bytes must be a positive int or None, got {type(max_bytes).__name__} {max_bytes!r}"
        ) from None
    if count < 1:
        raise ValueError(f"{what} max_bytes must be at least 1, got {count}")
    return count


def check_payload(data: Any, what: str = "send_all()") -> None:
    """Raise :exc:`TypeError` unless *data* is bytes, a bytearray or a
    memoryview. (Checked, not just converted: ``bytes(5)`` would quietly
    send five zero bytes, and a str has no single right encoding.)"""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        hint = " (encode it first, e.g. data.encode())" if isinstance(data, str) else ""
        raise TypeError(
            f"{what} expected bytes, bytearray or memoryview, got {type(data).__name__} {data!r:.60}{hint}"
        )

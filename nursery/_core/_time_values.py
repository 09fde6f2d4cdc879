"""Checking the numbers users pass as times, deadlines and durations."""

from __future__ import annotations

import math
from typing import Any


def check_time(value: Any, not_a_number: str, nan: str, negative: str | None = None) -> float:
    """Return *value* as a float, or raise with the matching message (each
    may use ``{value!r}``): TypeError *not_a_number* for anything that is not
    a number (strings included: ``float("5")`` works, but a string here is a
    mistake), ValueError *nan* for NaN, and, if *negative* is given,
    ValueError *negative* for values below zero."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(not_a_number.format(value=value)) from None
    if math.isnan(number):
        raise ValueError(nan.format(value=value))
    if negative is not None and number < 0:
        raise ValueError(negative.format(value=value))
    return number

"""Naming the public objects after the public modules that export them."""

from __future__ import annotations

from typing import Any


def claim_public_names(namespace: dict[str, Any], module: str) -> None:
    """Set ``__module__`` of every object in ``namespace["__all__"]`` that is
    defined in a private module to *module*, so reprs, tracebacks and the
    generated reference show ``nursery.CancelScope``, not
    ``nursery._core._cancel_scope.CancelScope``."""
    for name in namespace["__all__"]:
        obj = namespace[name]
        defined_in = getattr(obj, "__module__", None) or ""
        if defined_in.startswith("nursery.") and "._" in defined_in:
            try:
                obj.__module__ = module
            except (AttributeError, TypeError):
                pass  # an object whose class does not allow it

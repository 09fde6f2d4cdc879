"""Naming the public objects after the public modules that export them, and
loading the less used ones on first use."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

#: For each public module, the names it loads on first use (see
#: :func:`lazy_attributes`) and the module each is loaded from.
_LAZY: dict[str, dict[str, str]] = {}


def claim_public_names(namespace: dict[str, Any], module: str) -> None:
    """Set ``__module__`` of every object in ``namespace["__all__"]`` that is
    defined in a private module to *module*, so reprs, tracebacks and the
    generated reference show ``nursery.CancelScope``, not
    ``nursery._core._cancel_scope.CancelScope``. The names *module* loads
    on first use are claimed when they are loaded (and first of all, those
    that *module*'s import has loaded: see :func:`claim_lazy_names`)."""
    claim_lazy_names()
    lazy = _LAZY.get(module, {})
    for name in namespace["__all__"]:
        if name not in lazy:
            _claim(namespace[name], module)


def _claim(obj: Any, module: str) -> None:
    defined_in = getattr(obj, "__module__", None) or ""
    if defined_in.startswith("nursery.") and "._" in defined_in:
        try:
            obj.__module__ = module
        except (AttributeError, TypeError):
            pass  # an object whose class does not allow it


def lazy_attributes(
    module: str, namespace: dict[str, Any], lazy: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` (PEP 562) that make each
    name in *lazy* an attribute of the public module *module* (whose globals
    are *namespace*), imported from the module *lazy* maps it to when it is
    first used: ``lazy = {"SSLStream": "nursery._ssl", "socket":
    "nursery.socket"}``; a name that is the submodule ``module.name`` is
    that module.

    This is for the subsystems a program may never use (TLS, subprocesses,
    networking, signals): ``import nursery`` then does not load their
    modules, nearly half of the package. Once loaded, a name is a plain
    global of *module*: the cost is paid once, on first use, and later uses
    are ordinary attribute lookups.

    Every lazy name is claimed for *module* (see :func:`claim_public_names`)
    once the module defining it is loaded, whichever way it is loaded: by
    this module's ``__getattr__``, another public module's, or by the import
    of a public module (which ends with :func:`claim_public_names` or
    :func:`claim_lazy_names`); so a repr or a task name never shows the
    private module. (No public module imports them at its own import; a test
    checks it.)
    """
    _LAZY[module] = lazy

    def __getattr__(name: str) -> Any:
        try:
            source = lazy[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        imported = importlib.import_module(source)
        value = imported if source == f"{module}.{name}" else getattr(imported, name)
        namespace[name] = value
        claim_lazy_names()
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.keys() | lazy.keys())

    # Some of these modules may already be loaded (as dependencies of
    # another public module's lazy names).
    claim_lazy_names()
    return __getattr__, __dir__


def claim_lazy_names() -> None:
    """Claim the lazy names (see :func:`lazy_attributes`) of every public
    module whose defining module is loaded. Cheap, and idempotent."""
    for module, lazy in list(_LAZY.items()):
        for name, source in lazy.items():
            imported = sys.modules.get(source)
            if imported is not None and source != f"{module}.{name}":
                # A module still being imported may not define the name yet:
                # it is claimed by the __getattr__ call that loads it, when
                # its import has finished.
                obj = getattr(imported, name, None)
                if obj is not None:
                    _claim(obj, module)

"""What ``import nursery`` and ``import nursery.compat`` load, and the names
the public modules load on first use (networking, TLS, subprocesses,
signals, compat's streams and subprocesses: see ``nursery/__init__.py``).

Each check runs in a fresh interpreter: this one has loaded everything."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nursery
import nursery.compat
import nursery.lowlevel
from nursery import _public

PUBLIC_MODULES = ["nursery", "nursery.lowlevel", "nursery.compat"]


def run_python(code: str) -> Any:
    """Run *code* in a fresh interpreter; return what it prints, as JSON."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("module", ["nursery", "nursery.compat"])
def test_import_loads_no_lazy_module(module: str) -> None:
    loaded = run_python(
        f"import json, sys, {module}\n"
        "from nursery import _public\n"
        "print(json.dumps(sorted({src for lazy in _public._LAZY.values() for src in lazy.values()} & set(sys.modules))))"
    )
    # compat's event loop is built on nursery.lowlevel.
    allowed = {"nursery.lowlevel"} if module == "nursery.compat" else set()
    assert set(loaded) - allowed == set(), (
        f"`import {module}` loaded {sorted(set(loaded) - allowed)}, which the public modules "
        "load on first use only (their lazy names, nursery/_public.py); an eager import of "
        "one of them, or of something that imports one, has crept in"
    )


def test_lazy_names_are_in_all_and_dir() -> None:
    for name in PUBLIC_MODULES:
        module = sys.modules[name]
        lazy = _public._LAZY[name]
        submodules = {n for n, src in lazy.items() if src == f"{name}.{n}"}
        assert sorted(set(lazy) - submodules - set(module.__all__)) == [], f"{name}: lazy names missing from __all__"
        assert sorted(set(module.__all__) - set(dir(module))) == [], f"{name}: __all__ names missing from dir()"
    # Once loaded, a lazy name is a plain global: later uses cost nothing more.
    ssl_stream = nursery.SSLStream
    assert vars(nursery)["SSLStream"] is ssl_stream
    with pytest.raises(AttributeError, match="module 'nursery' has no attribute 'no_such_name'"):
        nursery.no_such_name  # type: ignore[attr-defined]  # noqa: B018


# Each scenario uses one public name or module first, in a fresh interpreter,
# then reports the __module__ of every lazy name whose module is loaded by
# then: it must be the public module's, whatever the way in.
CLAIMS = """
import importlib, json, sys
from nursery import _public
mod = importlib.import_module({module!r})
if {name!r}:
    getattr(mod, {name!r})
print(json.dumps([
    [public, name, getattr(sys.modules[src], name).__module__]
    for public, lazy in _public._LAZY.items()
    for name, src in lazy.items()
    if src in sys.modules and src != public + "." + name
]))
"""


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("nursery", "serve_ssl_over_tcp"),  # loads the TCP modules too
        ("nursery.lowlevel", "open_process"),  # loads nursery.Process
        ("nursery.compat.subprocess", ""),  # loads compat's streams
        ("nursery.testing", ""),
    ],
)
def test_lazy_names_are_named_after_their_public_module(module: str, name: str) -> None:
    claims = run_python(CLAIMS.format(module=module, name=name))
    assert claims, "the scenario loaded no lazy name"
    wrong = [f"{public}.{name} is named {got}" for public, name, got in claims if got != public]
    assert wrong == [], f"after using {module}.{name} first: " + "; ".join(wrong)


def test_type_checkers_see_the_lazy_names() -> None:
    # The block under `if TYPE_CHECKING:` in each public module imports its
    # lazy names, so that type checkers and IDEs know them.
    for name in PUBLIC_MODULES:
        module = sys.modules[name]
        seen: set[str] = set()
        for node in ast.walk(ast.parse(Path(module.__file__ or "").read_text())):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                for stmt in node.body:
                    assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
                    source = importlib.util.resolve_name("." * stmt.level + (stmt.module or ""), module.__package__)
                    for alias in stmt.names:
                        if alias.name == "*":
                            seen.update(importlib.import_module(source).__all__)
                        else:
                            seen.add(alias.asname or alias.name)
        assert seen == set(_public._LAZY[name]), f"{module.__file__}: the TYPE_CHECKING imports and the lazy names differ"

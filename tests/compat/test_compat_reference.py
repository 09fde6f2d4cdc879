"""docs/compat_reference.rst tells the truth about the running interpreter:
every name stock asyncio exports is listed, with the status that
``nursery.compat`` really has for it (native, stock object, not provided);
every name compat exports is listed; every method of asyncio's loop
interface is listed with where compat's loop gets it from."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from nursery import compat

PAGE = Path(__file__).resolve().parent.parent.parent / "docs" / "compat_reference.rst"
LOOP_HEADING = "The event loop's methods"
_ROW = re.compile(r"^   \* - ``(?P<name>[^`]+)``\n     - (?P<second>[^\n]+)\n(?:     - (?P<third>[^\n]*)\n)?", re.M)


def _rows(text: str) -> dict[str, tuple[str, str | None]]:
    rows: dict[str, tuple[str, str | None]] = {}
    for m in _ROW.finditer(text):
        assert m["name"] not in rows, f"{m['name']} is listed twice"
        rows[m["name"]] = (m["second"].strip(), (m["third"] or "").strip() or None)
    return rows


@pytest.fixture(scope="module")
def tables() -> tuple[dict[str, tuple[str, str | None]], dict[str, tuple[str, str | None]]]:
    text = PAGE.read_text(encoding="utf-8")
    names, loop = text.split(LOOP_HEADING)
    return _rows(names), _rows(loop)


def _version(since: str) -> tuple[int, int]:
    major, minor = since.split(".")
    return int(major), int(minor)


def test_every_asyncio_name_is_listed(tables: object) -> None:
    names, _ = tables  # type: ignore[misc]
    missing = sorted(set(asyncio.__all__) - set(names))
    assert missing == [], f"add these names of asyncio {sys.version_info[:2]} to {PAGE.name}"


def test_every_compat_name_is_listed(tables: object) -> None:
    names, _ = tables  # type: ignore[misc]
    missing = sorted(set(compat.__all__) - set(names))
    assert missing == [], f"add these names of nursery.compat to {PAGE.name}"


def test_statuses_are_true(tables: object) -> None:
    names, _ = tables  # type: ignore[misc]
    wrong = []
    for name, (status, since) in names.items():
        assert since is not None and re.fullmatch(r"3\.1[1-9]", since), (name, since)
        ours = getattr(compat, name, None)
        stock = getattr(asyncio, name, None)
        if status == "native":
            ok = ours is not None and ours is not stock
        elif status == "stock object":
            if sys.version_info[:2] < _version(since):
                ok = ours is None and stock is None
            else:
                ok = ours is not None and ours is stock
        elif status == "not provided":
            ok = ours is None
        else:
            raise AssertionError(f"unknown status {status!r} for {name}")
        if not ok:
            wrong.append(f"{name}: the page says {status!r}")
    assert wrong == [], f"update {PAGE.name}: " + "; ".join(wrong)


def test_since_is_true(tables: object) -> None:
    names, _ = tables  # type: ignore[misc]
    for name, (_status, since) in names.items():
        if name in ("EventLoopPolicy", "install"):
            continue  # compat's own
        in_asyncio = hasattr(asyncio, name)
        assert in_asyncio == (sys.version_info[:2] >= _version(since or "")), name


def _origin(loop: compat.EventLoop, name: str) -> str:
    if name in vars(loop):
        return "kernel"  # set by compat's __init__ (time: the kernel's clock)
    attr = getattr(loop, name)
    module = getattr(getattr(attr, "__func__", attr), "__module__", "") or ""
    if module.startswith("nursery."):
        return "kernel"
    if module.startswith("asyncio."):
        return "asyncio"
    raise AssertionError(f"{name} comes from {module!r}")


def test_loop_methods_are_listed_with_their_origin(tables: object) -> None:
    _, methods = tables  # type: ignore[misc]
    interface = {n for n in dir(asyncio.AbstractEventLoop) if not n.startswith("_")}
    assert sorted(interface - set(methods)) == []
    loop = compat.new_event_loop()
    try:
        wrong = [
            f"{name}: the page says {code!r}, it is {_origin(loop, name)!r}"
            for name, (code, _notes) in methods.items()
            if _origin(loop, name) != code
        ]
    finally:
        loop.close()
    assert wrong == [], f"update {PAGE.name}: " + "; ".join(wrong)


def test_claims_in_the_notes() -> None:
    # A few notes state facts about compat's objects; keep them true.
    from nursery.compat import _handles

    compat.new_event_loop().close()  # (the first compat loop makes asyncio.Task answer for both kinds)
    assert issubclass(compat.Task, asyncio.Task)
    assert not issubclass(compat.Task, asyncio.tasks.Task)
    assert issubclass(_handles.Handle, asyncio.Handle)
    assert issubclass(_handles.TimerHandle, asyncio.TimerHandle)
    assert issubclass(compat.EventLoopPolicy, asyncio.DefaultEventLoopPolicy)  # type: ignore[attr-defined]
    assert isinstance(compat.new_event_loop.__call__, object)
    loop = compat.new_event_loop()
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)

        async def main() -> bool:
            return asyncio.isfuture(compat.create_task(asyncio.sleep(0)))

        assert loop.run_until_complete(main()) is True
    finally:
        loop.close()
    for name in ("PIPE", "STDOUT", "DEVNULL", "Process"):
        assert hasattr(compat.subprocess, name)  # type: ignore[attr-defined]

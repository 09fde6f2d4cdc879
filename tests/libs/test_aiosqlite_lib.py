"""aiosqlite, unmodified, on stock asyncio and compat's loop.

aiosqlite runs each connection's sqlite3 calls in a thread of its own and
hands results back with ``loop.call_soon_threadsafe`` on futures: queries,
cursors, transactions seen from a second connection, and several connections
working concurrently on one database file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from libs_harness import gather_all, require

aiosqlite = require("aiosqlite")

pytestmark = [pytest.mark.libs, pytest.mark.timeout(60)]


def test_queries(run_mixed: Any) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with aiosqlite.connect(":memory:") as db:
            await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
            await db.executemany("INSERT INTO t (name, score) VALUES (?, ?)", [(f"n{i}", i / 2) for i in range(1000)])
            await db.commit()
            async with db.execute("SELECT count(*), sum(score) FROM t") as cursor:
                out["aggregate"] = await cursor.fetchone()
            db.row_factory = aiosqlite.Row
            async with db.execute("SELECT id, name FROM t WHERE id <= ? ORDER BY id", (3,)) as cursor:
                out["rows"] = [dict(row) async for row in cursor]
            db.row_factory = None
            out["fetchall"] = await db.execute_fetchall("SELECT name FROM t WHERE score > 498")
            try:
                await db.execute("SELECT * FROM missing")
            except sqlite3.OperationalError as exc:
                out["error"] = str(exc)
            # Cursor ids and lastrowid across the thread boundary.
            cursor = await db.execute("INSERT INTO t (name, score) VALUES ('last', 0)")
            out["lastrowid"] = cursor.lastrowid
            await cursor.close()
        return out

    out = run_mixed(main)
    assert out["aggregate"] == (1000, sum(i / 2 for i in range(1000)))
    assert out["rows"] == [{"id": 1, "name": "n0"}, {"id": 2, "name": "n1"}, {"id": 3, "name": "n2"}]
    assert out["fetchall"] == [("n997",), ("n998",), ("n999",)]
    assert out["error"] == "no such table: missing"
    assert out["lastrowid"] == 1001


def test_transactions_and_concurrency(run_mixed: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with aiosqlite.connect(path) as writer, aiosqlite.connect(path) as reader:
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
            await writer.commit()

            # Uncommitted writes are invisible to the other connection;
            # a rollback discards them; a commit publishes them.
            await writer.execute("INSERT INTO kv VALUES ('a', 1)")
            out["before_commit"] = await reader.execute_fetchall("SELECT * FROM kv")
            await writer.rollback()
            out["after_rollback"] = await writer.execute_fetchall("SELECT * FROM kv")
            await writer.execute("INSERT INTO kv VALUES ('b', 2)")
            await writer.commit()
            out["after_commit"] = await reader.execute_fetchall("SELECT * FROM kv")

            # A failing transaction as a unit.
            try:
                await writer.execute("INSERT INTO kv VALUES ('c', 3)")
                await writer.execute("INSERT INTO kv VALUES ('b', 4)")  # duplicate key
                await writer.commit()
            except sqlite3.IntegrityError as exc:
                out["integrity"] = str(exc)
                await writer.rollback()
            out["after_failed"] = await reader.execute_fetchall("SELECT k, v FROM kv ORDER BY k")

        # Several connections (each with its thread) at once: 8 writers, each
        # adding its rows in its own transaction, while the loop keeps
        # ticking.
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        async def worker(i: int) -> int:
            async with aiosqlite.connect(path, timeout=30) as db:
                for j in range(25):
                    await db.execute("INSERT INTO kv VALUES (?, ?)", (f"w{i}-{j}", i * 100 + j))
                await db.commit()
                rows = await db.execute_fetchall("SELECT count(*) FROM kv WHERE k LIKE ?", (f"w{i}-%",))
                return rows[0][0]

        tick_task = asyncio.ensure_future(ticker())
        out["counts"] = await gather_all(run_mixed, *(worker(i) for i in range(8)))
        stop.set()
        await tick_task
        out["ticked"] = ticks > 0
        async with aiosqlite.connect(path) as db:
            out["total"] = (await db.execute_fetchall("SELECT count(*), sum(v) FROM kv"))[0]
        return out

    out = run_mixed(main)
    assert out["before_commit"] == []
    assert out["after_rollback"] == []
    assert out["after_commit"] == [("b", 2)]
    assert out["integrity"] == "UNIQUE constraint failed: kv.k"
    assert out["after_failed"] == [("b", 2)]
    assert out["counts"] == [25] * 8
    assert out["ticked"] is True
    assert out["total"] == (201, 2 + sum(i * 100 + j for i in range(8) for j in range(25)))

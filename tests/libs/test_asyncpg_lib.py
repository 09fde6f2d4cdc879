"""asyncpg, unmodified, on stock asyncio and compat's loop, against a real
PostgreSQL server that the ``postgres`` fixture starts on loopback.

Connections over TCP and the unix socket, queries and types, prepared
statements, transactions (commit, rollback, savepoints), a pool under
concurrent load, COPY, LISTEN/NOTIFY, and the cancellation of a running
query: asyncpg answers a cancelled ``await`` by opening a second connection
to send PostgreSQL's cancel request, and the first connection stays usable.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import time
from typing import Any

import pytest

from libs_harness import Postgres, gather_all, require

asyncpg = require("asyncpg")

pytestmark = [pytest.mark.libs, pytest.mark.timeout(120)]


def connect(pg: Postgres, **kwargs: Any) -> Any:
    return asyncpg.connect(host=pg.host, port=pg.port, user=pg.user, database=pg.database, **kwargs)


def test_queries_and_prepared_statements(run_mixed: Any, postgres: Postgres) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        conn = await connect(postgres)
        try:
            out["one"] = await conn.fetchval("SELECT 1 + 1")
            row = await conn.fetchrow(
                "SELECT $1::int AS i, $2::text AS t, $3::numeric AS n, $4::timestamptz AS ts, $5::int[] AS a, $6::jsonb::text AS j",
                7,
                "wörd",
                decimal.Decimal("1.25"),
                datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
                [1, 2, 3],
                '{"k": [1, null]}',
            )
            out["row"] = dict(row)
            await conn.execute("CREATE TEMP TABLE items (id serial PRIMARY KEY, name text NOT NULL, qty int)")
            await conn.executemany("INSERT INTO items (name, qty) VALUES ($1, $2)", [(f"item{i}", i) for i in range(500)])
            stmt = await conn.prepare("SELECT name, qty FROM items WHERE qty >= $1 ORDER BY qty LIMIT $2")
            out["prepared"] = [tuple(r) for r in await stmt.fetch(497, 10)]
            out["prepared_again"] = await stmt.fetchval(10, 1)
            out["columns"] = [a.name for a in stmt.get_attributes()]
            # A cursor inside a transaction, in batches.
            async with conn.transaction():
                total = 0
                async for record in conn.cursor("SELECT qty FROM items", prefetch=50):
                    total += record["qty"]
            out["cursor_sum"] = total
            # COPY out of a query.
            copied = await conn.copy_records_to_table(
                "items", records=[("copied1", 1000), ("copied2", 1001)], columns=["name", "qty"]
            )
            out["copy"] = copied
            out["count"] = await conn.fetchval("SELECT count(*) FROM items")
            try:
                await conn.execute("INSERT INTO items (name) VALUES (NULL)")
            except asyncpg.NotNullViolationError as exc:
                out["error"] = (type(exc).__name__, exc.sqlstate)
            # Over the unix socket too.
            unix = await asyncpg.connect(host=postgres.socket_dir, port=postgres.port, user=postgres.user, database=postgres.database)
            try:
                out["unix"] = await unix.fetchval("SELECT current_setting('port')::int")
            finally:
                await unix.close()
        finally:
            await conn.close()
        return out

    out = run_mixed(main)
    assert out["one"] == 2
    assert out["row"] == {
        "i": 7,
        "t": "wörd",
        "n": decimal.Decimal("1.25"),
        "ts": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        "a": [1, 2, 3],
        "j": '{"k": [1, null]}',
    }
    assert out["prepared"] == [("item497", 497), ("item498", 498), ("item499", 499)]
    assert out["prepared_again"] == "item10"
    assert out["columns"] == ["name", "qty"]
    assert out["cursor_sum"] == sum(range(500))
    assert out["copy"] == "COPY 2"
    assert out["count"] == 502
    assert out["error"] == ("NotNullViolationError", "23502")
    assert out["unix"] == postgres.port


def test_transactions(run: Any, postgres: Postgres) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        a = await connect(postgres)
        b = await connect(postgres)
        try:
            await a.execute("DROP TABLE IF EXISTS acct; CREATE TABLE acct (id int PRIMARY KEY, balance int)")
            await a.execute("INSERT INTO acct VALUES (1, 100), (2, 0)")

            tr = a.transaction()
            await tr.start()
            await a.execute("UPDATE acct SET balance = balance - 30 WHERE id = 1")
            await a.execute("UPDATE acct SET balance = balance + 30 WHERE id = 2")
            out["isolated"] = await b.fetchval("SELECT balance FROM acct WHERE id = 2")
            await tr.commit()
            out["committed"] = await b.fetchval("SELECT balance FROM acct WHERE id = 2")

            # An exception inside the block rolls back; a savepoint keeps the
            # outer transaction's work.
            try:
                async with a.transaction():
                    await a.execute("UPDATE acct SET balance = 0")
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
            out["rolled_back"] = await a.fetch("SELECT id, balance FROM acct ORDER BY id")
            async with a.transaction():
                await a.execute("UPDATE acct SET balance = balance + 1 WHERE id = 1")
                try:
                    async with a.transaction():  # savepoint
                        await a.execute("UPDATE acct SET balance = -1 WHERE id = 2")
                        await a.execute("SELECT 1/0")
                except asyncpg.DivisionByZeroError:
                    pass
            out["savepoint"] = [tuple(r) for r in await b.fetch("SELECT id, balance FROM acct ORDER BY id")]

            # Row lock: b waits for a's transaction to end.
            async with a.transaction():
                await a.execute("SELECT * FROM acct WHERE id = 1 FOR UPDATE")
                waiter = asyncio.ensure_future(b.execute("UPDATE acct SET balance = 500 WHERE id = 1"))
                await asyncio.sleep(0.2)
                out["blocked"] = not waiter.done()
            await waiter
            out["after_lock"] = await a.fetchval("SELECT balance FROM acct WHERE id = 1")
            await a.execute("DROP TABLE acct")
        finally:
            await a.close()
            await b.close()
        return out

    out = run(main)
    assert out["isolated"] == 0
    assert out["committed"] == 30
    assert [tuple(r) for r in out["rolled_back"]] == [(1, 70), (2, 30)]
    assert out["savepoint"] == [(1, 71), (2, 30)]
    assert out["blocked"] is True
    assert out["after_lock"] == 500


def test_pool(run_mixed: Any, postgres: Postgres) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asyncpg.create_pool(
            host=postgres.host, port=postgres.port, user=postgres.user, database=postgres.database, min_size=2, max_size=5
        ) as pool:

            async def work(i: int) -> tuple[int, int]:
                async with pool.acquire() as conn:
                    await conn.execute("SELECT pg_sleep(0.05)")
                    return await conn.fetchval("SELECT $1::int * 2", i), await conn.fetchval("SELECT pg_backend_pid()")

            start = time.monotonic()
            results = await gather_all(run_mixed, *(work(i) for i in range(20)))
            out["elapsed"] = time.monotonic() - start
            out["values"] = [v for v, _ in results]
            out["backends"] = len({pid for _, pid in results})
            out["fetch"] = await pool.fetchval("SELECT 42")
            # A connection whose query is interrupted goes back clean.
            try:
                async with asyncio.timeout(0.1):
                    await pool.execute("SELECT pg_sleep(10)")
            except TimeoutError:
                out["timeout"] = True
            out["after"] = await pool.fetchval("SELECT 'ok'")
        return out

    out = run_mixed(main)
    assert out["values"] == [i * 2 for i in range(20)]
    assert 2 <= out["backends"] <= 5
    # 20 x 50 ms over at most 5 connections: parallel, so well under 1 s.
    assert out["elapsed"] < 0.9
    assert out["fetch"] == 42
    assert out["timeout"] is True
    assert out["after"] == "ok"


def test_cancel_running_query(run_mixed: Any, postgres: Postgres) -> None:
    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        conn = await connect(postgres)
        observer = await connect(postgres)
        try:
            pid = conn.get_server_pid()
            start = time.monotonic()
            try:
                async with asyncio.timeout(0.3):
                    await conn.fetchval("SELECT pg_sleep(30)")
            except TimeoutError:
                out["timeout"] = True
            out["elapsed"] = time.monotonic() - start
            # The server really stopped the query (asyncpg sent a cancel
            # request on its own connection): the backend is idle again.
            for _ in range(100):
                state = await observer.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
                if state == "idle":
                    break
                await asyncio.sleep(0.02)
            out["state"] = state
            out["reuse"] = await conn.fetchval("SELECT 'still usable'")

            # Task.cancel() with a message on a query in flight.
            task = asyncio.ensure_future(conn.execute("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.2)
            task.cancel("no more")
            try:
                await task
            except asyncio.CancelledError as exc:
                out["cancel_args"] = exc.args
            out["reuse2"] = await conn.fetchval("SELECT 2")

            # asyncpg's own timeout argument: its TimeoutError.
            try:
                await conn.execute("SELECT pg_sleep(30)", timeout=0.2)
            except TimeoutError as exc:
                out["lib_timeout"] = type(exc).__name__
            out["reuse3"] = await conn.fetchval("SELECT 3")
            out["total"] = time.monotonic() - start
        finally:
            await conn.close()
            await observer.close()
        return out

    out = run_mixed(main)
    assert out["timeout"] is True
    assert 0.25 < out["elapsed"] < 3
    assert out["state"] == "idle"
    assert out["reuse"] == "still usable"
    assert out["cancel_args"] == ("no more",)
    assert out["reuse2"] == 2
    assert out["lib_timeout"] == "TimeoutError"
    assert out["reuse3"] == 3
    assert out["total"] < 10


def test_listen_notify(run: Any, postgres: Postgres) -> None:
    async def main() -> list[Any]:
        listener = await connect(postgres)
        sender = await connect(postgres)
        received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        got: list[Any]

        def on_notify(conn: Any, pid: int, channel: str, payload: str) -> None:
            received.put_nowait((channel, payload))

        try:
            await listener.add_listener("chan", on_notify)
            for i in range(5):
                await sender.execute(f"NOTIFY chan, 'msg{i}'")
            got = [await asyncio.wait_for(received.get(), 5) for _ in range(5)]
            await listener.remove_listener("chan", on_notify)
            await sender.execute("NOTIFY chan, 'unheard'")
            await listener.fetchval("SELECT 1")  # a round trip: a notification would have arrived
            got.append(received.qsize())
        finally:
            await listener.close()
            await sender.close()
        return got

    assert run(main) == [("chan", f"msg{i}") for i in range(5)] + [0]

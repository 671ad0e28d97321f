"""The metadata store's change generation: a value that differs after any committed write that a page
could show, from any FlowForge process, and costs one tiny read to look at. The API's answer cache
(api/response_cache.py) keys its entries by it, so an answer is never served after such a write
has returned to its caller.

It is the one row of ``metadata_generation`` (on SQLite and PostgreSQL alike). Every transaction of
a store's engine that wrote bumps it just before its commit (:func:`bump_on_commit`), in the same
transaction, so the bump is visible exactly when the write is. The bump comes last, so the row lock
is held only for the commit itself: writers never wait on it while holding other locks.

A write says it is *bookkeeping* (``.execution_options(**{UNSHOWN: True})``) when no kept answer can show
it: a token's or a session's last use, and heartbeats (of leases, and of runs, which only queued
or running runs get: pages showing those are never kept). Such a transaction bumps nothing, so
a busy API client or a long run does not empty every kept answer each minute. Any other write,
including SQL the store does not build itself, counts. Writes that bypass FlowForge (psql or
sqlite3 by hand) do not bump it; the cache's short time limit bounds how long those go unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Final

from sqlalchemy import Connection, Engine, event

_WROTE = "flowforge_wrote"
_BUMP = "UPDATE metadata_generation SET n = n + 1 WHERE id = 1"
READ_TIMEOUT: Final = 10.0  # seconds a request waits for the generation on PostgreSQL before it goes uncached
UNSHOWN: Final = "flowforge_unshown"  # the execution option of a bookkeeping write (see above)
_READS = ("SELECT", "BEGIN", "PRAGMA")  # SQLite's BEGIN comes through here (metadata/engine.py)


def bump_on_commit(engine: Engine) -> None:
    """Make every transaction of ``engine`` that wrote (other than bookkeeping) bump the generation
    before it commits.

    A statement counts as a write unless it is a SELECT (savepoints count too: a spare bump only
    costs a cache miss). Installed once the schema is current (the table exists)."""
    if event.contains(engine, "before_cursor_execute", _flag_write):
        return
    event.listen(engine, "before_cursor_execute", _flag_write)
    event.listen(engine, "commit", _bump)
    event.listen(engine, "rollback", _forget)


def _flag_write(conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any,
                _executemany: bool) -> None:
    if statement.lstrip()[:6].upper().startswith(_READS):
        return
    if context is not None and context.execution_options.get(UNSHOWN):
        return
    conn.info[_WROTE] = True


def _bump(conn: Connection) -> None:
    if conn.info.pop(_WROTE, False):
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.execute(_BUMP)
        finally:
            cursor.close()


def _forget(conn: Connection) -> None:
    conn.info.pop(_WROTE, None)


class Generation:
    """``current()``: the metadata store's change generation now, or None when it cannot be read
    (then nothing may be served from a cache). ``await read()`` is the same for a server's event loop."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        database = engine.url.database or ""
        # an in-memory SQLite database lives in one connection: the one kept here would be another database
        self._known = not self._sqlite or (database not in ("", ":memory:") and not database.startswith("file:")
                                           and "mode=memory" not in str(engine.url))
        self._lock = threading.Lock()
        self._dbapi: Any = None
        self._reads = _SharedReads(engine) if engine.dialect.name == "postgresql" else None

    async def read(self) -> int | None:
        """``current()`` without holding the event loop: on PostgreSQL the read goes over an asynchronous
        connection and is shared by every caller that asked before it started (``_SharedReads``); on
        SQLite it is a local read of microseconds, made in place."""
        if self._reads is None or not self._known:
            return self.current()
        return await self._reads.read()

    def current(self) -> int | None:
        if not self._known:
            return None
        with self._lock:
            try:
                if self._dbapi is None:
                    self._dbapi = self._connect()
                cursor = self._dbapi.cursor()
                try:
                    cursor.execute("SELECT n FROM metadata_generation WHERE id = 1")
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except Exception:  # any failure means "unknown": answer uncached, retry later
                self._drop()
                return None
            return None if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self._drop()
        if self._reads is not None:
            self._reads.close()

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()
        pooled.detach()  # kept for this alone, never back in the pool (so it never writes)
        dbapi: Any = pooled.dbapi_connection
        if self._sqlite:
            dbapi.isolation_level = None  # autocommit: each read sees the newest commit
        else:
            dbapi.autocommit = True  # each read outside any transaction: the newest committed value
        return dbapi

    def _drop(self) -> None:
        if self._dbapi is not None:
            with contextlib.suppress(Exception):  # it is being thrown away
                self._dbapi.close()
            self._dbapi = None


class _SharedReads:
    """The generation read on the event loop over one asynchronous connection, one read in flight.

    A caller joins the *next* read, never one already sent: a read sent before the caller asked could
    miss a write committed just before it asked. So the callers that ask while a read is in flight
    wait for the one that follows it, and all of them share it: under 50 clients a process sends a
    read per round trip instead of one per request, and no request holds the loop while PostgreSQL
    answers (the synchronous read did, for every request: under load that was the API's tail).

    Each event loop gets its own connection (a test client runs a loop per client); a failed read
    answers None to its callers (nothing served from the cache) and the next one reconnects."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None
        self._waiting: list[asyncio.Future[int | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> int | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (the old one is gone): start over on this one
            self.close()
            self._loop = loop
        waiter: asyncio.Future[int | None] = loop.create_future()
        self._waiting.append(waiter)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await asyncio.shield(waiter)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []  # all asked before the read below is sent
            value = await self._query()
            for waiter in batch:
                if not waiter.done():
                    waiter.set_result(value)

    async def _query(self) -> int | None:
        import psycopg

        try:
            async with asyncio.timeout(READ_TIMEOUT):  # a server gone silent: requests go uncached meanwhile
                if self._conn is None:
                    args, params = self._engine.dialect.create_connect_args(self._engine.url)
                    params.pop("context", None)  # SQLAlchemy's adapters, for its own connections
                    self._conn = await psycopg.AsyncConnection.connect(*args, **params, autocommit=True)
                cursor = await self._conn.execute("SELECT n FROM metadata_generation WHERE id = 1")
                row = await cursor.fetchone()
        except Exception:  # any failure means "unknown": answered uncached, reconnected next time
            self._drop()
            return None
        return None if row is None else int(row[0])

    def _drop(self) -> None:
        """Close the connection without awaiting (its loop may be gone already)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is being thrown away
                conn.pgconn.finish()

    def close(self) -> None:
        """Drop the connection; callers still waiting are answered None (uncached)."""
        self._drop()
        waiting, self._waiting, self._task = self._waiting, [], None
        for waiter in waiting:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody awaits it any more
                if not waiter.done():
                    waiter.set_result(None)

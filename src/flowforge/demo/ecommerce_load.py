"""Write the e-commerce source to PostgreSQL (streamed with COPY) or to a SQLite file.

Tables are created from :data:`ECOMMERCE_DDL` with their declared types; primary keys, unique
business codes, foreign keys and an index on ``updated_at`` (the incremental cursor) are added
after the rows are in. Everything happens in one transaction, so a failure leaves the previous
tables as they were.

Example::

    summary = load_postgres("postgresql://postgres@127.0.0.1/shop", scale=1, seed=42)
    summary.rows["order_items"]     # 198225
    load_sqlite("shop.db", scale=0.1, seed=42)
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.demo.ecommerce import iter_tables
from flowforge.demo.ecommerce_schema import ECOMMERCE_DDL, SCHEMA, TABLES, UNIQUE
from flowforge.demo.loaders import connect_postgres, constraint_clauses, create_table_sql, postgres_type, sqlite_columns

if TYPE_CHECKING:
    import pyarrow as pa

_COPY_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class LoadSummary:
    """Rows written per table, where, and how long generating plus loading took."""

    target: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def csv_chunks(table: pa.Table, batch_rows: int = _COPY_BATCH_ROWS) -> Iterator[bytes]:
    """The table as headerless CSV, one chunk per batch (what ``COPY … FROM STDIN (FORMAT csv)`` reads)."""
    import io

    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in table.to_batches(max_chunksize=batch_rows):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, options)
        yield buf.getvalue()


def _key_clauses(name: str, prefix: str) -> list[str]:
    ddl = ECOMMERCE_DDL[name]
    clauses = constraint_clauses(ddl, prefix)
    pk, fks = clauses[0], clauses[1:]
    uniques = [f"UNIQUE ({', '.join(cols)})" for cols in UNIQUE.get(name, ())]
    return [pk, *uniques, *fks]


def _pipelined(tables: Iterable[tuple[str, pa.Table]], depth: int = 6,
               ) -> Iterator[tuple[str, int, Iterator[bytes]]]:
    """(table, rows, CSV chunks) for each table, produced by a thread up to ``depth`` chunks ahead.

    Generation (numpy, pyarrow) and CSV encoding release the GIL, so they overlap with the COPY
    the caller streams; a failure on either side stops both and is raised where it happened."""
    import queue
    import threading

    q: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, ...]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for name, table in tables:
                if not put(("table", name, table.num_rows)):
                    return
                for chunk in csv_chunks(table):
                    if not put(("chunk", chunk)):
                        return
                if not put(("end",)):
                    return
            put(("done",))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    def chunks() -> Iterator[bytes]:
        while (item := q.get())[0] == "chunk":
            yield item[1]
        if item[0] == "error":
            raise item[1]

    worker = threading.Thread(target=produce, name="flowforge-demo-generate", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item[0] == "error":
                raise item[1]
            if item[0] == "done":
                return
            yield item[1], item[2], chunks()
    finally:
        stop.set()
        worker.join(timeout=5)


def index_columns(name: str) -> list[str]:
    """``updated_at`` (the incremental cursor) and every foreign key column, as an OLTP schema has."""
    return ["updated_at", *(col for col, _, _ in ECOMMERCE_DDL[name].foreign_keys)]


def load_postgres(url: str, *, scale: float = 1.0, seed: int = 42, schema: str = SCHEMA,
                  tables: Iterable[tuple[str, pa.Table]] | None = None) -> LoadSummary:
    """Create ``schema`` if missing, replace the eight tables and stream the rows in with COPY."""
    from psycopg import sql

    from flowforge.errors import redact

    started = time.perf_counter()
    rows: dict[str, int] = {}
    with connect_postgres(url) as conn, conn.cursor() as cur:
        def ident(*parts: str) -> str:
            return sql.Identifier(*parts).as_string(conn)

        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        cur.execute("DROP TABLE IF EXISTS " + ", ".join(ident(schema, t) for t in reversed(TABLES)))
        # a thread generates and encodes the next rows while the server parses the previous ones
        for name, num_rows, chunks in _pipelined(tables if tables is not None else iter_tables(scale, seed)):
            ddl, target = ECOMMERCE_DDL[name], ident(schema, name)
            cur.execute(create_table_sql(ddl, target, constraints=False, type_map=postgres_type))
            columns = ", ".join(ident(c) for c in ddl.column_names)
            with cur.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                for chunk in chunks:
                    copy.write(chunk)
            rows[name] = num_rows
        for name in TABLES:
            target = ident(schema, name)
            keys = _key_clauses(name, f"{ident(schema)}.")
            cur.execute(f"ALTER TABLE {target} " + ", ".join(f"ADD {c}" for c in keys))
            for column in index_columns(name):
                cur.execute(f"CREATE INDEX {ident(f'ix_{name}_{column}')} ON {target} ({ident(column)})")
        for name in TABLES:
            cur.execute(f"ANALYZE {ident(schema, name)}")
    return LoadSummary(f"{redact(url)} schema {schema}", rows, time.perf_counter() - started)


def load_sqlite(path: str | os.PathLike[str], *, scale: float = 1.0, seed: int = 42,
                tables: Iterable[tuple[str, pa.Table]] | None = None) -> LoadSummary:
    """Replace the eight tables in the SQLite file (created if missing), with keys declared inline."""
    started = time.perf_counter()
    rows: dict[str, int] = {}
    with closing(sqlite3.connect(os.fspath(path), isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # readers (an export, an ingest) never wait for the demo
        conn.execute("BEGIN")
        try:
            for name in reversed(TABLES):
                conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            for name, table in tables if tables is not None else iter_tables(scale, seed):
                ddl = ECOMMERCE_DDL[name]
                body = create_table_sql(ddl, f'"{name}"', constraints=False)
                conn.execute(body[:-2] + ",\n  " + ",\n  ".join(_key_clauses(name, "")) + "\n)")
                marks = ", ".join("?" * len(ddl.columns))
                for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
                    conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})',
                                     zip(*sqlite_columns(batch), strict=True))
                for column in index_columns(name):
                    conn.execute(f'CREATE INDEX "ix_{name}_{column}" ON "{name}" ("{column}")')
                rows[name] = table.num_rows
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return LoadSummary(os.fspath(path), rows, time.perf_counter() - started)

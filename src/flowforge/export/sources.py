"""What an export reads: a lakehouse layer or a source connection, each table as one file.

Every source reads one consistent state across its tables where the engine allows it:

* **PostgreSQL**: one ``REPEATABLE READ`` transaction exports its snapshot
  (``pg_export_snapshot()``); each table is read on a connection that imports it, so tables can
  be written in parallel and still agree with each other. CSV is the server's own
  ``COPY … TO STDOUT (FORMAT csv, HEADER)`` streamed to the file (what ``psql \\copy`` does);
  Parquet reads Arrow batches over ADBC in the same snapshot.
* **SQLite**: an online backup of the database file (a consistent copy), then read.
* **a lakehouse layer**: each table's current Delta version (recorded in the metadata).
* **other databases** (MySQL, SQL Server): table by table; the metadata says ``per_table``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, SourceNotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.export.folders import HashingFile
    from flowforge.storage import LakehouseStore

_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,127}$")
_FLUSH_BYTES = 1 << 20


@dataclass
class TableWritten:
    rows: int
    columns: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def file_stem(table: str) -> str:
    """The file name of a table (its last dotted part), refused unless it is a plain name."""
    stem = table.rsplit(".", 1)[-1].strip('"')
    if not _FILE_NAME.match(stem):
        raise ConfigError(f"Table name {table!r} cannot name a snapshot file.",
                          hint="Table names may hold letters, digits, '_', '$' and '-'.")
    return stem


def write_arrow(batches: Iterator[pa.RecordBatch], schema: pa.Schema, fmt: str, out: HashingFile) -> int:
    """Stream batches into ``out`` as CSV (header row) or Parquet (Snappy); the row count."""
    import pyarrow as pa

    rows = 0
    sink = pa.PythonFile(out, mode="w")
    if fmt == "csv":
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    else:
        import pyarrow.parquet as pq

        with pq.ParquetWriter(sink, schema, compression="snappy") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows


class ExportSource:
    """One consistent read of several tables; ``write`` streams one of them into a file."""

    kind: str
    consistency: str

    def default_tables(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def write(self, table: str, fmt: str, out: HashingFile) -> TableWritten:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a snapshot transaction, a temporary copy)."""


class LakehouseSource(ExportSource):
    kind = "lakehouse"
    consistency = "delta_version_per_table"

    def __init__(self, store: LakehouseStore, layer: str) -> None:
        self.store, self.layer = store, layer
        self.versions: dict[str, int] = {}

    def default_tables(self) -> list[str]:
        return sorted(name for layer, name in self.store.tables() if layer == self.layer)

    def write(self, table: str, fmt: str, out: HashingFile) -> TableWritten:
        import pyarrow as pa

        dt = self.store.open(self.layer, table)
        if dt is None:
            raise SourceNotFound(f"There is no {self.layer} table '{table}' in the lakehouse.",
                                 hint="List the tables with 'flowforge tables'.")
        schema = pa.schema(dt.schema().to_arrow())
        self.versions[table] = dt.version()
        rows = write_arrow(dt.to_pyarrow_dataset().to_batches(batch_size=65_536), schema, fmt, out)
        columns = [{"name": f.name, "type": str(f.type), "arrow_type": str(f.type), "nullable": f.nullable}
                   for f in schema]
        return TableWritten(rows, columns, {"delta_version": dt.version()})

    def describe(self) -> dict[str, Any]:
        return {"kind": "lakehouse", "layer": self.layer, "location": self.store.root,
                "consistency": self.consistency}


class ConnectorSource(ExportSource):
    """Any source connector, table by table through its own reads."""

    consistency = "per_table"

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.kind = connector.kind

    def default_tables(self) -> list[str]:
        return [f"{t.schema}.{t.name}" if t.schema else t.name for t in self.connector.list_tables()]

    def _columns(self, table: str) -> list[dict[str, Any]]:
        from flowforge.connectors.base import ReadRequest

        return [{"name": c.name, "type": c.source_type, "arrow_type": str(c.arrow_type), "nullable": c.nullable}
                for c in self.connector.columns(ReadRequest(table=table))]

    def write(self, table: str, fmt: str, out: HashingFile) -> TableWritten:
        from flowforge.connectors.base import ReadRequest

        plan = self.connector.plan(ReadRequest(table=table, batch_size=65_536), None)
        batches = (b for part in self.connector.read(plan) for b in part.batches)
        rows = write_arrow(batches, plan.schema, fmt, out)
        return TableWritten(rows, self._columns(table))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "connection": self.connector.name, "location": self.connector.config.describe(),
                "consistency": self.consistency}


class SqliteSource(ConnectorSource):
    """A consistent copy (SQLite's online backup) of the file, read with the SQLite connector."""

    consistency = "backup_copy"

    def __init__(self, connector: Connector) -> None:
        import sqlite3
        from pathlib import Path
        from urllib.parse import quote

        from flowforge.connectors import open_connector

        path = Path(connector.config.path)  # type: ignore[attr-defined]
        if not path.is_file():
            raise SourceNotFound(f"{connector.describe()}: database file {str(path)!r} does not exist.")
        self.original = connector
        handle, self.copy = tempfile.mkstemp(prefix="flowforge-export-", suffix=".db")
        os.close(handle)
        src = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        dst = sqlite3.connect(self.copy)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        config = connector.config.model_copy(update={"path": self.copy})
        super().__init__(open_connector(connector.name, config))
        self.kind = "sqlite"

    def describe(self) -> dict[str, Any]:
        return {"kind": "sqlite", "connection": self.original.name, "location": self.original.config.describe(),
                "consistency": self.consistency}

    def close(self) -> None:
        self.connector.close()
        with contextlib.suppress(OSError):
            os.unlink(self.copy)


class PostgresSource(ConnectorSource):
    """All tables from one exported snapshot of a REPEATABLE READ transaction.

    The transaction that exports the snapshot reads tables itself when they are written one at a
    time; with parallel writers each thread has one connection that imports the snapshot once."""

    consistency = "repeatable_read_snapshot"

    def __init__(self, connector: Connector) -> None:
        import threading

        super().__init__(connector)
        from flowforge.connectors.sql.postgres.catalog import conninfo

        self.dsn = conninfo(connector.config)  # type: ignore[arg-type]
        self.schema = connector.config.schema_  # type: ignore[attr-defined]
        self.holder = self._connect()
        with self._errors("could not start the snapshot"):
            self.holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = self.holder.execute("SELECT pg_export_snapshot()").fetchone()
        self.snapshot = str(row[0]) if row else ""
        self._main = threading.get_ident()
        self._local = threading.local()
        self._workers: list[Any] = []
        self._lock = threading.Lock()

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        from flowforge.connectors.sql import common
        from flowforge.connectors.sql.postgres import catalog

        return common.translate_errors(f"{self.connector.describe()}: {action}", catalog.RULES, catalog.fallback())

    def _connect(self) -> Any:
        import psycopg

        with self._errors("could not connect"):
            return psycopg.connect(self.dsn, autocommit=True)

    def _conn(self) -> Any:
        """This thread's connection in the snapshot (the exporting one on the calling thread)."""
        import threading

        if threading.get_ident() == self._main:
            return self.holder
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from psycopg import sql

            conn = self._connect()
            with self._lock:
                self._workers.append(conn)
            with self._errors("could not join the snapshot"):
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
            self._local.conn = conn
        return conn

    def default_tables(self) -> list[str]:
        return [f"{t.schema}.{t.name}" for t in self.connector.list_tables() if t.schema == self.schema]

    def write(self, table: str, fmt: str, out: HashingFile) -> TableWritten:
        if fmt != "csv":
            return self._write_arrow(table, fmt, out)
        from psycopg import sql

        from flowforge.connectors.sql import common
        from flowforge.connectors.sql.postgres import catalog

        schema, name = common.split_table(table, catalog.DIALECT)
        conn = self._conn()
        with self._errors(f"could not export {table}"):
            found = catalog.table_columns(conn, schema or self.schema, name, f"{self.connector.describe()}, {table}")
            if found is None:
                raise common.missing_table(self.connector.describe(), table, self.connector.name)
            relation = sql.Identifier(schema or self.schema, name)
            buffer = bytearray()
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} TO STDOUT WITH (FORMAT csv, HEADER)").format(relation)) as copy:
                    for row in copy:  # libpq hands COPY data over one row at a time
                        buffer += row
                        if len(buffer) >= _FLUSH_BYTES:
                            out.write(buffer)
                            buffer.clear()
                rows = cur.rowcount
            out.write(buffer)
        columns = [{"name": c.name, "type": c.declared, "arrow_type": str(c.arrow_type), "nullable": c.nullable}
                   for c in found]
        return TableWritten(int(rows), columns)

    def _write_arrow(self, table: str, fmt: str, out: HashingFile) -> TableWritten:
        from flowforge.connectors.base import ReadRequest

        plan = self.connector.plan(ReadRequest(table=table, batch_size=65_536), None)
        batches = self.connector.read_snapshot(plan, self.snapshot)  # type: ignore[attr-defined]
        rows = write_arrow(batches, plan.schema, fmt, out)
        return TableWritten(rows, self._columns(table))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "snapshot_id": self.snapshot}

    def close(self) -> None:
        for conn in [*self._workers, self.holder]:
            with contextlib.suppress(Exception):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.close()


def open_source(connector: Connector) -> ExportSource:
    if connector.kind == "postgres":
        return PostgresSource(connector)
    if connector.kind == "sqlite":
        return SqliteSource(connector)
    if not connector.capabilities.tables:
        raise ConfigError(f"{connector.describe()} has no tables to export.",
                          hint="Export a database connection or a lakehouse layer.")
    return ConnectorSource(connector)

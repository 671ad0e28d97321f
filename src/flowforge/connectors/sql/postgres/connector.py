"""PostgreSQL source connector.

Discovery and planning use psycopg (catalog queries, ``max()`` of the delta column) on pooled
connections (``pool_size``, see ``sql/pool.py``): a reused connection is ``RESET ALL`` first, which
also proves it alive, so it starts from the read-only session its login set up. Reads use
ADBC, which streams ``COPY … TO STDOUT (FORMAT binary)`` straight into Arrow batches in C, with
bounded memory; we only cast the few columns ADBC returns loosely (NUMERIC arrives as text and
is cast to its declared ``decimal128(p, s)``, refusing any value that would lose a digit).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any

from flowforge.connectors import register_connector
from flowforge.connectors.base import (
    ColumnInfo,
    ConnectionTest,
    Connector,
    ConnectorCapabilities,
    ReadPlan,
    ReadRequest,
    SourcePart,
    TableInfo,
)
from flowforge.connectors.sql import common
from flowforge.connectors.sql.pool import Pool
from flowforge.connectors.sql.postgres import catalog, functions
from flowforge.connectors.sql.postgres.catalog import DIALECT, PgColumn
from flowforge.errors import MissingDependencyError, SourceSchemaError
from flowforge.streams import merge

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

    from flowforge.connectors.sql.postgres.config import PostgresConfig

_INSTALL = "pip install 'flowforge[postgres]'"
_INTEGER_KEYS = {"int2", "int4", "int8"}


@register_connector("postgres")
class PostgresConnector(Connector):
    """Reads tables, read-only queries and set-returning functions from PostgreSQL, in full or
    incrementally (functions in full: pass the window as a parameter).

    ```yaml
    connections:
      shop: {type: postgres, url: "postgresql://etl@db1:5432/shop", read_partitions: 2}
    jobs:
      - name: orders_bronze
        kind: ingest
        connection: shop
        tables:
          - {table: sales.orders, target: bronze_orders, incremental: modified_date}
          - {procedure: sales.orders_since, params: {since: "2024-01-01"}, target: bronze_recent_orders}
    ```

    A ``procedure`` is a function called by parameter name (``functions.py``).
    """

    capabilities = ConnectorCapabilities(tables=True, query=True, procedures=True, incremental=True,
                                         partitioned_reads=True)
    shareable = True
    config: PostgresConfig

    def __init__(self, name: str, config: PostgresConfig) -> None:
        super().__init__(name, config)
        self._pool: Pool[psycopg.Connection[Any]] = Pool(
            partial(_catalog_connection, config, f"{self.describe()}: could not connect"),
            size=config.pool_size, ping=_ping, reset=_reset)

    def close(self) -> None:
        self._pool.close()

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    # -- connections ----------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return common.translate_errors(f"{self.describe()}: {action}", catalog.RULES, catalog.fallback())

    def _dsn(self) -> str:
        return catalog.conninfo(self.config)

    def _adbc(self, autocommit: bool = True) -> _Adbc:
        try:
            import adbc_driver_manager  # noqa: F401
            import adbc_driver_postgresql  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(f"Fast PostgreSQL reads need ADBC: {_INSTALL}") from exc
        with self._errors("could not connect"):
            return _Adbc(self._dsn(), autocommit)

    # -- discovery ------------------------------------------------------------------------

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        with self._pool.connection(fresh=True) as conn, self._errors("connection test failed"):
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        return ConnectionTest(ok=True, server_version=f"PostgreSQL {row[0] if row else '?'}",
                              latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        with self._pool.connection() as conn, self._errors("could not list tables"):
            rows = catalog.list_tables(conn)
        return [TableInfo(name=name, schema=schema, row_estimate=estimate) for schema, name, estimate in rows]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        with self._pool.connection() as conn:
            cols = self._pg_columns(conn, request)
        return [ColumnInfo(c.name, c.declared, c.arrow_type, c.nullable, c.primary_key, c.default)
                for c in cols]

    def _where(self, request: ReadRequest) -> str:
        what = (f"function {request.procedure!r}" if request.procedure else
                "query" if request.query is not None else f"table {request.table!r}")
        return f"{self.describe()}, {what}"

    def _relation(self, conn: psycopg.Connection[Any], request: ReadRequest) -> str:
        if request.procedure:
            return functions.relation(conn, request.procedure, request.params, self.config.schema_,
                                      self._where(request))
        if request.query is not None:
            return common.relation_sql(request, None, DIALECT, self._where(request))
        schema, table = common.split_table(request.table or "", DIALECT)
        return common.quote_table(schema or self.config.schema_, table, DIALECT)

    def _pg_columns(self, conn: psycopg.Connection[Any], request: ReadRequest,
                    relation: str | None = None) -> list[PgColumn]:
        """Columns of the request; ``relation`` is its ``_relation`` when the caller has it already."""
        where = self._where(request)
        if request.query is None and not request.table and not request.procedure:
            raise SourceSchemaError(f"{self.describe()}: a table, a query or a function is required.")
        with self._errors(f"could not describe {request.label}"):
            if request.query is not None or request.procedure:
                cols = catalog.query_columns(conn, relation or self._relation(conn, request), where)
            else:
                schema, table = common.split_table(request.table or "", DIALECT)
                found = catalog.table_columns(conn, schema or self.config.schema_, table, where)
                if found is None:
                    raise common.missing_table(self.describe(), request.table or "", self.name)
                cols = found
        names = [c.name for c in cols]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SourceSchemaError(f"{where}: the result has duplicate column names {duplicates}.",
                                    hint="Give every selected column a distinct alias.")
        return cols

    # -- plan -----------------------------------------------------------------------------

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        import pyarrow as pa

        with self._pool.connection() as conn:
            cols = self._pg_columns(conn, request)
            schema = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in cols])
            description = f"{self.describe()}: {request.label}"
            column = request.incremental_column
            if column is None:
                return ReadPlan(request=request, schema=schema, new_state=None, description=description)
            if request.procedure:
                raise SourceSchemaError(f"{self._where(request)}: a function cannot be read incrementally.",
                                        hint="Pass the window as a parameter, or read a table or query instead.")
            common.check_delta_column(schema, column, self._where(request))
            by_name = {c.name: c for c in cols}
            lower = common.previous_high(state, column, self._where(request))
            if common.open_window(request, schema, self.config.read_partitions > 1):
                return common.open_plan(request, schema, state, lower, description)
            quoted = common.quote_ident(column, DIALECT)
            predicate = f"{quoted} > {_typed_literal(lower, by_name[column])}" if lower is not None else None
            sql = common.select_sql(self._relation(conn, request), [f"max({quoted})"], predicate)
            with self._errors("could not compute the incremental upper bound"):
                row = conn.execute(sql).fetchone()
        return common.incremental_plan(request, schema, state, lower, row[0] if row else None, description)

    # -- read -----------------------------------------------------------------------------

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if plan.has_data:
            yield SourcePart(name=plan.request.label, modified_time=None, batches=self._batches(plan))

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        import pyarrow as pa

        plan = self.plan(ReadRequest(table=request.table, query=request.query, procedure=request.procedure,
                                     params=request.params, batch_size=limit), None)
        # LIMIT in the SQL: stopping a COPY half-way would still stream the rest of the table.
        return pa.Table.from_batches(list(self._batches(plan, limit=limit)), schema=plan.schema)

    def _select(self, plan: ReadPlan, cols: list[PgColumn], relation: str, select_list: list[str] | None = None,
                extra: str | None = None) -> str:
        """The SELECT for a plan from ``relation``: its columns (or ``select_list``), its
        incremental window and an optional extra predicate (a partition's key range)."""
        request = plan.request
        predicates = []
        if request.incremental_column is not None and plan.bounds is not None:
            column = next(c for c in cols if c.name == request.incremental_column)
            lower, upper = plan.bounds
            window = common.window_predicate(
                common.quote_ident(column.name, DIALECT),
                _typed_literal(lower, column) if lower is not None else None,
                _typed_literal(upper, column) if upper is not None else None)
            if window:
                predicates.append(window)
        if extra:
            predicates.append(extra)
        return common.select_sql(relation, select_list or [c.select_sql for c in cols],
                                 " AND ".join(f"({p})" for p in predicates) or None)

    def _batches(self, plan: ReadPlan, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        with self._pool.connection() as conn:
            with self._errors(f"could not describe {plan.request.label}"):
                relation = self._relation(conn, plan.request)
            cols = self._pg_columns(conn, plan.request, relation)
            now = [(c.name, c.arrow_type) for c in cols]
            if now != list(zip(plan.schema.names, plan.schema.types, strict=True)):
                raise SourceSchemaError(
                    f"{self._where(plan.request)}: the columns changed since the read was planned "
                    f"({plan.schema} → {now}).", hint="Run the job again; it plans afresh.")
            ranges = self._partitions(conn, plan, cols, relation) if limit is None else []
        size = max(1, plan.request.batch_size)
        if len(ranges) > 1:
            yield from common.rebatch(self._parallel(plan, cols, relation, ranges), size)
            return
        sql = self._select(plan, cols, relation)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        yield from common.rebatch(self._stream(sql, plan, cols), size)

    def read_snapshot(self, plan: ReadPlan, snapshot: str) -> Iterator[pa.RecordBatch]:
        """The plan's rows as of an exported snapshot (``SELECT pg_export_snapshot()`` in a REPEATABLE
        READ transaction kept open meanwhile), so several reads see one consistent state."""
        with self._pool.connection() as conn:
            with self._errors(f"could not describe {plan.request.label}"):
                relation = self._relation(conn, plan.request)
            cols = self._pg_columns(conn, plan.request, relation)
        sql = self._select(plan, cols, relation)
        yield from common.rebatch(self._stream(sql, plan, cols, snapshot), max(1, plan.request.batch_size))

    def _stream(self, sql: str, plan: ReadPlan, cols: list[PgColumn],
                snapshot: str | None = None) -> Iterator[pa.RecordBatch]:
        where = self._where(plan.request)
        scaled = {i for i, c in enumerate(cols) if c.scaled}
        with self._errors(f"reading {plan.request.label} failed"):
            conn = self._adbc(autocommit=snapshot is None)
            try:
                if snapshot is not None:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    conn.execute(f"SET TRANSACTION SNAPSHOT {common.literal(snapshot, DIALECT)}")
                for batch in conn.stream(sql, _WINDOW_BATCH_BYTES if _later_window(plan) else None):
                    yield _conform(batch, plan.schema, scaled, where)
            except Exception:
                _DATABASES.drop(self._dsn())  # the next read starts from a new handle (the type catalog afresh)
                raise
            finally:
                conn.close()

    def _partitions(self, conn: psycopg.Connection[Any], plan: ReadPlan, cols: list[PgColumn],
                    relation: str) -> list[tuple[int, int]]:
        """Equal key ranges ``[lo, hi)`` for a table with a single-column integer primary key."""
        keys = [c for c in cols if c.primary_key]
        partitions = self.config.read_partitions
        integer_key = len(keys) == 1 and keys[0].base in _INTEGER_KEYS
        if partitions <= 1 or plan.request.table is None or not integer_key:
            return []
        key = common.quote_ident(keys[0].name, DIALECT)
        with self._errors("could not plan the partitioned read"):
            row = conn.execute(self._select(plan, cols, relation, [f"min({key})", f"max({key})"])).fetchone()
        if row is None or row[0] is None:
            return []
        lo, hi = int(row[0]), int(row[1]) + 1
        step = max(1, -(-(hi - lo) // partitions))
        return [(start, min(start + step, hi)) for start in range(lo, hi, step)]

    @staticmethod
    def _range_predicate(key: str, index: int, ranges: list[tuple[int, int]]) -> str:
        """The outer ranges are open-ended, so a row whose key lies beyond the min/max seen
        when the read started is still read once (exactly as a single stream would)."""
        lo, hi = ranges[index]
        parts = ([f"{key} >= {int(lo)}"] if index > 0 else []) + (
            [f"{key} < {int(hi)}"] if index < len(ranges) - 1 else [])
        return " AND ".join(parts) or "TRUE"

    def _parallel(self, plan: ReadPlan, cols: list[PgColumn], relation: str,
                  ranges: list[tuple[int, int]]) -> Iterator[pa.RecordBatch]:
        """One ADBC connection per key range, each read in its own thread (``streams.merge``)."""
        key = common.quote_ident(next(c for c in cols if c.primary_key).name, DIALECT)
        sqls = [self._select(plan, cols, relation, extra=self._range_predicate(key, i, ranges))
                for i in range(len(ranges))]
        streams = [partial(self._stream, sql, plan, cols) for sql in sqls]
        return merge(streams, "pg-read")

class _Adbc:
    """One ADBC connection, through the driver manager's own API: its DB-API module imports
    ``pyarrow.dataset``, which imports pandas (half a second or more of every run that reads)."""

    def __init__(self, dsn: str, autocommit: bool) -> None:
        import adbc_driver_manager as manager

        self._manager = manager
        self._statements: list[Any] = []
        self._readers: list[pa.RecordBatchReader] = []
        self._db, self._conn = _DATABASES.connect(dsn)
        try:
            if not autocommit:
                self._conn.set_autocommit(False)  # the driver then opens a transaction
        except BaseException:
            self._conn.close()
            _DATABASES.release(self._db)
            raise

    def _statement(self, sql: str) -> Any:
        statement = self._manager.AdbcStatement(self._conn)
        self._statements.append(statement)
        statement.set_sql_query(sql)
        return statement

    def execute(self, sql: str) -> None:
        self._statement(sql).execute_update()

    def stream(self, sql: str, batch_bytes: int | None = None) -> pa.RecordBatchReader:
        """The result of ``sql`` as Arrow batches of about ``batch_bytes`` (the driver's 16 MB when None),
        streamed (PostgreSQL's binary COPY)."""
        import pyarrow as pa

        statement = self._statement(sql)
        if batch_bytes is not None:
            statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(batch_bytes)})
        handle, _ = statement.execute_query()
        reader = pa.RecordBatchReader._import_from_c(handle.address)
        self._readers.append(reader)
        return reader

    def close(self) -> None:
        """Readers first (a stream stopped early), then statements and the connection; the database
        handle goes back to ``_DATABASES``."""
        try:
            for reader in self._readers:
                reader.close()
            for statement in self._statements:
                statement.close()
            self._conn.close()
        finally:
            _DATABASES.release(self._db)


class _Databases:
    """ADBC database handles kept per connection string for a few minutes, shared by the reads of a
    process (the partitions of one read, the runs of a scheduler or ``serve`` worker).

    Making a handle costs a round trip (the driver reads the server's type catalog: 25 to 55 ms here);
    a connection from it costs a login (3 to 4 ms). A handle holds no session on the server (the
    connections do, and each read closes its own). It is made again after ``TTL`` seconds, so a type
    created on the source since is known; an old handle is closed once its last connection is."""

    TTL = 300.0

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Start empty (also in a forked child: the parent's lock may have been held by another thread)."""
        self._lock = threading.Lock()  # ADBC objects take one caller at a time
        self._current: dict[str, tuple[float, Any]] = {}  # dsn -> (made at, handle)
        self._open: dict[int, list[Any]] = {}  # id(handle) -> [handle, dsn, connections open from it]

    def connect(self, dsn: str) -> tuple[Any, Any]:
        """(the database handle, a new connection from it)."""
        import adbc_driver_manager as manager
        import adbc_driver_postgresql as driver

        with self._lock:
            found = self._current.get(dsn)
            if found is None or time.monotonic() - found[0] > self.TTL:
                found = (time.monotonic(), driver.connect(dsn))
                self._current[dsn] = found
                self._open[id(found[1])] = [found[1], dsn, 0]
                self._close_unused()
            db = found[1]
            conn = manager.AdbcConnection(db)
            self._open[id(db)][2] += 1
            return db, conn

    def release(self, db: Any) -> None:
        with self._lock:
            self._open[id(db)][2] -= 1
            self._close_unused()

    def drop(self, dsn: str) -> None:
        """Make the next connection from a new handle (after a failed read)."""
        with self._lock:
            self._current.pop(dsn, None)
            self._close_unused()

    def _close_unused(self) -> None:
        """Close the handles no connection uses that are no longer their connection string's current one."""
        for key, (handle, dsn, users) in list(self._open.items()):
            current = self._current.get(dsn)
            if users == 0 and (current is None or current[1] is not handle):
                del self._open[key]
                handle.close()


_DATABASES = _Databases()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_DATABASES.forget)


_WINDOW_BATCH_BYTES = 2 << 20


def _later_window(plan: ReadPlan) -> bool:
    """An incremental read after the first: usually a small share of the table, whose rows the server
    finds spread over the whole scan. They come in 2 MB batches (about 10,000 rows) rather than 16 MB,
    so writing the first ones overlaps reading the rest (a 100,000-row window came as one batch at the
    end of the read, then took 40 ms more to write; 4 MB batches left 7 ms more than 2 MB)."""
    return plan.request.incremental_column is not None and plan.bounds is not None and plan.bounds[0] is not None


def _catalog_connection(config: PostgresConfig, context: str) -> psycopg.Connection[Any]:
    try:
        import psycopg
    except ImportError as exc:
        raise MissingDependencyError(f"The PostgreSQL connector needs psycopg: {_INSTALL}") from exc
    with common.translate_errors(context, catalog.RULES, catalog.fallback()):
        # No server-side prepared statements: a pooled connection runs the same statement many
        # times, and a prepared one fails ("cached plan must not change result type") once the
        # table it reads is altered.
        return psycopg.connect(catalog.conninfo(config), autocommit=True, prepare_threshold=None)


def _ping(conn: psycopg.Connection[Any]) -> None:
    """Undo any setting a statement changed (``set_config`` in a query): the session is again the
    read-only one its login set up. It is a round trip, so a dropped connection fails here."""
    conn.execute("RESET ALL")


def _reset(conn: psycopg.Connection[Any]) -> None:
    """Roll back a transaction left open; a connection still busy is not kept."""
    from psycopg.pq import TransactionStatus

    status = conn.info.transaction_status
    if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        conn.rollback()
    elif status != TransactionStatus.IDLE:
        raise ValueError(f"the connection is {status.name}")


def _typed_literal(value: Any, column: PgColumn) -> str:
    """A bound as SQL text: quoted by sqlglot and cast to the column's declared type, so the
    comparison is typed (and index-friendly) without string-formatting user values."""
    import datetime as dt

    text = value.isoformat() if isinstance(value, dt.date | dt.datetime | dt.time) else str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    return f"{common.literal(text, DIALECT)}::{column.declared}"


def _conform(batch: pa.RecordBatch, schema: pa.Schema, scaled: set[int], where: str) -> pa.RecordBatch:
    """Give an ADBC batch exactly the planned schema; NUMERIC text → decimal must be lossless."""
    import pyarrow as pa

    arrays = []
    for index, field in enumerate(schema):
        array = batch.column(index)
        if index in scaled:
            # int64 123456 → decimal128(38, 0) → the same 128-bit words read as decimal128(15, 2).
            wide = array.cast(pa.decimal128(38, 0))
            array = pa.Array.from_buffers(field.type, len(wide), wide.buffers(),
                                          null_count=wide.null_count, offset=wide.offset)
        elif isinstance(array, pa.ExtensionArray):
            array = array.storage
        if array.type != field.type:
            try:
                array = array.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise _cast_error(array, field, where, exc) from exc
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _cast_error(array: pa.Array, field: pa.Field, where: str, exc: Exception) -> SourceSchemaError:
    """Find the first value that does not fit, so the message can show it."""
    import pyarrow as pa

    bad = None
    for value in array.to_pylist():
        try:
            pa.array([value], type=array.type).cast(field.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = value
            break
    what = f"value {bad!r}" if bad is not None else "a value"
    return SourceSchemaError(
        f"{where}: column {field.name!r}: {what} cannot be read as {field.type} without losing "
        f"digits ({exc}).",
        hint=f"Read the column through a query with an explicit type, for example "
             f"CAST({field.name} AS numeric(38, 12)), or fix the value.",
    )

"""MySQL / MariaDB source connector.

Discovery and planning use PyMySQL (catalog queries, ``max()`` of the delta column) on pooled
connections (``pool_size``, see ``sql/pool.py``), pinged before reuse; a transaction left open is
rolled back before one goes back to the pool, and the connection that described a procedure
(whose result is left unread) is closed instead.

Reads stream with connectorx when it is installed and the connection needs no TLS (``fast.py``:
Arrow batches decoded in Rust, every decimal and temporal value sent as text and parsed
exactly), otherwise over the text protocol with an unbuffered cursor (``SSCursor``: memory
stays at one batch) from mysqlclient or PyMySQL, with every value converter off, Arrow parsing
the server's text in C (``convert.py``). Procedure results always stream with PyMySQL, whose
result metadata types them. Measured on 10M rows x 12 columns (MariaDB 10.11, 2 cores): the
connectorx stream reads them in ~11 s at ~200 MB peak RSS, mysqlclient in ~35 s at ~250 MB; a
whole bronze load takes ~15.5 s, as long as connectorx's own ``return_type="arrow"`` to Parquet,
which holds the whole result (1.9 GB) and types every DECIMAL as decimal128(38, 10).

Every read runs in ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` in a session with
``time_zone = '+00:00'``. Types (``COLUMN_TYPE`` of a table; result metadata of a query or a
procedure):

==============================  ==========================  =======================================
MySQL / MariaDB                 Arrow                       notes
==============================  ==========================  =======================================
TINYINT(1), BOOL                bool                        a value other than 0/1 raises
TINYINT / UNSIGNED              int8 / int16                unsigned types widen, never wrap
SMALLINT / UNSIGNED             int16 / int32
MEDIUMINT, INT / INT UNSIGNED   int32 / int64
BIGINT / UNSIGNED               int64 / decimal128(20, 0)   18446744073709551615 is exact
DECIMAL(p, s)                   decimal128(p, s)            decimal256 for p > 38; parsed from text
FLOAT / DOUBLE                  float32 / float64           FLOAT selected as DOUBLE (the text
                                                            protocol rounds FLOAT to 6 digits)
DATE                            date32                      zero dates raise [*]
DATETIME(fsp)                   timestamp('us')             zero dates raise [*]
TIMESTAMP(fsp)                  timestamp('us', 'UTC')      session time zone is UTC [*]
TIME(fsp)                       time64('us')                outside 00:00-23:59:59 raises [*]
YEAR                            int16
CHAR, VARCHAR, TEXT, ENUM       string
SET                             string                      the comma-joined members, as MySQL
                                                            shows them ('a,c')
JSON (MariaDB: LONGTEXT with    string                      the document text; source_type 'json'
json_valid CHECK)
BINARY, VARBINARY, BLOB         binary
BIT(n)                          int64; BIT(64): decimal128  selected as CAST(col AS UNSIGNED)
                                (20, 0)
UUID, INET4, INET6 (MariaDB)    string                      selected as CAST(col AS CHAR)
GEOMETRY and others             raises [*]                  fallback: ST_AsText / CAST AS CHAR
==============================  ==========================  =======================================

[*] With ``type_fallback: string`` these columns are read as their text instead (the temporal
types as the server prints them: '0000-00-00', '838:59:59'; a TINYINT(1) likewise).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
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
from flowforge.connectors.sql.mysql import catalog, convert, driver, fast, partitions
from flowforge.connectors.sql.mysql.catalog import START_READ_ONLY
from flowforge.connectors.sql.mysql.typemap import DIALECT, MyColumn
from flowforge.connectors.sql.pool import Pool
from flowforge.errors import FlowForgeError, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.sql.mysql.config import MysqlConfig


FETCH_ROWS = 10_000


@register_connector("mysql")
class MysqlConnector(Connector):
    """Reads tables, read-only queries and stored procedures from MySQL or MariaDB, in full or
    incrementally.

    ```yaml
    connections:
      shop: {type: mysql, url: "mysql://etl@db1:3306/shop", read_partitions: 2}
    jobs:
      - name: orders_bronze
        kind: ingest
        connection: shop
        tables:
          - {table: orders, target: bronze_orders, incremental: modified_at}
          - {procedure: monthly_report, params: {year: 2024}, target: bronze_report}
    ```
    """

    capabilities = ConnectorCapabilities(tables=True, query=True, procedures=True, incremental=True,
                                         partitioned_reads=True)
    shareable = True
    config: MysqlConfig

    def __init__(self, name: str, config: MysqlConfig) -> None:
        super().__init__(name, config)
        self._pool: Pool[Any] = Pool(partial(_catalog_connection, config, self._context("could not connect")),
                                     size=config.pool_size, ping=_ping, reset=_reset)

    def close(self) -> None:
        self._pool.close()

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    # -- connections ----------------------------------------------------------------------

    def _context(self, action: str) -> str:
        return f"{self.describe()}: {action}"

    def _retrying(self, action: str, work: Any) -> Any:
        """``work(conn)`` on a pooled connection; a transient failure closes that connection, and
        the next attempt gets another one."""
        def attempt() -> Any:
            with self._pool.connection() as conn:
                return work(conn)

        return driver.retrying(attempt, self._context(action), self.config.retries)

    # -- discovery ------------------------------------------------------------------------

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        with self._pool.connection(fresh=True) as conn, driver.errors(self._context("connection test failed")):
            version = str(catalog.execute(conn, "SELECT VERSION()")[0][0])
        product = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        return ConnectionTest(ok=True, server_version=f"{product} {version}",
                              latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        rows = self._retrying("could not list tables", catalog.list_tables)
        return [TableInfo(name=name, schema=schema, row_estimate=estimate) for schema, name, estimate in rows]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        cols = self._retrying(f"could not describe {request.label}", lambda conn: self._columns(conn, request))
        return [ColumnInfo(c.name, c.source_type, c.arrow_type, c.nullable, c.primary_key, c.default)
                for c in cols]

    def _where(self, request: ReadRequest) -> str:
        what = (f"procedure {request.procedure!r}" if request.procedure else
                "query" if request.query is not None else f"table {request.table!r}")
        return f"{self.describe()}, {what}"

    def _relation(self, request: ReadRequest) -> str:
        if request.query is not None:
            return common.relation_sql(request, None, DIALECT, self._where(request))
        schema, table = common.split_table(request.table or "", DIALECT)
        return common.quote_table(schema, table, DIALECT)

    def _columns(self, conn: Any, request: ReadRequest) -> list[MyColumn]:
        where, fallback = self._where(request), request.type_fallback
        if request.procedure:
            call, args = catalog.procedure_call(conn, request.procedure, request.params, where)
            try:
                return catalog.procedure_columns(conn, call, args, where, fallback)
            finally:
                self._pool.discard(conn)  # the procedure's result is left unread on it
        if request.query is not None:
            return catalog.query_columns(conn, self._relation(request), where, fallback)
        if not request.table:
            raise SourceSchemaError(f"{self.describe()}: a table, a query or a procedure is required.")
        schema, table = common.split_table(request.table, DIALECT)
        found = catalog.table_columns(conn, schema, table, where, fallback)
        if found is None:
            raise common.missing_table(self.describe(), request.table, self.name)
        return found

    # -- plan -----------------------------------------------------------------------------

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        plan: ReadPlan = self._retrying(f"could not plan the read of {request.label}",
                                        lambda conn: self._plan(conn, request, state))
        return plan

    def _plan(self, conn: Any, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        import pyarrow as pa

        cols = self._columns(conn, request)
        schema = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in cols])
        description = f"{self.describe()}: {request.label}"
        column = request.incremental_column
        if column is None:
            return ReadPlan(request=request, schema=schema, new_state=None, description=description)
        where = self._where(request)
        if request.procedure:
            raise SourceSchemaError(f"{where}: a procedure cannot be read incrementally.",
                                    hint="Pass the window as a parameter, or read a table or query instead.")
        common.check_delta_column(schema, column, where)
        col = next(c for c in cols if c.name == column)
        lower = common.previous_high(state, column, where)
        if common.open_window(request, schema, self.config.read_partitions > 1):
            return common.open_plan(request, schema, state, lower, description)
        predicate = f"{col.quoted} > {_literal(lower)}" if lower is not None else None
        rows = catalog.execute(conn, common.select_sql(self._relation(request), [f"MAX({col.expr})"], predicate))
        upper = rows[0][0] if rows else None
        if isinstance(upper, dt.datetime) and col.kind == "timestamptz":
            upper = upper.replace(tzinfo=dt.UTC)
        return common.incremental_plan(request, schema, state, lower, upper, description)

    def row_count(self, request: ReadRequest) -> int:
        if request.procedure:
            return super().row_count(request)
        sql = common.select_sql(self._relation(request), ["COUNT(*)"])
        return int(self._retrying(f"could not count the rows of {request.label}",
                                  lambda conn: catalog.execute(conn, sql)[0][0]))

    # -- read -----------------------------------------------------------------------------

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if plan.has_data:
            yield SourcePart(name=plan.request.label, modified_time=None, batches=self._batches(plan))

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        import pyarrow as pa

        plan = self.plan(ReadRequest(table=request.table, query=request.query, procedure=request.procedure,
                                     params=request.params, type_fallback=request.type_fallback,
                                     batch_size=limit), None)
        batches = self._batches(plan, limit=limit)  # a generator: close() releases the connection
        try:  # a procedure cannot take a LIMIT: stop after the first batch
            return pa.Table.from_batches(list(_take(batches, limit)), schema=plan.schema).slice(0, limit)
        finally:
            batches.close()  # type: ignore[attr-defined]

    def _select(self, plan: ReadPlan, cols: list[MyColumn], select_list: list[str] | None = None,
                extra: str | None = None) -> str:
        """The SELECT for a plan: its columns (or ``select_list``), its incremental window and an
        optional extra predicate (a partition's key range)."""
        request = plan.request
        predicates = []
        if request.incremental_column is not None and plan.bounds is not None:
            column = next(c for c in cols if c.name == request.incremental_column)
            lower, upper = plan.bounds
            window = common.window_predicate(column.quoted, _literal(lower) if lower is not None else None,
                                             _literal(upper) if upper is not None else None)
            if window:
                predicates.append(window)
        if extra:
            predicates.append(extra)
        return common.select_sql(self._relation(request), select_list or [c.select_sql for c in cols],
                                 " AND ".join(f"({p})" for p in predicates) or None)

    def _batches(self, plan: ReadPlan, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        request = plan.request
        size = max(1, min(request.batch_size, limit or request.batch_size))
        if request.procedure:
            call, args = self._retrying(f"could not prepare {request.label}", lambda conn: catalog.procedure_call(
                conn, request.procedure or "", request.params, self._where(request)))
            # Procedures stream with PyMySQL: only its metadata types a result we cannot wrap.
            yield from self._stream("pymysql", call, args, plan, None, size)
            return
        cols, ranges = self._retrying(f"could not prepare the read of {request.label}",
                                      lambda conn: self._prepare(conn, plan, limit))
        name = driver.stream_driver(self.config)
        select_list = fast.select_list(cols) if name == "connectorx" else None
        if len(ranges) > 1:
            key = next(c for c in cols if c.primary_key).quoted
            sqls = [self._select(plan, cols, select_list, partitions.predicate(key, i, ranges))
                    for i in range(len(ranges))]
            yield from partitions.parallel([self._stream(name, sql, (), plan, cols, size) for sql in sqls])
            return
        sql = self._select(plan, cols, select_list)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        yield from self._stream(name, sql, (), plan, cols, size)

    def _prepare(self, conn: Any, plan: ReadPlan, limit: int | None) -> tuple[list[MyColumn], list[tuple[int, int]]]:
        """Columns (re-described, so a changed table fails clearly) and key ranges, if any."""
        cols = self._columns(conn, plan.request)
        self._check_unchanged(plan, cols)
        keys = [c for c in cols if c.primary_key]
        if (limit is not None or self.config.read_partitions <= 1 or plan.request.query is not None
                or len(keys) != 1 or not keys[0].integer):
            return cols, []
        bounds = [f"MIN({keys[0].quoted})", f"MAX({keys[0].quoted})"]
        row = catalog.execute(conn, self._select(plan, cols, bounds))
        return cols, partitions.ranges(row[0] if row else None, self.config.read_partitions)

    def _check_unchanged(self, plan: ReadPlan, cols: list[MyColumn]) -> None:
        now = [(c.name, c.arrow_type) for c in cols]
        if now != list(zip(plan.schema.names, plan.schema.types, strict=True)):
            raise SourceSchemaError(
                f"{self._where(plan.request)}: the columns changed since the read was planned "
                f"({plan.schema} → {now}).", hint="Run the job again; it plans afresh.")

    def _stream(self, name: str, sql: str, args: tuple[Any, ...], plan: ReadPlan, cols: list[MyColumn] | None,
                size: int) -> Iterator[pa.RecordBatch]:
        """Stream one statement with driver ``name``; a transient failure before the first batch
        is retried with backoff (a deadlock, a lock wait timeout, a lost connection), later ones
        are raised. ``cols`` is None for a procedure: its result describes itself, and must match
        the plan."""
        context = self._context(f"reading {plan.request.label} failed")
        attempt, yielded = 0, False
        while True:
            try:
                with driver.errors(context):
                    for batch in self._open(name, sql, args, plan, cols, size):
                        yielded = True
                        yield batch
                return
            except FlowForgeError as exc:
                if yielded or attempt >= self.config.retries or not driver.is_transient(exc):
                    raise driver.note_attempts(exc, attempt + 1) from exc.__cause__
                driver.sleep(driver.backoff(attempt))
                attempt += 1

    def _open(self, name: str, sql: str, args: tuple[Any, ...], plan: ReadPlan, cols: list[MyColumn] | None,
              size: int) -> Iterator[pa.RecordBatch]:
        if name == "connectorx" and cols is not None:
            yield from fast.stream(self.config, sql, cols, plan.schema, size, self._where(plan.request))
            return
        conn = None
        try:
            conn = driver.connect(self.config, name, raw=True)
            yield from self._fetch(conn, sql, args, plan, cols, size)
        finally:
            if conn is not None:
                driver.abort(conn)

    def _fetch(self, conn: Any, sql: str, args: tuple[Any, ...], plan: ReadPlan, cols: list[MyColumn] | None,
               size: int) -> Iterator[pa.RecordBatch]:
        catalog.execute(conn, START_READ_ONLY)
        cursor = driver.unbuffered_cursor(conn)
        try:
            yield from self._rows(cursor, sql, args, plan, cols, size)
        finally:
            driver.abort(conn, cursor)

    def _rows(self, cursor: Any, sql: str, args: tuple[Any, ...], plan: ReadPlan, cols: list[MyColumn] | None,
              size: int) -> Iterator[pa.RecordBatch]:
        where = self._where(plan.request)
        cursor.execute(sql, args or None)
        if cols is None:
            cols = catalog.fields_columns(list(getattr(cursor._result, "fields", None) or []), where,
                                          plan.request.type_fallback, wrapped=False)
            self._check_unchanged(plan, cols)
        # Rows arrive as Python tuples; converting every FETCH_ROWS of them keeps few alive at once
        # (a 100k-row batch of 12 columns is 1.2M objects), then the columns are concatenated.
        row_number, pending, pending_rows = 1, [], 0
        while rows := cursor.fetchmany(min(FETCH_ROWS, size - pending_rows)):
            raw = convert.columns(rows, len(cols))
            pending.append([convert.to_array(raw[i], col, where, row_number) for i, col in enumerate(cols)])
            row_number += len(rows)
            pending_rows += len(rows)
            if pending_rows >= size:
                yield _combine(pending, plan.schema)
                pending, pending_rows = [], 0
        if pending:
            yield _combine(pending, plan.schema)
        if plan.request.procedure and cursor.nextset() and cursor.description:
            raise SourceSchemaError(f"{where}: the procedure returned more than one result set.",
                                    hint="Read a procedure that returns exactly one result set.")


def _catalog_connection(config: MysqlConfig, context: str) -> Any:
    """A PyMySQL connection with value converters, for discovery and planning."""
    driver.pymysql_module()
    with driver.errors(context):
        return driver.connect(config, "pymysql")


def _ping(conn: Any) -> None:
    conn.ping(reconnect=False)


def _reset(conn: Any) -> None:
    from pymysql.constants import SERVER_STATUS

    if conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
        conn.rollback()


def _combine(chunks: list[list[pa.Array]], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    if len(chunks) == 1:
        return pa.RecordBatch.from_arrays(chunks[0], schema=schema)
    return pa.RecordBatch.from_arrays([pa.concat_arrays([c[i] for c in chunks]) for i in range(len(schema))],
                                      schema=schema)


def _take(batches: Iterator[pa.RecordBatch], limit: int) -> Iterator[pa.RecordBatch]:
    seen = 0
    for batch in batches:
        yield batch
        seen += batch.num_rows
        if seen >= limit:
            return


def _literal(value: Any) -> str:
    """A window bound as SQL text. Numbers are written as numbers; everything else is quoted by
    sqlglot, and the server compares it as the column's type (index-friendly, no string formatting
    of user values)."""
    import decimal

    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # TIMESTAMP columns: the session time zone is UTC
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return common.literal(value.isoformat(sep=" "), DIALECT)
    if isinstance(value, dt.date):
        return common.literal(value.isoformat(), DIALECT)
    return common.literal(str(value), DIALECT)

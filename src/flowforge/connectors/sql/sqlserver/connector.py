"""SQL Server source connector.

Column types come from the catalog (``sys.columns``) for tables and from SQL Server's own
description (``sp_describe_first_result_set``) for queries and procedure calls, so every column
has its exact declared type before a row is read. Rows are fetched in batches through the
driver; each column is selected in a form the driver returns exactly (see ``types``) and turned
into Arrow in C. Discovery and planning statements run on pooled connections (``pool_size``, see
``sql/pool.py``): pinged before reuse, an open transaction rolled back before one goes back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

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
from flowforge.connectors.sql.sqlserver import catalog, types
from flowforge.connectors.sql.sqlserver import sql as tsql
from flowforge.connectors.sql.sqlserver.types import Column
from flowforge.errors import SourceSchemaError
from flowforge.streams import merge

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.sql.sqlserver.config import SqlServerConfig

T = TypeVar("T")
_INTEGER_KEYS = {"tinyint", "smallint", "int", "bigint"}
_DATE_KEYS = {"date", "datetime", "datetime2", "smalldatetime"}
_OPEN_WINDOW_TYPES = {"tinyint", "smallint", "int", "bigint", "decimal", "numeric", "date"}


@register_connector("sqlserver")
class SqlServerConnector(Connector):
    """Reads tables, read-only queries and stored procedures from SQL Server, in full or incrementally.

    ```yaml
    connections:
      core: {type: sqlserver, host: db1, database: BFSI_Test, user: etl, password: "${CORE_PW}",
             trust_server_certificate: true, read_partitions: 4}
    jobs:
      - name: transactions_bronze
        source: {connection: core, table: dbo.transactions, incremental_column: modified_date}
      - name: balances_bronze
        source: {connection: core, procedure: rpt.usp_balances, params: {as_of: "2024-06-30"}}
    ```

    A ``rowversion`` column works as the incremental column too (its watermark is an integer).
    Stored procedures run once per read; their result columns are typed by SQL Server's
    description of the call and checked against the cursor's when the rows arrive.

    SQL Server has no read-only transaction: reads run under READ COMMITTED, and a query is sent
    only if it parses as one SELECT (no DML, SELECT INTO, EXEC or OPENQUERY). T-SQL functions
    cannot write, so that check and the login's permissions are the guard: use a login with
    db_datareader (and EXECUTE on the procedures it reads) only.
    """

    capabilities = ConnectorCapabilities(tables=True, query=True, procedures=True, incremental=True,
                                         partitioned_reads=True)
    shareable = True
    config: SqlServerConfig

    def __init__(self, name: str, config: SqlServerConfig) -> None:
        super().__init__(name, config)
        self._pool: Pool[Any] = Pool(partial(_connection, config, f"{self.describe()}: could not connect"),
                                     size=config.pool_size, ping=_ping, reset=_reset)

    def close(self) -> None:
        self._pool.close()

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    # -- connections ----------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return catalog.translate(f"{self.describe()}: {action}")

    def _retry(self, action: Callable[[], T], what: str) -> T:
        return catalog.with_retries(action, f"{self.describe()}: {what}")

    def _driver(self) -> str:
        return catalog.choose_driver(self.config.driver, self.config.params())

    def _connect(self) -> Any:
        """A connection of its own, for a streaming read."""
        return _connection(self.config, f"{self.describe()}: could not connect")

    def _query(self, conn: Any, sql: str, action: str) -> list[tuple[Any, ...]]:
        return self._retry(lambda: catalog.rows(conn, sql)[1], action)

    # -- discovery ------------------------------------------------------------------------

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        with self._pool.connection(fresh=True) as conn:
            found = self._query(conn, tsql.VERSION, "connection test failed")
        version = str(found[0][0]).strip().splitlines()[0] if found else "SQL Server ?"
        return ConnectionTest(ok=True, server_version=version, latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        with self._pool.connection() as conn, self._errors("could not list tables"):
            found = catalog.list_tables(conn)
        return [TableInfo(name=name, schema=schema, row_estimate=estimate) for schema, name, estimate in found]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        with self._pool.connection() as conn:
            cols = self._columns(conn, request)
        return [ColumnInfo(c.name, c.source_type, c.arrow_type, c.nullable, c.primary_key, c.default)
                for c in cols]

    def row_count(self, request: ReadRequest) -> int:
        if request.procedure is not None:
            return super().row_count(request)
        with self._pool.connection() as conn:
            self._columns(conn, request)  # a missing table says so, in our words
            found = self._query(conn, tsql.count(self._relation(request)), f"could not count {request.label}")
        return int(found[0][0])

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        import pyarrow as pa

        plan = self.plan(ReadRequest(table=request.table, query=request.query, procedure=request.procedure,
                                     params=request.params, type_fallback=request.type_fallback,
                                     batch_size=limit), None)
        batches: list[pa.RecordBatch] = []
        stream = self._batches(plan, limit=limit)
        try:
            for batch in stream:
                batches.append(batch)
                if sum(b.num_rows for b in batches) >= limit:
                    break
        finally:
            stream.close()  # a procedure's remaining rows are not fetched
        return pa.Table.from_batches(batches, schema=plan.schema).slice(0, limit)

    def _where(self, request: ReadRequest) -> str:
        what = ("query" if request.query is not None else
                f"procedure {request.procedure!r}" if request.procedure else f"table {request.table!r}")
        return f"{self.describe()}, {what}"

    def _relation(self, request: ReadRequest) -> tsql.Relation:
        if request.query is not None:
            return tsql.query_relation(request.query, self._where(request))
        schema, table = catalog.qualified(request.table or "", self.config.schema_, self.config.params().database,
                                          self._where(request))
        return tsql.table_relation(schema, table)

    def _columns(self, conn: Any, request: ReadRequest) -> list[Column]:
        where, fallback = self._where(request), request.type_fallback
        action = f"could not describe {request.label}"
        if request.query is not None:
            self._relation(request)  # refuses writes and remote calls before anything is sent
            body = common.ensure_read_only(request.query, tsql.DIALECT, where)
            return self._retry(lambda: catalog.described_columns(conn, body, where, fallback), action)
        if request.procedure is not None:
            call = catalog.describe_call(request.procedure, request.params, where)
            cols = self._retry(lambda: catalog.described_columns(conn, call, where, fallback), action)
            return [_procedure_column(c, where) for c in cols]
        if not request.table:
            raise SourceSchemaError(f"{self.describe()}: a table, a query or a procedure is required.")
        schema, table = catalog.qualified(request.table, self.config.schema_, self.config.params().database, where)
        found = self._retry(lambda: catalog.table_columns(conn, schema, table, where, fallback), action)
        if found is None:
            raise common.missing_table(self.describe(), request.table, self.name)
        return found

    # -- plan -----------------------------------------------------------------------------

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        import pyarrow as pa

        where = self._where(request)
        if request.query is not None:
            self._relation(request)  # a write is refused before connecting
        with self._pool.connection() as conn:
            cols = self._columns(conn, request)
            schema = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in cols])
            description = f"{self.describe()}: {request.label}"
            column = request.incremental_column
            if column is None:
                return ReadPlan(request=request, schema=schema, new_state=None, description=description)
            if request.procedure is not None:
                raise SourceSchemaError(f"{where}: a procedure's result cannot be read incrementally.",
                                        hint="Pass the window as procedure parameters, or read a table or query.")
            col = next((c for c in cols if c.name == column), None)
            if col is None:
                raise common.unknown_column(where, column, schema.names)
            if col.sql_type.name != "timestamp":  # rowversion: binary(8) that orders as an integer
                common.check_delta_column(schema, column, where)
            lower = common.previous_high(state, column, where)
            # an open window only where Arrow's max is the server's exactly: datetime rounds to 1/300 s
            # and datetime2(7) has digits a watermark keeps as text (see types.wire_to_python)
            if col.sql_type.name in _OPEN_WINDOW_TYPES and common.open_window(
                    request, schema, self.config.read_partitions > 1):
                return common.open_plan(request, schema, state, lower, description)
            predicate = f"{col.quoted} > {types.literal(lower, col)}" if lower is not None else None
            found = self._query(conn, tsql.select(self._relation(request), [_max_expression(col)], predicate),
                                "could not compute the incremental upper bound")
        upper = found[0][0] if found else None
        upper = int(upper) if col.sql_type.name == "timestamp" and upper is not None else types.wire_to_python(
            upper, col)
        return common.incremental_plan(request, schema, state, lower, upper, description)

    # -- read -----------------------------------------------------------------------------

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if plan.has_data:
            yield SourcePart(name=plan.request.label, modified_time=None, batches=self._batches(plan))

    def _select(self, plan: ReadPlan, cols: list[Column], extra: str | None = None,
                select_list: list[str] | None = None, top: int | None = None) -> str:
        """The SELECT of a plan: its columns, its incremental window and an optional extra
        predicate (a partition's key range)."""
        request, window = plan.request, None
        if request.incremental_column is not None and plan.bounds is not None:
            col = next(c for c in cols if c.name == request.incremental_column)
            lower, upper = plan.bounds
            window = common.window_predicate(col.quoted, types.literal(lower, col) if lower is not None else None,
                                             types.literal(upper, col) if upper is not None else None)
        return tsql.select(self._relation(request), select_list or [c.select_sql for c in cols],
                           tsql.conjunction([window, extra]), top=top)

    def _batches(self, plan: ReadPlan, limit: int | None = None) -> Generator[pa.RecordBatch, None, None]:
        with self._pool.connection() as conn:
            cols = self._columns(conn, plan.request)
            now = [(c.name, c.arrow_type) for c in cols]
            if now != list(zip(plan.schema.names, plan.schema.types, strict=True)):
                raise SourceSchemaError(
                    f"{self._where(plan.request)}: the columns changed since the read was planned "
                    f"({plan.schema} → {now}).", hint="Run the job again; it plans afresh.")
            boundaries = self._partitions(conn, plan, cols) if limit is None else []
        size = max(1, plan.request.batch_size)
        if plan.request.procedure is not None:
            yield from common.rebatch(self._procedure(plan, cols), size)
        elif boundaries:
            key = next(c for c in cols if c.primary_key).quoted
            streams = [partial(self._stream, self._select(plan, cols, extra=tsql.range_predicate(key, i, boundaries)),
                               plan, cols) for i in range(len(boundaries) + 1)]
            yield from common.rebatch(merge(streams, "mssql-read"), size)
        else:
            yield from common.rebatch(self._stream(self._select(plan, cols, top=limit), plan, cols), size)

    def _procedure(self, plan: ReadPlan, cols: list[Column]) -> Iterator[pa.RecordBatch]:
        request, driver = plan.request, self._driver()
        mark = catalog.placeholder(driver)
        call = tsql.procedure_call(request.procedure or "", [n for n, _ in request.params], "\x00",
                                   self._where(request))
        if driver == "pymssql" and request.params:  # pyformat: a '%' in a name must not start a placeholder
            call = call.replace("%", "%%")
        values = tuple(v for _, v in request.params)
        yield from self._stream(call.replace("\x00", mark), plan, cols, values, procedure=True)

    def _stream(self, sql: str, plan: ReadPlan, cols: list[Column], params: tuple[Any, ...] = (),
                procedure: bool = False) -> Iterator[pa.RecordBatch]:
        """Batches of one statement; a deadlock before the first batch is retried with backoff."""
        for attempt in range(3):
            started = False
            try:
                for batch in self._fetch(sql, plan, cols, params, procedure):
                    started = True
                    yield batch
                return
            except catalog.DeadlockVictim:
                if started or attempt == 2:
                    raise
                time.sleep(0.5 * 2 ** attempt)

    def _fetch(self, sql: str, plan: ReadPlan, cols: list[Column], params: tuple[Any, ...],
               procedure: bool) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        where = self._where(plan.request)
        convert = types.python_to_arrow if procedure else types.to_arrow
        size = max(1, plan.request.batch_size)
        conn = self._connect()
        try:
            with self._errors(f"reading {plan.request.label} failed"):
                cursor = conn.cursor()
                cursor.execute(sql, params) if params else cursor.execute(sql)
                names = [d[0] for d in cursor.description or ()]
                if names != plan.schema.names:
                    raise SourceSchemaError(
                        f"{where}: the result has columns {names}, but {plan.schema.names} were described.",
                        hint="A procedure's first result set must have the same columns on every call.")
                while rows := cursor.fetchmany(size):
                    arrays = [convert(list(values), col, where)
                              for values, col in zip(zip(*rows, strict=True), cols, strict=True)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=plan.schema)
        finally:
            conn.close()

    def _partitions(self, conn: Any, plan: ReadPlan, cols: list[Column]) -> list[str]:
        """Boundary literals splitting a single-column integer or date primary key into
        ``read_partitions`` equal ranges (empty: read in one stream)."""
        keys = [c for c in cols if c.primary_key]
        parts = self.config.read_partitions
        if parts <= 1 or plan.request.table is None or len(keys) != 1:
            return []
        key = keys[0]
        if key.sql_type.name not in _INTEGER_KEYS | _DATE_KEYS:
            return []
        ends = [types.wire_expression(key.sql_type, key.arrow_type, f"{agg}({key.quoted})")[1]
                for agg in ("MIN", "MAX")]
        found = self._query(conn, self._select(plan, cols, select_list=ends), "could not plan the partitioned read")
        if not found or found[0][0] is None:
            return []
        lo, hi = (_comparable(types.wire_to_python(v, key)) for v in found[0])
        if isinstance(lo, int) and isinstance(hi, int):
            step = max(1, -(-(hi + 1 - lo) // parts))
            points: list[Any] = list(range(lo + step, hi + 1, step))
        else:
            span = (hi - lo) / parts
            points = [p for p in (lo + span * i for i in range(1, parts)) if lo < p <= hi]
            if key.sql_type.name == "date":
                points = sorted({p.date() for p in points} - {lo.date()})
        return [types.literal(p, key) for p in points]


def _connection(config: SqlServerConfig, context: str) -> Any:
    driver = catalog.choose_driver(config.driver, config.params())
    with catalog.translate(context):
        return catalog.connect(driver, config.params())


def _ping(conn: Any) -> None:
    catalog.rows(conn, "SELECT 1")


def _reset(conn: Any) -> None:
    catalog.rows(conn, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION")


def _comparable(value: Any) -> Any:
    """A partition bound as an int, date or datetime (100 ns text is cut: bounds only split)."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def _max_expression(col: Column) -> str:
    if col.sql_type.name == "timestamp":
        return f"CAST(MAX({col.quoted}) AS bigint)"
    return types.wire_expression(col.sql_type, col.arrow_type, f"MAX({col.quoted})")[1]


def _procedure_column(col: Column, where: str) -> Column:
    """A procedure's rows come as the driver's Python values: no server-side rendering is
    possible, so types a driver cannot carry exactly are refused instead of cut."""
    import pyarrow as pa

    name = col.sql_type.name
    ns = (pa.types.is_timestamp(col.arrow_type) or pa.types.is_time(col.arrow_type)) and \
        col.arrow_type.unit == "ns"
    if ns or name in types.CLR_TYPES or name == "sql_variant":
        raise SourceSchemaError(
            f"{where}: result column {col.name!r} is {col.source_type}; the driver cannot return it "
            "exactly from a procedure (it cuts 100 ns digits, and CLR types arrive as bytes).",
            hint=f"Have the procedure return CAST({col.name} AS datetime2(6)) or a text form, "
                 "or read the underlying table or query instead.")
    return col

"""SQLite source connector.

The file is opened read-only through a ``file:…?mode=ro`` URI, so a wrong path fails instead of
creating an empty database. Types come from the *declared* column types (SQLite itself is
dynamically typed) and every value is checked against them while it is converted.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
from flowforge.errors import ConnectionFailed, ConnectorError, SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.sql.sqlite.config import SqliteConfig

DIALECT = "sqlite"
# Counting rows of every table is cheap on small files and too slow on big ones.
_COUNT_ROWS_BELOW_BYTES = 64 * 1024 * 1024

_RULES = (
    common.ErrorRule(ConnectionFailed, ("database is locked", "database table is locked"),
                     hint="Another process holds a write lock; the run will be retried."),
    common.ErrorRule(SourceNotFound, ("no such table",)),
    common.ErrorRule(SourceSchemaError, ("no such column", "syntax error", "no such function",
                                         "ambiguous column")),
    common.ErrorRule(ConnectorError, ("file is not a database", "unable to open", "disk i/o error"),
                     hint="Check that the path points to a readable SQLite database file."),
)
_FALLBACK: dict[type[BaseException], type[ConnectorError]] = {sqlite3.Error: ConnectorError}


@register_connector("sqlite")
class SqliteConnector(Connector):
    """Reads tables and read-only queries from a SQLite file, in full or incrementally.

    ```yaml
    connections:
      shop: {type: sqlite, path: data/shop.db}
    jobs:
      - name: orders_bronze
        source: {connection: shop, table: orders, incremental_column: modified_date}
    ```

    SQLite stores timestamps as text, so an incremental watermark on such a column is the
    stored text and is compared the way SQLite compares it.
    """

    capabilities = ConnectorCapabilities(tables=True, query=True, incremental=True)
    config: SqliteConfig

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    # -- connections ----------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return common.translate_errors(f"{self.describe()}: {action}", _RULES, _FALLBACK)

    def _connect(self) -> sqlite3.Connection:
        path = Path(self.config.path)
        if not path.is_file():
            raise SourceNotFound(
                f"{self.describe()}: database file {str(path)!r} does not exist.",
                hint="Check the path (relative paths are resolved against the project); FlowForge "
                     "opens SQLite files read-only and never creates them.",
            )
        with self._errors("could not open the database"):
            # check_same_thread=False: a runner may consume the batch generator on another thread.
            conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
            except BaseException:
                conn.close()
                raise
        return conn

    # -- discovery ------------------------------------------------------------------------

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        with closing(self._connect()) as conn, self._errors("connection test failed"):
            version = conn.execute("SELECT sqlite_version()").fetchone()[0]
        return ConnectionTest(ok=True, server_version=f"SQLite {version}",
                              latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        with closing(self._connect()) as conn, self._errors("could not list tables"):
            count = Path(self.config.path).stat().st_size < _COUNT_ROWS_BELOW_BYTES
            rows = conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").fetchall()
            tables = []
            for name, kind in rows:
                estimate = None
                if count and kind == "table":
                    quoted = common.quote_ident(name, DIALECT)
                    estimate = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
                tables.append(TableInfo(name=name, schema=None, row_estimate=estimate))
        return tables

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        with closing(self._connect()) as conn:
            return self._columns(conn, request)

    def _where(self, request: ReadRequest) -> str:
        return f"{self.describe()}, {'query' if request.query else f'table {request.table!r}'}"

    def _columns(self, conn: sqlite3.Connection, request: ReadRequest) -> list[ColumnInfo]:
        where = self._where(request)
        if request.query is None:
            if not request.table:
                raise SourceSchemaError(f"{self.describe()}: a table or a query is required.")
            schema, table = common.split_table(request.table, DIALECT)
            with self._errors(f"could not read the columns of {request.table!r}"):
                rows = conn.execute("SELECT name, type, \"notnull\", pk, dflt_value FROM pragma_table_info(?, ?)",
                                    (table, schema or "main")).fetchall()
            if not rows:
                raise common.missing_table(self.describe(), request.table, self.name)
            relation = common.quote_table(schema, table, DIALECT)
            info, defaults = [row[:4] for row in rows], {row[0]: row[4] for row in rows}
            casts: dict[str, str] = {}
        else:
            relation = common.relation_sql(request, None, DIALECT, where)
            info, casts = self._query_columns(conn, request.query, relation, where)
            defaults = {}
        # An INTEGER PRIMARY KEY is the rowid: never NULL, although SQLite does not say NOT NULL.
        keys = [row for row in info if row[3]]
        if len(keys) == 1 and keys[0][1].strip().upper() == "INTEGER":
            rowid = keys[0][0]
            info = [(n, d, notnull or n == rowid, pk) for n, d, notnull, pk in info]
        untyped = [row[0] for row in info if not (casts.get(row[0]) or row[1] or "").strip()]
        inferred = self._storage_classes(conn, relation, untyped) if untyped else {}
        return [
            ColumnInfo(name=name, source_type=casts.get(name) or declared or f"(untyped: {inferred[name]})",
                       arrow_type=_arrow_type(casts.get(name) or declared, name, where,
                                              inferred.get(name)),
                       nullable=not notnull, primary_key=bool(pk), default=defaults.get(name))
            for name, declared, notnull, pk in info
        ]

    def _query_columns(self, conn: sqlite3.Connection, query: str, relation: str,
                       where: str) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
        # A temporary view (allowed on a read-only file) makes SQLite report the declared
        # type of every column that is a plain column reference, through joins and subqueries.
        view = f"_ff_cols_{uuid.uuid4().hex[:12]}"
        with self._errors("the query failed"):
            conn.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {relation}")
            try:
                rows = conn.execute("SELECT name, type, 0, 0 FROM pragma_table_info(?, 'temp')",
                                    (view,)).fetchall()
            finally:
                conn.execute(f"DROP VIEW temp.{view}")
        # SQLite renames a repeated output name to 'id:1' (in views and subqueries alike).
        names = [row[0] for row in rows]
        _refuse_duplicates([re.sub(r":\d+$", "", n) if re.sub(r":\d+$", "", n) in names else n
                            for n in names], where)
        return rows, _cast_types(query)

    def _storage_classes(self, conn: sqlite3.Connection, relation: str, names: list[str]) -> dict[str, str]:
        exprs = [f"group_concat(DISTINCT typeof({common.quote_ident(n, DIALECT)}))" for n in names]
        with self._errors("could not inspect untyped columns"):
            row = conn.execute(common.select_sql(relation, exprs)).fetchone()
        return {n: (v or "null") for n, v in zip(names, row, strict=True)}

    # -- extract --------------------------------------------------------------------------

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        import pyarrow as pa

        with closing(self._connect()) as conn:
            cols = self._columns(conn, request)
            schema = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in cols])
            description = f"{self.describe()}: {request.label}"
            column = request.incremental_column
            if column is None:
                return ReadPlan(request=request, schema=schema, new_state=None, description=description)
            common.check_delta_column(schema, column, self._where(request))
            lower = common.previous_high(state, column, self._where(request))
            # an open window only on integers: text (timestamps included) compares as stored, which
            # the value read back need not match character for character
            if pa.types.is_integer(schema.field(column).type) and common.open_window(request, schema):
                return common.open_plan(request, schema, state, lower, description)
            relation = self._relation(request)
            quoted = common.quote_ident(column, DIALECT)
            predicate, params = (f"{quoted} > ?", [_bindable(lower)]) if lower is not None else (None, [])
            with self._errors("could not compute the incremental upper bound"):
                upper = conn.execute(common.select_sql(relation, [f"max({quoted})"], predicate),
                                     params).fetchone()[0]
        return common.incremental_plan(request, schema, state, lower, upper, description)

    def _relation(self, request: ReadRequest) -> str:
        if request.query is not None:
            return common.relation_sql(request, None, DIALECT, self._where(request))
        schema, table = common.split_table(request.table or "", DIALECT)
        return common.quote_table(schema, table, DIALECT)

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if plan.has_data:
            yield SourcePart(name=plan.request.label, modified_time=None, batches=self._batches(plan))

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        import pyarrow as pa

        plan = self.plan(ReadRequest(table=request.table, query=request.query, batch_size=limit), None)
        return pa.Table.from_batches(list(self._batches(plan, limit=limit)), schema=plan.schema)

    def _batches(self, plan: ReadPlan, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from flowforge.connectors.sql.sqlite.convert import to_array

        request = plan.request
        where = self._where(request)
        select_list = [common.quote_ident(n, DIALECT) for n in plan.schema.names]
        predicate, params = None, []
        if request.incremental_column is not None and plan.bounds is not None:
            lower, upper = plan.bounds
            quoted = common.quote_ident(request.incremental_column, DIALECT)
            predicate = common.window_predicate(quoted, "?" if lower is not None else None,
                                                "?" if upper is not None else None)
            params = [_bindable(v) for v in (lower, upper) if v is not None]
        sql = common.select_sql(self._relation(request), select_list, predicate)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        size = max(1, request.batch_size)
        with closing(self._connect()) as conn, self._errors(f"reading {request.label} failed"):
            cursor = conn.execute(sql, params)
            row_number = 1
            while rows := cursor.fetchmany(size):
                columns = list(zip(*rows, strict=True))
                arrays = [to_array(columns[i], field.type, field.name, where, row_number)
                          for i, field in enumerate(plan.schema)]
                row_number += len(rows)
                yield pa.RecordBatch.from_arrays(arrays, schema=plan.schema)


def _refuse_duplicates(names: list[str], where: str) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceSchemaError(f"{where}: the result has duplicate column names {duplicates}.",
                                hint="Give every selected column a distinct alias.")


def _arrow_type(declared: str, column: str, where: str, storage: str | None) -> pa.DataType:
    """SQLite's own affinity rules decide what a declared name means when we do not know it
    (``UNSIGNED BIG INT`` is an integer, ``NVARCHAR(20)`` text); integers are always 64-bit and
    REAL is an 8-byte double whatever the declared name says."""
    from flowforge.connectors.sql.sqlite.convert import storage_family

    family = common.type_family(declared) if declared.strip() else None
    upper = declared.upper()
    if not declared.strip():
        family = storage_family(set((storage or "null").split(",")), column, where)
    elif family in ("int16", "int32", "int64"):
        family = "int64"
    elif family == "float32":
        family = "float64"
    elif family == "interval":
        family = "unsupported"  # SQLite has no interval storage; refuse rather than guess
    elif family is None:
        if "INT" in upper:
            family = "int64"
        elif any(k in upper for k in ("CHAR", "CLOB", "TEXT")):
            family = "string"
        elif "BLOB" in upper:
            family = "binary"
        elif any(k in upper for k in ("REAL", "FLOA", "DOUB")):
            family = "float64"
    return common.arrow_type(declared or "(untyped)", column, where, family=family)


def _cast_types(query: str) -> dict[str, str]:
    """Output name → CAST target for top-level ``CAST(expr AS type)`` projections, which SQLite
    does not report as declared types."""
    import sqlglot
    from sqlglot import exp

    try:
        root = sqlglot.parse_one(query, read=DIALECT)
    except sqlglot.errors.SqlglotError:
        return {}
    while isinstance(root, exp.SetOperation):
        root = root.left
    if not isinstance(root, exp.Select):
        return {}
    out: dict[str, str] = {}
    for projection in root.expressions:
        inner = projection.unalias()
        if isinstance(inner, exp.Cast) and projection.alias_or_name:
            # Rendered without a dialect: sqlglot's SQLite output turns DECIMAL into REAL.
            out[projection.alias_or_name] = inner.to.sql()
    return out


def _bindable(value: Any) -> Any:
    """Watermarks are the stored SQLite values; a typed one (from another connector's state)
    is rendered the way SQLite's own date functions write it."""
    import datetime as dt
    import decimal

    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value

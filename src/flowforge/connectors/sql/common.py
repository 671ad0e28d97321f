"""What every SQL source shares: quoting, the SELECT we send, read-only checks, incremental
windows, declared-type → Arrow mapping and the translation of driver errors.

Dialect specifics (catalog queries, drivers, value conversion) stay in each connector.
Nothing heavy is imported at module level except sqlglot, which every SQL connector needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.connectors.base import ReadPlan, ReadRequest, decode_position, encode_position
from flowforge.errors import (
    ErrorMap,
    FlowForgeError,
    SourceNotFound,
    SourceSchemaError,
    map_exceptions,
)

if TYPE_CHECKING:
    import pyarrow as pa

QUERY_ALIAS = "_ff_q"
# An unconstrained NUMERIC has no declared scale; 9 fractional digits covers money, rates and
# most measurements. A value with more digits raises instead of being rounded.
UNCONSTRAINED_DECIMAL = (38, 9)
READ_ONLY_MESSAGE = "only read-only queries are allowed (SELECT, WITH … SELECT, UNION/INTERSECT/EXCEPT)"


# -- identifiers and SQL text ---------------------------------------------------------

# The quoting sqlglot applies, for the dialects FlowForge reads (written out: an ingest of a table
# then needs no SQL parser, whose import costs more than reading a small table).
_QUOTES: dict[str, tuple[str, str]] = {"sqlite": ('"', '"'), "postgres": ('"', '"'), "duckdb": ('"', '"'),
                                       "mysql": ("`", "`"), "tsql": ("[", "]")}
_PLAIN_TABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


def quote_ident(name: str, dialect: str) -> str:
    quotes = _QUOTES.get(dialect)
    if quotes is not None:
        start, end = quotes
        return start + name.replace(end, end + end) + end
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect)


def split_table(name: str, dialect: str) -> tuple[str | None, str]:
    """``schema.table`` (quotes allowed, as the user would type it) → (schema or None, table)."""
    plain = _PLAIN_TABLE.fullmatch(name)
    if plain is not None:  # what sqlglot gives for unquoted names, without importing it
        return (plain.group(1), plain.group(2)) if plain.group(2) else (None, plain.group(1))
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        table = exp.to_table(name, dialect=dialect)
    except (SqlglotError, ValueError):  # sqlglot raises ValueError for too many dots
        raise SourceNotFound(f"{name!r} is not a valid table name.",
                             hint="Give schema.table; quote a name with special characters as the database "
                                  "does.") from None
    return (table.db or None), table.name


def quote_table(schema: str | None, table: str, dialect: str) -> str:
    parts = [schema, table] if schema else [table]
    return ".".join(quote_ident(p, dialect) for p in parts)


# Text that every dialect FlowForge reads quotes as itself between single quotes (what sqlglot
# writes for it): the bounds of incremental windows (timestamps, dates, numbers) need no SQL parser,
# whose import costs more than an incremental read of a few thousand rows.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9 _:.+\-]*")


def literal(value: str, dialect: str) -> str:
    """A string literal quoted by sqlglot's rules for the dialect (never hand-escaped beyond text
    that needs no escaping at all)."""
    if _PLAIN_TEXT.fullmatch(value) and dialect in _QUOTES:
        return f"'{value}'"
    from sqlglot import exp

    return exp.Literal.string(value).sql(dialect)


def ensure_read_only(query: str, dialect: str, where: str) -> str:
    """Parse ``query`` and refuse anything but one read-only statement.

    Returns the query text without trailing semicolons, ready to wrap as a subquery. Databases
    also enforce read-only sessions where they can; this check gives the clear message early.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    hint = "Rewrite it as a SELECT; load results of procedures or DML into a table first."
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except SqlglotError as exc:
        from flowforge.engine.sandbox import parse_error_detail

        detail = parse_error_detail(exc)
        raise SourceSchemaError(
            f"{where}: the query could not be parsed ({detail}); {READ_ONLY_MESSAGE}.",
            hint="Check the SQL. If the database accepts it but FlowForge cannot parse it, "
                 "create a view with it and read the view as a table.") from exc
    if len(statements) != 1:
        raise SourceSchemaError(f"{where}: expected exactly one statement, got {len(statements)}; "
                                f"{READ_ONLY_MESSAGE}.", hint=hint)
    root = statements[0]
    forbidden = tuple(
        cls for cls in (getattr(exp, n, None) for n in (
            "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command",
            "Copy", "Pragma", "TruncateTable", "Set", "Use", "Transaction", "Commit", "Rollback",
            "Grant", "Analyze", "Lock", "Attach", "Detach", "Kill",
        )) if isinstance(cls, type)
    )
    bad = next((node for node in root.walk() if isinstance(node, forbidden)), None)
    # A data-modifying CTE hides inside a SELECT, and SELECT … INTO creates a table.
    selects_into = any(isinstance(n, exp.Select) and n.args.get("into") for n in root.walk())
    if not isinstance(root, exp.Select | exp.SetOperation | exp.Subquery) or bad is not None or selects_into:
        kind = type(bad if bad is not None else root).__name__.upper()
        if selects_into:
            kind = "SELECT INTO"
        raise SourceSchemaError(f"{where}: {READ_ONLY_MESSAGE}; found {kind}.", hint=hint)
    return query.strip().rstrip(";").rstrip()


def relation_sql(request: ReadRequest, quoted_table: str | None, dialect: str, where: str) -> str:
    """The FROM-able relation: a quoted table, or the user's query wrapped as a subquery so
    incremental predicates and column lists apply to it like to a table."""
    if request.query is not None:
        body = ensure_read_only(request.query, dialect, where)
        # Newlines keep a trailing ``-- comment`` in the user's text from eating the ``)``.
        return f"(\n{body}\n) AS {quote_ident(QUERY_ALIAS, dialect)}"
    if quoted_table is None:
        raise ValueError("a table or a query is required")
    return quoted_table


def select_sql(relation: str, select_list: Iterable[str], predicate: str | None = None) -> str:
    sql = f"SELECT {', '.join(select_list)} FROM {relation}"
    return f"{sql} WHERE {predicate}" if predicate else sql


def window_predicate(column_sql: str, lower_sql: str | None, upper_sql: str | None) -> str | None:
    """``col > lower AND col <= upper``: lower exclusive (already loaded), upper inclusive and
    fixed at plan time, so rows committed after planning wait for the next run. Without an upper
    bound (an open window, ``ReadPlan.watermark_column``) just ``col > lower``, or nothing at all."""
    parts = ([f"{column_sql} > {lower_sql}"] if lower_sql is not None else []) + (
        [f"{column_sql} <= {upper_sql}"] if upper_sql is not None else [])
    return " AND ".join(parts) or None


# -- incremental state ----------------------------------------------------------------

def previous_high(state: dict[str, Any] | None, column: str, where: str) -> Any:
    """The exclusive lower bound stored by the last run, or None on a first run."""
    if not state:
        return None
    if state.get("column") not in (None, column):
        raise SourceSchemaError(
            f"{where}: the stored watermark is for column {state.get('column')!r}, "
            f"but the job now reads incrementally by {column!r}.",
            hint="Reset the job's watermark to re-read from the start, or restore the previous column.",
        )
    return decode_position(state.get("high"))


def apply_lookback(lower: Any, lookback: Any, where: str) -> Any:
    """The lower bound of the window actually scanned: ``lower - lookback`` (never stored)."""
    import datetime as dt
    import decimal

    if lower is None or lookback is None:
        return lower
    if isinstance(lower, str) and isinstance(lookback, dt.timedelta):
        # SQLite keeps timestamps as text; shift it and write it back in the same shape
        try:
            return str(dt.datetime.fromisoformat(lower) - lookback)
        except ValueError:
            pass
    if isinstance(lower, dt.datetime | dt.date) and isinstance(lookback, dt.timedelta):
        return lower - lookback
    if isinstance(lower, int) and isinstance(lookback, int | float):
        return lower - int(lookback)
    if isinstance(lower, decimal.Decimal) and isinstance(lookback, int | float):
        return lower - decimal.Decimal(str(lookback))
    if isinstance(lower, float) and isinstance(lookback, int | float):
        return lower - lookback
    raise SourceSchemaError(
        f"{where}: a lookback of {lookback!r} cannot be applied to a watermark like {lower!r}.",
        hint="Use a duration (e.g. '15m') for timestamp columns and a number for numeric ones.")


def check_delta_column(schema: pa.Schema, column: str, where: str) -> None:
    """The incremental column must exist and be of a type with a meaningful ``>``."""
    import pyarrow as pa

    if column not in schema.names:
        raise unknown_column(where, column, schema.names)
    kind = schema.field(column).type
    if not (pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_floating(kind)
            or (pa.types.is_temporal(kind) and not pa.types.is_interval(kind)) or pa.types.is_string(kind)):
        raise SourceSchemaError(
            f"{where}: column {column!r} ({kind}) cannot be an incremental column.",
            hint="Use a timestamp, date or increasing number (an id or a row version).")


def incremental_plan(request: ReadRequest, schema: pa.Schema, state: dict[str, Any] | None,
                     lower: Any, upper: Any, description: str) -> ReadPlan:
    """Build the plan once the connector has computed ``upper = max(col) WHERE col > lower``."""
    column = request.incremental_column
    if upper is None:
        # Nothing new: keep the old position exactly, so the commit records no movement.
        return ReadPlan(request=request, schema=schema, new_state=state, has_data=False,
                        description=f"{description} (no rows after {lower!r})", bounds=(lower, lower))
    # New rows exist: scan from ``lower - lookback`` so rows committed late with an older cursor
    # value are read again (silver deduplicates them); the stored position stays ``upper``.
    scan_from = apply_lookback(lower, request.lookback, description)
    return ReadPlan(
        request=request, schema=schema, new_state={"column": column, "high": encode_position(upper)},
        has_data=True, description=f"{description} where {column} > {scan_from!r} and <= {upper!r}",
        bounds=(scan_from, upper),
    )


def open_window(request: ReadRequest, schema: pa.Schema, partitioned: bool = False) -> bool:
    """Whether to plan an open window (no ``max()`` query, the watermark taken from the rows read):
    the caller asked for it and the delta column's Arrow max is the database's. A partitioned read
    keeps the upper bound fixed at plan time: its streams see the table at different moments."""
    from flowforge.connectors.base import watermark_from_rows_type

    column = request.incremental_column
    return bool(request.watermark_from_rows and column is not None and not partitioned
                and watermark_from_rows_type(schema.field(column).type))


def open_plan(request: ReadRequest, schema: pa.Schema, state: dict[str, Any] | None, lower: Any,
              description: str) -> ReadPlan:
    """An open window ``col > lower``: one scan; the next watermark is the max of the rows read."""
    column = request.incremental_column
    # a lookback reads a window below the stored position again; the position itself only moves
    # forward (``RowsWatermark`` commits nothing when no row read lies beyond it)
    scan_from = apply_lookback(lower, request.lookback, description)
    after = f" > {scan_from!r}" if scan_from is not None else ""
    return ReadPlan(request=request, schema=schema, new_state=state, has_data=True,
                    description=f"{description} where {column}{after}", bounds=(scan_from, None),
                    watermark_column=column)


def unknown_column(where: str, column: str, available: Iterable[str]) -> SourceSchemaError:
    names = ", ".join(available)
    return SourceSchemaError(
        f"{where}: incremental column {column!r} does not exist. Available columns: {names}.",
        hint="Set incremental_column to one of the available columns (a timestamp or increasing id).",
    )


def missing_table(where: str, table: str, connection: str) -> SourceNotFound:
    return SourceNotFound(
        f"{where}: table {table!r} does not exist or is not visible to this user.",
        hint=f"List the tables it can see with 'flowforge connections tables {connection}' "
             "and check the spelling and schema.",
    )


# -- declared SQL types → Arrow --------------------------------------------------------

_PARAMS = re.compile(r"\(\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
_NAMES: dict[str, str] = {
    **dict.fromkeys(("smallint", "int2", "tinyint"), "int16"),
    **dict.fromkeys(("integer", "int", "int4", "mediumint", "serial"), "int32"),
    **dict.fromkeys(("bigint", "int8", "bigserial"), "int64"),
    **dict.fromkeys(("real", "float4"), "float32"),
    **dict.fromkeys(("double precision", "double", "float8", "float"), "float64"),
    **dict.fromkeys(("numeric", "decimal", "dec"), "decimal"),
    **dict.fromkeys(("text", "varchar", "character varying", "char", "character", "bpchar", "nchar",
                     "nvarchar", "varying character", "native character", "national character",
                     "clob", "string", "name", "citext", "uuid", "json", "jsonb", "xml", "inet",
                     "cidr", "macaddr", "macaddr8"), "string"),
    **dict.fromkeys(("bytea", "blob", "binary", "varbinary"), "binary"),
    **dict.fromkeys(("boolean", "bool"), "bool"),
    "date": "date",
    **dict.fromkeys(("time", "time without time zone"), "time"),
    **dict.fromkeys(("timestamp", "timestamp without time zone", "datetime"), "timestamp"),
    **dict.fromkeys(("timestamptz", "timestamp with time zone"), "timestamptz"),
    "interval": "interval",
}


@dataclass(frozen=True)
class DeclaredType:
    """A declared type split into its base name and parameters: ``numeric(15,2)`` →
    ``('numeric', 15, 2)``; ``timestamp(3) without time zone`` → ``('timestamp without time zone', 3)``."""

    base: str
    precision: int | None
    scale: int | None
    array: bool

    @classmethod
    def parse(cls, declared: str) -> DeclaredType:
        text = declared.strip().lower()
        array = text.endswith("[]") or text.startswith("array")
        text = text.removesuffix("[]")
        match = _PARAMS.search(text)
        precision = int(match.group(1)) if match else None
        scale = int(match.group(2)) if match and match.group(2) is not None else None
        base = " ".join(_PARAMS.sub(" ", text).replace('"', "").split())
        return cls(base=base, precision=precision, scale=scale, array=array)


def type_family(declared: str) -> str | None:
    """The family of a declared type name (``int32``, ``decimal``, ``string``…) or None."""
    return _NAMES.get(DeclaredType.parse(declared).base)


def arrow_type(declared: str, column: str, where: str, *, family: str | None = None) -> pa.DataType:
    """The exact Arrow type for a declared SQL type, or SourceSchemaError naming the column.

    ``family`` overrides the name lookup (SQLite's affinity rules, PostgreSQL enums)."""
    import pyarrow as pa

    parsed = DeclaredType.parse(declared)
    hint = f"Select the column through a query with an explicit CAST (for example CAST({column} AS TEXT))."
    if parsed.array:
        element = declared.strip().removesuffix("[]")
        if element.lower().startswith("array") or element.endswith("[]"):
            raise SourceSchemaError(f"{where}: column {column!r} is a nested array ({declared}).", hint=hint)
        return pa.list_(arrow_type(element, column, where, family=family))
    family = family or _NAMES.get(parsed.base)
    simple: dict[str, Callable[[], pa.DataType]] = {
        "int16": pa.int16, "int32": pa.int32, "int64": pa.int64, "float32": pa.float32,
        "float64": pa.float64, "string": pa.string, "binary": pa.binary, "bool": pa.bool_,
        "date": pa.date32, "interval": pa.month_day_nano_interval,
        "time": lambda: pa.time64("us"), "timestamp": lambda: pa.timestamp("us"),
        "timestamptz": lambda: pa.timestamp("us", tz="UTC"),
    }
    if family in simple:
        return simple[family]()
    if family == "decimal":
        precision, scale = parsed.precision, parsed.scale or 0
        if precision is None:
            precision, scale = UNCONSTRAINED_DECIMAL
        if precision <= 38:
            return pa.decimal128(precision, scale)
        if precision <= 76:
            return pa.decimal256(precision, scale)
        raise SourceSchemaError(f"{where}: column {column!r} is {declared}; Arrow decimals hold at "
                                "most 76 digits.", hint=hint)
    raise SourceSchemaError(f"{where}: column {column!r} has type {declared!r}, which has no exact "
                            "Arrow mapping.", hint=hint)


# -- batches --------------------------------------------------------------------------

def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Slice (zero-copy) so no batch exceeds ``size`` rows; drivers choose their own sizes."""
    for batch in batches:
        if batch.num_rows <= size:
            if batch.num_rows:
                yield batch
            continue
        for offset in range(0, batch.num_rows, size):
            yield batch.slice(offset, size)


# -- driver errors --------------------------------------------------------------------

@dataclass(frozen=True)
class ErrorRule:
    """Driver message fragments (lower case) or SQLSTATEs that select one FlowForge error."""

    error: type[FlowForgeError]
    fragments: tuple[str, ...] = ()
    sqlstates: tuple[str, ...] = ()
    hint: str | None = None

    def matches(self, exc: BaseException) -> bool:
        state = getattr(exc, "sqlstate", None)
        if state and any(state.startswith(s) for s in self.sqlstates):
            return True
        text = str(exc).lower()
        return any(fragment in text for fragment in self.fragments)


_DRIVER_PREFIX = re.compile(
    r"^(?:[A-Z_]+: |\[libpq\] |Failed to (?:connect|prepare query|execute query): |could not begin COPY: |"
    r"connection failed: |Execution error \[\w+\]: |ERROR:\s+|FATAL:\s+)")


def driver_detail(exc: BaseException) -> str:
    """The useful first line of a driver message, without driver prefixes."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    while (stripped := _DRIVER_PREFIX.sub("", line, count=1)) != line:
        line = stripped
    return line.strip()


@contextmanager
def translate_errors(context: str, rules: Iterable[ErrorRule],
                     fallback: ErrorMap) -> Iterator[None]:
    """Turn a driver exception into one FlowForge error naming ``context``.

    Message rules come first because drivers raise one class (OperationalError) for a refused
    connection, a wrong password and a missing database; ``map_exceptions`` handles the rest."""
    try:
        yield
    except FlowForgeError:
        raise
    except Exception as exc:
        for rule in rules:
            if rule.matches(exc):
                raise rule.error(f"{context}: {driver_detail(exc)}", hint=rule.hint) from exc
        # Anything not listed (a bug of ours, a KeyboardInterrupt) propagates unchanged.
        with map_exceptions(fallback, context):
            raise

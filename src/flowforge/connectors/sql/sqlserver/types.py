"""SQL Server types → exact Arrow types, and how each column travels from the server.

No value is ever silently changed: decimals never pass through float, 100 ns digits reach Arrow
(what bronze does with them is the job's stated choice, below), and a type without an exact Arrow
twin raises ``SourceSchemaError`` naming the column unless the job says ``type_fallback: string``.

=================================  ===========================  ======================================
SQL Server                         Arrow                        notes
=================================  ===========================  ======================================
bit                                bool
tinyint                            int16                        0-255; Delta has no unsigned types
smallint / int / bigint            int16 / int32 / int64
decimal(p,s), numeric(p,s)         decimal128(p,s)              p ≤ 18 sent as a scaled bigint, else text
money / smallmoney                 decimal128(19,4) / (10,4)    exact, never float
real, float(1-24)                  float32
float, float(25-53)                float64
date                               date32
smalldatetime                      timestamp('s')               whole minutes; 's' keeps them exactly
datetime                           timestamp('ms')              1/300 s ticks, shown rounded to ms
datetime2(0-6)                     timestamp('us')
datetime2(7) (the default)         timestamp('ns')              100 ns digits kept; years 1677-2262 only;
                                                                in Delta: ``sub_microseconds`` (below)
datetimeoffset(0-6) / (7)          timestamp('us'/'ns', UTC)    the absolute instant; the original
                                                                offset is not kept (a query can add
                                                                DATEPART(TZOFFSET, col) beside it);
                                                                (7) in Delta: ``sub_microseconds``
time(0-6) / time(7)                time64('us') / ('ns')        in Delta: ISO text with every digit
char, varchar, nchar, nvarchar,    string                       (n)varchar(max) in full
text, ntext, xml
uniqueidentifier                   string                       canonical lower-case 8-4-4-4-12
binary, varbinary, image           binary
rowversion / timestamp             binary(8)                    also usable as incremental column
sql_variant                        SourceSchemaError            string fallback: text by base type
hierarchyid, geography, geometry   SourceSchemaError            string fallback: .ToString() (WKT)
=================================  ===========================  ======================================

Values that Arrow cannot hold in the chosen unit fail loudly, naming the column: a
datetime2(7) of 9999-12-31 (read it as datetime2(6) through a query, or ``type_fallback``).

Delta Lake stores timestamps in microseconds, so a datetime2(7) or datetimeoffset(7) value whose
100 ns digit is not zero cannot land as it is. The ingest table states the choice, which bronze
applies to every source alike (``sub_microseconds``): ``error`` (the default) stops the job before
anything is committed, naming the column, row and value with all 7 digits; ``truncate`` drops the
digit toward the earlier instant (never rounding up) and counts the values in the run log; ``string``
lands the column as ISO-8601 text with every digit (datetimeoffset as the UTC instant ending in ``Z``).
Values in whole microseconds land unchanged. An incremental datetime2(7) column keeps its
watermark as 7-digit text that the server compares as datetime2(7), so under ``truncate`` the next
window still starts exactly after the newest row read: no row is skipped or read twice (beyond what a
lookback re-reads on purpose).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.connectors.sql import common
from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

DIALECT = "tsql"
_INTEGERS = {"tinyint": "int16", "smallint": "int16", "int": "int32", "bigint": "int64"}
_STRINGS = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "xml", "sysname"}
_BINARIES = {"binary", "varbinary", "image"}
_TEMPORAL_SCALED = {"datetime2", "datetimeoffset", "time"}
CLR_TYPES = {"hierarchyid", "geography", "geometry"}
# Names as written in DDL that mean a system type.
_SYNONYMS = {"integer": "int", "dec": "decimal", "double precision": "float", "character": "char",
             "char varying": "varchar", "character varying": "varchar", "national character": "nchar",
             "national char": "nchar", "national character varying": "nvarchar",
             "national char varying": "nvarchar", "national text": "ntext", "rowversion": "timestamp"}
_DEFAULTS = {"decimal": (18, 0), "numeric": (18, 0)}
_TYPE_TEXT = re.compile(r"^\s*\[?([A-Za-z][A-Za-z0-9_ ]*?)\]?\s*(?:\(\s*([^)]*)\))?\s*$")
ISO_STYLE = {"datetime": 126, "datetime2": 126, "date": 23}


@dataclass(frozen=True)
class SqlType:
    """A SQL Server system type with its parameters as declared.

    ``length`` counts characters for char types (sys.columns counts bytes: nvarchar(50) has
    max_length 100) and bytes for binary types; -1 means ``max``."""

    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def from_catalog(cls, name: str, max_length: int | None, precision: int | None,
                     scale: int | None) -> SqlType:
        """From sys.columns / sp_describe_first_result_set (max_length in bytes)."""
        base = _SYNONYMS.get(name.lower(), name.lower())
        if base == "sysname":
            return cls("nvarchar", 128)
        if base in ("char", "varchar", "binary", "varbinary"):
            return cls(base, max_length)
        if base in ("nchar", "nvarchar"):
            return cls(base, -1 if max_length == -1 else (max_length or 2) // 2)
        if base in ("decimal", "numeric"):
            return cls(base, None, precision, scale)
        if base == "float":
            return cls("float", None, precision or 53)
        if base in _TEMPORAL_SCALED:
            return cls(base, None, None, 7 if scale is None else scale)
        return cls(base)

    @classmethod
    def parse(cls, text: str) -> SqlType:
        """From DDL or ``system_type_name``: ``decimal(15, 2)``, ``nvarchar(max)``, ``float(24)``."""
        match = _TYPE_TEXT.match(text)
        if not match:
            raise ValueError(f"not a SQL Server type: {text!r}")
        base = " ".join(match.group(1).lower().split())
        base = _SYNONYMS.get(base, base)
        args = [a.strip().lower() for a in match.group(2).split(",")] if match.group(2) else []
        numbers = [-1 if a == "max" else int(a) for a in args if a]
        if base == "sysname":
            return cls("nvarchar", 128)
        if base in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
            return cls(base, numbers[0] if numbers else 1)
        if base in ("decimal", "numeric"):
            precision, scale = _DEFAULTS[base]
            return cls(base, None, numbers[0] if numbers else precision,
                       numbers[1] if len(numbers) > 1 else (scale if not numbers else 0))
        if base == "float":
            return cls("float", None, numbers[0] if numbers else 53)
        if base in _TEMPORAL_SCALED:
            return cls(base, None, None, numbers[0] if numbers else 7)
        return cls(base)

    def declared(self) -> str:
        """The canonical T-SQL spelling: ``decimal(15,2)``, ``nvarchar(max)``, ``datetime2(7)``."""
        if self.length is not None:
            return f"{self.name}({'max' if self.length == -1 else self.length})"
        if self.name in ("decimal", "numeric"):
            return f"{self.name}({self.precision},{self.scale})"
        if self.name == "float":
            return "real" if (self.precision or 53) <= 24 else "float"
        if self.name in _TEMPORAL_SCALED:
            return f"{self.name}({self.scale})"
        return self.name


def arrow_type(t: SqlType, column: str, where: str, fallback: str | None = None) -> pa.DataType:
    """The exact Arrow type of a column, or SourceSchemaError naming it (see the module table)."""
    import pyarrow as pa

    name = t.name
    if name in _INTEGERS:
        return getattr(pa, _INTEGERS[name])()
    simple: dict[str, Callable[[], pa.DataType]] = {
        "bit": pa.bool_, "real": pa.float32, "date": pa.date32, "uniqueidentifier": pa.string,
        "money": lambda: pa.decimal128(19, 4), "smallmoney": lambda: pa.decimal128(10, 4),
        "datetime": lambda: pa.timestamp("ms"), "smalldatetime": lambda: pa.timestamp("s"),
        "timestamp": lambda: pa.binary(8),
    }
    if name in simple:
        return simple[name]()
    if name in _STRINGS:
        return pa.string()
    if name in _BINARIES:
        return pa.binary()
    if name in ("decimal", "numeric"):
        precision, scale = t.precision or 18, t.scale or 0
        return pa.decimal128(precision, scale)  # SQL Server's maximum precision is 38
    if name == "float":
        return pa.float32() if (t.precision or 53) <= 24 else pa.float64()
    if name in _TEMPORAL_SCALED:
        unit = "ns" if (t.scale if t.scale is not None else 7) > 6 else "us"
        if name == "time":
            return pa.time64(unit)
        return pa.timestamp(unit, tz="UTC") if name == "datetimeoffset" else pa.timestamp(unit)
    if fallback == "string":
        return pa.string()
    raise SourceSchemaError(
        f"{where}: column {column!r} has type {t.declared()}, which has no exact Arrow mapping.",
        hint=("Set type_fallback: string on the job to read it as text"
              + (" (its .ToString() form)" if name in CLR_TYPES else "")
              + f", or select it through a query with an explicit CAST([{column}] AS nvarchar(max))."))


# -- how a column travels ------------------------------------------------------------------------
#
# The server renders the awkward types into forms every driver returns exactly: temporal values as
# ISO text (drivers cut datetime2 to microseconds), small decimals as scaled bigints, the rest as
# text, uniqueidentifiers in canonical form. Arrow then casts them in C, refusing any loss.

WIRE_PLAIN, WIRE_SCALED, WIRE_TEXT, WIRE_TIME = "plain", "scaled", "text", "time"


@dataclass(frozen=True)
class Column:
    """A column as declared, how it is selected, and its Arrow type."""

    name: str
    sql_type: SqlType
    source_type: str  # shown to users: 'decimal(15,2)', 'Name (nvarchar(50))'
    arrow_type: pa.DataType
    nullable: bool = True
    primary_key: bool = False
    default: str | None = None
    wire: str = WIRE_PLAIN
    expression: str = ""  # what the SELECT list sends, before ``AS [name]``

    @property
    def quoted(self) -> str:
        return common.quote_ident(self.name, DIALECT)

    @property
    def select_sql(self) -> str:
        return self.expression if self.expression == self.quoted else f"{self.expression} AS {self.quoted}"


def make_column(name: str, t: SqlType, where: str, *, fallback: str | None = None, nullable: bool = True,
                primary_key: bool = False, default: str | None = None, alias: str | None = None) -> Column:
    kind = arrow_type(t, name, where, fallback)
    quoted = common.quote_ident(name, DIALECT)
    wire, expression = wire_expression(t, kind, quoted)
    source = f"{alias} ({t.declared()})" if alias else t.declared()
    return Column(name, t, source, kind, nullable, primary_key, default, wire, expression)


def wire_expression(t: SqlType, kind: pa.DataType, expr: str) -> tuple[str, str]:
    """(wire kind, SQL expression) that reads ``expr`` of type ``t`` exactly."""
    import pyarrow as pa

    name = t.name
    if pa.types.is_decimal(kind):
        if name in ("money", "smallmoney"):
            expr = f"CAST({expr} AS decimal({kind.precision},4))"
        if kind.precision <= 18:
            factor = "1" + "0" * kind.scale
            return WIRE_SCALED, f"CAST({expr} * {factor} AS bigint)" if kind.scale else f"CAST({expr} AS bigint)"
        return WIRE_TEXT, f"CONVERT(varchar(48), {expr})"
    if name in ISO_STYLE:
        return WIRE_TEXT, f"CONVERT(varchar(40), {expr}, {ISO_STYLE[name]})"
    if name == "smalldatetime":  # via datetime2(0), so the text has no fraction for the 's' unit
        return WIRE_TEXT, f"CONVERT(varchar(40), CAST({expr} AS datetime2(0)), 126)"
    if name == "datetimeoffset":  # style 127 of the UTC instant ends in Z
        return WIRE_TEXT, f"CONVERT(varchar(40), SWITCHOFFSET({expr}, '+00:00'), 127)"
    if name == "time":
        part = "NANOSECOND" if kind.unit == "ns" else "MICROSECOND"
        per_second = "1000000000" if kind.unit == "ns" else "1000000"
        return WIRE_TIME, (f"CAST(DATEDIFF(SECOND, CAST('00:00:00' AS time), {expr}) AS bigint) * {per_second}"
                           f" + DATEPART({part}, {expr})")
    if name == "uniqueidentifier":
        return WIRE_PLAIN, f"LOWER(CONVERT(char(36), {expr}))"
    if name == "text":
        return WIRE_PLAIN, f"CAST({expr} AS varchar(max))"
    if name in ("ntext", "xml"):
        return WIRE_PLAIN, f"CAST({expr} AS nvarchar(max))"
    if name == "image":
        return WIRE_PLAIN, f"CAST({expr} AS varbinary(max))"
    if name == "timestamp":
        return WIRE_PLAIN, f"CAST({expr} AS binary(8))"
    if name in CLR_TYPES:  # reached only with type_fallback: string
        return WIRE_PLAIN, f"{expr}.ToString()"
    if name == "sql_variant":
        return WIRE_PLAIN, _variant_text(expr)
    if pa.types.is_string(kind) and name not in _STRINGS:  # other fallbacks
        return WIRE_PLAIN, f"CONVERT(nvarchar(max), {expr})"
    return WIRE_PLAIN, expr


# A plain CONVERT of a sql_variant uses style 0, which cuts money to 2 decimals, floats to 6 digits
# and datetimes to minutes: each base type gets the style that keeps every digit.
_VARIANT_STYLES = (("money", "money", 2), ("smallmoney", "smallmoney", 2), ("float", "float", 3),
                   ("real", "real", 3), ("datetime", "datetime", 126), ("datetime2", "datetime2", 126),
                   ("smalldatetime", "smalldatetime", 126), ("datetimeoffset", "datetimeoffset", 127),
                   ("binary", "varbinary(max)", 1), ("varbinary", "varbinary(max)", 1))


def _variant_text(expr: str) -> str:
    cases = " ".join(f"WHEN '{base}' THEN CONVERT(nvarchar(max), CAST({expr} AS {cast}), {style})"
                     for base, cast, style in _VARIANT_STYLES)
    return (f"CASE CAST(SQL_VARIANT_PROPERTY({expr}, 'BaseType') AS sysname) {cases} "
            f"ELSE CONVERT(nvarchar(max), {expr}) END")


# -- values → Arrow ----------------------------------------------------------------------------

def to_arrow(values: list[Any], column: Column, where: str) -> pa.Array:
    """Wire values of one column → an array of exactly ``column.arrow_type``; never lossy."""
    import pyarrow as pa

    try:
        return _convert(values, column)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise _value_error(values, column, where, exc, _convert) from exc


def _convert(values: list[Any], column: Column) -> pa.Array:
    import pyarrow as pa

    kind = column.arrow_type
    if column.wire == WIRE_SCALED:
        wide = pa.array(values, pa.int64()).cast(pa.decimal128(38, 0))
        # Same 128-bit integers, read with the declared scale: 123456 → 1234.56.
        return pa.Array.from_buffers(kind, len(wide), wide.buffers(), null_count=wide.null_count)
    if column.wire == WIRE_TEXT:
        return pa.array(values, pa.string()).cast(kind, safe=True)
    if column.wire == WIRE_TIME:
        return pa.array(values, pa.int64()).view(kind)
    return pa.array(values, kind)


def python_to_arrow(values: list[Any], column: Column, where: str) -> pa.Array:
    """Driver-native Python values (a procedure's result) → Arrow, for the same types."""
    import pyarrow as pa

    kind = column.arrow_type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            values = [v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v for v in values]
        if kind.unit in ("ms", "s"):  # datetime ticks are 1/300 s: round as SQL Server displays them
            step = 1000 if kind.unit == "ms" else 1_000_000
            values = [_round_micro(v, step) if isinstance(v, dt.datetime) else v for v in values]
    elif pa.types.is_string(kind):
        values = [str(v).lower() if column.sql_type.name == "uniqueidentifier" and v is not None
                  else v for v in values]
    elif pa.types.is_decimal(kind):
        values = [decimal.Decimal(v) if isinstance(v, int | str) else v for v in values]
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise _value_error(values, column, where, exc, lambda v, c: pa.array(v, c.arrow_type)) from exc


def _round_micro(value: dt.datetime, step: int) -> dt.datetime:
    micro = (value.microsecond + step // 2) // step * step
    return value.replace(microsecond=0) + dt.timedelta(microseconds=micro)


def _value_error(values: list[Any], column: Column, where: str, exc: Exception,
                 convert: Callable[[list[Any], Column], pa.Array]) -> SourceSchemaError:
    """Find the first value that does not fit, so the message can show it."""
    import pyarrow as pa

    bad = None
    for value in values:
        try:
            convert([value], column)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            bad = value
            break
    what = f"value {bad!r}" if bad is not None else "a value"
    hint = (f"Read it through a query with an explicit type, for example CAST([{column.name}] AS datetime2(6))"
            if column.sql_type.name in _TEMPORAL_SCALED else
            f"Read it through a query with an explicit CAST([{column.name}] AS …)")
    return SourceSchemaError(
        f"{where}: column {column.name!r} ({column.source_type}): {what} cannot be read as "
        f"{column.arrow_type} without loss ({str(exc).splitlines()[0]}).",
        hint=f"{hint}, or set type_fallback: string.")


def wire_to_python(value: Any, column: Column) -> Any:
    """One wire value (the MAX of a delta column) → the Python value a watermark stores.

    Timestamps with 100 ns digits stay ISO text: Python's datetime stops at microseconds."""
    import pyarrow as pa

    if value is None:
        return None
    kind = column.arrow_type
    if column.wire == WIRE_SCALED:
        return decimal.Decimal(int(value)).scaleb(-kind.scale)
    if column.wire == WIRE_TIME:
        ns = int(value) * (1000 if kind.unit == "us" else 1)
        if ns % 1000 == 0:
            return (dt.datetime.min + dt.timedelta(microseconds=ns // 1000)).time()
        seconds, fraction = divmod(ns, 1_000_000_000)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:09d}"[:-2]
    if column.wire == WIRE_TEXT:
        text = str(value)
        if pa.types.is_decimal(kind):
            return decimal.Decimal(text)
        if pa.types.is_date(kind):
            return dt.date.fromisoformat(text)
        if pa.types.is_timestamp(kind):
            if kind.unit == "ns":
                return text.replace("Z", "+00:00")
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value


def literal(value: Any, column: Column) -> str:
    """A bound as SQL text, cast to the column's own declared type so comparisons are typed and
    index-friendly (``CAST(N'2024-01-01T10:00:00.1234567' AS datetime2(7))``). Text is quoted by
    sqlglot, never formatted by hand."""
    from sqlglot import exp

    t = column.sql_type
    declared = t.declared()
    if t.name == "timestamp":  # rowversion watermarks are kept as integers
        return f"CAST(CAST({int(value)} AS bigint) AS binary(8))"
    if isinstance(value, bool):
        return f"CAST({int(value)} AS {declared})"
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
        return f"CAST({value} AS {declared})"
    if isinstance(value, float):
        return f"CAST({value!r} AS {declared})"
    if isinstance(value, dt.datetime):
        value = _datetime_text(value, t)
    elif isinstance(value, dt.date | dt.time):
        value = value.isoformat()
    return f"CAST({exp.National(this=str(value)).sql(DIALECT)} AS {declared})"


def _datetime_text(value: dt.datetime, t: SqlType) -> str:
    """ISO text no finer than the column: a finer bound (after a lookback) is floored, which only
    widens the window; SQL Server would round it, possibly past a row."""
    if t.name == "datetimeoffset" and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if t.name in ("datetime", "datetime2", "date", "smalldatetime") and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if t.name == "date":
        return value.date().isoformat()
    digits = {"datetime": 3, "smalldatetime": 0}.get(t.name, min(t.scale if t.scale is not None else 7, 6))
    step = 10 ** (6 - digits)
    value = value.replace(microsecond=value.microsecond // step * step)
    spec = {0: "seconds", 3: "milliseconds"}.get(digits, "microseconds")
    return value.isoformat(timespec=spec)

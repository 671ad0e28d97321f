"""MySQL / MariaDB column types → Arrow, one rule per type (the table is in ``connector.py``).

A column is typed either from the catalog (``information_schema.COLUMNS.COLUMN_TYPE`` of a
table: ``decimal(15,2)``, ``int(10) unsigned``, ``tinyint(1)``) or from the result metadata the
server sends for a query or a procedure (type code, length, decimals, flags, charset), which is
first rendered as the same kind of ``COLUMN_TYPE`` text, so both go through one mapping.

Each column also says how to select it (``select_sql``: FLOAT is widened to DOUBLE because the
text protocol rounds FLOAT to 6 digits; BIT is sent as its unsigned number) and how its text
becomes an Arrow array (``kind``, see ``convert.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.connectors.sql import common
from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

DIALECT = "mysql"
_PARAMS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
# signed, unsigned Arrow type of each integer type: unsigned types widen, never wrap.
_INTEGERS = {
    "tinyint": ("int8", "int16"), "smallint": ("int16", "int32"), "mediumint": ("int32", "int32"),
    "int": ("int32", "int64"), "integer": ("int32", "int64"), "bigint": ("int64", "uint64"),
}
_STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json",
            "long varchar", "long", "nchar", "nvarchar"}
_BINARIES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "long varbinary"}
_TEMPORAL = {"date", "datetime", "timestamp", "time"}
_SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
            "multipolygon", "geometrycollection", "geomcollection"}
_TEXT_AS_CHAR = {"uuid", "inet4", "inet6"}  # MariaDB 10.7+ types whose text form is exact

# Protocol type codes (include/mysql_com.h; the same in PyMySQL's FIELD_TYPE).
_CODES = {
    1: "tinyint", 2: "smallint", 3: "int", 4: "float", 5: "double", 6: "null", 7: "timestamp",
    8: "bigint", 9: "mediumint", 10: "date", 11: "time", 12: "datetime", 13: "year", 14: "date",
    16: "bit", 245: "json", 247: "enum", 248: "set", 255: "geometry",
}
_DECIMAL_CODES = {0, 246}
_STRING_CODES = {15, 253, 254}
_BLOB_CODES = {249, 250, 251, 252}
NOT_NULL_FLAG, PRI_KEY_FLAG, UNSIGNED_FLAG, ENUM_FLAG, SET_FLAG = 1, 2, 32, 256, 2048
BINARY_CHARSET = 63


@dataclass(frozen=True)
class MyColumn:
    """A column as declared, how to select it, how its text converts, and its Arrow type."""

    name: str
    source_type: str  # COLUMN_TYPE: 'decimal(15,2)', 'int(10) unsigned', 'enum('a','b')'
    base: str  # DATA_TYPE: 'decimal', 'int', 'enum'
    arrow_type: pa.DataType
    kind: str  # how text becomes Arrow: see convert.to_array
    expr: str  # what to select: the quoted name, or an expression of it
    nullable: bool = True
    primary_key: bool = False
    default: str | None = None

    @property
    def quoted(self) -> str:
        return common.quote_ident(self.name, DIALECT)

    @property
    def select_sql(self) -> str:
        return self.expr if self.expr == self.quoted else f"{self.expr} AS {self.quoted}"

    @property
    def integer(self) -> bool:
        return self.base in _INTEGERS and self.kind == "parse"


def column(name: str, base: str, column_type: str, where: str, *, fallback: str | None = None,
           wrapped: bool = True, nullable: bool = True, primary_key: bool = False,
           default: str | None = None) -> MyColumn:
    """Map one column. ``wrapped`` is False for procedure results, whose SELECT we cannot
    change; ``fallback='string'`` reads types without an exact mapping as text."""
    import pyarrow as pa

    base = base.lower().strip()
    declared = column_type.lower()
    unsigned = "unsigned" in declared
    quoted = common.quote_ident(name, DIALECT)
    select, kind = quoted, "parse"
    text = fallback == "string"
    hint = (f"Set type_fallback: string on this table to read it as text, or select it through a "
            f"query with an explicit CAST (for example CAST({quoted} AS CHAR)).")

    def make(arrow: pa.DataType) -> MyColumn:
        return MyColumn(name, column_type, base, arrow, kind, select, nullable, primary_key, default)

    if base in ("tinyint", "bool", "boolean") and (base != "tinyint" or declared.startswith("tinyint(1)")) \
            and not unsigned:
        kind = "string" if text else "bool"  # TINYINT(1) can hold 2 or -1: text keeps them
        return make(pa.string() if text else pa.bool_())
    if base in _INTEGERS:
        name_ = _INTEGERS[base][1 if unsigned else 0]
        return make(pa.decimal128(20, 0) if name_ == "uint64" else getattr(pa, name_)())
    if base in ("decimal", "numeric", "dec", "fixed"):
        match = _PARAMS.search(declared)
        precision = int(match.group(1)) if match else 10
        scale = int(match.group(2)) if match and match.group(2) else 0
        return make(pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale))
    if base == "float":
        if not wrapped:
            if text:
                kind = "string"
                return make(pa.string())
            raise SourceSchemaError(
                f"{where}: column {name!r} is FLOAT; the server sends FLOAT results of a procedure "
                "rounded to 6 significant digits.",
                hint="CAST it to DOUBLE inside the procedure, or set type_fallback: string.")
        select, kind = f"({quoted} + 0E0)", "float32"  # exact: float widens to double
        return make(pa.float32())
    if base in ("double", "real", "double precision"):
        return make(pa.float64())
    if base in _TEMPORAL:
        if text:  # the text protocol already sends these as text: no CAST needed
            kind = "string"
            return make(pa.string())
        kind = {"date": "parse", "datetime": "parse", "timestamp": "timestamptz", "time": "time"}[base]
        return make({"date": pa.date32(), "datetime": pa.timestamp("us"), "time": pa.time64("us"),
                     "timestamp": pa.timestamp("us", tz="UTC")}[base])
    if base == "year":
        return make(pa.int16())
    if base == "bit":
        match = _PARAMS.search(declared)
        bits = int(match.group(1)) if match else 1
        if wrapped:
            select = f"CAST({quoted} AS UNSIGNED)"
        else:
            kind = "bits"
        return make(pa.int64() if bits < 64 else pa.decimal128(20, 0))
    if base in _STRINGS or base == "null":
        kind = "string"
        return make(pa.string())
    if base in _BINARIES:
        kind = "binary"
        return make(pa.binary())
    if base in _TEXT_AS_CHAR and wrapped:
        select, kind = f"CAST({quoted} AS CHAR)", "string"
        return make(pa.string())
    if text and wrapped:
        kind = "string"
        select = f"ST_AsText({quoted})" if base in _SPATIAL else f"CAST({quoted} AS CHAR)"
        return make(pa.string())
    raise SourceSchemaError(f"{where}: column {name!r} has type {column_type!r}, which has no exact Arrow "
                            "mapping.", hint=hint)


def field_column_type(type_code: int, length: int, decimals: int, flags: int, charsetnr: int) -> tuple[str, str]:
    """Result metadata of one column → (DATA_TYPE, COLUMN_TYPE) as the catalog would say it."""
    unsigned = " unsigned" if flags & UNSIGNED_FLAG else ""
    if type_code in _DECIMAL_CODES:
        # length counts the digits, the point and (if signed) the minus sign
        precision = length - (1 if decimals else 0) - (0 if unsigned else 1)
        return "decimal", f"decimal({max(precision, 1)},{decimals}){unsigned}"
    if type_code in _STRING_CODES or type_code in _BLOB_CODES:
        if charsetnr == BINARY_CHARSET:
            return ("varbinary", "varbinary") if type_code in _STRING_CODES else ("blob", "blob")
        if flags & ENUM_FLAG:
            return "enum", "enum"
        if flags & SET_FLAG:
            return "set", "set"
        return ("varchar", "varchar") if type_code in _STRING_CODES else ("text", "text")
    base = _CODES.get(type_code, f"type {type_code}")
    if base == "tinyint" and length == 1 and not unsigned:
        return base, "tinyint(1)"
    if base == "bit":
        return base, f"bit({length})"
    return base, f"{base}{unsigned}"

"""Binlog and snapshot values → JSON, typed by ``information_schema.COLUMNS`` so a snapshot row and
a binlog row of the same data are identical (PyMySQL and mysql-replication return the same Python
types, except text that the binlog may hand over as bytes)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from dataclasses import dataclass
from typing import Any

_INTS = {"tinyint": "int16", "smallint": "int16", "mediumint": "int32", "int": "int32", "bigint": "int64"}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum"}
_LOGICAL = {"float": "float32", "double": "float64", "date": "date", "time": "time", "datetime": "timestamp",
            "timestamp": "timestamptz", "json": "json", "year": "int32", "bit": "int64",
            "binary": "binary", "varbinary": "binary", "tinyblob": "binary", "blob": "binary",
            "mediumblob": "binary", "longblob": "binary"}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    precision: int | None
    scale: int | None
    unsigned: bool
    # what rows older than the column hold: {"default": value} or {"default_unknown": True}; None: NULL
    default: dict[str, Any] | None = None

    @property
    def logical(self) -> str:
        if self.data_type in _INTS:
            kind = _INTS[self.data_type]
            if self.unsigned:  # one size up: an unsigned INT does not fit int32
                kind = {"int16": "int32", "int32": "int64"}.get(kind, "decimal(20,0)")
            return kind
        if self.data_type == "decimal":
            return f"decimal({self.precision or 10},{self.scale or 0})"
        return _LOGICAL.get(self.data_type, "string")


def _time(value: dt.timedelta) -> str:
    micros = int(value / dt.timedelta(microseconds=1))
    sign = "-" if micros < 0 else ""
    seconds, us = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{us:06d}"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def json_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    kind = column.data_type
    if kind == "json":  # the snapshot gives text, the binlog parsed values (with bytes keys)
        parsed = json.loads(value) if isinstance(value, str | bytes) else _plain(value)
        return json.dumps(parsed, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, bytes | bytearray):
        if kind in _TEXT or kind == "set":
            return bytes(value).decode("utf-8", "replace")
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("Z" if kind == "timestamp" and value.tzinfo is None else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _time(value)
    if isinstance(value, set | frozenset):
        return ",".join(sorted(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)


_NUMERIC = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", "year"}


def declared_default(column: Column, text: str | None, nullable: bool, extra: str,
                     mariadb: bool) -> dict[str, Any] | None:
    """What rows that existed before ``column`` was added hold, from ``information_schema``.

    InnoDB adds a column with a constant default in place: older rows read the default. An
    expression default (``CURRENT_TIMESTAMP``, ``uuid()``) was evaluated once per row or at the
    ALTER and cannot be known; a NOT NULL column without a default holds the type's implicit
    value (0, ''). MariaDB quotes string literals in ``COLUMN_DEFAULT`` and shows expressions as
    written; MySQL 8 shows literals bare and flags expressions ``DEFAULT_GENERATED``."""
    kind = column.data_type
    if text is None or (mariadb and text.upper() == "NULL"):
        if nullable:
            return None
        if kind in _NUMERIC:
            return {"default": json_value(column, 0)}
        if kind in _TEXT:
            return {"default": ""}
        return {"default_unknown": True}
    if "DEFAULT_GENERATED" in extra.upper():
        return {"default_unknown": True}
    literal: Any = text
    if mariadb:
        if text.startswith("'") and text.endswith("'") and len(text) >= 2:
            literal = text[1:-1].replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")
        elif kind in _NUMERIC:
            try:
                decimal.Decimal(text)
            except decimal.InvalidOperation:
                return {"default_unknown": True}
        else:
            return {"default_unknown": True}  # an expression such as current_timestamp()
    try:
        if kind == "decimal":
            literal = decimal.Decimal(literal).quantize(decimal.Decimal(1).scaleb(-(column.scale or 0)))
        elif kind in ("tinyint", "smallint", "mediumint", "int", "bigint", "year"):
            literal = int(decimal.Decimal(literal))
        elif kind in ("float", "double"):
            literal = float(literal)
        elif kind in ("datetime", "timestamp"):
            literal = dt.datetime.fromisoformat(str(literal))
        elif kind == "date":
            literal = dt.date.fromisoformat(str(literal))
    except (ValueError, decimal.InvalidOperation):
        return {"default_unknown": True}
    return {"default": json_value(column, literal)}

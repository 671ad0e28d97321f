"""Rows of ``cdc.fn_cdc_get_all_changes_*`` (and of the snapshot) → change events.

``__$operation``: 1 delete, 2 insert, 3 update (row before), 4 update (row after). With
``N'all update old'`` each update is a 3-row followed by its 4-row with the same
``__$start_lsn``/``__$seqval``; they become one ``u`` event with ``before`` and ``after``.
Positions follow Debezium's source block: commit LSN, change LSN (seqval), event serial number
(1, or 2 for the after-image of an update).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flowforge.connectors.cdc.events import ChangeEvent
from flowforge.connectors.cdc.sqlserver_cdc import lsn
from flowforge.errors import SourceSchemaError

META = 4  # __$start_lsn, __$seqval, __$operation, __ff_commit_time precede the columns
_OPS = {1: "d", 2: "c", 4: "u"}
_LOGICAL = {
    "bit": "boolean", "tinyint": "int16", "smallint": "int16", "int": "int32", "bigint": "int64",
    "real": "float32", "float": "float64", "date": "date", "time": "time", "datetime": "timestamp",
    "datetime2": "timestamp", "smalldatetime": "timestamp", "datetimeoffset": "timestamptz",
    "binary": "binary", "varbinary": "binary", "image": "binary", "timestamp": "binary", "rowversion": "binary",
}
_TYPE = re.compile(r"^\s*([a-z0-9 ]+?)\s*(?:\((\d+|max)\s*(?:,\s*(\d+))?\))?\s*$")


def logical_type(declared: str, precision: int | None = None, scale: int | None = None) -> str:
    """FlowForge logical type of a SQL Server type name (``cdc.captured_columns.column_type``)."""
    match = _TYPE.match(declared.lower())
    base = match.group(1) if match else declared.lower()
    if base in ("decimal", "numeric", "money", "smallmoney"):
        if base == "money":
            return "decimal(19,4)"
        if base == "smallmoney":
            return "decimal(10,4)"
        p = precision if precision is not None else int(match.group(2)) if match and match.group(2) else 18
        s = scale if scale is not None else int(match.group(3)) if match and match.group(3) else 0
        return f"decimal({p},{s})"
    return _LOGICAL.get(base, "string")


def json_value(value: Any) -> Any:
    """A driver value as JSON: decimals and temporal values as ISO text, bytes as base64."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value).upper()  # SQL Server prints uniqueidentifier in upper case
    return str(value)


@dataclass(frozen=True)
class CapturedTable:
    """One capture instance: the source table, its captured columns and key."""

    schema: str
    table: str
    capture_instance: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key_columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def logical(self) -> dict[str, str]:
        return {c: logical_type(t) for c, t in zip(self.columns, self.types, strict=True)}

    def image(self, values: Sequence[Any]) -> dict[str, Any]:
        return {c: json_value(v) for c, v in zip(self.columns, values, strict=True)}

    def key_of(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or not self.key_columns:
            return None
        return {c: row.get(c) for c in self.key_columns}


def _utc(value: Any) -> dt.datetime | None:
    # fn_cdc_map_lsn_to_time returns the server's local time without zone; the connector sets
    # nothing, so it is taken as UTC (documented: run the database server in UTC or accept the offset).
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def change_events(table: CapturedTable, rows: Iterable[Sequence[Any]]) -> Iterator[ChangeEvent]:
    """Change rows (``META`` columns then the captured columns, in log order) → events."""
    pending: tuple[bytes, bytes, dict[str, Any]] | None = None  # a 3-row waiting for its 4-row
    schema = table.logical
    seq = 0
    for row in rows:
        start, seqval, operation, commit_time = bytes(row[0]), bytes(row[1]), int(row[2]), row[3]
        image = table.image(row[META:])
        if operation == 3:
            pending = (start, seqval, image)
            continue
        if operation not in _OPS:
            raise SourceSchemaError(f"{table.capture_instance}: unknown __$operation {operation}.")
        before: dict[str, Any] | None = None
        after: dict[str, Any] | None = image
        serial = 1
        if operation == 4:
            serial = 2
            if pending is not None and pending[:2] == (start, seqval):
                before = pending[2]
        elif operation == 1:
            before, after = image, None
        pending = None
        seq += 1
        yield ChangeEvent(op=_OPS[operation], table=table.qualified, position=lsn.position(start, seqval, serial),
                          key=table.key_of(after if after is not None else before), before=before, after=after,
                          source_ts=_utc(commit_time), snapshot="false", schema=schema, seq=seq)


def snapshot_events(table: CapturedTable, rows: Iterable[Sequence[Any]], upper: bytes) -> Iterator[ChangeEvent]:
    position = lsn.snapshot_position(upper)
    schema = table.logical
    for seq, row in enumerate(rows, start=1):
        after = table.image(row)
        yield ChangeEvent(op="r", table=table.qualified, position=position, key=table.key_of(after),
                          after=after, snapshot="true", schema=schema, seq=seq)

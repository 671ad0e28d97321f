"""Decoding of the binary ``pgoutput`` protocol (version 1) into change events.

``pg_logical_slot_peek_binary_changes`` returns one ``bytea`` message per row: Begin, Relation,
Insert, Update, Delete, Truncate, Commit (and Origin/Type, which carry nothing we need). Column
values arrive in PostgreSQL's text format; ``TextValues`` turns them into JSON values by type OID
so a snapshot row (read with ``::text``) and a streamed row of the same data are identical.

The protocol is documented in "Logical Replication Message Formats" of the PostgreSQL manual.

Positions are ``pg:<commit LSN>:<change LSN>`` (``events.pg_txn_position``): the slot hands out
transactions in commit order, so a transaction that began early and committed late sorts after
everything committed before it, not among the changes it interleaved with.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

from flowforge.connectors.cdc.events import UNAVAILABLE, dumps, event_schema, make_event_id, pg_txn_position
from flowforge.errors import SourceSchemaError

_INT = {20, 21, 23, 26}  # int8, int2, int4, oid
_FLOAT = {700, 701}
_LOGICAL: dict[int, str] = {
    16: "boolean", 17: "binary", 20: "int64", 21: "int16", 23: "int32", 26: "int64", 114: "json",
    700: "float32", 701: "float64", 1082: "date", 1083: "time", 1114: "timestamp",
    1184: "timestamptz", 3802: "json",
}


def logical_type(oid: int, typmod: int) -> str:
    """The FlowForge logical type of a PostgreSQL type OID (``_schema`` of an event)."""
    if oid == 1700:
        if typmod < 4:
            return "decimal(38,9)"
        return f"decimal({((typmod - 4) >> 16) & 0xFFFF},{(typmod - 4) & 0xFFFF})"
    return _LOGICAL.get(oid, "string")


def _float(text: str) -> float | str:
    value = float(text)
    return text if value != value or value in (float("inf"), float("-inf")) else value  # NaN/inf stay text


def _bytea(text: str) -> str:
    # The text format of bytea is hex ("\x0a0b"); JSON carries it as base64 like Debezium does.
    return base64.b64encode(bytes.fromhex(text[2:])).decode()


def _timestamp(text: str) -> str:
    # ISO 8601 with a 'T', as the Debezium decoder renders MicroTimestamp / ZonedTimestamp values
    text = text.replace(" ", "T", 1)
    return text[:-3] + "Z" if text.endswith("+00") else text


def converter(oid: int) -> Callable[[str], Any]:
    """Text value → JSON value for one type OID."""
    if oid in _INT:
        return int
    if oid == 16:
        return lambda text: text in ("t", "true")  # pgoutput says t, ::text says true
    if oid in _FLOAT:
        return _float
    if oid == 17:
        return _bytea
    if oid in (1114, 1184):
        return _timestamp
    return str


@dataclass(frozen=True)
class Relation:
    """A table as described by a Relation message (or by the catalog for a snapshot).

    ``defaults`` maps a column to what rows older than the column hold (text in PostgreSQL's
    format, or ``UNKNOWN_DEFAULT``); ``_schema`` carries it (see ``layers/cdc_defaults.py``)."""

    oid: int
    schema: str
    name: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    typmods: tuple[int, ...]
    defaults: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    converters: tuple[Callable[[str], Any], ...] = field(init=False, repr=False, compare=False)
    logical: dict[str, str] = field(init=False, repr=False, compare=False)
    schema_text: str = field(init=False, repr=False, compare=False)
    qualified: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "converters", tuple(converter(o) for o in self.type_oids))
        object.__setattr__(self, "logical", {c: logical_type(o, m) for c, o, m in
                                             zip(self.columns, self.type_oids, self.typmods, strict=True)})
        described: dict[str, Any] = dict(self.logical)
        for column, conv in zip(self.columns, self.converters, strict=True):
            if column not in self.defaults:
                continue
            default = self.defaults[column]
            described[column] = ({"type": self.logical[column], "default_unknown": True} if default is UNKNOWN_DEFAULT
                                 else {"type": self.logical[column], "default": conv(default)})
        object.__setattr__(self, "schema_text", dumps(described))
        object.__setattr__(self, "qualified", f"{self.schema}.{self.name}")

    def with_defaults(self, defaults: dict[str, Any]) -> Relation:
        mine = {c: v for c, v in defaults.items() if c in self.columns}
        if mine == self.defaults:
            return self
        return Relation(self.oid, self.schema, self.name, self.columns, self.key_columns, self.type_oids,
                        self.typmods, mine)

    def values(self, texts: Iterable[str | object | None]) -> dict[str, Any]:
        """Text values (``None`` = NULL, ``UNCHANGED`` = unchanged TOAST) → a JSON row image."""
        row: dict[str, Any] = {}
        for name, conv, text in zip(self.columns, self.converters, texts, strict=True):
            if text is None:
                row[name] = None
            elif text is UNCHANGED:
                row[name] = UNAVAILABLE
            else:
                row[name] = conv(text)  # type: ignore[arg-type]
        return row

    def key_of(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or not self.key_columns:
            return None
        return {c: row.get(c) for c in self.key_columns}


UNCHANGED = object()  # an unchanged TOASTed value ('u'): the row image does not carry it
UNKNOWN_DEFAULT = object()  # rows older than the column hold values the catalog cannot tell


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 1  # after the message type byte

    def int8(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return int(value)

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def uint32(self) -> int:
        (value,) = struct.unpack_from("!I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def int64(self) -> int:
        (value,) = struct.unpack_from("!q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> str:
        end = self.data.index(0, self.pos)
        text = self.data[self.pos:end].decode()
        self.pos = end + 1
        return text

    def tuple_data(self) -> list[str | object | None]:
        count = self.int16()
        values: list[str | object | None] = []
        data = self.data
        for _ in range(count):
            kind = data[self.pos]
            self.pos += 1
            if kind == 0x74:  # 't' text
                (length,) = struct.unpack_from("!i", data, self.pos)
                start = self.pos + 4
                self.pos = start + length
                values.append(data[start:self.pos].decode())
            elif kind == 0x6E:  # 'n' null
                values.append(None)
            elif kind == 0x75:  # 'u' unchanged TOAST
                values.append(UNCHANGED)
            else:
                raise SourceSchemaError(f"pgoutput: unexpected tuple column kind {chr(kind)!r}; "
                                        "FlowForge reads text-format pgoutput (proto_version 1).")
        return values


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class Decoder:
    """Stateful decoder of one slot's message stream (Relation messages precede their rows).

    ``feed(lsn, message)`` appends the change events a message carries to ``out``; Begin sets the
    commit LSN and timestamp of the rows that follow, Commit ends the transaction (``last_end``
    is then a position the slot may advance to). ``skip`` = (commit LSN, position) drops the
    events of that transaction up to that position: they were committed to bronze before a
    restart. ``defaults`` (qualified table → column → default) decorate Relation messages.
    """

    def __init__(self, out: EventColumns, *, start: int = 0, skip: tuple[int, str] | None = None,
                 defaults: dict[str, dict[str, Any]] | None = None) -> None:
        self.relations: dict[int, Relation] = {}
        self.commit_ts: int | None = None  # microseconds since 1970 of the transaction's commit
        self.commit_lsn = 0
        self.in_txn = False
        self.last_end = start  # end of the last whole transaction decoded (or the start)
        self.last_position = ""
        self.skip = skip
        self.defaults = defaults or {}
        self.out = out

    def _relation(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise SourceSchemaError(f"pgoutput: a row of relation {oid} arrived before its "
                                    "Relation message.") from None

    def feed(self, lsn: int, message: bytes) -> None:
        kind = message[:1]
        r = _Reader(message)
        if kind == b"B":
            self.commit_lsn = r.int64()  # the transaction's commit record
            self.commit_ts = r.int64() + _PG_EPOCH_MICROS
            self.in_txn = True
        elif kind == b"C":
            r.int8()  # flags
            r.int64()  # commit LSN
            self.last_end = r.int64()  # end of the commit record: advancing the slot here skips the transaction
            self.in_txn = False
        elif kind == b"R":
            oid = r.uint32()
            schema, name = r.string(), r.string()
            r.int8()  # replica identity setting
            columns, keys, oids, mods = [], [], [], []
            for _ in range(r.int16()):
                flags = r.int8()
                column = r.string()
                columns.append(column)
                if flags & 1:
                    keys.append(column)
                oids.append(r.uint32())
                mods.append(r.int32())
            self.relations[oid] = Relation(oid, schema, name, tuple(columns), tuple(keys), tuple(oids), tuple(mods),
                                           self._defaults(f"{schema}.{name}", columns))
        elif kind == b"I":
            rel = self._relation(r.uint32())
            r.int8()  # 'N'
            after = rel.values(r.tuple_data())
            self._event("c", rel, lsn, None, after, rel.key_of(after))
        elif kind == b"U":
            rel = self._relation(r.uint32())
            before: dict[str, Any] | None = None
            marker = r.int8()
            if marker in (0x4B, 0x4F):  # 'K' old key / 'O' old row (REPLICA IDENTITY FULL)
                before = rel.values(r.tuple_data())
                r.int8()  # 'N'
            after = rel.values(r.tuple_data())
            # When the key changed, 'K' carries the old key: the event is keyed by the new one.
            if before is not None and marker == 0x4B:
                before = {c: v for c, v in before.items() if c in rel.key_columns}
            self._event("u", rel, lsn, before, after, rel.key_of(after))
        elif kind == b"D":
            rel = self._relation(r.uint32())
            marker = r.int8()
            old = rel.values(r.tuple_data())
            if marker == 0x4B:
                old = {c: v for c, v in old.items() if c in rel.key_columns}
            self._event("d", rel, lsn, old, None, rel.key_of(old))
        elif kind == b"T":
            count = r.int32()
            r.int8()  # options (CASCADE / RESTART IDENTITY)
            for _ in range(count):
                self._event("t", self._relation(r.uint32()), lsn, None, None, None)
        # 'O' origin, 'Y' type, 'M' message: nothing to emit

    def _defaults(self, qualified: str, columns: list[str]) -> dict[str, Any]:
        known = self.defaults.get(qualified, {})
        return {c: known[c] for c in columns if c in known}

    def _event(self, op: str, rel: Relation, lsn: int, before: dict[str, Any] | None,
               after: dict[str, Any] | None, key: dict[str, Any] | None) -> None:
        position = pg_txn_position(self.commit_lsn, lsn)
        if self.skip is not None and self.commit_lsn == self.skip[0] and position <= self.skip[1]:
            return  # already in bronze (committed before a restart in the middle of this transaction)
        self.last_position = position
        self.out.append(op, rel, position, key, before, after, self.commit_ts, "false")


_PG_EPOCH_MICROS = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970


class EventColumns:
    """Change events collected column by column and turned into one ``event_schema()`` batch.

    Same values as ``ChangeEvent.row()`` / ``to_batch`` (canonical JSON, the same event ids)
    without a dict and a Python datetime per event: decoding is the hot path of this source.
    ``_seq`` orders events within one read (a multi-insert shares one LSN)."""

    def __init__(self) -> None:
        self.seq = 0
        self._clear()

    def _clear(self) -> None:
        self.nbytes = 0  # text held so far (a flush bound for rows with large values)
        self.ids: list[str] = []
        self.ops: list[str] = []
        self.positions: list[str] = []
        self.ts: list[int | None] = []
        self.snapshot: list[str] = []
        self.tables: list[str] = []
        self.keys: list[str | None] = []
        self.befores: list[str | None] = []
        self.afters: list[str | None] = []
        self.schemas: list[str | None] = []
        self.seqs: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, op: str, rel: Relation, position: str, key: dict[str, Any] | None,
               before: dict[str, Any] | None, after: dict[str, Any] | None, ts: int | None, snapshot: str) -> None:
        key_text, before_text, after_text = dumps(key), dumps(before), dumps(after)
        # Keyless rows sharing a position are told apart by their image, like the Debezium decoder does.
        self.ids.append(make_event_id(rel.qualified, position, op, key_text or after_text or before_text))
        self.ops.append(op)
        self.positions.append(position)
        self.ts.append(ts)
        self.snapshot.append(snapshot)
        self.tables.append(rel.qualified)
        self.keys.append(key_text)
        self.befores.append(before_text)
        self.afters.append(after_text)
        self.nbytes += len(after_text or "") + len(before_text or "") + 200
        self.schemas.append(rel.schema_text)
        self.seq += 1
        self.seqs.append(self.seq)

    def flush(self) -> pa.RecordBatch:
        import pyarrow as pa

        schema = event_schema()
        ts = pa.array(self.ts, pa.int64()).cast(schema.field("_source_ts").type)
        columns = {"_event_id": self.ids, "_op": self.ops, "_source_position": self.positions,
                   "_snapshot": self.snapshot, "_table": self.tables, "_key": self.keys, "_before": self.befores,
                   "_after": self.afters, "_schema": self.schemas, "_seq": self.seqs}
        arrays = [ts if f.name == "_source_ts" else pa.array(columns[f.name], f.type) for f in schema]
        self._clear()
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

"""Decode Debezium JSON change events into normalized change-event batches.

Accepted shapes, one JSON value per line (or one whole-file JSON document):

* ``{"schema": {...}, "payload": {...}}`` (JsonConverter ``schemas.enable=true``), and
  ``{"schema": null, "payload": {...}}``;
* the payload alone (``schemas.enable=false``);
* a Kafka record ``{"topic": ..., "key": ..., "value": ..., "partition"?, "offset"?}`` whose
  ``value`` is either of the above, or ``null`` (a tombstone: skipped, it follows the delete);
* an ExtractNewRecordState-flattened row (no envelope): an upsert, or a delete when
  ``__deleted`` is ``"true"``.

Transaction BEGIN/END records, schema-change records and logical messages (``op=m``) carry
no row change and are skipped (``DecodeStats`` counts them).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.connectors.cdc.events import (
    UNAVAILABLE,
    ChangeEvent,
    dumps,
    kafka_position,
    make_event_id,
    mysql_position,
    pg_position,
    sequence_position,
    sqlserver_position,
    timestamp_from_ms,
    to_batch,
)
from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

Converter = Callable[[Any], Any]
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)
_UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()
_PLAIN = {"int8": "int16", "int16": "int16", "int32": "int32", "int64": "int64", "float32": "float32",
          "float": "float32", "float64": "float64", "double": "float64", "boolean": "boolean",
          "string": "string", "bytes": "binary", "struct": "json", "array": "json", "map": "json"}


@dataclass
class DecodeStats:
    events: int = 0
    tombstones: int = 0
    transactions: int = 0
    schema_changes: int = 0
    messages: int = 0
    keys: int = 0


# -- value conversions (Connect logical types) -----------------------------------------

def _keep(fn: Converter) -> Converter:
    def conv(v: Any) -> Any:
        if v is None or v in (UNAVAILABLE, _UNAVAILABLE_B64):
            return UNAVAILABLE if v == _UNAVAILABLE_B64 else v
        return fn(v)
    return conv


def decimal_text(value: Any, scale: int) -> str:
    """Connect Decimal: base64 big-endian two's complement unscaled integer, or (a real-world
    quirk, Paimon's MySQL captures) a plain JSON number."""
    if isinstance(value, str):
        try:
            unscaled = int.from_bytes(base64.b64decode(value, validate=True), "big", signed=True)
        except ValueError:
            return format(decimal.Decimal(value), "f")
        return format(decimal.Decimal(unscaled).scaleb(-scale), "f")
    if isinstance(value, float):
        return format(decimal.Decimal(repr(value)), "f")
    return format(decimal.Decimal(value), "f")


def _time_text(micros: int) -> str:
    seconds, us = divmod(int(micros), 1_000_000)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{us:06d}"


def _variable_decimal(v: Any) -> Any:
    if isinstance(v, dict) and "value" in v:
        return decimal_text(v["value"], int(v.get("scale", 0)))
    return v


def _logical(field: dict[str, Any]) -> tuple[str, Converter | None]:
    """(logical type, value converter or None) of one Connect schema field."""
    name = field.get("name") or ""
    kind = field.get("type", "string")
    params = field.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        scale = int(params.get("scale", 0))
        precision = int(params.get("connect.decimal.precision", 38))
        logical = f"decimal({precision},{scale})" if precision <= 38 else "string"
        return logical, _keep(lambda v: decimal_text(v, scale))
    if name == "io.debezium.data.VariableScaleDecimal":
        return "string", _keep(_variable_decimal)
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return "date", _keep(lambda v: (_EPOCH_DATE + dt.timedelta(days=int(v))).isoformat())
    if name in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return "timestamp", _keep(lambda v: (_EPOCH + dt.timedelta(milliseconds=int(v))).isoformat())
    if name == "io.debezium.time.MicroTimestamp":
        return "timestamp", _keep(lambda v: (_EPOCH + dt.timedelta(microseconds=int(v))).isoformat())
    if name == "io.debezium.time.NanoTimestamp":
        return "timestamp", _keep(lambda v: (_EPOCH + dt.timedelta(microseconds=int(v) // 1000)).isoformat())
    if name == "io.debezium.time.ZonedTimestamp":
        return "timestamptz", None
    if name in ("io.debezium.time.MicroTime",):
        return "time", _keep(_time_text)
    if name in ("io.debezium.time.Time", "org.apache.kafka.connect.data.Time"):
        return "time", _keep(lambda v: _time_text(int(v) * 1000))
    if name == "io.debezium.time.NanoTime":
        return "time", _keep(lambda v: _time_text(int(v) // 1000))
    if name == "io.debezium.time.ZonedTime":
        return "string", None
    if name == "io.debezium.time.Year":
        return "int32", None
    if name in ("io.debezium.data.Json", "io.debezium.data.Xml", "io.debezium.data.Enum",
                "io.debezium.data.EnumSet", "io.debezium.data.Uuid"):
        return ("json" if name.endswith("Json") else "string"), None
    if name == "io.debezium.data.Bits":
        return "binary", None
    return _PLAIN.get(kind, "string"), None


@dataclass(frozen=True)
class RowSchema:
    types: dict[str, str]
    converters: dict[str, Converter]
    text: str

    def convert(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or not self.converters:
            return row
        out = dict(row)
        for col, conv in self.converters.items():
            if col in out:
                out[col] = conv(out[col])
        return out


_SCHEMA_CACHE: dict[str, RowSchema | None] = {}


def row_schema(envelope_schema: dict[str, Any] | None) -> RowSchema | None:
    """The row type of a Debezium value schema (the ``after`` field's struct)."""
    if not envelope_schema or not isinstance(envelope_schema, dict):
        return None
    key = dumps(envelope_schema) or ""
    if key in _SCHEMA_CACHE:
        return _SCHEMA_CACHE[key]
    structs = {f.get("field"): f.get("fields") or [] for f in envelope_schema.get("fields") or []
               if f.get("field") in ("after", "before") and f.get("type") == "struct"}
    row_fields: list[dict[str, Any]] | None = structs.get("after") or structs.get("before")
    result = None
    if row_fields is not None:
        types, convs = {}, {}
        described: dict[str, Any] = {}
        for f in row_fields:
            logical, conv = _logical(f)
            types[f["field"]] = logical
            described[f["field"]] = logical
            if conv is not None:
                convs[f["field"]] = conv
            if f.get("default") is not None:
                # the column's default: what rows older than the column hold (layers/cdc_defaults.py)
                described[f["field"]] = {"type": logical, "default": conv(f["default"]) if conv else f["default"]}
        result = RowSchema(types, convs, dumps(described) or "{}")
    if len(_SCHEMA_CACHE) > 256:
        _SCHEMA_CACHE.clear()
    _SCHEMA_CACHE[key] = result
    return result


# -- positions -----------------------------------------------------------------------

def source_position(source: Any) -> str | None:
    """The sortable position of a Debezium ``source`` block, or None when it has none."""
    if not isinstance(source, dict):
        return None
    connector = source.get("connector")
    if connector == "postgresql" and source.get("lsn") is not None:
        return pg_position(int(source["lsn"]))
    if connector in ("mysql", "mariadb") and source.get("file"):
        return mysql_position(str(source["file"]), int(source.get("pos") or 0), int(source.get("row") or 0))
    if connector == "sqlserver" and (source.get("commit_lsn") or source.get("change_lsn")):
        return sqlserver_position(source.get("commit_lsn"), source.get("change_lsn"), source.get("event_serial_no"))
    return None


def source_table(source: Any, topic: str | None) -> str:
    if isinstance(source, dict) and source.get("table"):
        schema = source.get("schema") or source.get("db")
        return f"{schema}.{source['table']}" if schema else str(source["table"])
    if topic:
        return ".".join(topic.split(".")[-2:])
    return "unknown"


# -- records -------------------------------------------------------------------------

def decode_record(obj: Any, seq: int, stats: DecodeStats, raw: bytes = b"") -> ChangeEvent | None:
    """One JSON value (already parsed) → a ChangeEvent, or None for non-row records."""
    if not isinstance(obj, dict):
        raise SourceSchemaError(f"record {seq}: expected a JSON object, got {type(obj).__name__}")
    topic = key = None
    kafka_pos = None
    if "value" in obj and "topic" in obj:  # a Kafka record
        topic = obj.get("topic")
        key = _payload(obj.get("key"))
        if obj.get("partition") is not None and obj.get("offset") is not None:
            kafka_pos = kafka_position(str(topic), int(obj["partition"]), int(obj["offset"]))
        obj = obj.get("value")
        if obj is None:
            stats.tombstones += 1
            return None
    schema = obj.get("schema") if "payload" in obj else None
    if isinstance(schema, dict) and str(schema.get("name") or "").endswith("Key"):
        stats.keys += 1  # a record key on its own (a key topic or file), not a change
        return None
    payload = obj.get("payload", obj)
    if payload is None:
        stats.tombstones += 1
        return None
    op = payload.get("op")
    if op is None:
        if "status" in payload and "id" in payload:
            stats.transactions += 1
            return None
        if "ddl" in payload or "tableChanges" in payload or "databaseName" in payload:
            stats.schema_changes += 1
            return None
        return _unwrapped(payload, seq, topic, key, kafka_pos, stats, raw)
    if op == "m":
        stats.messages += 1
        return None
    source = payload.get("source")
    rs = row_schema(schema)
    before, after = payload.get("before"), payload.get("after")
    # the id hashes the row image as the source wrote it (the vectorised path in fast.py agrees)
    image = dumps(after if after is not None else before)
    if rs is not None:
        before, after = rs.convert(before), rs.convert(after)
    position = kafka_pos or source_position(source)
    extra = ""
    if position is None:
        position = sequence_position(seq)
        extra = hashlib.md5(raw or (dumps(payload) or "").encode()).hexdigest()
    table = source_table(source, topic)
    ts = source.get("ts_ms") if isinstance(source, dict) else None
    ts = payload.get("ts_ms") if ts is None else ts
    key_text = dumps(key)
    stats.events += 1
    return ChangeEvent(
        op=op, table=table, position=position, key=key_text, before=dumps(before), after=dumps(after),
        source_ts=timestamp_from_ms(float(ts)) if ts not in (None, "") else None,
        snapshot=source.get("snapshot") if isinstance(source, dict) else None,
        schema=rs.text if rs is not None else None,
        event_id=make_event_id(table, position, op, key_text or image, extra), seq=seq,
    )


def _payload(value: Any) -> Any:
    if isinstance(value, dict) and "payload" in value and "schema" in value:
        return value["payload"]
    return value


def _unwrapped(row: dict[str, Any], seq: int, topic: str | None, key: Any, kafka_pos: str | None,
               stats: DecodeStats, raw: bytes) -> ChangeEvent:
    deleted = str(row.get("__deleted", "false")).lower() == "true"
    data = {k: v for k, v in row.items() if not k.startswith("__")}
    op = "d" if deleted else str(row.get("__op") or "u")
    op = op if op in ("c", "r", "u", "d") else "u"
    position = kafka_pos or sequence_position(seq)
    extra = "" if kafka_pos else hashlib.md5(raw or (dumps(row) or "").encode()).hexdigest()
    table = str(row.get("__table") or (source_table(None, topic) if topic else ""))
    stats.events += 1
    return ChangeEvent(op=op, table=table, position=position, key=dumps(key),
                       before=dumps(data) if deleted else None, after=None if deleted else dumps(data),
                       event_id=make_event_id(table, position, op, dumps(key) or dumps(data), extra), seq=seq)


def _json_loader() -> tuple[Callable[[bytes], Any], type[Exception]]:
    """orjson when installed (about 3x faster), the standard library otherwise."""
    try:
        import orjson

        return orjson.loads, orjson.JSONDecodeError
    except ImportError:
        import json

        return json.loads, json.JSONDecodeError


def decode_lines(lines: Iterable[bytes], batch_size: int = 50_000, stats: DecodeStats | None = None,
                 where: str = "input", first_seq: int = 0) -> Iterator[pa.RecordBatch]:
    """Debezium JSON lines → change-event batches (blank lines are skipped)."""
    loads, bad_json = _json_loader()
    stats = stats if stats is not None else DecodeStats()
    pending: list[ChangeEvent] = []
    seq = first_seq
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = loads(line)
        except bad_json as exc:
            raise SourceSchemaError(f"{where}, line {number}: not valid JSON ({exc})",
                                    hint="Each line must be one Debezium event in JSON.") from None
        event = decode_record(obj, seq, stats, line)
        seq += 1
        if event is not None:
            pending.append(event)
            if len(pending) >= batch_size:
                yield to_batch(pending)
                pending = []
    if pending:
        yield to_batch(pending)


def decode_document(text: bytes, where: str = "input", batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
    """A file holding JSON lines, or one pretty-printed JSON document."""
    loads, bad_json = _json_loader()
    stripped = text.strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            obj = loads(stripped)
        except bad_json:
            yield from _decode_jsonl(stripped, where, batch_size)
            return
        stats = DecodeStats()
        event = decode_record(obj, 0, stats, stripped)
        if event is not None:
            yield to_batch([event])
        return
    yield from _decode_jsonl(stripped, where, batch_size)


def _decode_jsonl(data: bytes, where: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    """JSON lines: the vectorised decoder when the file allows it, the per-record one otherwise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from flowforge.connectors.cdc.debezium.fast import decode_fast

    raw = pc.utf8_trim_whitespace(pa.array(data.split(b"\n"), pa.binary()).cast(pa.string()))
    lines = raw.filter(pc.not_equal(raw, ""))
    table = decode_fast(lines) if len(lines) >= FAST_MIN_LINES else None
    if table is None:
        yield from decode_lines(data.splitlines(), batch_size=batch_size, where=where)
        return
    yield from table.to_batches(max_chunksize=batch_size)


FAST_MIN_LINES = 64  # below this the per-record decoder is as fast and starts no DuckDB

"""The normalized change event: what every CDC source emits and bronze stores.

Every CDC connector (Debezium JSON files, Kafka, PostgreSQL logical decoding, MySQL binlog,
SQL Server CDC tables) yields ``pyarrow.RecordBatch``es of ``event_schema()`` (build them with
``ChangeEvent`` + ``to_batch``, or column-wise with the same schema):

==================  ==========================  =================================================
column              type                        meaning
==================  ==========================  =================================================
``_event_id``       string, not null            unique per event, stable across replays (dedup key)
``_op``             string, not null            ``c`` create, ``r`` snapshot read, ``u`` update,
                                                ``d`` delete, ``t`` truncate (``_snapshot``
                                                ``reset``: a new snapshot of the table follows)
``_source_position`` string, not null           sorts lexicographically in source order (below)
``_source_ts``      timestamp[us, UTC]          when the change happened in the source
``_snapshot``       string                      ``true`` / ``false`` / ``last`` (from bool or text)
``_table``          string, not null            ``schema.table`` (or ``db.table``) in the source
``_key``            string (JSON)               the primary key object, ``{"id": 101}``
``_before``         string (JSON)               row image before the change (may be partial/null)
``_after``          string (JSON)               row image after the change (null for d and t)
``_schema``         string (JSON)               ``{"column": "type"}`` when the source states types
                                                (``{"type": ..., "default": v}`` for a column whose
                                                older rows hold ``v``, see ``layers/cdc_defaults``)
``_seq``            int64, not null             order within one read (ties of equal positions)
==================  ==========================  =================================================

``_before``/``_after`` are JSON objects of column → value; PostgreSQL's unchanged-TOAST
placeholder ``__debezium_unavailable_value`` is kept as-is and silver replaces it with the
previous value. ``_schema`` types are FlowForge logical types (``int32``, ``int64``, ``float64``, ``string``,
``boolean``, ``decimal(p,s)``, ``date``, ``timestamp``, ``timestamptz``, ``time``, ``binary``,
``json``), see ``debezium/decode.py``.

Source positions (all fields zero-padded so string order is source order):

* PostgreSQL logical decoding: ``pg:<commit LSN, 20 digits>:<change LSN, 20 digits>``, so that
  transactions sort in commit order (snapshot reads share the position just before the slot's
  consistent point). Debezium's PostgreSQL events: ``pg:<lsn as 20 digits>``.
* MySQL / MariaDB binlog: ``mysql:<binlog file>:<transaction start, 20 digits>:<event pos, 20
  digits>:<row, 6 digits>``; Debezium's: ``mysql:<file>:<pos, 20 digits>:<row, 6 digits>``
  (binlog file names carry a zero-padded sequence number).
* SQL Server: ``mssql:<commit_lsn>:<change_lsn>:<event_serial_no, 20 digits>``, LSNs as the
  ``00000027:00000758:0003`` hex text (fixed width); a snapshot's null change_lsn is all zeros.
* Kafka: ``kafka:<topic>:<partition, 10 digits>:<offset, 20 digits>`` (order is per partition,
  which is where Kafka keeps one key's events).
* An event with no usable source coordinates (a doc example with ``source`` elided, Paimon's
  test captures with ``file: ""``) gets ``seq:<20 digits>``; bronze rewrites it to
  ``seq:<ingestion time, µs>:<file index>:<_seq>`` so that arrival order is source order.

Silver orders events by ``(_source_position, bronze _ingestion_time, _source_file, _seq)``.
Values are normalized: decimals as decimal text, dates ``YYYY-MM-DD``, timestamps ISO-8601
(``Z`` suffix when zoned), times ``HH:MM:SS.ffffff``, binary as base64, everything else as
JSON. ``_event_id`` is ``make_event_id(table, position, op, key JSON or row image JSON)``: an
md5 fingerprint, so a re-delivered event (same position, same row) is recognised whichever
decoder read it.

Positions of different kinds never compare; a table is fed by one kind of source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import pyarrow as pa

OPS = ("c", "r", "u", "d", "t")


class PositionLost(SourceNotFound):
    """The source can no longer serve the changes after the committed position (a dropped slot, a
    purged binlog): only a new snapshot brings the job back, ``flowforge cdc reset``."""

UNAVAILABLE = "__debezium_unavailable_value"
EVENT_COLUMNS = ("_event_id", "_op", "_source_position", "_source_ts", "_snapshot", "_table",
                 "_key", "_before", "_after", "_schema", "_seq")


def event_schema() -> pa.Schema:
    """The Arrow schema of a change-event batch (``EVENT_COLUMNS`` in order)."""
    import pyarrow as pa

    return pa.schema([
        pa.field("_event_id", pa.string(), False),
        pa.field("_op", pa.string(), False),
        pa.field("_source_position", pa.string(), False),
        pa.field("_source_ts", pa.timestamp("us", tz="UTC"), True),
        pa.field("_snapshot", pa.string(), True),
        pa.field("_table", pa.string(), False),
        pa.field("_key", pa.string(), True),
        pa.field("_before", pa.string(), True),
        pa.field("_after", pa.string(), True),
        pa.field("_schema", pa.string(), True),
        pa.field("_seq", pa.int64(), False),
    ])


# -- positions ---------------------------------------------------------------------

def pg_position(lsn: int) -> str:
    return f"pg:{int(lsn):020d}"


def pg_txn_position(commit_lsn: int, lsn: int) -> str:
    return f"pg:{int(commit_lsn):020d}:{int(lsn):020d}"


def mysql_position(file: str, pos: int, row: int = 0) -> str:
    return f"mysql:{file}:{int(pos):020d}:{int(row):06d}"


def mysql_txn_position(file: str, txn: int, pos: int, row: int = 0) -> str:
    return f"mysql:{file}:{int(txn):020d}:{int(pos):020d}:{int(row):06d}"


def _mssql_lsn(lsn: str | None) -> str:
    if not lsn:
        return "00000000:00000000:0000"
    parts = lsn.split(":")
    widths = (8, 8, 4)
    if len(parts) != 3:
        return lsn
    return ":".join(p.zfill(w) for p, w in zip(parts, widths, strict=True))


def sqlserver_position(commit_lsn: str | None, change_lsn: str | None, event_serial_no: int | str | None) -> str:
    serial = int(event_serial_no) if event_serial_no not in (None, "") else 0
    return f"mssql:{_mssql_lsn(commit_lsn)}:{_mssql_lsn(change_lsn)}:{serial:020d}"


def kafka_position(topic: str, partition: int, offset: int) -> str:
    return f"kafka:{topic}:{int(partition):010d}:{int(offset):020d}"


def sequence_position(seq: int) -> str:
    return f"seq:{int(seq):020d}"


# -- field normalizers -------------------------------------------------------------

def normalize_snapshot(value: object) -> str | None:
    """``True``/``"true"`` → ``"true"``; ``"last"``, ``"first"``, ``"incremental"`` kept; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    return text or None


def timestamp_from_ms(ms: int | float | None) -> dt.datetime | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=round(float(ms) * 1000))


def dumps(value: Any) -> str | None:
    """Compact JSON text keeping the source's column order (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        import orjson

        return orjson.dumps(value).decode()
    except (ImportError, TypeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def make_event_id(table: str, position: str, op: str, key: str | None, extra: str = "") -> str:
    """A replay-stable id: the same change read twice gets the same id.

    ``extra`` disambiguates events that share a position and key (snapshot reads share the
    PostgreSQL LSN; their keys differ, so it is normally empty).
    """
    # md5 as a fingerprint (not for security): DuckDB computes the same one in vectorised decoders
    return hashlib.md5(f"{table}\x1f{position}\x1f{op}\x1f{key or ''}\x1f{extra}".encode()).hexdigest()


@dataclass(frozen=True)
class ChangeEvent:
    """One normalized change. ``key``/``before``/``after`` are dicts (or JSON text); ``schema``
    maps column → logical type."""

    op: str
    table: str
    position: str
    key: Mapping[str, Any] | str | None = None
    before: Mapping[str, Any] | str | None = None
    after: Mapping[str, Any] | str | None = None
    source_ts: dt.datetime | None = None
    snapshot: str | bool | None = None
    schema: Mapping[str, str] | str | None = None
    event_id: str | None = None
    seq: int = 0

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"change event op {self.op!r} is not one of {', '.join(OPS)}")

    def row(self) -> dict[str, Any]:
        key = _text(self.key)
        return {
            "_event_id": self.event_id or make_event_id(self.table, self.position, self.op, key),
            "_op": self.op,
            "_source_position": self.position,
            "_source_ts": self.source_ts,
            "_snapshot": normalize_snapshot(self.snapshot),
            "_table": self.table,
            "_key": key,
            "_before": _text(self.before),
            "_after": _text(self.after),
            "_schema": _text(self.schema),
            "_seq": self.seq,
        }


def _text(value: Mapping[str, Any] | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps(dict(value))


# -- resumable reads ------------------------------------------------------------------
# A connector may mark a batch with the source state reached once every event up to and including
# that batch is in bronze; the cdc executor then commits in bounded chunks at such batches.
RESUME_KEY = b"flowforge.resume"


def with_resume(batch: pa.RecordBatch, state: Mapping[str, Any]) -> pa.RecordBatch:
    return batch.replace_schema_metadata({RESUME_KEY: json.dumps(state, sort_keys=True)})


def resume_state(batch: pa.RecordBatch) -> dict[str, Any] | None:
    meta = batch.schema.metadata or {}
    raw = meta.get(RESUME_KEY)
    return None if raw is None else dict(json.loads(raw))


def to_batch(events: Iterable[ChangeEvent]) -> pa.RecordBatch:
    """A change-event batch of ``event_schema()`` (column-wise build, no pandas)."""
    import pyarrow as pa

    rows = [e.row() for e in events]
    schema = event_schema()
    arrays = [pa.array([r[f.name] for r in rows], f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


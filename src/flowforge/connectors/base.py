"""The connector contract: a narrow, Arrow-shaped interface every source implements.

A read happens in two steps so that progress can commit together with data:

1. ``plan(request, state)`` fixes what will be read *before* anything is read: the upper
   bound of an incremental window (``SELECT max(col)``) or the list of new files. The plan
   carries ``new_state``, the position the bronze commit will record. A request with
   ``watermark_from_rows`` lets a SQL connector skip the ``max()`` query (a second scan of the
   table when the column has no index): its plan reads ``col > lower`` with no upper bound and
   says so with ``watermark_column``; the caller then takes the next position from the rows it
   read (``RowsWatermark``) and records it in the commit of those very rows.
2. ``read(plan)`` streams ``SourcePart``s (one per table, query or file), each an iterator
   of ``pyarrow.RecordBatch`` with exactly ``plan.schema``.

Layers and storage never see a driver object.
"""

from __future__ import annotations

import datetime as dt
import decimal
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.config import ConnectionConfig


@dataclass(frozen=True)
class ConnectorCapabilities:
    """What a connector can do; the planner checks these before running a job."""

    tables: bool = True
    query: bool = False
    files: bool = False
    procedures: bool = False
    incremental: bool = False
    partitioned_reads: bool = False
    cdc: bool = False


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    source_type: str
    arrow_type: pa.DataType
    nullable: bool = True
    primary_key: bool = False
    default: str | None = None  # the declared default as SQL text; None: no default


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str | None = None
    row_estimate: int | None = None


@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    server_version: str
    latency_ms: float


@dataclass(frozen=True)
class ReadRequest:
    """What an ingest job asks of a source. Exactly one of table, query, procedure, files is set.

    ``lookback`` (a ``timedelta`` for temporal columns, a number otherwise) widens the lower
    bound of an incremental window so rows committed late with an older cursor value are read
    again; silver deduplicates them. ``type_fallback="string"`` reads columns whose type has no
    exact Arrow mapping as text instead of failing.
    """

    table: str | None = None
    query: str | None = None
    files: str | None = None
    procedure: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    incremental_column: str | None = None
    lookback: Any = None
    type_fallback: str | None = None
    batch_size: int = 100_000
    read_options: Any = None  # a files connector's per-table options (``read`` of the ingest table)
    # the caller can take the next watermark from the rows it reads (see ``RowsWatermark``): a SQL
    # connector may then plan an open window ``col > lower`` without asking ``max(col)`` first
    watermark_from_rows: bool = False

    @property
    def label(self) -> str:
        return self.table or self.files or (f"procedure {self.procedure}" if self.procedure else "query")


@dataclass(frozen=True)
class ReadPlan:
    """A read fixed in advance. ``new_state`` is the position reached once it is committed."""

    request: ReadRequest
    schema: pa.Schema
    new_state: dict[str, Any] | None
    has_data: bool = True
    description: str = ""
    bounds: tuple[Any, Any] | None = None  # (exclusive lower, inclusive upper) of the delta column
    files: tuple[FileEntry, ...] = ()
    # sources (``_source_file`` names) whose earlier rows this read replaces in one commit: files
    # read again because their read options changed; ``replaces_all``: they are all the table had
    replaces: tuple[str, ...] = ()
    replaces_all: bool = False
    # CDC: whether ``new_state`` is worth a commit when the read yields no events (a slot that
    # holds WAL on the server says so only once enough has piled up: see ``CdcPoll``)
    commit_without_events: bool = True
    # an open incremental window (``bounds`` = (lower, None)): ``new_state`` is the old position and
    # the position reached is the max of this column over the rows read (``RowsWatermark``)
    watermark_column: str | None = None


@dataclass(frozen=True)
class CdcPoll:
    """What a CDC source has pending, asked between micro-batches: ``changes`` of the captured
    tables, or else ``advance``, a position to commit without events so the source can release
    what it retains (PostgreSQL WAL), or nothing."""

    changes: bool
    advance: dict[str, Any] | None = None


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    modified: dt.datetime
    etag: str | None = None


@dataclass(frozen=True)
class SourcePart:
    """One stream of batches from one table, query or file (it names ``_source_file``)."""

    name: str
    modified_time: dt.datetime | None
    batches: Iterator[pa.RecordBatch] = field(repr=False)


class Connector(ABC):
    """A source of Arrow record batches.

    Subclasses set ``kind`` and ``capabilities`` and register with
    ``@register_connector("<kind>")``; their config model lives in ``config.py`` beside them.
    A ``shareable`` kind is thread-safe and keeps no state between calls but its connection
    pool, so a ``Context`` keeps one instance per connection name for all its callers and marks
    it ``shared``: leaving ``with connector:`` then does not close it, the Context does.
    """

    kind: ClassVar[str]
    capabilities: ClassVar[ConnectorCapabilities] = ConnectorCapabilities()
    shareable: ClassVar[bool] = False

    def __init__(self, name: str, config: ConnectionConfig) -> None:
        self.name = name
        self.config = config
        self.shared = False

    # -- discovery -------------------------------------------------------------------
    @abstractmethod
    def test(self) -> ConnectionTest: ...

    @abstractmethod
    def list_tables(self) -> list[TableInfo]: ...

    @abstractmethod
    def columns(self, request: ReadRequest) -> list[ColumnInfo]: ...

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        import pyarrow as pa

        plan = self.plan(ReadRequest(table=request.table, query=request.query, files=request.files,
                                     batch_size=limit), None)
        batches: list[pa.RecordBatch] = []
        for part in self.read(plan):
            for batch in part.batches:
                batches.append(batch)
                if sum(b.num_rows for b in batches) >= limit:
                    break
            break
        return pa.Table.from_batches(batches, schema=plan.schema).slice(0, limit)

    def dialect(self, request: ReadRequest) -> dict[str, Any] | None:
        """How a text source looks (sniffed delimiter, quote, header, encoding, null tokens), for
        ``connections schema``/``preview``; None for sources that have no dialect."""
        return None

    def row_count(self, request: ReadRequest) -> int:
        """Exact number of rows; SQL connectors override this with ``COUNT(*)``."""
        plan = self.plan(request, None)
        return sum(b.num_rows for part in self.read(plan) for b in part.batches)

    # -- extract ---------------------------------------------------------------------
    @abstractmethod
    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan: ...

    @abstractmethod
    def read(self, plan: ReadPlan) -> Iterator[SourcePart]: ...

    def cdc_poll(self, request: ReadRequest, state: dict[str, Any] | None) -> CdcPoll:
        """Whether a CDC micro-batch would find changes (``--follow`` asks before starting a run).
        Sources whose positions move with unrelated activity override it."""
        return CdcPoll(changes=self.plan(request, state).has_data)

    def reset_cdc(self) -> str:
        """Release what the source keeps for a CDC job whose state is being reset (a replication
        slot); the next run starts over with a snapshot. Returns what was done."""
        return "nothing to release at the source"

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections (a pooled connector stays usable: it connects again)."""

    def describe(self) -> str:
        """A one-line, secret-free description used in messages."""
        return f"{self.kind} connection '{self.name}'"

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.shared:
            self.close()


# -- watermark values travel as JSON -------------------------------------------------

def encode_position(value: Any) -> dict[str, Any] | None:
    """Turn a delta-column value into a JSON-safe tagged dict (and back with decode)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return {"type": "timestamp", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, decimal.Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    return {"type": "string", "value": str(value)}


def decode_position(tagged: dict[str, Any] | None) -> Any:
    if not tagged:
        return None
    kind, value = tagged["type"], tagged["value"]
    if kind == "timestamp":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
    return value


class NothingNew(Exception):
    """An open incremental window found no row beyond the stored watermark: nothing to commit."""


class RowsWatermark:
    """The next position of an open incremental window (``ReadPlan.watermark_column``): the max of
    the delta column over the source batches read, never below the stored position.

    The read is one statement, so the position is exactly the newest row of the snapshot that was
    read, and it is recorded in the commit of those rows. Rows committed in the source *during* the
    read with a lower value (transactions in flight when the read started) are not in the snapshot;
    as with a ``max()`` taken before the read, they are re-read only by a ``lookback``.
    """

    def __init__(self, plan: ReadPlan) -> None:
        assert plan.watermark_column is not None
        self.column = plan.watermark_column
        self.state = plan.new_state
        self.lower = decode_position(plan.new_state.get("high")) if plan.new_state else None
        self.high: Any = None
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        value = column_max(batch.column(self.column))
        if value is not None and (self.high is None or value > self.high):
            self.high = value

    def new_state(self) -> dict[str, Any]:
        """The position the commit records; ``NothingNew`` when no row read lies beyond the stored
        one (an empty read, or only rows of a ``lookback`` window read again)."""
        if self.high is None or (self.lower is not None and not _beyond(self.high, self.lower)):
            raise NothingNew(f"no rows after {self.lower!r}")
        return {"column": self.column, "high": encode_position(self.high)}


def _beyond(value: Any, lower: Any) -> bool:
    if isinstance(value, dt.datetime) and isinstance(lower, dt.datetime) and (value.tzinfo is None) != (
            lower.tzinfo is None):
        value, lower = value.replace(tzinfo=None), lower.replace(tzinfo=None)
    return bool(value > lower)


def column_max(array: pa.Array | pa.ChunkedArray) -> Any:
    """The max of a delta column as the Python value a watermark stores (timestamps through integers:
    a nanosecond scalar's ``as_py()`` imports pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_timestamp(kind):
        high = pc.max(array.cast(pa.int64())).as_py()
        if high is None:
            return None
        per = {"s": 1_000_000, "ms": 1_000, "us": 1}
        if kind.unit == "ns":
            if high % 1000:
                # a datetime holds microseconds: round down, so the stored position never runs ahead
                # of a row (the row at the boundary is read again rather than lost)
                high -= high % 1000
            micros = high // 1000
        else:
            micros = high * per[kind.unit]
        value = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)
        return value.replace(tzinfo=dt.UTC) if kind.tz else value
    return pc.max(array).as_py()


def watermark_from_rows_type(kind: pa.DataType) -> bool:
    """Delta-column types whose Arrow max is the database's max: integers, exact decimals, dates and
    timestamps (text compares by collation and floats have NaN, so those keep the ``max()`` query)."""
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_date(kind)
                or (pa.types.is_timestamp(kind) and kind.unit != "ns"))

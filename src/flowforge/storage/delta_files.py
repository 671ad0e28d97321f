"""Writing Delta data files FlowForge commits itself: Parquet files of about ``FILE_ROWS`` rows
each, with the Delta statistics (row count, null counts, min/max) that later merges plan from
(``delta_merge``) and that readers use to skip files."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_ADDED = "flowforge.rows_added"  # commit metadata of the commits written here

# rows per written file: a changed id then rewrites about this many rows
FILE_ROWS = 1_048_576
ROW_GROUP = 131_072


def stats_type(t: pa.DataType) -> bool:
    """Key types whose min/max merges plan from (exact and totally ordered)."""
    import pyarrow as pa

    return bool(pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_date32(t))


def _ranged(t: pa.DataType) -> bool:
    """Types whose min/max go in the statistics (as delta-rs writes them)."""
    import pyarrow as pa

    return bool(stats_type(t) or pa.types.is_timestamp(t) or pa.types.is_floating(t)
                or pa.types.is_decimal(t) or pa.types.is_boolean(t))


_PER_MICRO = {"s": 1_000_000, "ms": 1_000, "us": 1}
_EPOCH = dt.datetime(1970, 1, 1)


def _timestamp_bounds(lo: int, hi: int, unit: str, tz: str | None) -> tuple[dt.datetime, dt.datetime]:
    """Integer timestamps of ``unit`` as datetimes, the max rounded up to the microsecond.

    Through integers: a nanosecond scalar's ``as_py()`` would import pandas (half a second of every run)."""
    lo_us, hi_us = (lo // 1000, -(-hi // 1000)) if unit == "ns" else (lo * _PER_MICRO[unit], hi * _PER_MICRO[unit])
    zone = dt.UTC if tz else None
    return ((_EPOCH + dt.timedelta(microseconds=lo_us)).replace(tzinfo=zone),
            (_EPOCH + dt.timedelta(microseconds=hi_us)).replace(tzinfo=zone))


def _stat_value(v: Any, t: pa.DataType, upper: bool) -> Any:
    """A min/max as the Delta log writes it; timestamps to the millisecond, rounded outwards so
    the range still holds every value."""
    import decimal

    import pyarrow as pa

    if isinstance(v, dt.datetime):
        micro = v.microsecond % 1000
        if micro:
            v = v - dt.timedelta(microseconds=micro) + (dt.timedelta(milliseconds=1) if upper else dt.timedelta())
        if getattr(t, "tz", None):
            return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if pa.types.is_floating(t) and isinstance(v, float) and math.isinf(v):
        return None
    return v


@dataclass(frozen=True)
class Added:
    path: str
    size: int
    stats: str


class FileWriter:
    """Parquet files of about FILE_ROWS sorted rows each, with Delta statistics."""

    def __init__(self, loc: str, schema: pa.Schema, dictionary: list[str] | None = None,
                 filesystem: Any = None) -> None:
        """``dictionary``: the columns to dictionary-encode (by default, decided on the first batch);
        ``filesystem``: a pyarrow filesystem ``loc`` is a folder of (an object store), else local."""
        self.loc, self.schema, self.filesystem = loc, schema, filesystem
        self.dictionary = dictionary
        self.added: list[Added] = []

    def write_run(self, reader: Iterable[pa.RecordBatch], expected: int | None) -> int:
        """Write one run's sorted stream into files of even size (about ``expected`` rows in all),
        so that no small remainder file is left behind; of FILE_ROWS rows when the length is unknown."""
        if expected is None:
            files, per_file = 1 << 62, FILE_ROWS
        else:
            files = max(1, round(expected / FILE_ROWS))
            per_file = max(1, math.ceil(expected / files))
        rows = in_file = done = 0
        current: Any = None
        name = ""
        stats = Stats(self.schema)
        for batch in reader:
            rows += batch.num_rows
            if self.dictionary is None:
                self.dictionary = dictionary_columns(batch)
            while batch.num_rows:
                if current is None:
                    name, current = self._open()
                    in_file, stats = 0, Stats(self.schema)
                part = batch.slice(0, per_file - in_file) if done < files - 1 else batch
                current.write_batch(part, row_group_size=ROW_GROUP)
                stats.add(part)
                in_file += part.num_rows
                batch = batch.slice(part.num_rows)
                if in_file >= per_file and done < files - 1:
                    self._finish(current, name, stats)
                    current, done = None, done + 1
        if current is not None:
            self._finish(current, name, stats)
        return rows

    def _open(self) -> tuple[str, Any]:
        import pyarrow.parquet as pq

        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        writer = pq.ParquetWriter(self._path(name), self.schema, compression="snappy",
                                  use_dictionary=self.dictionary or False, filesystem=self.filesystem)
        return name, writer

    def _finish(self, writer: Any, name: str, stats: Stats) -> None:
        import pyarrow.parquet as pq

        writer.close()
        path = self._path(name)
        stats.read_footer(pq.read_metadata(path, filesystem=self.filesystem))
        size = os.path.getsize(path) if self.filesystem is None else self.filesystem.get_file_info(path).size
        self.added.append(Added(name, size, stats.json()))

    def _path(self, name: str) -> str:
        return os.path.join(self.loc, name) if self.loc else name

    def close(self) -> list[Added]:
        return self.added


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """Columns with few distinct values (by the first batch): dictionary encoding pays off there,
    and elsewhere only costs time (about half the write time of a file of unique strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = []
    for f in batch.schema:
        if pa.types.is_nested(f.type) or not batch.num_rows:
            continue
        if pc.count_distinct(batch.column(f.name)).as_py() <= 0.3 * batch.num_rows:
            out.append(f.name)
    return out


def _leaves(t: pa.DataType) -> int:
    """How many Parquet leaf columns a field of type ``t`` is written as."""
    return sum(_leaves(t.field(i).type) for i in range(t.num_fields)) if t.num_fields else 1


class Stats:
    """Delta file statistics: numRecords, nullCount of every flat column, min/max where exact.

    The null counts and ranges come from the statistics the Parquet writer keeps for each row group
    (read back from the file's footer, as delta-rs does), not from a second pass over the data; what
    the footer cannot say is checked on the batches: a float column holding NaN gets no range (the
    footer's min/max skip NaN)."""

    def __init__(self, schema: pa.Schema) -> None:
        import pyarrow as pa

        self.schema = schema
        self.rows = 0
        self.flat = [f.name for f in schema if not pa.types.is_nested(f.type)]
        self.ranged = [f.name for f in schema if _ranged(f.type)]
        self.floats = [f.name for f in schema if pa.types.is_floating(f.type)]
        self.nulls: dict[str, int | None] = dict.fromkeys(self.flat, 0)
        self.lo: dict[str, Any] = {}
        self.hi: dict[str, Any] = {}
        self.dropped: set[str] = set()

    def add(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        for name in self.floats:
            if name not in self.dropped and pc.any(pc.is_nan(batch.column(name))).as_py():
                self._drop(name)  # NaN has no place in a range

    def read_footer(self, metadata: Any) -> None:
        """Null counts and ranges from the Parquet footer of the file the batches went to."""
        leaf, at = 0, {}
        for f in self.schema:
            at[f.name] = leaf
            leaf += _leaves(f.type)
        ranged = set(self.ranged)
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for name in self.flat:
                col = group.column(at[name])
                st = col.statistics
                nulls = st.null_count if st is not None and st.has_null_count else None
                if nulls is None:
                    self._drop(name)
                    self.nulls[name] = None
                    continue
                known = self.nulls[name]
                if known is not None:
                    self.nulls[name] = known + nulls
                if name not in ranged or name in self.dropped:
                    continue
                if nulls == group.num_rows:
                    continue  # only nulls: no range to add
                if not st.has_min_max:
                    self._drop(name)  # (the writer leaves out values it deems too long)
                    continue
                self._extend(name, st)

    def _extend(self, name: str, st: Any) -> None:
        import pyarrow as pa

        t = self.schema.field(name).type
        if pa.types.is_timestamp(t):
            lo, hi = _timestamp_bounds(st.min_raw, st.max_raw, "ms" if t.unit == "s" else t.unit, t.tz)
        else:
            lo, hi = st.min, st.max
        if isinstance(lo, bytes) or isinstance(hi, bytes):
            self._drop(name)
            return
        if isinstance(lo, str) and max(len(lo), len(hi)) > 256:
            self._drop(name)  # long text: no range rather than a huge log entry
            return
        self.lo[name] = lo if name not in self.lo else min(self.lo[name], lo)
        self.hi[name] = hi if name not in self.hi else max(self.hi[name], hi)

    def _drop(self, name: str) -> None:
        self.dropped.add(name)
        self.lo.pop(name, None)
        self.hi.pop(name, None)

    def json(self) -> str:
        types = {f.name: f.type for f in self.schema}
        lo = {k: _stat_value(v, types[k], False) for k, v in self.lo.items()}
        hi = {k: _stat_value(v, types[k], True) for k, v in self.hi.items()}
        keep = [k for k in lo if lo[k] is not None and hi.get(k) is not None]
        nulls = {k: v for k, v in self.nulls.items() if v is not None}
        return json.dumps({"numRecords": self.rows, "minValues": {k: lo[k] for k in keep},
                           "maxValues": {k: hi[k] for k in keep}, "nullCount": nulls})


def with_rows_added(commit_properties: Any, rows: int) -> Any:
    """``commit_properties`` that also record the rows a commit added: a commit FlowForge writes itself has
    none of the operation metrics delta-rs' own writers record, and the catalog's history shows this one."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={**(commit_properties.custom_metadata or {}), ROWS_ADDED: str(rows)},
                            max_commit_retries=commit_properties.max_commit_retries,
                            app_transactions=commit_properties.app_transactions)


def create(loc: str, data: pa.Table | pa.RecordBatchReader, schema: pa.Schema, *, configuration: dict[str, str],
           commit_properties: Any) -> list[Added]:
    """A new table of ``data`` (a stream is written as it comes, in files of FILE_ROWS rows), in one commit."""
    import time

    import pyarrow as pa
    from deltalake.transaction import AddAction, create_table_with_add_actions

    from flowforge.storage.delta import cast_batch

    os.makedirs(loc, exist_ok=True)
    batches = data.to_batches(ROW_GROUP) if isinstance(data, pa.Table) else data
    writer = FileWriter(loc, schema)
    rows = writer.write_run((cast_batch(b, schema) for b in batches if b.num_rows), None)
    now = int(time.time() * 1000)
    from deltalake import Schema as DeltaSchema

    create_table_with_add_actions(loc, DeltaSchema.from_arrow(schema),
                                  [AddAction(a.path, a.size, {}, now, True, a.stats) for a in writer.added],
                                  mode="error", configuration=configuration,
                                  commit_properties=with_rows_added(commit_properties, rows))
    return writer.added

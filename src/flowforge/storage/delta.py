"""The lakehouse: Delta tables under ``<root>/<layer>/<table>``, written with delta-rs.

Progress (watermarks, processed bronze versions) travels in the commit's custom metadata
under ``flowforge.*`` keys, so data and progress become visible in one atomic commit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import StorageError

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

LAYERS = ("bronze", "silver", "gold")
META_PREFIX = "flowforge."


@dataclass(frozen=True)
class CommitResult:
    version: int
    rows_written: int
    bytes_written: int
    rows_updated: int = 0


@contextmanager
def _storage_errors(action: str, location: str) -> Iterator[None]:
    """delta-rs errors carry a Rust backtrace; keep the first line and name the table."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        from deltalake.exceptions import DeltaError

        if isinstance(exc, DeltaError | OSError):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"Could not {action} Delta table at {location}: {first}",
                               hint="Check that the lakehouse location exists and is writable.") from exc
        raise


def delta_compatible(schema: pa.Schema) -> pa.Schema:
    """Arrow types Delta cannot store, mapped to the nearest exact type it can."""
    import pyarrow as pa

    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_time(t):
            t = pa.string()  # Delta has no TIME type; ISO text keeps every digit
        elif pa.types.is_uint64(t):
            t = pa.decimal128(20, 0)
        elif pa.types.is_uint32(t):
            t = pa.int64()
        elif pa.types.is_uint16(t):
            t = pa.int32()
        elif pa.types.is_uint8(t):
            t = pa.int16()
        elif pa.types.is_null(t):
            t = pa.string()
        elif pa.types.is_timestamp(t) and t.tz is None and t.unit != "us":
            t = pa.timestamp("us")
        elif pa.types.is_timestamp(t) and t.tz is not None:
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t, f.nullable, f.metadata))
    return pa.schema(fields)


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    import pyarrow as pa

    arrays = [batch.column(i).cast(schema.field(i).type) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class LakehouseStore:
    """Reads and writes the Delta tables of one lakehouse root."""

    def __init__(self, root: str, storage_options: dict[str, str] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options or None

    # -- locations ---------------------------------------------------------------
    def location(self, layer: str, table: str) -> str:
        return f"{self.root}/{layer}/{table}"

    def open(self, layer: str, table: str, version: int | None = None) -> DeltaTable | None:
        from deltalake import DeltaTable

        loc = self.location(layer, table)
        if not DeltaTable.is_deltatable(loc, storage_options=self.storage_options):
            return None
        with _storage_errors("open", loc):
            return DeltaTable(loc, version=version, storage_options=self.storage_options)

    def open_version(self, dt: DeltaTable, version: int) -> DeltaTable | None:
        """An older snapshot of ``dt``, or None when its log was cleaned up."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        try:
            return DeltaTable(dt.table_uri, version=version, storage_options=self.storage_options)
        except DeltaError:
            return None

    def find(self, table: str) -> tuple[str, DeltaTable] | None:
        """Locate a table by name in any layer (gold SQL refers to tables by name)."""
        for layer in LAYERS:
            dt = self.open(layer, table)
            if dt is not None:
                return layer, dt
        return None

    def tables(self) -> list[tuple[str, str]]:
        """(layer, table) for every table under the root (local roots only)."""
        found = []
        for layer in LAYERS:
            base = os.path.join(self.root, layer)
            if "://" in self.root or not os.path.isdir(base):
                continue
            for name in sorted(os.listdir(base)):
                if os.path.isdir(os.path.join(base, name, "_delta_log")):
                    found.append((layer, name))
        return found

    # -- writes --------------------------------------------------------------------
    def append(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
               progress: dict[str, Any]) -> CommitResult:
        return self._write(layer, table, data, progress, mode="append")

    def overwrite(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
                  progress: dict[str, Any]) -> CommitResult:
        return self._write(layer, table, data, progress, mode="overwrite")

    def _write(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
               progress: dict[str, Any], mode: str) -> CommitResult:
        from deltalake import CommitProperties, write_deltalake

        loc = self.location(layer, table)
        before = self.open(layer, table)
        old_files = {a[0] for a in add_actions(before)} if before is not None and mode == "append" else set()
        with _storage_errors("write", loc):
            write_deltalake(
                loc, data, mode=mode,  # type: ignore[call-overload]
                schema_mode="merge" if mode == "append" else "overwrite",
                storage_options=self.storage_options,
                commit_properties=CommitProperties(custom_metadata=_encode(progress)),
            )
        return self._result(layer, table, old_files)

    def merge(self, layer: str, table: str, source: pa.Table, keys: tuple[str, ...],
              progress: dict[str, Any]) -> CommitResult:
        """Upsert ``source`` on ``keys``: matched rows are replaced, new rows inserted."""
        from deltalake import CommitProperties

        dt = self.open(layer, table)
        if dt is None:
            return self.overwrite(layer, table, source, progress)
        loc = self.location(layer, table)
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        with _storage_errors("merge into", loc):
            metrics = (
                dt.merge(source, predicate=predicate, source_alias="s", target_alias="t",
                         merge_schema=True,
                         commit_properties=CommitProperties(custom_metadata=_encode(progress)))
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        dt.update_incremental()
        return CommitResult(version=dt.version(), rows_written=int(metrics["num_target_rows_inserted"]),
                            rows_updated=int(metrics["num_target_rows_updated"]),
                            bytes_written=int(source.nbytes))

    def _result(self, layer: str, table: str, old_files: set[str]) -> CommitResult:
        dt = self.open(layer, table)
        assert dt is not None
        rows = size = 0
        for path, nbytes, nrows in add_actions(dt):
            if path not in old_files:
                size += nbytes
                rows += nrows
        return CommitResult(version=dt.version(), rows_written=rows, bytes_written=size)

    # -- progress ------------------------------------------------------------------
    def progress(self, layer: str, table: str, key: str) -> tuple[Any, int] | None:
        """The newest ``flowforge.<key>`` recorded in the table's commits, with its version."""
        dt = self.open(layer, table)
        if dt is None:
            return None
        with _storage_errors("read the history of", self.location(layer, table)):
            # the newest commits almost always carry it; read the whole log only when they don't
            for limit in (10, None):
                for commit in dt.history(limit):
                    raw = commit.get(META_PREFIX + key)
                    if raw is not None:
                        return json.loads(raw), int(commit["version"])
                if limit is not None and dt.version() < limit:
                    break
        return None


def _encode(progress: dict[str, Any]) -> dict[str, str]:
    return {META_PREFIX + k: json.dumps(v, sort_keys=True, default=str) for k, v in progress.items()}


def add_actions(dt: DeltaTable) -> list[tuple[str, int, int]]:
    """(relative path, size in bytes, row count) of every file in the snapshot."""
    import pyarrow as pa

    adds = pa.table(dt.get_add_actions(flatten=True))
    return list(zip(adds.column("path").to_pylist(),
                    (s or 0 for s in adds.column("size_bytes").to_pylist()),
                    (n or 0 for n in adds.column("num_records").to_pylist()), strict=True))


def conform_reader(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same stream with types Delta can store (see ``delta_compatible``)."""
    import pyarrow as pa

    target = delta_compatible(reader.schema)
    if target.equals(reader.schema):
        return reader
    return pa.RecordBatchReader.from_batches(target, (cast_batch(b, target) for b in reader))


def row_count(dt: DeltaTable) -> int:
    return sum(n for _, _, n in add_actions(dt))

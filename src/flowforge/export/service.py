"""Staging snapshots: tables of a connection or a lakehouse layer to dated CSV or Parquet files.

```bash
flowforge export --from shop_db --to data/staging --format csv       # all tables of the schema
flowforge export --from gold --tables dim_customer,fact_orders --to s3://lake/exports --format parquet
```

writes ``<to>/snapshot_date=YYYY-MM-DD/<table>.<ext>``, then ``_metadata.json`` (source, format,
start and end times, and per file: rows, bytes, SHA-256 of its content, columns and types), then
``_SUCCESS``. See ``folders.py`` for how a second export of the same day is kept apart, and
``sources.py`` for how each source reads one consistent state.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError
from flowforge.export.folders import IfExists, open_folder
from flowforge.export.sources import ExportSource, LakehouseSource, file_stem, open_source
from flowforge.storage.delta import LAYERS
from flowforge.testing import fault_point

if TYPE_CHECKING:
    from flowforge.connectors.base import Connector
    from flowforge.settings import Settings
    from flowforge.storage import LakehouseStore

FORMATS = ("csv", "parquet")
METADATA_VERSION = 1


@dataclass(frozen=True)
class ExportedFile:
    table: str
    file: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    """Where the snapshot went and what it holds."""

    location: str
    day: str
    attempt: int
    format: str
    files: tuple[ExportedFile, ...]
    seconds: float
    consistency: str
    metadata: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class ExportRequest:
    source: str  # a connection name or a lakehouse layer (bronze, silver, gold)
    to: str
    tables: tuple[str, ...] = ()
    format: str = "csv"
    day: dt.date | None = None
    if_exists: IfExists | None = None
    parallel: int = 2
    storage_options: dict[str, str] | None = None


def run_export(request: ExportRequest, *, settings: Settings, store: LakehouseStore,
               connector: Callable[[str], Connector], on_file: Callable[[ExportedFile], None] | None = None,
               ) -> ExportResult:
    """Export the tables of ``request.source``; the snapshot appears only complete, ``_SUCCESS`` last."""
    from flowforge.export.paths import output_location

    if request.format not in FORMATS:
        raise ConfigError(f"Unknown export format {request.format!r}.", hint="Use csv or parquet.")
    target = output_location(request.to, settings)
    options = request.storage_options if request.storage_options is not None else settings.storage_options
    day = (request.day or dt.date.today()).isoformat()
    started_at = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    opened = None if request.source in LAYERS else connector(request.source)
    try:
        source = LakehouseSource(store, request.source) if opened is None else open_source(opened)
    except BaseException:
        if opened is not None:
            opened.__exit__(None, None, None)
        raise
    try:
        tables = list(request.tables) or source.default_tables()
        if not tables:
            raise ConfigError(f"'{request.source}' has no tables to export.",
                              hint="Name them with --tables (or 'tables:' in the job).")
        stems = [file_stem(t) for t in tables]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise ConfigError(f"Tables {', '.join(twice)} would write the same file name.",
                              hint="Export them in separate snapshots (different --to folders).")
        folder = open_folder(target, day, request.if_exists, options if "://" in target else None)
        try:
            entries = _write_all(source, folder, tables, stems, request, on_file)
            metadata = {
                "format_version": METADATA_VERSION, "snapshot_date": day, "attempt": folder.attempt,
                "format": request.format, "source": source.describe(),
                "started_at": started_at.isoformat(), "ended_at": dt.datetime.now(dt.UTC).isoformat(),
                "tables": {e["table"]: e for e in entries},
            }
            fault_point("export.before_success")
            location = folder.finish(json.dumps(metadata, indent=2, default=str).encode())
        except BaseException:
            folder.abort()
            raise
    finally:
        source.close()
        if opened is not None:
            opened.__exit__(None, None, None)  # closes it unless the Context keeps it (pooled)
    files = tuple(ExportedFile(e["table"], e["file"], e["rows"], e["bytes"], e["sha256"]) for e in entries)
    return ExportResult(location, day, folder.attempt, request.format, files, time.perf_counter() - clock,
                        source.consistency, metadata)


def _write_all(source: ExportSource, folder: Any, tables: Sequence[str], stems: Sequence[str],
               request: ExportRequest, on_file: Callable[[ExportedFile], None] | None) -> list[dict[str, Any]]:
    ext = "csv" if request.format == "csv" else "parquet"
    lock = threading.Lock()

    def one(table: str, stem: str) -> dict[str, Any]:
        name = f"{stem}.{ext}"
        began = dt.datetime.now(dt.UTC)
        out = folder.open(name)
        try:
            written = source.write(table, request.format, out)
        finally:
            out.close()
        entry = {"table": stem, "source_table": table, "file": name, "rows": written.rows, "bytes": out.size,
                 "sha256": out.sha256.hexdigest(), "columns": written.columns, "started_at": began.isoformat(),
                 "ended_at": dt.datetime.now(dt.UTC).isoformat(), **written.extra}
        with lock:
            fault_point("export.file")
            if on_file is not None:
                on_file(ExportedFile(stem, name, written.rows, out.size, entry["sha256"]))
        return entry

    workers = max(1, min(request.parallel, len(tables)))
    if workers == 1 or not isinstance(source, _PARALLEL_SOURCES):
        return [one(t, s) for t, s in zip(tables, stems, strict=True)]
    with ThreadPoolExecutor(workers, thread_name_prefix="flowforge-export") as pool:
        return list(pool.map(one, tables, stems))


def _parallel_sources() -> tuple[type, ...]:
    from flowforge.export.sources import LakehouseSource, PostgresSource

    return (PostgresSource, LakehouseSource)


_PARALLEL_SOURCES = _parallel_sources()


def result_summary(result: ExportResult) -> dict[str, Any]:
    """JSON-safe summary (the API and the audit log)."""
    return {"location": result.location, "snapshot_date": result.day, "attempt": result.attempt,
            "format": result.format, "rows": result.rows, "seconds": round(result.seconds, 3),
            "consistency": result.consistency,
            "files": [{"table": f.table, "file": f.file, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256}
                      for f in result.files]}

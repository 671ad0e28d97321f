"""Table maintenance through delta-rs: compaction (OPTIMIZE), checkpoints and VACUUM.

* ``optimize`` bins files smaller than the target size into new ones, one commit with
  ``dataChange: false`` (readers and consumers see the same rows), then writes a checkpoint so
  opening the table reads one Parquet file instead of every JSON log entry.
* ``vacuum`` deletes files no commit references (Parquet left by runs killed before their
  commit) once they are older than the retention, and, with ``versions``, also the files of
  versions older than the retention (time travel before that point is then gone).
* A table folder whose first commit never completed (data files and an ``_delta_log`` holding
  no commit) is what Delta readers trip on; ``vacuum`` removes it once its files are older than
  the retention, and the catalog never lists it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.storage.delta import _encode, _storage_errors, _writer, add_actions_table, has_commit
from flowforge.storage.options import is_remote

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.storage.delta import LakehouseStore

MAINTENANCE = "maintenance"  # commit metadata key of FlowForge's own maintenance commits


@dataclass(frozen=True)
class TableHealth:
    files: int
    small_files: int
    bytes: int
    commits_since_optimize: int
    version: int


@dataclass(frozen=True)
class OptimizeResult:
    table: str
    layer: str
    files_removed: int
    files_added: int
    version: int
    note: str = ""


@dataclass(frozen=True)
class VacuumResult:
    table: str
    layer: str
    files_deleted: int
    bytes_deleted: int
    uncommitted: bool = False  # the whole folder of a table that never committed


def health(dt_: DeltaTable, small_bytes: int) -> TableHealth:
    """File counts from the snapshot and commits since the last compaction (from the history)."""
    sizes = add_actions_table(dt_).column("size_bytes").to_pylist()
    since = 0
    for limit in (100, None):
        history = dt_.history(limit)
        since = 0
        for commit in history:
            if commit.get("operation") == "OPTIMIZE":
                break
            since += 1
        else:
            if limit is not None and len(history) >= limit:
                continue
        break
    return TableHealth(files=len(sizes), small_files=sum(1 for s in sizes if (s or 0) < small_bytes),
                       bytes=sum(s or 0 for s in sizes), commits_since_optimize=since, version=dt_.version())


def optimize(store: LakehouseStore, layer: str, table: str, target_bytes: int,
             reason: str = "on demand") -> OptimizeResult:
    from deltalake import CommitProperties, PostCommitHookProperties

    loc = store.location(layer, table)
    opts = store.write_options(loc)
    dt_ = store._open_uri(loc, options=opts)
    if dt_ is None:
        return OptimizeResult(table, layer, 0, 0, -1, note="no table")
    props = CommitProperties(custom_metadata=_encode({MAINTENANCE: {"operation": "optimize", "reason": reason}}))
    with _storage_errors("compact", loc, opts):
        metrics = dt_.optimize.compact(target_size=target_bytes, writer_properties=_writer(), commit_properties=props,
                                       post_commithook_properties=PostCommitHookProperties(
                                           create_checkpoint=True, cleanup_expired_logs=True))
        dt_.update_incremental()
        if int(metrics.get("numFilesRemoved") or 0):
            dt_.create_checkpoint()
    return OptimizeResult(table, layer, int(metrics.get("numFilesRemoved") or 0),
                          int(metrics.get("numFilesAdded") or 0), dt_.version())


def vacuum(store: LakehouseStore, layer: str, table: str, retention: dt.timedelta, *,
           versions: bool = False, dry_run: bool = False) -> VacuumResult:
    from deltalake import CommitProperties

    loc = store.location(layer, table)
    opts = store.write_options(loc)
    dt_ = store._open_uri(loc, options=opts)
    if dt_ is None:
        return VacuumResult(table, layer, 0, 0)
    hours = max(1, int(retention.total_seconds() // 3600))
    # without ``versions`` every version keeps its files: only files no commit mentions go
    keep = None if versions else list(range(dt_.version() + 1))
    sizes = _sizes(loc) if not is_remote(loc) else {}
    props = CommitProperties(custom_metadata=_encode({MAINTENANCE: {"operation": "vacuum", "versions": versions}}))
    with _storage_errors("vacuum", loc, opts):
        deleted = dt_.vacuum(retention_hours=hours, dry_run=dry_run, enforce_retention_duration=False, full=True,
                             keep_versions=keep, commit_properties=props)
    return VacuumResult(table, layer, len(deleted), sum(sizes.get(f, 0) for f in deleted))


def _sizes(loc: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for folder, _, files in os.walk(loc):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, loc)] = os.path.getsize(path)
    return out


def uncommitted_tables(store: LakehouseStore) -> list[tuple[str, str, str]]:
    """(layer, table, location) of local table folders holding data but no commit: a first commit
    that never completed."""
    from flowforge.storage.delta import LAYERS

    found = []
    for layer in LAYERS:
        base = f"{store.root}/{layer}"
        if is_remote(base) or not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            loc = os.path.join(base, name)
            if os.path.isdir(loc) and not has_commit(loc):
                found.append((layer, name, loc))
    return found


def remove_uncommitted(layer: str, table: str, loc: str, retention: dt.timedelta,
                       dry_run: bool = False) -> VacuumResult:
    """Delete a never-committed table folder once nothing in it is younger than the retention."""
    cutoff = time.time() - retention.total_seconds()
    files = [os.path.join(d, n) for d, _, names in os.walk(loc) for n in names]
    if any(os.path.getmtime(f) > cutoff for f in files):
        return VacuumResult(table, layer, 0, 0, uncommitted=True)
    size = sum(os.path.getsize(f) for f in files)
    if not dry_run:
        if has_commit(loc):  # committed meanwhile: leave it alone
            return VacuumResult(table, layer, 0, 0, uncommitted=True)
        shutil.rmtree(loc, ignore_errors=True)
    return VacuumResult(table, layer, len(files), size, uncommitted=True)

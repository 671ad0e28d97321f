"""Which bronze files a consumer (a silver table) has not processed yet, read from the Delta log.

A silver table records the bronze version it has processed. The files added since are the
``add`` actions with ``dataChange: true`` of the later commits: a compaction (OPTIMIZE, which
rewrites files with ``dataChange: false``) adds no new rows, so it is not new data, and an
empty commit (a CDC position moved without events) is none either, and nor is a rewrite that
only widened column types (``flowforge.schema_rewrite``). Grouped by version into
chunks of about ``limit`` rows, they let a consumer apply a long backlog in bounded steps, each
committed with the version it completes.

When the log cannot tell (entries cleaned up after a checkpoint, or a compaction rewrote files
the consumer had not processed yet), ``None`` sends the caller back to comparing snapshots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote as url_quote

from flowforge.storage.delta import add_actions_table, data_files
from flowforge.storage.options import is_remote, local_path

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.storage import LakehouseStore


@dataclass(frozen=True)
class Chunk:
    upto: int            # the bronze version this chunk completes
    files: tuple[str, ...]
    rows: int
    settled: bool = True  # False: the chunk ends inside a CDC snapshot that bronze commits in parts


def _uris(dt: DeltaTable) -> dict[str, str]:
    """Relative path of every file in the snapshot (as the log writes it) → its URI."""
    paths = add_actions_table(dt).column("path").to_pylist()
    uris = data_files(dt)
    out = {}
    for path, uri in zip(paths, uris, strict=True):
        out[path] = uri
        out[url_quote(path)] = uri
    return out


def new_data(store: LakehouseStore, dt: DeltaTable, seen: int | None, limit: int | None = None) -> list[Chunk] | None:
    """Files added after version ``seen`` (all of them when None), in chunks of about ``limit``
    rows (one chunk when None). An empty list: nothing new. None: the log cannot tell."""
    current = dt.version()
    start = -1 if seen is None else seen
    added: list[tuple[int, list[tuple[str, int]]]] = []
    fresh: set[str] = set()
    settled: dict[int, bool] = {}  # whether the newest CDC position committed by that version is complete
    running = True
    uri = dt.table_uri
    loc = local_path(uri) if not is_remote(uri) else uri.rstrip("/")
    for version in range(start + 1, current + 1):
        actions = store.log_actions(loc, version)
        if actions is None:
            return None
        adds: list[tuple[str, int]] = []
        if any((a.get("commitInfo") or {}).get("flowforge.schema_rewrite") for a in actions):
            # the same rows cast to wider types (schema_drift_apply.rewrite): no new data, unless it
            # rewrote files this consumer has not read yet
            if any(str(a["remove"]["path"]) in fresh for a in actions if a.get("remove")):
                return None
            settled[version] = running
            continue
        for action in actions:
            add, remove, info = action.get("add"), action.get("remove"), action.get("commitInfo")
            if info and info.get("flowforge.cdc_state"):
                state = json.loads(info["flowforge.cdc_state"])
                running = not (isinstance(state, dict) and "snapshot_started" in state)
            if add and add.get("dataChange", True):
                stats = json.loads(add["stats"]) if add.get("stats") else {}
                adds.append((str(add["path"]), int(stats.get("numRecords") or 0)))
                fresh.add(str(add["path"]))
            elif remove and (remove.get("dataChange", True) or str(remove["path"]) in fresh):
                # rows deleted or replaced (not appended), or files rewritten before this consumer
                # read them (their rows now sit in other files): only the snapshots can tell
                return None
        settled[version] = running
        if adds:
            added.append((version, adds))
    if not added:
        return []
    uris = _uris(dt)
    chunks: list[Chunk] = []
    files: list[str] = []
    rows = 0
    for version, adds in added:
        for path, n in adds:
            found = uris.get(path)
            if found is None:
                return None
            files.append(found)
            rows += n
        if limit is not None and rows >= limit:
            chunks.append(Chunk(version, tuple(files), rows, settled.get(version, True)))
            files, rows = [], 0
    if files:
        chunks.append(Chunk(current, tuple(files), rows, settled.get(current, True)))
    else:  # later versions without new data belong to the last chunk
        last = chunks[-1]
        chunks[-1] = Chunk(current, last.files, last.rows, settled.get(current, True))
    return chunks


def last_data_version(dt: DeltaTable) -> int | None:
    """The newest version that added rows (a write with files, not an OPTIMIZE or an empty commit)."""
    for limit in (20, None):
        history = dt.history(limit)
        for commit in history:
            metrics = commit.get("operationMetrics") or {}
            if commit.get("operation") in ("WRITE", "CREATE TABLE", "MERGE", "UPDATE", "DELETE") and int(
                    metrics.get("num_added_files") or metrics.get("num_target_files_added") or 0) > 0:
                return int(commit["version"])
        if limit is not None and len(history) < limit:
            return None
    return None

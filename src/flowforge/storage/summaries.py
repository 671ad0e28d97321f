"""What the catalog shows of each table (columns, rows, version), kept per process and read again
only when the table changed, so listing hundreds of tables does not open hundreds of Delta logs.

A local table's ``_delta_log`` folder takes a new modification time with every commit (a new entry
appears in it), so one ``stat`` tells whether a kept summary still holds. A folder changed within
``RACY_NS`` of the moment it was read may change again within its clock's granularity: such a
summary is not kept. Tables in object storage have no such signal: their summaries, and the listing
of a remote root, are kept for ``REMOTE_TTL`` seconds.

Example::

    for layer, name, summary in table_summaries(store):
        print(layer, name, summary.rows, summary.version)
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.storage.options import is_remote

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.storage.delta import LakehouseStore

REMOTE_TTL = 10.0
RACY_NS = 2_000_000_000
LAKE_CHECK = 0.5  # seconds between two looks of a LakeState
_MAX_KEPT = 20_000


@dataclass(frozen=True)
class TableSummary:
    schema: pa.Schema
    rows: int
    version: int


# absolute location -> (the log folder's mtime in ns, or a monotonic expiry for remote tables; summary)
_KEPT: OrderedDict[str, tuple[float, TableSummary | None]] = OrderedDict()
_LISTINGS: dict[str, tuple[float, list[tuple[str, str]]]] = {}  # remote root -> (expiry, tables)
_LOCK = threading.Lock()
_clock = time.monotonic  # the tests move it


def table_summary(store: LakehouseStore, layer: str, table: str) -> TableSummary | None:
    """The table's summary, or None when there is no table there (no folder, or no commit yet)."""
    loc = store.location(layer, table)
    if is_remote(loc):
        now = _clock()
        kept = _get(loc)
        if kept is not None and kept[0] > now:
            return kept[1]
        summary = _read(store, layer, table)
        _put(loc, now + REMOTE_TTL, summary)
        return summary
    loc = os.path.abspath(loc)
    changed = _log_changed(loc)
    if changed is None:  # no log folder: no table
        return None
    kept = _get(loc)
    if kept is not None and kept[0] == changed:
        return kept[1]
    summary = _read(store, layer, table)
    if time.time_ns() - changed > RACY_NS:
        _put(loc, changed, summary)
    return summary


def table_summaries(store: LakehouseStore, layer: str | None = None) -> list[tuple[str, str, TableSummary]]:
    """(layer, table, summary) of every table under the root and every table placed elsewhere."""
    out = []
    for lay, name in _candidates(store):
        if layer and lay != layer:
            continue
        summary = table_summary(store, lay, name)
        if summary is not None:
            out.append((lay, name, summary))
    return out


class LakeState:
    """What changes whenever any local table commits (each candidate's log folder mtime), for
    answers kept while the tables are as they were. Looking costs a ``stat`` per table (about 2 ms
    for 300), so it looks at most once per ``LAKE_CHECK`` seconds: a commit shows within that, and
    at once when it is FlowForge's (its run records the table in the metadata store, whose
    generation the kept answers check as well)."""

    def __init__(self, store: LakehouseStore) -> None:
        self.store = store
        self._seen: tuple[float, tuple[tuple[str, str, int], ...] | None] | None = None
        self._lock = threading.Lock()

    def fingerprint(self) -> tuple[tuple[str, str, int], ...] | None:
        """None when it cannot be told: a log folder changed within ``RACY_NS`` (it may change again
        unseen), or a lakehouse with tables in object storage."""
        now = _clock()
        with self._lock:
            seen = self._seen
        if seen is not None and now - seen[0] < LAKE_CHECK:
            return seen[1]
        found = self._look()
        with self._lock:
            self._seen = (now, found)
        return found

    def _look(self) -> tuple[tuple[str, str, int], ...] | None:
        store = self.store
        if is_remote(store.root) or any(is_remote(loc) for tables in store.locations.values()
                                        for loc in tables.values()):
            return None
        now = time.time_ns()
        found = []
        for lay, name in _candidates(store):
            changed = _log_changed(store.location(lay, name))
            changed = -1 if changed is None else changed
            if now - changed <= RACY_NS:
                return None
            found.append((lay, name, changed))
        return tuple(found)


def _candidates(store: LakehouseStore) -> list[tuple[str, str]]:
    """Names that may be tables (a local folder without a commit, or a file, has no summary)."""
    from flowforge.storage.delta import LAYERS

    if is_remote(store.root):
        now = _clock()
        with _LOCK:
            listed = _LISTINGS.get(store.root)
        if listed is not None and listed[0] > now:
            return listed[1]
        found = store.tables()
        with _LOCK:
            _LISTINGS[store.root] = (now + REMOTE_TTL, found)
        return found
    found = []
    for lay in LAYERS:
        base = f"{store.root}/{lay}"
        found += [(lay, n) for n in (sorted(os.listdir(base)) if os.path.isdir(base) else [])]
    for lay, tables in store.locations.items():
        found += [(lay, n) for n in tables if (lay, n) not in found]
    return found


def _log_changed(loc: str) -> int | None:
    """When the local table's log folder last changed (ns), or None when it has none."""
    try:
        return os.stat(os.path.join(loc, "_delta_log")).st_mtime_ns
    except OSError:
        return None


def _read(store: LakehouseStore, layer: str, table: str) -> TableSummary | None:
    import pyarrow as pa

    from flowforge.storage.delta import row_count

    dt = store.open(layer, table)
    if dt is None:
        return None
    return TableSummary(pa.schema(dt.schema().to_arrow()), row_count(dt), dt.version())


def _get(loc: str) -> tuple[float, TableSummary | None] | None:
    with _LOCK:
        kept = _KEPT.get(loc)
        if kept is not None:
            _KEPT.move_to_end(loc)
        return kept


def _put(loc: str, key: float, summary: TableSummary | None) -> None:
    with _LOCK:
        _KEPT[loc] = (key, summary)
        _KEPT.move_to_end(loc)
        while len(_KEPT) > _MAX_KEPT:
            _KEPT.popitem(last=False)

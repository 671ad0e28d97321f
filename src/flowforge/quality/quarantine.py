"""Quarantine tables: ``<table>__quarantine``, a Delta table in the table's own layer.

Each quarantined row keeps every column it had, plus ``_quarantine_id``, the tests it failed
(``_quarantine_failed_tests``), ``_quarantine_run_id``, ``_quarantine_batch_id``,
``_quarantine_parent_version`` (the data table's version the batch was built on),
``_quarantined_at`` and its replay state (``_replay_status``: null while pending, then
``replaying``, ``replayed`` or ``superseded``; ``_replay_id``; ``_replayed_version``).

Crash safety, without a transaction across two Delta tables:

1. The quarantine commit comes first. It *replaces* every quarantine row whose parent version
   is at or above the data table's current version: those can only come from an attempt whose
   data commit never happened (a committed batch at parent ``v`` made the table ``v+1``). A
   retried batch therefore replaces, never adds to, what a killed attempt quarantined.
2. The data commit follows, carrying the batch's accounting (rows in, committed, dropped,
   quarantined, quarantine version) in its commit metadata, so the count of dropped rows is
   as durable as the data.

A crash before (1) leaves nothing; between (1) and (2) leaves quarantine rows the retry
replaces; after (2) leaves both tables complete. Replay is made safe the same way (see
``flowforge.quality.replay``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.storage import LakehouseStore

SUFFIX = "__quarantine"
PARENT = "_quarantine_parent_version"
STATUS = "_replay_status"
QUARANTINE_COLUMNS = ("_quarantine_id", "_quarantine_failed_tests", "_quarantine_run_id", "_quarantine_batch_id",
                      PARENT, "_quarantined_at", STATUS, "_replay_id", "_replayed_version")


def quarantine_name(table: str) -> str:
    return table + SUFFIX


def is_quarantine(table: str) -> bool:
    return table.endswith(SUFFIX)


def write(store: LakehouseStore, layer: str, table: str, rows: pa.Table, *, parent_version: int, run_id: int,
          batch_id: str) -> int:
    """Commit ``rows`` (with ``_quarantine_failed_tests``) to the quarantine table; its version."""
    import pyarrow as pa

    n = rows.num_rows
    now = dt.datetime.now(dt.UTC)
    extra = {
        "_quarantine_id": pa.array([f"{batch_id}:{i}" for i in range(n)], pa.string()),
        "_quarantine_run_id": pa.array([run_id] * n, pa.int64()),
        "_quarantine_batch_id": pa.array([batch_id] * n, pa.string()),
        PARENT: pa.array([parent_version] * n, pa.int64()),
        "_quarantined_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        STATUS: pa.nulls(n, pa.string()),
        "_replay_id": pa.nulls(n, pa.string()),
        "_replayed_version": pa.nulls(n, pa.int64()),
    }
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    progress = {"quarantine": {"table": table, "batch_id": batch_id, "run_id": run_id,
                               "parent_version": parent_version, "rows": n}}
    commit = store.replace(layer, quarantine_name(table), rows, f"{PARENT} >= {int(parent_version)}", progress)
    return commit.version


def forget(store: LakehouseStore, layer: str, table: str, batch_id: str) -> None:
    """Remove what one batch quarantined (its data commit failed; the retry quarantines anew)."""
    from flowforge.storage.delta import _storage_errors

    q = store.open(layer, quarantine_name(table))
    if q is None:
        return
    loc = store.location(layer, quarantine_name(table))
    with _storage_errors("delete from", loc):
        q.delete(f"_quarantine_batch_id = '{batch_id.replace(chr(39), chr(39) * 2)}'")


@dataclass(frozen=True)
class QuarantineSummary:
    table: str  # the data table
    layer: str
    pending: int
    replayed: int
    superseded: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    tests: dict[str, int]  # failed test → pending rows


def summaries(store: LakehouseStore) -> list[QuarantineSummary]:
    out = []
    for layer, name in store.tables():
        if is_quarantine(name):
            q = store.open(layer, name)
            if q is not None:
                out.append(_summary(q, layer, name.removesuffix(SUFFIX)))
    return out


def summary(store: LakehouseStore, table: str) -> QuarantineSummary:
    layer, q = open_quarantine(store, table)
    return _summary(q, layer, table)


def open_quarantine(store: LakehouseStore, table: str) -> tuple[str, DeltaTable]:
    table = table.removesuffix(SUFFIX)
    found = store.find(quarantine_name(table))
    if found is None:
        raise NotFoundError(f"Table '{table}' has no quarantine table ({quarantine_name(table)}): no row of it "
                            f"was ever quarantined.", hint="List quarantines with 'flowforge quarantine list'.")
    return found


def register(engine: Any, name: str, q: DeltaTable) -> None:
    """The quarantine table as a view, read whole into memory (it holds the exceptions, not the data).

    Not through a dataset scan: delta-rs writes text as Utf8View in files it rewrites (merge,
    update), and a filter pushed into a scan of those files on object storage fails in pyarrow
    ("no kernel matching input types (string, string_view)")."""
    engine.register_arrow(name, q.to_pyarrow_table())


def _summary(q: DeltaTable, layer: str, table: str) -> QuarantineSummary:
    from flowforge.engine.duckdb_engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        register(engine, "q", q)
        counts = engine.rows(
            f"SELECT count(*) FILTER (WHERE {STATUS} IS NULL OR {STATUS} = 'replaying'), "
            f"count(*) FILTER (WHERE {STATUS} = 'replayed'), count(*) FILTER (WHERE {STATUS} = 'superseded'), "
            f"min(_quarantined_at), max(_quarantined_at) FROM q")[0]
        tests = engine.rows(f"SELECT t, count(*) FROM (SELECT unnest(_quarantine_failed_tests) AS t FROM q "
                            f"WHERE {STATUS} IS NULL) GROUP BY t ORDER BY 2 DESC, 1")
    finally:
        engine.close()
    return QuarantineSummary(table, layer, int(counts[0]), int(counts[1]), int(counts[2]), counts[3], counts[4],
                             {str(t): int(n) for t, n in tests})


def rows(store: LakehouseStore, table: str, *, limit: int = 50, status: str = "pending",
         test: str | None = None) -> list[dict[str, Any]]:
    """Quarantined rows, newest first: ``pending`` ones, or ``all``; only those failing ``test`` if given."""
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.quality.evaluate import json_rows
    from flowforge.quality.sqlsafe import literal

    _, q = open_quarantine(store, table)
    engine = DuckDBEngine()
    try:
        register(engine, "q", q)
        where = [f"({STATUS} IS NULL OR {STATUS} = 'replaying')"] if status == "pending" else []
        if test:
            where.append(f"list_contains(_quarantine_failed_tests, {literal(test)})")
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        result = engine.query(f"SELECT * FROM q{cond} ORDER BY _quarantined_at DESC, _quarantine_id "
                              f"LIMIT {int(limit)}", f"quarantine of {table}")
    finally:
        engine.close()
    return json_rows(result)

"""Replay: re-check quarantined rows with the table's current tests and merge the ones that now pass.

Exactly once, across a crash at any point, in three commits:

1. quarantine: the rows about to go back are marked ``replaying`` with a new replay id (rows
   whose key already has newer data in the table are marked ``superseded``);
2. data table: the rows are appended or merged, the replay id in the commit's metadata;
3. quarantine: the marked rows become ``replayed`` with the data table's version.

A replay finds rows still ``replaying`` first: if the data table has a commit with their replay
id, only step 3 is left; otherwise steps 2 and 3 are done for exactly those rows. Rows of a
batch whose own data commit never happened (a killed run) are never replayed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.engine.sql import quote
from flowforge.errors import CheckFailed, ConfigError
from flowforge.quality.quarantine import QUARANTINE_COLUMNS, STATUS, open_quarantine, quarantine_name, register
from flowforge.storage.delta import META_PREFIX, _encode, _storage_errors
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.quality.evaluate import TestResult
    from flowforge.quality.tables import TestedTable
    from flowforge.storage import CommitResult, LakehouseStore

REPLAY = "replay"  # commit-metadata key (flowforge.replay) of a replay's data commit


@dataclass(frozen=True)
class ReplayReport:
    table: str
    layer: str
    checked: int  # pending rows re-checked
    replayed: int  # now in the table
    superseded: int  # the table already has newer data for their key
    still_failing: int  # still quarantined
    recovered: int  # rows of an interrupted replay finished now
    version: int | None  # the data table's version with the replayed rows
    results: tuple[TestResult, ...] = ()


def replay(store: LakehouseStore, target: TestedTable) -> ReplayReport:
    if target.layer == "gold":
        raise ConfigError(f"Gold table {target.table} is rebuilt from its SQL on every run, so its quarantined rows "
                          "come back by themselves on the next run once they pass; there is nothing to replay.",
                          hint=f"See them with 'flowforge quarantine show {target.table}'.")
    layer, _ = open_quarantine(store, target.table)
    recovered = _finish_interrupted(store, target, layer)
    pending = _pending(store, target, layer)
    if pending is None or pending.num_rows == 0:
        return ReplayReport(target.table, layer, 0, 0, 0, 0, recovered, None)
    from flowforge.quality.check import Checker

    tests = [t.model_copy(update={"severity": "quarantine", "mostly": None})
             for t in target.tests if t.row_level and t.severity != "warn"]
    existing = store.open(layer, target.table)
    with Checker(store, layer, target.table) as checker:
        verdict = checker.batch(tests, pending, mode=target.mode, keys=target.keys, existing=existing)
    if verdict.stops:
        bad = verdict.stops[0]
        raise CheckFailed(f"Replay of {target.table}: test {bad.test} could not run: {bad.message}; "
                          "nothing was replayed.", hint="Fix the test in the workflow file.")
    apply, superseded = _split(verdict.data, target, existing)
    rid = uuid.uuid4().hex
    _mark(store, layer, target.table, {**dict.fromkeys(apply, "replaying"), **dict.fromkeys(superseded, "superseded")},
          rid)
    fault_point("quality.replay.marked")
    version = None
    if apply:
        commit = _write(store, layer, target, _rows(store, layer, target.table, rid), rid)
        fault_point("quality.replay.committed")
        version = commit.version
        _done(store, layer, target.table, rid, version)
    return ReplayReport(target.table, layer, pending.num_rows, len(apply), len(superseded), verdict.quarantined,
                        recovered, version, tuple(verdict.results))


def _pending(store: LakehouseStore, target: TestedTable, layer: str) -> pa.Table | None:
    """Pending rows of batches whose data commit happened (data columns, id and time kept)."""
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine

    q = store.open(layer, quarantine_name(target.table))
    table = store.open(layer, target.table)
    if q is None or table is None:
        return None
    batches = _committed_batches(table)
    engine = DuckDBEngine()
    try:
        register(engine, "q", q)
        engine.register_arrow("batches", pa.table({"b": pa.array(sorted(batches), pa.string())}))
        drop = ", ".join(quote(c) for c in QUARANTINE_COLUMNS if c not in ("_quarantine_id", "_quarantined_at"))
        return engine.query(f"SELECT * EXCLUDE ({drop}) FROM q WHERE {STATUS} IS NULL AND _quarantine_batch_id IN "
                            f"(SELECT b FROM batches) ORDER BY _quarantined_at, _quarantine_id",
                            f"quarantine of {target.table}")
    finally:
        engine.close()


def _split(passing: pa.Table, target: TestedTable, existing: DeltaTable | None) -> tuple[list[str], list[str]]:
    """Passing rows to write, and rows superseded by newer data of the same key (merge tables)."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    ids: list[str] = passing.column("_quarantine_id").to_pylist()
    if target.mode != "merge" or not target.keys or existing is None or not passing.num_rows:
        return ids, []
    keys = ", ".join(quote(k) for k in target.keys)
    order = f"{quote(target.order_by)} DESC NULLS LAST, " if target.order_by else ""
    latest = (f"SELECT * FROM __ff_passing QUALIFY row_number() OVER (PARTITION BY {keys} "
              f"ORDER BY {order}_quarantined_at DESC, _quarantine_id DESC) = 1")
    existing_cols = {f.name for f in existing.schema().to_arrow()}  # type: ignore[attr-defined]
    if target.order_by and target.order_by in existing_cols:
        newer = f"t.{quote(target.order_by)} > c.{quote(target.order_by)}"
    elif "_silver_updated_at" in existing_cols:
        newer = "t._silver_updated_at > c._quarantined_at"
    else:
        newer = "false"
    same = " AND ".join(f"t.{quote(k)} = c.{quote(k)}" for k in target.keys)
    engine = DuckDBEngine()
    try:
        engine.register_arrow("__ff_passing", passing)
        engine.register_delta("__ff_target", existing)
        rows = engine.rows(f"SELECT c._quarantine_id, coalesce(EXISTS (SELECT 1 FROM __ff_target t WHERE {same} "
                           f"AND {newer}), false) FROM ({latest}) c")
    finally:
        engine.close()
    apply = [r[0] for r in rows if not r[1]]
    keep = set(apply)
    return apply, [i for i in ids if i not in keep]


def _mark(store: LakehouseStore, layer: str, table: str, status: dict[str, str], rid: str) -> None:
    """One quarantine commit setting each row's replay status (and the replay id)."""
    import pyarrow as pa

    if not status:
        return
    source = pa.table({"id": pa.array(list(status), pa.string()), "status": pa.array(list(status.values())),
                       "rid": pa.array([rid] * len(status), pa.string())})
    _merge_status(store, layer, table, source, {STATUS: "s.status", "_replay_id": "s.rid"})


def _done(store: LakehouseStore, layer: str, table: str, rid: str, version: int) -> None:
    """Rows of replay ``rid`` are in the data table at ``version``."""
    from deltalake import CommitProperties

    qname = quarantine_name(table)
    q = store.open(layer, qname)
    assert q is not None
    with _storage_errors("update", store.location(layer, qname)):
        q.update(updates={STATUS: "'replayed'", "_replayed_version": str(int(version))},
                 predicate=f"_replay_id = '{rid}' AND {STATUS} = 'replaying'",
                 commit_properties=CommitProperties(custom_metadata=_encode({"replay_done": rid})))


def _merge_status(store: LakehouseStore, layer: str, table: str, source: pa.Table, updates: dict[str, str]) -> None:
    from deltalake import CommitProperties

    qname = quarantine_name(table)
    q = store.open(layer, qname)
    assert q is not None
    with _storage_errors("update", store.location(layer, qname)):
        (q.merge(source, predicate="t._quarantine_id = s.id", source_alias="s", target_alias="t",
                 commit_properties=CommitProperties(custom_metadata=_encode({"replay_mark": updates})))
         .when_matched_update(updates).execute())


def _rows(store: LakehouseStore, layer: str, table: str, rid: str) -> pa.Table:
    """The data columns of the rows marked for replay ``rid``."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    q = store.open(layer, quarantine_name(table))
    assert q is not None
    engine = DuckDBEngine()
    try:
        register(engine, "q", q)
        drop = ", ".join(quote(c) for c in QUARANTINE_COLUMNS)
        return engine.query(f"SELECT * EXCLUDE ({drop}) FROM q WHERE _replay_id = '{rid}' AND {STATUS} = 'replaying' "
                            f"ORDER BY _quarantine_id", f"quarantine of {table}")
    finally:
        engine.close()


def _write(store: LakehouseStore, layer: str, target: TestedTable, rows: pa.Table, rid: str) -> CommitResult:
    progress = {REPLAY: {"id": rid, "rows": rows.num_rows}}
    if target.mode == "merge" and target.keys:
        return store.merge(layer, target.table, rows, target.keys, progress)
    return store.append(layer, target.table, rows, progress)


def _finish_interrupted(store: LakehouseStore, target: TestedTable, layer: str) -> int:
    """Complete replays a crash interrupted; the number of rows they covered."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    q = store.open(layer, quarantine_name(target.table))
    if q is None:
        return 0
    engine = DuckDBEngine()
    try:
        register(engine, "q", q)
        open_ids = engine.rows(f"SELECT _replay_id, count(*) FROM q WHERE {STATUS} = 'replaying' GROUP BY 1")
    finally:
        engine.close()
    done = 0
    for rid, n in open_ids:
        table = store.open(layer, target.table)
        version = _replay_version(table, str(rid)) if table is not None else None
        if version is None:
            version = _write(store, layer, target, _rows(store, layer, target.table, str(rid)), str(rid)).version
        _done(store, layer, target.table, str(rid), version)
        done += int(n)
    return done


def _replay_version(table: DeltaTable, rid: str) -> int | None:
    for commit in table.history():
        raw = commit.get(META_PREFIX + REPLAY)
        if raw is not None and json.loads(raw).get("id") == rid:
            return int(commit["version"])
    return None


def _committed_batches(table: DeltaTable) -> set[str]:
    """Batch ids of the checked batches whose data commit is in the table's history."""
    from flowforge.quality.gate import ACCOUNTING

    found = set()
    for commit in table.history():
        raw = commit.get(META_PREFIX + ACCOUNTING)
        if raw is not None:
            found.add(str(json.loads(raw).get("batch_id")))
    return found

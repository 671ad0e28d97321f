"""Batch SCD2 (``strategy: scd2``) over 10,000 random change histories, against an oracle.

Each key gets a random history of rows (a tracked column ``tr``, an untracked ``un``, the time
of the change); the rows reach the table in batches, with duplicates, re-sent rows and rows
shuffled inside a batch. The oracle replays each key's distinct rows in time order in plain
Python. Three tables, one per way of feeding them:

* in order across batches (5,000 keys): the stored history equals the oracle's exactly;
* late rows, older than rows already applied (2,500 keys): versions stay gap-free, one current,
  and the current version holds the newest row;
* full snapshots with ``close_deleted`` (2,500 keys): keys that vanish are closed, and come back.

Every table is then fed its last batch again (and, but for late rows, all its batches again):
nothing changes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.layers.scd2_batch import INCOMING, LIVE, plan_for, register_target, scd2_changes, write_changes
from flowforge.spec.jobs import GoldTable, SilverTable
from flowforge.storage import LakehouseStore

T0 = dt.datetime(2024, 1, 1)
Row = tuple[int, str, int, int]  # key, tracked, untracked, hour of the change
Version = tuple[dt.datetime, dt.datetime | None, bool, str, int, dt.datetime]


def _spec(close_deleted: bool = False) -> SilverTable:
    return SilverTable(target="t", source="b", strategy="scd2", keys=["k"], track=["tr"],
                       close_deleted=close_deleted)


def _apply(store: LakehouseStore, table: str, rows: list[Row], *, live: list[int] | None = None,
           at_hour: int | None = None) -> None:
    """One batch through the real code path: DuckDB events, then one Delta merge."""
    engine = DuckDBEngine()
    target = store.open("silver", table)
    try:
        register_target(engine, target)
        engine.register_arrow("raw", pa.table({
            "k": pa.array([r[0] for r in rows], pa.int64()), "tr": pa.array([r[1] for r in rows], pa.string()),
            "un": pa.array([r[2] for r in rows], pa.int64()),
            "ts": pa.array([T0 + dt.timedelta(hours=r[3]) for r in rows], pa.timestamp("us"))}))
        engine.con.execute(f"CREATE TEMP TABLE {INCOMING} AS SELECT k, tr, un, ts AS __at, "
                           f"CAST(NULL AS TIMESTAMP) AS __first, row_number() OVER () AS __seq FROM raw")
        deleted_at = None
        if live is not None:
            engine.register_arrow(LIVE, pa.table({"k": pa.array(live, pa.int64())}))
            deleted_at = f"TIMESTAMP '{T0 + dt.timedelta(hours=at_hour or 0)}'"
        # snapshots are timed by the clock, like gold without changed_at; change rows carry their time
        plan = plan_for(engine, _spec(live is not None), clock=live is not None)
        changes = scd2_changes(engine, plan, target is not None, deleted_at)
        if target is None or not changes.empty:
            write_changes(store, "silver", table, target, plan, changes, {})
    finally:
        engine.close()


def _history(store: LakehouseStore, table: str) -> dict[int, list[Version]]:
    data = store.open("silver", table)
    assert data is not None
    out: dict[int, list[Version]] = defaultdict(list)
    for r in data.to_pyarrow_table().to_pylist():
        out[r["k"]].append((r["valid_from"], r["valid_to"], r["is_current"], r["tr"], r["un"], r["_changed_at"]))
    return {k: sorted(v) for k, v in out.items()}


def _oracle(events: dict[int, list[tuple[int, str, int] | tuple[int, None, None]]], *,
            clock: bool = False) -> dict[int, list[Version]]:
    """Replay each key's distinct events in time order: (hour, tr, un), or (hour, None, None) = deleted.

    A version's ``_changed_at`` is its newest row; with ``clock`` (times from the clock, so no row can
    arrive late) its newest row that changed something."""
    out: dict[int, list[Version]] = {}
    for key, evs in events.items():
        versions: list[list[Any]] = []
        open_: list[Any] | None = None
        for hour, tr, un in sorted(set(evs), key=lambda e: e[0]):
            at = T0 + dt.timedelta(hours=hour)
            if tr is None:
                if open_ is not None:
                    open_[1] = at
                    open_ = None
            elif open_ is None or open_[3] != tr:
                if open_ is not None:
                    open_[1] = at
                open_ = [at, None, True, tr, un, at]
                versions.append(open_)
            elif open_[4] != un or not clock:
                open_[4], open_[5] = un, at
        out[key] = [(v[0], v[1], v[1] is None, v[3], v[4], v[5]) for v in versions]
    return out


def _check_invariants(history: dict[int, list[Version]]) -> None:
    for key, versions in history.items():
        assert sum(v[2] for v in versions) <= 1, f"key {key} has two current rows"
        for a, b in itertools.pairwise(versions):
            assert a[1] is not None and a[1] <= b[0], f"key {key}: versions overlap"
            assert not a[2], f"key {key}: a version before another is current"
        for v in versions:
            assert v[2] == (v[1] is None), f"key {key}: is_current disagrees with valid_to"
            assert v[1] is None or v[0] < v[1], f"key {key}: empty or negative validity"


def _histories(rng: random.Random, keys: range, batches: int, *, late: bool) -> list[list[Row]]:
    out: list[list[Row]] = [[] for _ in range(batches)]
    for key in keys:
        hours = sorted(rng.sample(range(1, 400), rng.randint(1, 8)))
        rows = [(key, rng.choice("ABC"), rng.randint(0, 2), h) for h in hours]
        spots = [rng.randrange(batches) for _ in rows] if late else sorted(rng.randrange(batches) for _ in rows)
        for row, b in zip(rows, spots, strict=True):
            out[b].append(row)
            if rng.random() < 0.2:  # sent twice: in the same batch, or again in the next one
                out[min(batches - 1, b + rng.randint(0, 1))].append(row)
    for batch in out:
        rng.shuffle(batch)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LakehouseStore:
    return LakehouseStore(str(tmp_path_factory.mktemp("scd2") / "lake"))


def _replays_change_nothing(store: LakehouseStore, table: str, batches: list[list[Row]], *,
                            all_batches: bool = True) -> None:
    before = _history(store, table)
    _apply(store, table, batches[-1])
    assert _history(store, table) == before, "replaying the last batch changed the history"
    if all_batches:
        for batch in batches:
            _apply(store, table, batch)
        assert _history(store, table) == before, "replaying every batch changed the history"


def test_in_order_batches_give_exactly_the_replayed_history(store: LakehouseStore) -> None:
    rng = random.Random(2024)
    batches = _histories(rng, range(5_000), 4, late=False)
    for batch in batches:
        _apply(store, "in_order", batch)
    events: dict[int, list[Any]] = defaultdict(list)
    for batch in batches:
        for k, tr, un, h in batch:
            events[k].append((h, tr, un))
    history = _history(store, "in_order")
    assert len(history) == 5_000
    _check_invariants(history)
    assert history == _oracle(events)
    _replays_change_nothing(store, "in_order", batches)


def test_late_rows_keep_versions_without_gaps_or_overlaps(store: LakehouseStore) -> None:
    rng = random.Random(7)
    keys = range(10_000, 12_500)
    batches = _histories(rng, keys, 5, late=True)
    for batch in batches:
        _apply(store, "late", batch)
    history = _history(store, "late")
    assert set(history) == set(keys)
    _check_invariants(history)
    newest: dict[int, Row] = {}
    for batch in batches:
        for row in batch:
            if row[0] not in newest or row[3] > newest[row[0]][3]:
                newest[row[0]] = row
    for key, versions in history.items():
        assert versions[-1][2], f"key {key} has no current version"
        assert versions[-1][3] == newest[key][1], f"key {key}: the current version is not the newest row's"
        for a, b in itertools.pairwise(versions):
            assert a[1] == b[0], f"key {key}: a gap between versions"
            assert a[3] != b[3], f"key {key}: two consecutive versions with the same tracked value"
    # Re-feeding *older* batches after late rows may refine versions a late row split (the stored
    # history keeps a version's first and newest rows only); re-running the last batch changes nothing.
    _replays_change_nothing(store, "late", batches, all_batches=False)


def test_full_snapshots_close_vanished_keys_and_reopen_returning_ones(store: LakehouseStore) -> None:
    rng = random.Random(11)
    keys = range(20_000, 22_500)
    snapshots: list[tuple[int, list[Row]]] = []
    events: dict[int, list[Any]] = defaultdict(list)
    for n in range(5):
        hour = 10 * (n + 1)
        rows = [(k, rng.choice("AB"), rng.randint(0, 1), hour) for k in keys if rng.random() < 0.8]
        snapshots.append((hour, rows))
        present = {r[0] for r in rows}
        for k, tr, un, h in rows:
            events[k].append((h, tr, un))
        for k in keys:
            if k not in present and events[k]:
                events[k].append((hour, None, None))
    for hour, rows in snapshots:
        _apply(store, "snapshots", rows, live=[r[0] for r in rows], at_hour=hour)
    history = _history(store, "snapshots")
    _check_invariants(history)
    expected = {k: v for k, v in _oracle(events, clock=True).items() if v}
    assert history == expected
    assert any(a[1] != b[0] for v in history.values() for a, b in itertools.pairwise(v)), \
        "no key was deleted and came back: the test lost its point"
    hour, rows = snapshots[-1]
    _apply(store, "snapshots", rows, live=[r[0] for r in rows], at_hour=hour)
    assert _history(store, "snapshots") == history


def test_scd2_fields_are_refused_on_other_strategies_and_keys_are_required() -> None:
    with pytest.raises(ValueError, match="only for 'strategy: scd2'"):
        SilverTable(target="t", source="b", keys=["k"], track=["a"])
    with pytest.raises(ValueError, match="needs 'keys'"):
        SilverTable(target="t", source="b", strategy="scd2")
    with pytest.raises(ValueError, match="cannot also be tracked"):
        GoldTable(target="d", sql="SELECT 1 AS k", strategy="scd2", keys=["k"], track=["k"])
    with pytest.raises(ValueError, match="only for 'strategy: scd2'"):
        GoldTable(target="d", sql="SELECT 1 AS k", keys=["k"])


def test_a_workflow_keeps_versions_of_a_changing_source(tmp_path: Path) -> None:
    """Silver scd2 from an incremental SQLite ingest, and gold scd2 from SQL, through ``flowforge run``."""
    import sqlite3

    from tests.cli_helpers import init_project, invoke

    project = init_project(tmp_path / "p")
    db = project / "data" / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, segment TEXT, phone TEXT, created_at TIMESTAMP,"
                     " updated_at TIMESTAMP)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [
            (1, "New", "090", "2024-01-01 00:00:00", "2024-01-01 00:00:00"),
            (2, "VIP", "091", "2024-01-01 00:00:00", "2024-01-02 00:00:00")])
    (project / "flowforge.yml").write_text("lakehouse: lakehouse\nconnections:\n  shop: {type: sqlite, path: "
                                           "data/shop.db}\n", encoding="utf-8")
    (project / "workflows" / "example.yml").unlink()
    (project / "workflows" / "dims.yml").write_text("""
name: dims
jobs:
  - name: land
    kind: ingest
    connection: shop
    tables: [{table: customers, target: bronze_customers, incremental: updated_at}]
  - name: history
    kind: silver
    tables:
      - {target: silver_customer_history, source: bronze_customers, strategy: scd2, keys: [id], track: [segment],
         order_by: updated_at, surrogate_key: customer_sk}
  - name: dims
    kind: gold
    tables:
      - target: dim_customer
        strategy: scd2
        keys: [id]
        track: [segment]
        changed_at: updated_at
        first_valid_from: created_at
        sql: SELECT id, segment, phone, created_at, updated_at FROM silver_customer_history WHERE is_current
""", encoding="utf-8")
    code, out = invoke(project, "run", "dims")
    assert code == 0, out
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE customers SET segment = 'Regular', updated_at = '2024-03-01 00:00:00' WHERE id = 1")
        conn.execute("UPDATE customers SET phone = '099', updated_at = '2024-03-02 00:00:00' WHERE id = 2")
    code, out = invoke(project, "run", "dims")
    assert code == 0, out
    code, out = invoke(project, "run", "dims")  # nothing new: no new versions anywhere
    assert code == 0, out
    from deltalake import DeltaTable

    silver = DeltaTable(str(project / "lakehouse" / "silver" / "silver_customer_history")).to_pyarrow_table()
    rows = sorted(silver.select(["id", "segment", "phone", "is_current", "valid_from"]).to_pylist(),
                  key=lambda r: (r["id"], r["valid_from"]))
    assert [(r["id"], r["segment"], r["phone"], r["is_current"]) for r in rows] == [
        (1, "New", "090", False), (1, "Regular", "090", True), (2, "VIP", "099", True)]
    assert len(set(silver.column("customer_sk").to_pylist())) == 3
    gold = DeltaTable(str(project / "lakehouse" / "gold" / "dim_customer")).to_pyarrow_table().to_pylist()
    first = next(r for r in gold if r["id"] == 1 and not r["is_current"])
    assert first["valid_from"] == dt.datetime(2024, 1, 1)  # from created_at, not the first updated_at
    assert first["valid_to"] == dt.datetime(2024, 3, 1)
    assert sorted((r["id"], r["segment"], r["is_current"]) for r in gold) == [
        (1, "New", False), (1, "Regular", True), (2, "VIP", True)]

"""The file-pruned key merge against a full recompute, on random batches: updates, inserts, deletes,
keys repeated in a batch, keys that move, new columns; and the files it leaves stay key-clustered."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowforge.storage import delta_files, delta_merge
from flowforge.storage.delta import LakehouseStore

DEL = "__deleted"


@pytest.fixture(autouse=True)
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # many small files, so that pruning and runs are exercised on a few thousand rows
    monkeypatch.setattr(delta_files, "FILE_ROWS", 200)


def _rows(store: LakehouseStore, table: str) -> dict[Any, dict[str, Any]]:
    dt = store.open("silver", table)
    assert dt is not None
    rows = dt.to_pyarrow_table().to_pylist()
    by_key = {r["id"]: r for r in rows}
    assert len(by_key) == len(rows), "a key is stored twice"
    return by_key


def _ranges(store: LakehouseStore, table: str) -> list[tuple[Any, Any, int]]:
    dt = store.open("silver", table)
    assert dt is not None
    adds = pa.table(dt.get_add_actions(flatten=True))
    return sorted(zip(adds.column("min.id").to_pylist(), adds.column("max.id").to_pylist(),
                      adds.column("num_records").to_pylist(), strict=True))


def _overlaps(ranges: list[tuple[Any, Any, int]]) -> int:
    return sum(1 for a, b in itertools.pairwise(ranges) if b[0] <= a[1])


def _batch(rng: random.Random, known: list[Any], top: int, size: int, cols: list[str],
           deletes: bool, kind: Any = None) -> tuple[list[dict[str, Any]], int]:
    rows = []
    for _ in range(size):
        if known and rng.random() < 0.5:
            key = rng.choice(known)
        else:
            top += 1
            key = top if kind is None else kind(top)
        row: dict[str, Any] = {"id": key, "name": f"n{rng.randrange(1000)}", "amount": rng.randrange(100)}
        for c in cols:
            row[c] = rng.randrange(10)
        if deletes:
            row[DEL] = rng.random() < 0.2
        rows.append(row)
    if rows and rng.random() < 0.5:
        rows.append({**rows[0], "amount": -1})  # the same key twice in one batch: the last one wins
    return rows, top


def _key_kind(kind: str) -> Any:
    """Integer keys as the kind of key under test (in the same order)."""
    import datetime as dt

    if kind == "text":
        return lambda i: f"k{i:07d}"
    if kind == "date":
        return lambda i: dt.date(2000, 1, 1) + dt.timedelta(days=i)
    return lambda i: i


# every seed and way of running with integer keys; one seed of each other kind of key
CASES = [(kind, seed, runs, deletes) for kind in ("integer", "text", "date") for seed in (1, 2, 3)
         for runs in ("in memory", "sorted by DuckDB") for deletes in (False, True)
         if kind == "integer" or (seed == 1 and runs == "in memory")]


@pytest.mark.parametrize(("kind", "seed", "runs", "deletes"), CASES)
def test_merge_matches_a_full_recompute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, deletes: bool,
                                        runs: str, kind: str) -> None:
    # integer and date keys are looked up and merged in order by bisection, text keys by hashing and sorting
    if runs == "sorted by DuckDB":
        monkeypatch.setattr(delta_merge, "ARROW_RUN_ROWS", 0)
    make_key = _key_kind(kind)
    rng = random.Random(seed)
    store = LakehouseStore(str(tmp_path))
    first = [{"id": make_key(i), "name": f"n{i}", "amount": i % 7} for i in range(1, 2001)]
    rng.shuffle(first)  # a table written in no key order (before FlowForge clustered it)
    store.merge("silver", "t", pa.Table.from_pylist(first), ("id",), {"v": 0})
    expected: dict[Any, dict[str, Any]] = {r["id"]: dict(r) for r in first}
    cols: list[str] = []
    top = 2000
    for step in range(8):
        if step == 4:
            cols.append("extra")  # a new column arrives mid-way
        clustered = step % 2 == 0
        known = sorted(expected)[-300:] if clustered else list(expected)
        rows, top = _batch(rng, known, top, rng.randrange(1, 400), cols, deletes, make_key)
        batch = pa.Table.from_pylist(rows)
        commit = store.merge("silver", "t", batch, ("id",), {"v": step + 1},
                             delete_flag=DEL if deletes else None)
        last: dict[Any, dict[str, Any]] = {}
        for r in rows:
            last[r["id"]] = r
        inserted = updated = deleted = 0
        for key, r in last.items():
            if r.get(DEL):
                deleted += key in expected
                expected.pop(key, None)
                continue
            if key in expected:
                updated += 1
            else:
                inserted += 1
            expected[key] = {k: v for k, v in r.items() if k != DEL}
        got = _rows(store, "t")
        for row in expected.values():
            for c in cols:
                row.setdefault(c, None)
        assert got == expected
        assert (commit.rows_written, commit.rows_updated) == (inserted, updated)
        if deletes:
            assert commit.rows_deleted == deleted
        assert _overlaps(_ranges(store, "t")) == 0


def test_recent_keys_rewrite_only_the_newest_files(tmp_path: Path) -> None:
    store = LakehouseStore(str(tmp_path))
    # a first build sorted by key, as silver streams it in, comes out in key-clustered files
    store.merge("silver", "t", pa.table({"id": list(range(1, 2001)), "v": [0] * 2000}), ("id",), {})
    before = _ranges(store, "t")
    assert len(before) == 10 and _overlaps(before) == 0
    changed = pa.table({"id": list(range(1950, 2051)), "v": [2] * 101})  # recent ids and new ones
    store.merge("silver", "t", changed, ("id",), {})
    after = _ranges(store, "t")
    assert before[:-1] == after[:-1], "files far from the changed keys were rewritten"
    assert after[-1] == (before[-1][0], 2050, before[-1][2] + 50)
    assert _rows(store, "t")[2050]["v"] == 2


def test_composite_keys(tmp_path: Path) -> None:
    store = LakehouseStore(str(tmp_path))
    first = pa.table({"a": [i // 10 for i in range(1000)], "b": [f"x{i % 10}" for i in range(1000)], "v": [0] * 1000})
    store.merge("silver", "c", first, ("a", "b"), {})
    batch = pa.table({"a": [5, 5, 99, 200], "b": ["x1", "zz", "x9", "x0"], "v": [1, 2, 3, 4],
                      DEL: [False, False, True, False]})
    commit = store.merge("silver", "c", batch, ("a", "b"), {}, delete_flag=DEL)
    assert (commit.rows_written, commit.rows_updated, commit.rows_deleted) == (2, 1, 1)
    dt = store.open("silver", "c")
    assert dt is not None
    rows = {(r["a"], r["b"]): r["v"] for r in dt.to_pyarrow_table().to_pylist()}
    assert len(rows) == 1000 + 2 - 1
    assert rows[(5, "x1")] == 1 and rows[(5, "zz")] == 2 and rows[(200, "x0")] == 4 and (99, "x9") not in rows
    assert rows[(5, "x2")] == 0


def test_statistics_of_written_files_hold_every_value(tmp_path: Path) -> None:
    import datetime as dt
    import decimal
    import json

    store = LakehouseStore(str(tmp_path))
    ts = dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    data = pa.table({"id": [1, 2], "ts": pa.array([ts, ts + dt.timedelta(seconds=1)], pa.timestamp("us", tz="UTC")),
                     "f": [0.5, float("nan")], "d": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(10, 2)),
                     "s": ["a", "b" * 300]})
    store.merge("silver", "st", data, ("id",), {})
    log = (tmp_path / "silver" / "st" / "_delta_log" / f"{0:020d}.json").read_text().splitlines()
    stats = json.loads(next(json.loads(line)["add"]["stats"] for line in log if '"add"' in line))
    assert stats["minValues"]["ts"] == "2024-01-01T00:00:00.123Z"
    assert stats["maxValues"]["ts"] == "2024-01-01T00:00:01.124Z"  # rounded up: the range holds .123456
    assert "f" not in stats["minValues"] and "s" not in stats["maxValues"]  # NaN, and long text: no range
    assert stats["nullCount"]["d"] == 1 and stats["numRecords"] == 2
    dt_ = store.open("silver", "st")
    assert dt_ is not None and dt_.to_pyarrow_table().num_rows == 2


def test_string_keys_and_a_batch_that_touches_nothing(tmp_path: Path) -> None:
    store = LakehouseStore(str(tmp_path))
    keys = sorted(f"k{i:05d}" for i in range(500))
    store.merge("silver", "s", pa.table({"id": keys, "v": list(range(500))}), ("id",), {})
    store.merge("silver", "s", pa.table({"id": ["k00001", "zz"], "v": [-1, -2]}), ("id",), {"n": 1})
    rows = _rows(store, "s")
    assert rows["k00001"]["v"] == -1 and rows["zz"]["v"] == -2 and len(rows) == 501
    # deleting a key that is not there still commits the batch's progress
    dt = store.open("silver", "s")
    assert dt is not None
    version = dt.version()
    store.merge("silver", "s", pa.table({"id": ["nope"], "v": [0], DEL: [True]}), ("id",), {"n": 2},
                delete_flag=DEL)
    assert store.progress("silver", "s", "n") == (2, version + 1)
    assert len(_rows(store, "s")) == 501


def test_a_silver_job_builds_and_merges_key_clustered_files(tmp_path: Path) -> None:
    """Bronze rows in no key order: the first silver build streams them in sorted (files with
    disjoint key ranges), and the next run's merge keeps it so, rewriting only the newest file."""
    import yaml
    from deltalake import write_deltalake

    from flowforge.core.context import Context

    (tmp_path / "workflows").mkdir()
    (tmp_path / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", "connections": {}}))
    wf = {"name": "wf", "jobs": [{"name": "s", "kind": "silver", "tables": [
        {"target": "silver_t", "source": "bronze_t", "keys": ["id"]}]}]}
    (tmp_path / "workflows" / "wf.yml").write_text(yaml.safe_dump(wf, sort_keys=False))
    bronze = str(tmp_path / "lakehouse" / "bronze" / "bronze_t")

    def land(ids: list[int], v: int) -> None:
        n = len(ids)
        write_deltalake(bronze, pa.table({
            "id": ids, "v": [v] * n, "_batch_id": ["b"] * n,
            "_ingestion_time": pa.array([v * 1_000_000] * n, pa.timestamp("us", tz="UTC")),
            "_source_system": ["t"] * n, "_source_file": pa.array([None] * n, pa.string()),
            "_file_modified_time": pa.array([None] * n, pa.timestamp("us", tz="UTC"))}), mode="append")

    ids = list(range(1, 2001))
    random.Random(7).shuffle(ids)
    land(ids + ids[:100], 1)  # 100 keys twice in the load: dedup keeps one
    store = LakehouseStore(str(tmp_path / "lakehouse"))
    with Context.open(tmp_path) as ctx:
        assert ctx.run("wf").status == "success"
        first = _ranges(store, "silver_t")
        assert len(first) == 10 and _overlaps(first) == 0 and sum(r[2] for r in first) == 2000
        land([1990, 2001, 2002], 2)
        assert ctx.run("wf").status == "success"
    after = _ranges(store, "silver_t")
    assert after[:-1] == first[:-1] and _overlaps(after) == 0
    rows = _rows(store, "silver_t")
    assert len(rows) == 2002 and rows[1990]["v"] == 2 and rows[1]["v"] == 1


def test_tables_with_features_it_does_not_keep_are_merged_by_delta_rs(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    loc = str(tmp_path / "silver" / "cdf")
    write_deltalake(loc, pa.table({"id": [1, 2], "v": [0, 0]}), configuration={"delta.enableChangeDataFeed": "true"})
    store = LakehouseStore(str(tmp_path))
    dt = store.open("silver", "cdf")
    assert dt is not None and not delta_merge.applies(dt, ("id",))
    store.merge("silver", "cdf", pa.table({"id": [2, 3], "v": [1, 1]}), ("id",), {})
    assert _rows(store, "cdf") == {1: {"id": 1, "v": 0}, 2: {"id": 2, "v": 1}, 3: {"id": 3, "v": 1}}


def test_a_lakehouse_in_a_folder_whose_name_a_url_escapes(tmp_path: Path) -> None:
    # "/Users/Jane Doe/…": delta-rs gives the table's address as a URL (a space is %20 there);
    # the merge reads the table's files by their path on disk, not by that URL
    store = LakehouseStore(str(tmp_path / "Jane Doe" / "100% é"))
    store.merge("silver", "t", pa.table({"id": list(range(1, 501)), "v": [0] * 500}), ("id",), {})
    commit = store.merge("silver", "t", pa.table({"id": [7, 900], "v": [1, 1]}), ("id",), {})
    assert (commit.rows_written, commit.rows_updated) == (1, 1)
    rows = _rows(store, "t")
    assert len(rows) == 501 and rows[7]["v"] == 1 and rows[900]["v"] == 1 and rows[8]["v"] == 0

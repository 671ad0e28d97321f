"""SCD1 change batches applied by the file-pruned merge give the table delta-rs' merge gives, batch
after batch: updates, deletes (hard and soft), events older than the row (overlapping transactions
replayed out of order, the same event twice), TOAST placeholders, key changes (a delete of the old
key and a create of the new one), a column the batch no longer carries. A truncate still goes
through delta-rs."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from flowforge.layers import cdc_merge
from flowforge.layers.cdc_sql import Plan
from flowforge.spec.cdc import ApplyTable
from flowforge.storage import delta_files
from flowforge.storage.delta import LakehouseStore


@pytest.fixture(autouse=True)
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta_files, "FILE_ROWS", 150)


def _position(n: int) -> str:
    return f"{n:012d}"


def _batch(rng: random.Random, live: dict[int, int], clock: list[int], soft: bool, drop_notes: bool) -> pa.Table:
    """One event per key (as ``scd1_sql`` leaves them), positions mostly newer than the rows'."""
    rows: list[dict[str, Any]] = []
    used: set[int] = set()
    for _ in range(rng.randrange(1, 250)):
        clock[0] += 1
        roll = rng.random()
        key = rng.choice(list(live)) if live and roll < 0.7 else rng.randrange(1, 5000)
        if key in used:
            continue
        used.add(key)
        position = clock[0]
        if key in live and rng.random() < 0.15:
            position = live[key] - rng.randrange(0, 3)  # an older event, or the row's own one again
        delete = rng.random() < 0.2
        toast = not delete and rng.random() < 0.2
        row = {"id": key, "name": f"n{rng.randrange(100)}", "qty": rng.randrange(10),
               "_op": "d" if delete else "u", "_position": _position(position), "_source_ts": None,
               "__del": delete, "__t_notes": toast, "_silver_updated_at": None}
        if not drop_notes:
            row["notes"] = None if toast else f"x{rng.randrange(100)}"
        if soft:
            row["_is_deleted"] = delete
        rows.append(row)
        if delete and not soft:
            live.pop(key, None)
        elif position > live.get(key, -1):
            live[key] = position
    columns = ["id", "name", "qty", *([] if drop_notes else ["notes"]), "_op", "_position", "_source_ts",
               *(["_is_deleted"] if soft else []), "__del", "__t_notes", "_silver_updated_at"]
    types = {"id": pa.int64(), "name": pa.string(), "qty": pa.int32(), "notes": pa.string(), "_op": pa.string(),
             "_position": pa.string(), "_source_ts": pa.timestamp("us", tz="UTC"), "_is_deleted": pa.bool_(),
             "__del": pa.bool_(), "__t_notes": pa.bool_(), "_silver_updated_at": pa.timestamp("us", tz="UTC")}
    return pa.table({c: pa.array([r[c] for r in rows], types[c]) for c in columns})


def _apply(root: Path, soft: bool, by_files: bool, seed: int, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    if not by_files:
        monkeypatch.setattr(cdc_merge, "_scd1_by_files", lambda *a: None)
    store = LakehouseStore(str(root))
    ctx = SimpleNamespace(store=store)
    spec = ApplyTable(target="t", keys=("id",), soft_delete=soft)
    rng = random.Random(seed)
    live: dict[int, int] = {}
    clock = [0]
    first = {"id": list(range(1, 1001)), "name": ["a"] * 1000, "qty": list(range(1000)),
             "notes": [f"n{i}" for i in range(1000)], "_op": ["c"] * 1000, "_position": [_position(0)] * 1000}
    fields = [("id", pa.int64()), ("name", pa.string()), ("qty", pa.int32()), ("notes", pa.string()),
              ("_op", pa.string()), ("_position", pa.string())]
    if soft:
        first["_is_deleted"] = [False] * 1000
        fields.append(("_is_deleted", pa.bool_()))
    store.merge("silver", "t", pa.table(first).cast(pa.schema(fields)), ("id",), {})
    live.update(dict.fromkeys(range(1, 1001), 0))
    for step in range(8):
        batch = _batch(rng, live, clock, soft, drop_notes=step == 6)
        toasted = () if step == 6 else ("notes",)
        if step == 6:
            batch = batch.drop_columns(["__t_notes"])
        plan = Plan(keys=("id",), columns=tuple(c for c in ("id", "name", "qty", "notes") if c in batch.column_names),
                    types={}, toasted=toasted, truncate=None)
        silver = store.open("silver", "t")
        cdc_merge.write(ctx, spec, plan, silver, batch, {"step": step})  # type: ignore[arg-type]
    dt = store.open("silver", "t")
    assert dt is not None
    if by_files:
        assert dt.history(1)[0]["operation"] != "MERGE", "the batch was not applied by the file-pruned merge"
    rows = dt.to_pyarrow_table().to_pylist()
    for r in rows:
        r.pop("_silver_updated_at", None)
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("soft", [False, True])
def test_scd1_batches_by_files_equal_delta_rs_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
                                                    soft: bool) -> None:
    with monkeypatch.context() as m:
        expected = _apply(tmp_path / "delta_rs", soft, False, seed, m)
    got = _apply(tmp_path / "by_files", soft, True, seed, monkeypatch)
    assert len(got) == len(expected)
    assert got == expected


def test_a_truncate_goes_through_delta_rs(tmp_path: Path) -> None:
    store = LakehouseStore(str(tmp_path))
    store.merge("silver", "t", pa.table({"id": [1, 2], "_position": ["1", "2"]}), ("id",), {})
    silver = store.open("silver", "t")
    assert silver is not None
    plan = Plan(keys=("id",), columns=("id",), types={}, toasted=(), truncate=(0, "3", None))
    spec = ApplyTable(target="t", keys=("id",))
    batch = pa.table({"id": [5], "_position": ["4"], "__del": [False]})
    assert cdc_merge._scd1_by_files(spec, plan, silver, batch, None) is None

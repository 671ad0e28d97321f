"""The file-pruned key merge on each lakehouse backend (a local folder, and object storage through a real
S3-protocol server): random batches of updates, inserts and deletes give the table a full recompute
gives, only the files that can hold a batch's keys are rewritten, and an SCD1 change batch is
applied the same way."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from tests.lakes import Lake

from flowforge.storage import delta_files

DEL = "__deleted"


@pytest.fixture(autouse=True)
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta_files, "FILE_ROWS", 300)


def _rows(lake: Lake) -> dict[int, dict[str, Any]]:
    dt = lake.store().open("silver", "t")
    assert dt is not None
    rows = dt.to_pyarrow_table().to_pylist()
    by_key = {r["id"]: r for r in rows}
    assert len(by_key) == len(rows), "a key is stored twice"
    return by_key


def _files(lake: Lake) -> set[str]:
    dt = lake.store().open("silver", "t")
    assert dt is not None
    return set(dt.file_uris())


def test_merges_on_each_backend_match_a_full_recompute(lake: Lake) -> None:
    store = lake.store()
    rng = random.Random(7)
    # a first build sorted by key, as silver streams it in
    first = [{"id": i, "name": f"n{i}", "amount": i % 7} for i in range(1, 3001)]
    store.merge("silver", "t", pa.Table.from_pylist(first), ("id",), {"v": 0})
    expected = {r["id"]: dict(r) for r in first}
    top = 3000
    for step in range(5):
        rows = []
        for _ in range(rng.randrange(1, 300)):
            if rng.random() < 0.6:
                key = rng.choice(sorted(expected)) if step % 2 else rng.choice(sorted(expected)[-200:])
            else:
                top += 1
                key = top
            rows.append({"id": key, "name": f"s{step}", "amount": rng.randrange(100), DEL: rng.random() < 0.2})
        before = _files(lake)
        commit = store.merge("silver", "t", pa.Table.from_pylist(rows), ("id",), {"v": step + 1}, delete_flag=DEL)
        for r in rows:
            if r[DEL]:
                expected.pop(r["id"], None)
            else:
                expected[r["id"]] = {k: v for k, v in r.items() if k != DEL}
        assert _rows(lake) == expected
        dt = store.open("silver", "t")
        assert dt is not None
        assert dt.history(1)[0]["operation"] != "MERGE", "merged by delta-rs, not by files"
        assert commit.version == dt.version()
        if step % 2 == 0:  # recent keys: the older files stay as they were
            kept = before & _files(lake)
            assert len(kept) >= len(before) - 2


def test_an_scd1_change_batch_on_each_backend(lake: Lake) -> None:
    from types import SimpleNamespace

    from flowforge.layers import cdc_merge
    from flowforge.layers.cdc_sql import Plan
    from flowforge.spec.cdc import ApplyTable

    store = lake.store()
    base = pa.table({"id": pa.array(range(1, 1001), pa.int64()), "name": ["a"] * 1000,
                     "_op": ["c"] * 1000, "_position": ["0005"] * 1000})
    store.merge("silver", "t", base, ("id",), {})
    batch = pa.table({"id": pa.array([3, 4, 5, 2000], pa.int64()), "name": ["new", "gone", "old", "added"],
                      "_op": ["u", "d", "u", "c"], "_position": ["0009", "0009", "0001", "0009"],
                      "__del": [False, True, False, False]})
    plan = Plan(keys=("id",), columns=("id", "name"), types={}, toasted=(), truncate=None)
    silver = store.open("silver", "t")
    applied = cdc_merge.write(SimpleNamespace(store=store), ApplyTable(target="t", keys=("id",)),  # type: ignore[arg-type]
                              plan, silver, batch, {})
    assert (applied.inserted, applied.updated, applied.deleted) == (1, 1, 1)
    rows = _rows(lake)
    assert rows[3]["name"] == "new" and 4 not in rows and rows[2000]["name"] == "added"
    assert rows[5]["name"] == "a", "an event older than the row replaced it"
    dt = store.open("silver", "t")
    assert dt is not None and dt.history(1)[0]["operation"] != "MERGE"

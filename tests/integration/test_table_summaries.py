"""The catalog's table summaries are kept between requests, and never show a table as it was
before a commit once the commit is there (local tables), or for longer than REMOTE_TTL (object
storage)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.lakes import Lake

from flowforge.storage import summaries
from flowforge.storage.summaries import table_summaries, table_summary


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "name": ["x"] * n})


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables whose Delta log a summary had to read, in order."""
    seen: list[str] = []
    read = summaries._read

    def counting(store: Any, layer: str, table: str) -> Any:
        seen.append(table)
        return read(store, layer, table)

    monkeypatch.setattr(summaries, "_read", counting)
    monkeypatch.setattr(summaries, "_KEPT", type(summaries._KEPT)())
    monkeypatch.setattr(summaries, "_LISTINGS", {})
    return seen


def _age(store: Any, table: str, layer: str = "silver") -> None:
    """Make the table's log folder look untouched for a minute (as between a pipeline's runs)."""
    log = os.path.join(store.location(layer, table), "_delta_log")
    past = time.time() - 60
    os.utime(log, (past, past))


def test_every_table_is_listed_and_a_commit_shows_at_once(tmp_path: Path, reads: list[str]) -> None:
    from flowforge.storage.delta import LakehouseStore

    store = LakehouseStore(str(tmp_path / "lake"))
    for i in range(5):
        store.append("silver", f"t{i}", _rows(10), {})
        _age(store, f"t{i}")
    store.append("gold", "g", _rows(3), {})
    _age(store, "g", "gold")
    listed = {(layer, name): (s.rows, s.version) for layer, name, s in table_summaries(store)}
    assert listed == {**{("silver", f"t{i}"): (10, 0) for i in range(5)}, ("gold", "g"): (3, 0)}
    assert len(reads) == 6
    # nothing changed: the second listing reads no log
    assert [name for _, name, _ in table_summaries(store, "silver")] == [f"t{i}" for i in range(5)]
    assert len(reads) == 6
    # a commit to one table: that table is read again, and shows its new rows and version
    store.append("silver", "t2", _rows(5, 10), {})
    found = table_summary(store, "silver", "t2")
    assert found is not None and (found.rows, found.version) == (15, 1)
    assert reads[6:] == ["t2"]
    assert found.schema.names == ["id", "name"]


def test_a_summary_read_just_after_a_commit_is_not_kept(tmp_path: Path, reads: list[str]) -> None:
    # a second commit within the log folder's clock granularity would leave its mtime unchanged
    from flowforge.storage.delta import LakehouseStore

    store = LakehouseStore(str(tmp_path / "lake"))
    store.append("silver", "t", _rows(1), {})
    for _ in range(3):
        assert table_summary(store, "silver", "t") is not None
    assert reads == ["t", "t", "t"]
    _age(store, "t")
    for _ in range(3):
        assert table_summary(store, "silver", "t") is not None
    assert reads == ["t", "t", "t", "t"]


def test_unfinished_and_removed_tables_are_not_listed(tmp_path: Path, reads: list[str]) -> None:
    from flowforge.storage.delta import LakehouseStore

    store = LakehouseStore(str(tmp_path / "lake"))
    store.append("silver", "kept", _rows(2), {})
    store.append("silver", "gone", _rows(2), {})
    # what a first commit killed half-way leaves: data files and a log folder without a commit
    (tmp_path / "lake" / "silver" / "half" / "_delta_log").mkdir(parents=True)
    (tmp_path / "lake" / "silver" / "half" / "part-0.parquet").write_bytes(b"not yet")
    (tmp_path / "lake" / "silver" / "stray.txt").write_text("not a table")
    for name in ("kept", "gone", "half"):
        _age(store, name)
    assert [name for _, name, _ in table_summaries(store)] == ["gone", "kept"]
    shutil.rmtree(tmp_path / "lake" / "silver" / "gone")
    assert [name for _, name, _ in table_summaries(store)] == ["kept"]
    assert table_summary(store, "silver", "gone") is None


@pytest.mark.s3
def test_object_storage_summaries_are_kept_for_the_ttl(s3_server: Any, s3_bucket: str, reads: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake("s3", f"s3://{s3_bucket}/lake", f"s3://{s3_bucket}/landing", s3_server.options(), s3_server,
                s3_bucket)
    store = lake.store()
    store.append("silver", "t", _rows(4), {})
    now = [1000.0]
    monkeypatch.setattr(summaries, "_clock", lambda: now[0])
    first = table_summaries(store)
    assert [(name, s.rows) for _, name, s in first] == [("t", 4)]
    store.append("silver", "t", _rows(4, 4), {})
    store.append("silver", "u", _rows(1), {})
    now[0] += summaries.REMOTE_TTL - 1
    assert [(name, s.rows) for _, name, s in table_summaries(store)] == [("t", 4)]
    assert reads == ["t"]
    now[0] += 2
    assert [(name, s.rows, s.version) for _, name, s in table_summaries(store)] == [("t", 8, 1), ("u", 1, 0)]

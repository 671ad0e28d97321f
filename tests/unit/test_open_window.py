"""Open incremental windows (``ReadRequest.watermark_from_rows``): the connector reads ``col > lower``
with no ``max()`` query first, and the next watermark is the max of the rows read."""

from __future__ import annotations

import random
import sqlite3
import string
from pathlib import Path

import pytest
from sqlglot import exp
from tests.connector_suite import read_tracked

from flowforge.connectors import open_connector
from flowforge.connectors.base import NothingNew, ReadRequest
from flowforge.connectors.config import parse_connection
from flowforge.connectors.sql.common import literal, window_predicate


def test_literals_written_without_sqlglot_are_the_ones_it_writes() -> None:
    rng = random.Random(7)
    samples = ["2030-01-01T00:00:00.5+00:00", "2024-01-01 10:00:00", "-12.50", "", "o'k", "a\\b", "é", "x\ny"]
    samples += ["".join(rng.choice(string.printable) for _ in range(rng.randrange(12))) for _ in range(500)]
    for dialect in ("postgres", "mysql", "sqlite", "tsql", "duckdb"):
        for value in samples:
            assert literal(value, dialect) == exp.Literal.string(value).sql(dialect), (dialect, value)


def test_window_predicate_with_and_without_bounds() -> None:
    assert window_predicate("c", "1", "9") == "c > 1 AND c <= 9"
    assert window_predicate("c", "1", None) == "c > 1"
    assert window_predicate("c", None, "9") == "c <= 9"
    assert window_predicate("c", None, None) is None


def _read(connector, plan):  # type: ignore[no-untyped-def]
    rows, tracker = read_tracked(connector, plan)
    return sorted(rows.column("id").to_pylist()), tracker


def test_sqlite_reads_an_open_window_on_an_integer_column(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, seq INTEGER, at TIMESTAMP)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i * 10, f"2026-01-0{i} 10:00:00") for i in range(1, 6)])
    con.commit()
    connector = open_connector("src", parse_connection({"type": "sqlite", "path": str(db)}))
    state = {"column": "seq", "high": {"type": "int", "value": 20}}
    plan = connector.plan(ReadRequest(table="t", incremental_column="seq", watermark_from_rows=True), state)
    assert plan.bounds == (20, None) and plan.new_state == state
    ids, tracker = _read(connector, plan)
    assert ids == [3, 4, 5]
    assert tracker is not None and tracker.new_state() == {"column": "seq", "high": {"type": "int", "value": 50}}
    # nothing past the watermark: the read finds no row and nothing is to be committed
    done = connector.plan(ReadRequest(table="t", incremental_column="seq", watermark_from_rows=True),
                          tracker.new_state())
    ids, tracker = _read(connector, done)
    assert ids == [] and tracker is not None
    with pytest.raises(NothingNew):
        tracker.new_state()
    # text timestamps compare as stored, which a value read back need not match: max() as before
    plan = connector.plan(ReadRequest(table="t", incremental_column="at", watermark_from_rows=True), None)
    assert plan.watermark_column is None and plan.bounds == (None, "2026-01-05 10:00:00")
    con.close()


def test_a_lookback_never_moves_the_watermark_back(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, seq INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, 10), (2, 20), (3, 15)])
    con.commit()
    connector = open_connector("src", parse_connection({"type": "sqlite", "path": str(db)}))
    request = ReadRequest(table="t", incremental_column="seq", lookback=10, watermark_from_rows=True)
    state = {"column": "seq", "high": {"type": "int", "value": 20}}
    ids, tracker = _read(connector, connector.plan(request, state))
    assert ids == [2, 3]  # read again from 10: row 3 came late
    assert tracker is not None
    with pytest.raises(NothingNew):  # but none is past 20: no commit, the watermark stays
        tracker.new_state()
    con.execute("INSERT INTO t VALUES (4, 21)")
    con.commit()
    ids, tracker = _read(connector, connector.plan(request, state))
    assert ids == [2, 3, 4] and tracker is not None and tracker.new_state()["high"]["value"] == 21
    con.close()

"""A row committed late with an older cursor value is caught by a lookback window."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest
from flowforge.connectors.config import parse_connection
from flowforge.errors import SpecError
from flowforge.spec import parse_workflow


def _ids(connector, request: ReadRequest, state):  # type: ignore[no-untyped-def]
    plan = connector.plan(request, state)
    ids = sorted(i for part in connector.read(plan) for b in part.batches for i in b.column("id").to_pylist())
    return ids, plan.new_state


def test_lookback_rereads_late_rows_and_never_moves_the_watermark_back(tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, modified_date TIMESTAMP)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "2026-01-01 10:00:00"), (2, "2026-01-01 11:00:00")])
    con.commit()
    connector = open_connector("src", parse_connection({"type": "sqlite", "path": str(db)}))
    plain = ReadRequest(table="t", incremental_column="modified_date")
    looking = ReadRequest(table="t", incremental_column="modified_date", lookback=dt.timedelta(minutes=30))
    ids, state = _ids(connector, plain, None)
    assert ids == [1, 2]
    # a long transaction commits row 3 with a cursor value below the watermark, then row 4 arrives
    con.executemany("INSERT INTO t VALUES (?, ?)", [(3, "2026-01-01 10:45:00"), (4, "2026-01-01 12:00:00")])
    con.commit()
    assert _ids(connector, plain, state)[0] == [4], "without lookback the late row is missed"
    ids, new_state = _ids(connector, looking, state)
    assert ids == [2, 3, 4], "the 30-minute window below the watermark is read again"
    assert new_state == {"column": "modified_date", "high": {"type": "string", "value": "2026-01-01 12:00:00"}}
    # nothing new: the window is not re-read and the watermark stays put
    plan = connector.plan(looking, new_state)
    assert not plan.has_data and plan.new_state == new_state
    con.close()


@pytest.mark.parametrize(("value", "ok"), [("15m", True), ("2h", True), ("1d", True), (100, True), ("soon", False)])
def test_lookback_spec(value: object, ok: bool) -> None:
    text = ("name: w\njobs:\n  - name: j\n    kind: ingest\n    connection: c\n    tables:\n"
            f"      - {{table: t, target: b, incremental: {{column: m, lookback: {value}}}}}\n")
    if ok:
        wf = parse_workflow(text, "w.yml")
        assert wf.jobs[0].tables[0].incremental is not None
    else:
        with pytest.raises(SpecError, match="not a duration"):
            parse_workflow(text, "w.yml")

"""Issue 18's shared behaviours on the Debezium path (JSON change events from files, PostgreSQL-shaped
with the schema envelope): a key change as Debezium emits it (delete, tombstone, create), a column
added with a default declared in the Connect schema, a late file while bronze holds
unchanged-TOAST events (the SCD2 rebuild that used to fail for good), and an idle stream."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.cdc_project import SCD1, SCD2, WORKFLOW, CdcProject, current, scd2_problems

UNAVAILABLE = "__debezium_unavailable_value"


def _field(column: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"field": column, "type": kind, "optional": column != "id", **extra}


BASE = [_field("id", "int64"), _field("name", "string"), _field("notes", "string")]
RATE = _field("rate", "bytes", name="org.apache.kafka.connect.data.Decimal",
              parameters={"scale": "3", "connect.decimal.precision": "10"},
              default=base64.b64encode((1250).to_bytes(2, "big", signed=True)).decode())  # 1.250


def event(op: str, lsn: int, before: dict[str, Any] | None, after: dict[str, Any] | None,
          fields: list[dict[str, Any]] = BASE) -> str:
    row = {"type": "struct", "fields": fields, "optional": True, "name": "shop.public.t.Value"}
    schema = {"type": "struct", "name": "shop.public.t.Envelope", "fields": [
        {**row, "field": "before"}, {**row, "field": "after"},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"}]}
    source = {"connector": "postgresql", "db": "shop", "schema": "public", "table": "t", "lsn": lsn,
              "ts_ms": 1_700_000_000_000 + lsn, "snapshot": False}
    return json.dumps({"schema": schema, "payload": {"op": op, "before": before, "after": after, "source": source,
                                                     "ts_ms": 1_700_000_000_000 + lsn}})


def _project(tmp_path: Path) -> CdcProject:
    events = tmp_path / "events"
    events.mkdir()
    return CdcProject(tmp_path / "p", {"type": "debezium", "path": str(events)}, files="*.jsonl")


def _write(project: CdcProject, name: str, lines: list[str]) -> None:
    (project.root.parent / "events" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_key_change_as_delete_tombstone_create(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _write(project, "a.jsonl", [event("c", 100, None, {"id": 1, "name": "a", "notes": "x"}),
                                event("c", 110, None, {"id": 2, "name": "b", "notes": "y"})])
    project.run()
    tombstone = json.dumps({"topic": "shop.public.t", "key": {"id": 2}, "value": None})
    _write(project, "b.jsonl", [event("d", 120, {"id": 2, "name": "b", "notes": "y"}, None), tombstone,
                                event("c", 120, None, {"id": 20, "name": "b", "notes": "y"})])
    project.run()
    assert current(project.rows(SCD1), ["name", "notes"]) == {1: ("a", "x"), 20: ("b", "y")}
    history = project.rows(SCD2)
    assert scd2_problems(history) == []
    assert {(r["id"], r["is_current"], r["is_deleted"]) for r in history} == {
        (1, True, False), (2, False, True), (20, True, False)}


def test_added_column_default_from_the_connect_schema(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _write(project, "a.jsonl", [event("c", 100 + i, None, {"id": i, "name": f"n{i}", "notes": None})
                                for i in range(1, 4)])
    project.run()
    with_rate = [*BASE, RATE]
    _write(project, "b.jsonl", [event("u", 200, None, {"id": 2, "name": "changed", "notes": None,
                                                       "rate": base64.b64encode((9500).to_bytes(2, "big")).decode()},
                                      with_rate)])
    summary = project.run()
    assert "column rate was added in the source with a default" in project.logs(summary.run_id)
    assert {r["id"]: str(r["rate"]) for r in project.rows(SCD1)} == {1: "1.250", 2: "9.500", 3: "1.250"}
    assert {r["id"]: str(r["rate"]) for r in project.rows(SCD2) if r["is_current"]} == {
        1: "1.250", 2: "9.500", 3: "1.250"}


def test_late_file_while_bronze_holds_unchanged_toast(tmp_path: Path) -> None:
    project = _project(tmp_path)
    big = "t" * 5000
    _write(project, "a.jsonl", [event("c", 100, None, {"id": 1, "name": "a", "notes": big}),
                                event("c", 110, None, {"id": 2, "name": "b", "notes": "small"})])
    project.run()
    _write(project, "c.jsonl", [event("u", 300, None, {"id": 1, "name": "a2", "notes": UNAVAILABLE})])
    project.run()
    _write(project, "b.jsonl", [event("u", 200, None, {"id": 2, "name": "b2", "notes": "small"}),
                                event("u", 210, None, {"id": 1, "name": "a1", "notes": big + "!"})])  # arrives late
    project.run()
    project.run()  # and every run after it works
    assert current(project.rows(SCD1), ["name", "notes"]) == {1: ("a2", big + "!"), 2: ("b2", "small")}
    history = project.rows(SCD2)
    assert scd2_problems(history) == []
    assert sorted((r["id"], r["name"]) for r in history) == [(1, "a"), (1, "a1"), (1, "a2"), (2, "b"), (2, "b2")]
    assert [r["notes"] for r in sorted(history, key=lambda r: r["_position"]) if r["id"] == 1][-1] == big + "!"


def test_idle_stream_makes_no_runs(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _write(project, "a.jsonl", [event("c", 100, None, {"id": 1, "name": "a", "notes": None})])
    project.run()
    with project.context() as ctx:
        runs = len(ctx.runs(WORKFLOW, 100))
        assert ctx.follow(WORKFLOW, interval=0.05, idle_timeout=1.0) == 0
        assert len(ctx.runs(WORKFLOW, 100)) == runs


def test_many_files_commit_in_chunks_and_survive_a_kill(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    events = tmp_path / "events"
    events.mkdir()
    project = CdcProject(tmp_path / "p", {"type": "debezium", "path": str(events)}, files="*.jsonl", commit_every=3)
    for f in range(5):
        _write(project, f"f{f}.jsonl", [event("c", 100 * f + i, None, {"id": 10 * f + i, "name": "n", "notes": None})
                                        for i in range(3)])
    env = {**os.environ, "FLOWFORGE_FAULT": "cdc.bronze.committed:2", "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-m", "flowforge", "-p", str(project.root), "run", WORKFLOW], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    state = json.loads(project.dt("bronze", "bronze_items").history(1)[0]["flowforge.cdc_state"])
    assert sorted(state["files"]) == ["f0.jsonl", "f1.jsonl"], "each commit holds whole files and says which"
    project.run()
    ids = [r["_event_id"] for r in project.rows("bronze_items", "bronze")]
    assert len(ids) == len(set(ids)) == 15
    assert sorted(current(project.rows(SCD1), ["name"])) == sorted(10 * f + i for f in range(5) for i in range(3))

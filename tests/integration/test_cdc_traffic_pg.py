"""Issue 18 against a live PostgreSQL with ``wal_level=logical``: each item a user hit under real
traffic, reproduced through a cdc workflow (scd1 + scd2) and checked row by row against the source.

1. a late-committing transaction while bronze holds unchanged-TOAST events
2. a primary-key update (with an unchanged TOASTed column)
3. ``ALTER TABLE … ADD COLUMN … DEFAULT`` (and a volatile default, flagged until a reset)
4. idle streams: WAL of other databases creates no runs; the slot still advances
5. ``flowforge cdc reset`` after the slot was dropped
6. an interrupted run does not stay "running"
7. micro-batch tables are compacted under the maintenance policy
8. exact integer types, snapshot valid_from, versions within one transaction, TRUNCATE logged
9. a huge transaction in bounded chunks, killed between chunks
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cdc_project import BRONZE, JOB, SCD1, SCD2, WORKFLOW, CdcProject, current, scd2_problems

psycopg = pytest.importorskip("psycopg")


@dataclass
class Pg:
    url: str
    conn: Any
    schema: str
    slot: str

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql.replace("{s}", self.schema), params)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.execute(sql).fetchall())

    def connection(self, **extra: Any) -> dict[str, Any]:
        return {"type": "pg_logical", "url": self.url, "slot": self.slot, "tables": [f"{self.schema}.t"], **extra}

    def slot_lsn(self) -> str | None:
        row = self.conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                                (self.slot,)).fetchone()
        return None if row is None else str(row[0])


@pytest.fixture
def pg(logical_pg: str) -> Iterator[Pg]:
    conn = psycopg.connect(logical_pg, autocommit=True)
    tag = uuid.uuid4().hex[:10]
    db = Pg(logical_pg, conn, f"s_{tag}", f"ff_{tag}")
    conn.execute(f"CREATE SCHEMA {db.schema}")
    yield db
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s "
                 "AND NOT active", (db.slot,))
    conn.execute(f"DROP PUBLICATION IF EXISTS flowforge_{db.slot}")
    conn.execute(f"DROP SCHEMA {db.schema} CASCADE")
    conn.close()


def _source(pg: Pg, columns: str = "id, name, qty") -> dict[Any, tuple[Any, ...]]:
    return {r[0]: tuple(r[1:]) for r in pg.rows(f"SELECT {columns} FROM {{s}}.t ORDER BY id")}


def _same_as_source(project: CdcProject, pg: Pg, columns: list[str]) -> None:
    want = _source(pg, ", ".join(["id", *columns]))
    assert current(project.rows(SCD1), columns) == want, "scd1 silver equals the source"
    history = project.rows(SCD2)
    assert scd2_problems(history) == []
    assert current(history, columns) == want, "the current scd2 rows equal the source"


# -- 1 ---------------------------------------------------------------------------------------

def test_1_late_transaction_while_bronze_holds_unchanged_toast(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("ALTER TABLE {s}.t ALTER COLUMN name SET STORAGE EXTERNAL")  # stored out of line: TOASTed
    big = "n" * 300_000
    pg.execute("INSERT INTO {s}.t VALUES (1, %s, 1), (2, 'small', 1)", (big,))
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    pg.execute("UPDATE {s}.t SET qty = 2 WHERE id = 1")  # name unchanged: the event carries no value
    project.run()
    late = psycopg.connect(pg.url)  # session A: a transaction that begins now and commits last
    late.execute(f"INSERT INTO {pg.schema}.t VALUES (3, 'late', 1)")
    pg.execute("UPDATE {s}.t SET qty = 5 WHERE id = 2")  # session B
    project.run()
    late.commit()
    late.close()
    project.run()
    pg.execute("UPDATE {s}.t SET qty = 7 WHERE id = 1")
    project.run()  # every later run keeps working
    _same_as_source(project, pg, ["name", "qty"])
    versions = sorted((r["id"], r["qty"]) for r in project.rows(SCD2))
    assert versions == [(1, 1), (1, 2), (1, 7), (2, 1), (2, 5), (3, 1)]


# -- 2 ---------------------------------------------------------------------------------------

def test_2_primary_key_update_moves_the_row(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("ALTER TABLE {s}.t ALTER COLUMN name SET STORAGE EXTERNAL")
    big = "k" * 50_000
    pg.execute("INSERT INTO {s}.t SELECT g, %s || g, 1 FROM generate_series(900001, 900004) g", (big,))
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    pg.execute("UPDATE {s}.t SET id = 920001 WHERE id = 900002")  # name unchanged (TOASTed), key changed
    with psycopg.connect(pg.url) as tx:  # a chain of key changes, and a change of value, in one transaction
        tx.execute(f"UPDATE {pg.schema}.t SET id = 930001 WHERE id = 900003")
        tx.execute(f"UPDATE {pg.schema}.t SET id = 930002, qty = 9 WHERE id = 930001")
    project.run()
    _same_as_source(project, pg, ["name", "qty"])
    assert current(project.rows(SCD1), ["name"])[920001] == (big + "900002",), "the TOASTed value moved too"
    history = {(r["id"], r["is_current"], r["is_deleted"]) for r in project.rows(SCD2)}
    assert (900002, False, True) in history and (920001, True, False) in history
    assert (900003, False, True) in history and (930002, True, False) in history
    inside = [r for r in project.rows(SCD2) if r["id"] == 930001]
    assert inside == [], "no version of a key that lived only inside one transaction"


# -- 3 ---------------------------------------------------------------------------------------

def test_3_added_column_default_reaches_existing_rows(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("INSERT INTO {s}.t SELECT g, 'n' || g, g FROM generate_series(1, 6) g")
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    pg.execute("INSERT INTO {s}.t VALUES (7, 'before', 7)")  # in this batch, before the column exists
    pg.execute("ALTER TABLE {s}.t ADD COLUMN rate numeric(10,3) DEFAULT 1.25")
    pg.execute("UPDATE {s}.t SET qty = 20 WHERE id = 2")  # the first change that carries the column
    pg.execute("INSERT INTO {s}.t VALUES (8, 'explicit', 8, 9.5)")
    summary = project.run()
    assert "column rate was added in the source with a default" in project.logs(summary.run_id)
    want = {r[0]: str(r[1]) for r in pg.rows("SELECT id, rate::text FROM {s}.t")}
    assert {r["id"]: str(r["rate"]) for r in project.rows(SCD1)} == want == {
        **dict.fromkeys(range(1, 8), "1.250"), 8: "9.500"}
    assert {r["id"]: str(r["rate"]) for r in project.rows(SCD2) if r["is_current"]} == want

    # a volatile default wrote values nobody logged: flagged on every run until a new snapshot
    pg.execute("ALTER TABLE {s}.t ADD COLUMN noise float8 DEFAULT random()")
    pg.execute("UPDATE {s}.t SET qty = 30 WHERE id = 3")
    summary = project.run()
    warning = f"flowforge cdc reset {WORKFLOW} {JOB}"
    assert "WARNING items.noise" in project.logs(summary.run_id) and warning in project.logs(summary.run_id)
    pg.execute("UPDATE {s}.t SET qty = 31 WHERE id = 3")
    assert warning in project.logs(project.run().run_id), "still flagged on the next run"
    with project.context() as ctx:
        ctx.cdc.reset(WORKFLOW, JOB)
    summary = project.run()
    assert "WARNING" not in project.logs(summary.run_id)
    want_noise = {r[0]: r[1] for r in pg.rows("SELECT id, noise FROM {s}.t")}
    assert {r["id"]: r["noise"] for r in project.rows(SCD1)} == want_noise
    _same_as_source(project, pg, ["name", "qty", "rate", "noise"])


# -- 4 ---------------------------------------------------------------------------------------

def _runs(project: CdcProject) -> int:
    with project.context() as ctx:
        return len(ctx.runs(WORKFLOW, 1000))


def test_4_idle_stream_makes_no_runs_and_still_releases_wal(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("INSERT INTO {s}.t VALUES (1, 'a', 1)")
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    other = f"other_{uuid.uuid4().hex[:8]}"
    pg.conn.execute(f"CREATE DATABASE {other}")
    try:
        with psycopg.connect(pg.url.rsplit("/", 1)[0] + f"/{other}", autocommit=True) as o:
            o.execute("CREATE TABLE noise (id int)")
            for i in range(283):  # 283 commits into another database
                o.execute("INSERT INTO noise VALUES (%s)", (i,))
        runs, bronze, slot = _runs(project), project.dt("bronze", BRONZE).version(), pg.slot_lsn()
        events = project.dt("bronze", BRONZE).to_pyarrow_table().num_rows
        with project.context() as ctx:
            cycles = ctx.follow(WORKFLOW, interval=0.1, idle_timeout=2.0)
        assert cycles == 0 and _runs(project) == runs, "no run for WAL of other databases"
        assert project.dt("bronze", BRONZE).version() == bronze, "nothing committed"

        # past idle_advance_bytes of WAL, the position moves with a commit of no rows, outside any run
        settings = yaml.safe_load((project.root / "flowforge.yml").read_text())
        settings["connections"]["src"]["idle_advance_bytes"] = 0
        (project.root / "flowforge.yml").write_text(yaml.safe_dump(settings))
        silver_version = project.dt("silver", SCD1).version()
        with project.context() as ctx:
            assert ctx.follow(WORKFLOW, interval=0.1, idle_timeout=1.0) == 0
        assert _runs(project) == runs
        assert pg.slot_lsn() is not None and slot is not None and pg.slot_lsn() != slot, "the slot advanced"
        advance = project.dt("bronze", BRONZE).history(1)[0]
        assert json.loads(advance["flowforge.cdc_advance"]) is True
        assert project.dt("bronze", BRONZE).to_pyarrow_table().num_rows == events, "the advance holds no rows"
        assert project.dt("silver", SCD1).version() == silver_version, "silver does not react to it"

        pg.execute("INSERT INTO {s}.t VALUES (2, 'b', 2)")  # a real change still starts a micro-batch
        with project.context() as ctx:
            assert ctx.follow(WORKFLOW, interval=0.1, max_cycles=1, idle_timeout=30) == 1
        _same_as_source(project, pg, ["name", "qty"])
    finally:
        pg.conn.execute(f"DROP DATABASE IF EXISTS {other}")


# -- 5 ---------------------------------------------------------------------------------------

def test_5_reset_after_the_slot_was_dropped(pg: Pg, tmp_path: Path) -> None:
    from tests.cli_helpers import invoke

    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("INSERT INTO {s}.t SELECT g, 'n' || g, g FROM generate_series(1, 10) g")
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    pg.execute("UPDATE {s}.t SET qty = 100 WHERE id = 1")
    project.run()
    pg.conn.execute("SELECT pg_drop_replication_slot(%s)", (pg.slot,))
    pg.execute("DELETE FROM {s}.t WHERE id IN (2, 3)")  # lost with the slot: only a new snapshot shows them
    pg.execute("UPDATE {s}.t SET name = 'changed' WHERE id = 4")
    pg.execute("INSERT INTO {s}.t VALUES (11, 'new', 11)")
    failed = project.run(ok=False)
    assert failed.status == "failed"
    error = failed.failed[0].error or ""
    assert "is gone" in error and f"flowforge cdc reset {WORKFLOW} {JOB}" in error

    code, out = invoke(project.root, "cdc", "reset", WORKFLOW, JOB)
    assert code == 0 and "The next run takes a new snapshot" in out, out
    project.run()
    _same_as_source(project, pg, ["name", "qty"])
    history = project.rows(SCD2)
    assert {r["id"] for r in history if r["is_deleted"]} == {2, 3}
    assert sorted(r["id"] for r in history if r["id"] in (5, 6)) == [5, 6], "unchanged rows get no new version"
    assert len([r for r in history if r["id"] == 4]) == 2
    with project.context() as ctx:
        audit = ctx.audit_log(action="cdc.reset")
    assert audit and audit[0].object_id == f"{WORKFLOW}.{JOB}"
    pg.execute("UPDATE {s}.t SET qty = 5 WHERE id = 5")  # and the new slot streams on
    project.run()
    _same_as_source(project, pg, ["name", "qty"])


def test_5_reset_route_needs_an_editor_and_is_audited(pg: Pg, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from flowforge.api import create_app

    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("INSERT INTO {s}.t VALUES (1, 'a', 1)")
    project = CdcProject(tmp_path / "p", pg.connection())
    project.run()
    ctx = project.context()
    tokens = {}
    for role in ("viewer", "editor"):
        ctx.users.create_user(role, f"{role}-Pass-00{len(role)}", role)  # type: ignore[arg-type]
        tokens[role] = ctx.users.create_token(role, "t")
    url = f"/api/v1/workflows/{WORKFLOW}/jobs/{JOB}/cdc/reset"
    with TestClient(create_app(ctx.settings, ctx)) as client:
        denied = client.post(url, headers={"Authorization": f"Bearer {tokens['viewer']}"})
        assert denied.status_code == 403
        assert pg.slot_lsn() is not None, "a viewer changed nothing"
        done = client.post(url, headers={"Authorization": f"Bearer {tokens['editor']}"})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["job"] == JOB and body["previous"]["lsn"] and "dropped" in body["source"]
        missing = client.post(f"/api/v1/workflows/{WORKFLOW}/jobs/nope/cdc/reset",
                              headers={"Authorization": f"Bearer {tokens['editor']}"})
        assert missing.status_code == 404
    assert pg.slot_lsn() is None, "the slot was dropped at once"
    assert [a.actor for a in ctx.audit_log(action="cdc.reset")] == ["editor"]
    ctx.close()
    pg.execute("DELETE FROM {s}.t WHERE id = 1")
    pg.execute("INSERT INTO {s}.t VALUES (2, 'b', 2)")
    project.run()
    _same_as_source(project, pg, ["name", "qty"])


# -- 6 ---------------------------------------------------------------------------------------

def test_6_an_interrupted_cdc_run_is_recorded_as_failed(pg: Pg, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import flowforge.layers.cdc as cdc

    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    project = CdcProject(tmp_path / "p", pg.connection())

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # a second Ctrl-C in the middle of the micro-batch

    monkeypatch.setattr(cdc, "land_events", interrupted)
    with project.context() as ctx:
        assert ctx.follow(WORKFLOW, interval=0.1, max_cycles=1) == 0  # the loop ends, as Ctrl-C asks
    with project.context() as ctx:
        run = ctx.runs(WORKFLOW, 1)[0]
        assert (run.trigger, run.status, run.error) == ("follow", "failed", "interrupted (KeyboardInterrupt)")
        assert [(j.job_name, j.status) for j in ctx.run_detail(run.id).job_runs] == [(JOB, "failed")]


# -- 7 ---------------------------------------------------------------------------------------

def test_7_micro_batches_are_compacted_and_stay_equal_to_the_source(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    pg.execute("INSERT INTO {s}.t SELECT g, 'n' || g, g FROM generate_series(1, 50) g")
    project = CdcProject(tmp_path / "p", pg.connection(),
                         settings={"maintenance": {"optimize_every": 4, "max_small_files": 3,
                                                   "vacuum_retention": "1h"}})
    project.run()
    for batch in range(12):  # what --follow does: a small micro-batch after another
        pg.execute(f"UPDATE {{s}}.t SET qty = qty + 1 WHERE id % 12 = {batch}")
        pg.execute("INSERT INTO {s}.t VALUES (%s, 'new', 0)", (100 + batch,))
        project.run()
    assert "OPTIMIZE" in [h["operation"] for h in project.dt("bronze", BRONZE).history()]
    for layer, table in (("bronze", BRONZE), ("silver", SCD1), ("silver", SCD2)):
        assert len(project.dt(layer, table).file_uris()) <= 4, f"{table} stays a few files"
    _same_as_source(project, pg, ["name", "qty"])
    events = [r["_event_id"] for r in project.rows(BRONZE, "bronze")]
    assert len(events) == len(set(events)), "compaction neither duplicated nor lost an event"
    with project.context() as ctx:
        assert all(d.action == "vacuum" for d in ctx.maintenance.vacuum(retention="1h"))
        assert any(a.action == "table.optimize" for a in ctx.audit_log(500, object_type="table"))


# -- 8 ---------------------------------------------------------------------------------------

def test_8_types_snapshot_time_one_version_per_transaction_and_truncate(pg: Pg, tmp_path: Path) -> None:
    import pyarrow as pa

    pg.execute("CREATE TABLE {s}.t (id int PRIMARY KEY, name text, qty int, small int2, big int8, ratio float4)")
    pg.execute("INSERT INTO {s}.t SELECT g, 'n' || g, g, 1, 2, 0.5 FROM generate_series(1, 5) g")
    project = CdcProject(tmp_path / "p", pg.connection())
    snap_time = pg.rows("SELECT now()")[0][0]
    project.run()
    types = {f.name: f.type for f in pa.schema(project.dt("silver", SCD1).schema().to_arrow())}
    assert (types["id"], types["qty"], types["small"], types["big"], types["ratio"]) == (
        pa.int32(), pa.int32(), pa.int16(), pa.int64(), pa.float32())
    # the batch path reads the same table with the same types
    settings = yaml.safe_load((project.root / "flowforge.yml").read_text())
    settings["connections"]["batch"] = {"type": "postgres", "url": pg.url}
    (project.root / "flowforge.yml").write_text(yaml.safe_dump(settings))
    with project.context() as ctx:
        assert ctx.ingest("batch", table=f"{pg.schema}.t", target="bronze_batch").status == "success"
    batch = {f.name: f.type for f in pa.schema(project.dt("bronze", "bronze_batch").schema().to_arrow())}
    assert {c: batch[c] for c in ("id", "qty", "small", "big", "ratio")} == {
        c: types[c] for c in ("id", "qty", "small", "big", "ratio")}
    history = project.rows(SCD2)
    assert all(r["valid_from"] is not None and abs((r["valid_from"] - snap_time).total_seconds()) < 60
               for r in history), "snapshot rows start at the snapshot's time"

    with psycopg.connect(pg.url) as tx:  # 1,000 updates of one row in one transaction
        for i in range(1000):
            tx.execute(f"UPDATE {pg.schema}.t SET qty = %s WHERE id = 1", (1000 + i,))
    project.run()
    assert sorted(r["qty"] for r in project.rows(SCD2) if r["id"] == 1) == [1, 1999], "one version per transaction"
    assert scd2_problems(project.rows(SCD2)) == []

    pg.execute("TRUNCATE {s}.t")
    pg.execute("INSERT INTO {s}.t VALUES (9, 'after', 9, 1, 2, 0.5)")
    summary = project.run()
    log = project.logs(summary.run_id)
    assert "TRUNCATE" in log and "5 deleted" in log and " 0 updated" in log, log
    _same_as_source(project, pg, ["name", "qty"])


# -- 9 ---------------------------------------------------------------------------------------

def test_9_a_huge_transaction_lands_in_bounded_chunks_and_survives_a_kill(pg: Pg, tmp_path: Path) -> None:
    pg.execute("CREATE TABLE {s}.t (id bigint PRIMARY KEY, name text, qty int)")
    project = CdcProject(tmp_path / "p", pg.connection(), commit_every=4000, batch_size=1000)
    project.run()
    pg.execute("INSERT INTO {s}.t SELECT g, repeat('x', 200) || g, g FROM generate_series(1, 20000) g")  # one txn
    before = project.dt("bronze", BRONZE).version()
    env = {**os.environ, "FLOWFORGE_FAULT": "cdc.bronze.committed:3", "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-m", "flowforge", "-p", str(project.root), "run", WORKFLOW], env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    bronze = project.dt("bronze", BRONZE)
    assert bronze.version() == before + 3 and 0 < bronze.to_pyarrow_table().num_rows < 20000, \
        "three chunks of the open transaction committed before the kill"
    state = json.loads(bronze.history(1)[0]["flowforge.cdc_state"])
    assert "skip" in state, "the position points inside the transaction"
    project.run()
    events = project.dt("bronze", BRONZE).to_pyarrow_table(columns=["_event_id", "_op"]).to_pylist()
    ids = [e["_event_id"] for e in events if e["_op"] == "c"]
    assert len(ids) == len(set(ids)) == 20000, "every insert landed exactly once"
    chunks = [h for h in project.dt("bronze", BRONZE).history() if h["version"] > before]
    assert len(chunks) >= 5, "the transaction was committed in bounded chunks"
    _same_as_source(project, pg, ["name", "qty"])

"""Issue 18's shared behaviours on the MariaDB binlog path (a throw-away server with a row binlog):
key changes, columns added with a default, idle streams, a reset, a huge transaction in chunks,
and one version per transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cdc_project import BRONZE, JOB, SCD1, SCD2, WORKFLOW, CdcProject, current, scd2_problems

pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed")
pytest.importorskip("pymysqlreplication", reason="mysql-replication is not installed (pip install 'flowforge[cdc]')")


@dataclass
class My:
    port: int
    conn: Any
    db: str

    def execute(self, sql: str, params: Any = None) -> Any:
        cur = self.conn.cursor()
        cur.execute(sql.replace("{d}", self.db), params)
        return cur

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.execute(sql).fetchall())

    def connection(self, **extra: Any) -> dict[str, Any]:
        return {"type": "mysql_binlog", "host": "127.0.0.1", "port": self.port, "user": "root",
                "tables": [f"{self.db}.t"], "server_id": 65000 + int(uuid.uuid4().int % 900), **extra}


@pytest.fixture
def my(binlog_server: int) -> Iterator[My]:
    conn = pymysql.connect(host="127.0.0.1", port=binlog_server, user="root", autocommit=True)
    db = My(binlog_server, conn, f"d_{uuid.uuid4().hex[:10]}")
    db.execute("CREATE DATABASE {d}")
    yield db
    db.execute("DROP DATABASE {d}")
    conn.close()


def _same_as_source(project: CdcProject, my: My, columns: list[str]) -> None:
    want = {r[0]: tuple(r[1:]) for r in my.rows(f"SELECT id, {', '.join(columns)} FROM {{d}}.t")}
    assert current(project.rows(SCD1), columns) == want
    history = project.rows(SCD2)
    assert scd2_problems(history) == []
    assert current(history, columns) == want


def test_key_change_moves_the_row(my: My, tmp_path: Path) -> None:
    my.execute("CREATE TABLE {d}.t (id bigint PRIMARY KEY, name longtext, qty int)")
    my.execute("INSERT INTO {d}.t VALUES (900001, 'a', 1), (900002, %s, 1)", ("big" * 20_000,))
    project = CdcProject(tmp_path / "p", my.connection())
    project.run()
    my.execute("UPDATE {d}.t SET id = 920001 WHERE id = 900002")
    project.run()
    _same_as_source(project, my, ["name", "qty"])
    assert {(r["id"], r["is_current"], r["is_deleted"]) for r in project.rows(SCD2)} >= {
        (900002, False, True), (920001, True, False)}


def test_added_column_default_reaches_existing_rows(my: My, tmp_path: Path) -> None:
    my.execute("CREATE TABLE {d}.t (id bigint PRIMARY KEY, name varchar(20), qty int)")
    my.execute("INSERT INTO {d}.t VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    project = CdcProject(tmp_path / "p", my.connection())
    project.run()
    my.execute("ALTER TABLE {d}.t ADD COLUMN rate decimal(10,3) DEFAULT 1.25, ADD COLUMN label varchar(10) "
               "NOT NULL DEFAULT 'it''s', ADD COLUMN n int NOT NULL")
    my.execute("UPDATE {d}.t SET qty = 20 WHERE id = 2")
    summary = project.run()
    assert "column rate was added in the source with a default" in project.logs(summary.run_id)
    want = {r[0]: (str(r[1]), r[2], r[3]) for r in my.rows("SELECT id, rate, label, n FROM {d}.t")}
    assert want[1] == ("1.250", "it's", 0)
    assert {r["id"]: (str(r["rate"]), r["label"], r["n"]) for r in project.rows(SCD1)} == want
    _same_as_source(project, my, ["name", "qty"])


def test_idle_binlog_makes_no_runs(my: My, tmp_path: Path) -> None:
    my.execute("CREATE TABLE {d}.t (id bigint PRIMARY KEY, name varchar(20), qty int)")
    my.execute("INSERT INTO {d}.t VALUES (1, 'a', 1)")
    project = CdcProject(tmp_path / "p", my.connection())
    project.run()
    other = f"o_{uuid.uuid4().hex[:8]}"
    my.execute(f"CREATE DATABASE {other}")
    try:
        my.execute(f"CREATE TABLE {other}.noise (id int)")
        for i in range(200):
            my.execute(f"INSERT INTO {other}.noise VALUES (%s)", (i,))
        with project.context() as ctx:
            runs = len(ctx.runs(WORKFLOW, 100))
            bronze = project.dt("bronze", BRONZE).version()
            assert ctx.follow(WORKFLOW, interval=0.1, idle_timeout=1.5) == 0
            assert len(ctx.runs(WORKFLOW, 100)) == runs, "no run for binlog of other databases"
        assert project.dt("bronze", BRONZE).version() == bronze
        settings = yaml.safe_load((project.root / "flowforge.yml").read_text())
        settings["connections"]["src"]["idle_advance_bytes"] = 0
        (project.root / "flowforge.yml").write_text(yaml.safe_dump(settings))
        with project.context() as ctx:
            assert ctx.follow(WORKFLOW, interval=0.1, idle_timeout=1.0) == 0
            assert len(ctx.runs(WORKFLOW, 100)) == runs
        state = json.loads(project.dt("bronze", BRONZE).history(1)[0]["flowforge.cdc_state"])
        assert state["pos"] > 0 and project.dt("bronze", BRONZE).history(1)[0].get("flowforge.cdc_advance")
        my.execute("INSERT INTO {d}.t VALUES (2, 'b', 2)")
        with project.context() as ctx:
            assert ctx.follow(WORKFLOW, interval=0.1, max_cycles=1, idle_timeout=30) == 1
        _same_as_source(project, my, ["name", "qty"])
    finally:
        my.execute(f"DROP DATABASE {other}")


def test_huge_transaction_in_chunks_killed_between_them_and_one_version(my: My, tmp_path: Path) -> None:
    my.execute("CREATE TABLE {d}.t (id bigint PRIMARY KEY, name varchar(300), qty int)")
    project = CdcProject(tmp_path / "p", my.connection(), commit_every=3000, batch_size=1000)
    project.run()
    my.execute("USE {d}")
    my.execute("BEGIN")
    my.execute("INSERT INTO {d}.t SELECT seq, concat(repeat('x', 200), seq), seq FROM seq_1_to_12000")
    for i in range(50):
        my.execute("UPDATE {d}.t SET qty = %s WHERE id = 1", (100 + i,))  # 50 versions in one transaction
    my.execute("COMMIT")
    env = {**os.environ, "FLOWFORGE_FAULT": "cdc.bronze.committed:2", "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-m", "flowforge", "-p", str(project.root), "run", WORKFLOW], env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    state = json.loads(project.dt("bronze", BRONZE).history(1)[0]["flowforge.cdc_state"])
    assert "skip" in state, "the position points inside the transaction"
    project.run()
    events = project.dt("bronze", BRONZE).to_pyarrow_table(columns=["_event_id", "_op"]).to_pylist()
    ids = [e["_event_id"] for e in events if e["_op"] in ("c", "u")]
    assert len(ids) == len(set(ids)) == 12050, "every change landed exactly once"
    _same_as_source(project, my, ["name", "qty"])
    assert [r["qty"] for r in project.rows(SCD2) if r["id"] == 1] == [149], "one version per transaction"


def test_reset_after_a_purged_binlog(my: My, tmp_path: Path) -> None:
    my.execute("CREATE TABLE {d}.t (id bigint PRIMARY KEY, name varchar(20), qty int)")
    my.execute("INSERT INTO {d}.t VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    project = CdcProject(tmp_path / "p", my.connection())
    project.run()
    my.execute("DELETE FROM {d}.t WHERE id = 2")
    stored = json.loads(project.dt("bronze", BRONZE).history(1)[0]["flowforge.cdc_state"])["file"]
    deadline = time.monotonic() + 30
    while stored in [r[0] for r in my.rows("SHOW BINARY LOGS")]:  # the unread delete goes with its file
        assert time.monotonic() < deadline, "the test server kept its binlog"
        my.execute("FLUSH BINARY LOGS")  # (InnoDB releases a binlog file once its checkpoint passed)
        my.execute(f"PURGE BINARY LOGS TO '{my.rows('SHOW MASTER STATUS')[0][0]}'")
        time.sleep(0.2)
    failed = project.run(ok=False)
    assert f"flowforge cdc reset {WORKFLOW} {JOB}" in (failed.failed[0].error or "")
    with project.context() as ctx:
        assert "next run takes a new snapshot" in ctx.cdc.reset(WORKFLOW, JOB).message
    project.run()
    _same_as_source(project, my, ["name", "qty"])
    assert {r["id"] for r in project.rows(SCD2) if r["is_deleted"]} == {2}

"""Randomized differential test of CDC against live sources, with ``--follow`` killed at random.

A seeded writer issues a fixed number of random operations on a source table: inserts, updates,
deletes, primary-key updates, large values (TOASTed in PostgreSQL), updates that leave them
unchanged, long transactions that stay open across others, two of them overlapping, and an
occasional TRUNCATE. Meanwhile ``flowforge run --follow`` runs as a subprocess and gets SIGKILLed
at random moments, then restarted. At the end the SCD1 silver table must equal the source, row
by row, and the SCD2 table must be consistent: one current row per live key, equal to the
source, no gaps and no overlaps between versions.

``FLOWFORGE_DIFF_OPS`` (default 1500) and ``FLOWFORGE_DIFF_SEED`` (default 18) change the run;
the figures (operations, kills, mismatches) are printed and written to
``$FLOWFORGE_DIFF_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.cdc_project import SCD1, SCD2, WORKFLOW, CdcProject, current, scd2_problems

OPS = int(os.environ.get("FLOWFORGE_DIFF_OPS", "1500"))
SEED = int(os.environ.get("FLOWFORGE_DIFF_SEED", "18"))
COLUMNS = ["name", "qty", "notes"]


class Follower:
    """``flowforge run <workflow> --follow`` in a subprocess, SIGKILLed and restarted on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def micro_batches(self) -> int:
        """Micro-batches started so far, by every follower of this test (their output log)."""
        path = self.root / "follow.log"
        return path.read_bytes().count(b" START cdc ") if path.exists() else 0

    def start(self) -> None:
        self.started_at = self.micro_batches()
        self.log = open(self.root / "follow.log", "ab")  # noqa: SIM115 - one per process, closed on kill
        self.proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(self.root), "run", WORKFLOW,
                                      "--follow", "--interval", "0.2"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()


class Writer:
    """Random operations through ``run(sql, params, conn)``; keys are checked out by the open long
    transactions, so two transactions never wait on each other's rows."""

    def __init__(self, rng: random.Random, execute: Callable[[Any, str, tuple[Any, ...]], None],
                 connect: Callable[[], Any], commit: Callable[[Any], None], big: Callable[[int], str]) -> None:
        self.rng, self.execute, self.connect, self.commit, self.big = rng, execute, connect, commit, big
        self.keys: set[int] = set()
        self.next_id = 1
        self.open: list[tuple[Any, set[int], int]] = []  # (connection, its keys, ops left before commit)
        self.counts: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _fresh(self) -> int:
        self.next_id += 1
        return self.next_id

    def _row_op(self, conn: Any, pool: set[int]) -> None:
        r = self.rng.random()
        if r < 0.3 or not pool:
            key = self._fresh()
            notes = self.big(self.rng.randint(3000, 20000)) if self.rng.random() < 0.3 else f"n{key}"
            self.execute(conn, "INSERT INTO t (id, name, qty, notes) VALUES (%s, %s, %s, %s)",
                         (key, f"name{key}", self.rng.randint(0, 999), notes))
            pool.add(key)
            self._count("insert")
        elif r < 0.6:
            key = self.rng.choice(sorted(pool))
            self.execute(conn, "UPDATE t SET qty = %s, name = %s WHERE id = %s",  # large notes left unchanged
                         (self.rng.randint(0, 999), f"u{self.rng.randint(0, 99)}", key))
            self._count("update")
        elif r < 0.68:
            key = self.rng.choice(sorted(pool))
            self.execute(conn, "UPDATE t SET notes = %s WHERE id = %s", (self.big(self.rng.randint(3000, 20000)), key))
            self._count("update large value")
        elif r < 0.82:
            key = self.rng.choice(sorted(pool))
            self.execute(conn, "DELETE FROM t WHERE id = %s", (key,))
            pool.discard(key)
            self._count("delete")
        else:
            key, new = self.rng.choice(sorted(pool)), self._fresh()
            self.execute(conn, "UPDATE t SET id = %s WHERE id = %s", (new, key))
            pool.discard(key)
            pool.add(new)
            self._count("key update")

    def step(self, main: Any) -> None:
        r = self.rng.random()
        if r < 0.03 and len(self.open) < 2:  # a long transaction (two may overlap)
            conn = self.connect()
            mine = set(self.rng.sample(sorted(self.keys), min(len(self.keys), self.rng.randint(0, 4))))
            self.keys -= mine
            self.open.append((conn, mine, self.rng.randint(5, 40)))
            self._count("long transaction")
            return
        if self.open and r < 0.25:
            index = self.rng.randrange(len(self.open))
            conn, mine, left = self.open[index]
            self._row_op(conn, mine)
            if left <= 1:
                self.commit(conn)
                self.keys |= mine
                self.open.pop(index)
            else:
                self.open[index] = (conn, mine, left - 1)
            return
        if r > 0.998 and not self.open:  # TRUNCATE waits for every open transaction: only when none is
            self.execute(main, "TRUNCATE TABLE t", ())
            self.keys.clear()
            self._count("truncate")
            return
        self._row_op(main, self.keys)

    def finish(self) -> None:
        for conn, mine, _ in self.open:
            self.commit(conn)
            self.keys |= mine
        self.open = []


def differential(project: CdcProject, writer: Writer, main: Any, source_rows: Callable[[], dict[int, tuple[Any, ...]]],
                 name: str) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    project.run()  # the snapshot (and the slot) before any traffic
    follower = Follower(project.root)
    follower.start()
    started = time.monotonic()
    kill_at: float | None = None  # set once the restarted loop is busy with micro-batches
    restarted = started
    try:
        for _ in range(OPS):
            writer.step(main)
            time.sleep(0.008)  # about 100 operations a second, while micro-batches apply them
            now = time.monotonic()
            if kill_at is None and (follower.micro_batches() > follower.started_at or now - restarted > 20):
                # in a micro-batch, between two, while polling; now and then after several
                kill_at = now + (rng.random() * 1.5 if rng.random() < 0.6 else 1.5 + rng.random() * 3)
            if kill_at is not None and now >= kill_at:
                follower.kill()
                follower.start()
                kill_at, restarted = None, time.monotonic()
        writer.finish()
        time.sleep(1.0)
    finally:
        follower.stop()
    for _ in range(2):  # whatever the last killed micro-batch left behind
        project.run()
    want = source_rows()
    scd1 = current(project.rows(SCD1), COLUMNS)
    history = project.rows(SCD2)
    mismatches = sorted(set(want) ^ set(scd1)) + [k for k in want if k in scd1 and scd1[k] != want[k]]
    problems = scd2_problems(history)
    scd2 = current(history, COLUMNS)
    mismatches += [k for k in set(want) | set(scd2) if want.get(k) != scd2.get(k)]
    with project.context() as ctx:
        runs = ctx.runs(WORKFLOW, 100_000)
    report = {"source": name, "seed": SEED, "operations": OPS, "by_kind": writer.counts, "kills": follower.kills,
              "micro_batches": sum(r.trigger == "follow" for r in runs),
              "runs_left_running": sum(r.status == "running" for r in runs),
              "rows_at_end": len(want), "scd2_versions": len(history), "mismatches": len(mismatches),
              "scd2_problems": len(problems), "seconds": round(time.monotonic() - started, 1)}
    print(f"\ndifferential {json.dumps(report)}")
    out = os.environ.get("FLOWFORGE_DIFF_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(report) + "\n")
    assert problems == [], problems[:10]
    assert mismatches == [], f"{len(mismatches)} keys differ from the source, e.g. {mismatches[:5]}"
    assert follower.kills >= 3
    return report


def test_pg_logical_random_traffic_with_kills(logical_pg: str, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    tag = uuid.uuid4().hex[:10]
    schema, slot = f"d_{tag}", f"ff_{tag}"
    admin = psycopg.connect(logical_pg, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    options = f"-c search_path={schema}"
    main = psycopg.connect(logical_pg, autocommit=True, options=options)
    try:
        main.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text, qty int, notes text)")
        main.execute("ALTER TABLE t ALTER COLUMN notes SET STORAGE EXTERNAL")  # large values go to TOAST
        rng = random.Random(SEED)
        writer = Writer(rng, lambda c, sql, p: c.execute(sql, p), lambda: psycopg.connect(logical_pg, options=options),
                        lambda c: (c.commit(), c.close()), lambda n: "".join(rng.choice("abcdef") for _ in range(n)))
        project = CdcProject(tmp_path / "p", {"type": "pg_logical", "url": logical_pg, "slot": slot,
                                              "tables": [f"{schema}.t"]}, commit_every=500)

        def source() -> dict[int, tuple[Any, ...]]:
            return {r[0]: tuple(r[1:]) for r in main.execute("SELECT id, name, qty, notes FROM t").fetchall()}

        differential(project, writer, main, source, "pg_logical")
    finally:
        main.close()
        admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s "
                      "AND NOT active", (slot,))
        admin.execute(f"DROP PUBLICATION IF EXISTS flowforge_{slot}")
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def test_mysql_binlog_random_traffic_with_kills(binlog_server: int, tmp_path: Path) -> None:
    pymysql = pytest.importorskip("pymysql")
    pytest.importorskip("pymysqlreplication")
    db = f"d_{uuid.uuid4().hex[:10]}"
    main = pymysql.connect(host="127.0.0.1", port=binlog_server, user="root", autocommit=True)
    main.cursor().execute(f"CREATE DATABASE {db}")
    main.select_db(db)
    try:
        main.cursor().execute("CREATE TABLE t (id bigint PRIMARY KEY, name varchar(40), qty int, notes longtext)")
        rng = random.Random(SEED)

        def connect() -> Any:
            conn = pymysql.connect(host="127.0.0.1", port=binlog_server, user="root", database=db, autocommit=False)
            conn.begin()
            return conn

        writer = Writer(rng, lambda c, sql, p: c.cursor().execute(sql, p or None), connect,
                        lambda c: (c.commit(), c.close()), lambda n: "".join(rng.choice("abcdef") for _ in range(n)))
        project = CdcProject(tmp_path / "p", {"type": "mysql_binlog", "host": "127.0.0.1", "port": binlog_server,
                                              "user": "root", "tables": [f"{db}.t"], "server_id": 65501},
                             commit_every=500)

        def source() -> dict[int, tuple[Any, ...]]:
            cur = main.cursor()
            cur.execute("SELECT id, name, qty, notes FROM t")
            return {r[0]: tuple(r[1:]) for r in cur.fetchall()}

        differential(project, writer, main, source, "mysql_binlog")
    finally:
        main.cursor().execute(f"DROP DATABASE {db}")
        main.close()

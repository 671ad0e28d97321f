"""An incremental load reads its window once (issue: incremental extract at the psql floor).

A run whose table already holds a watermark asks the source only ``WHERE col > watermark`` and takes
the next watermark from the rows it read, in the same Delta commit as those rows: no ``max()`` query
first (a second scan of the table when the column has no index). What a user relies on still holds:
a row changed while the run reads is loaded by the next run, rows sharing the boundary value are
loaded once, a run killed with SIGKILL leaves the old watermark and its rerun loads every row once,
and a lookback re-reads late rows without moving the watermark back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable
from tests.cli_helpers import init_project
from tests.connector_suite import read_tracked
from tests.e2e.helpers import flowforge

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest, decode_position, encode_position
from flowforge.connectors.sql.postgres.config import PostgresConfig
from flowforge.core.context import Context
from flowforge.testing import at_point

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("adbc_driver_postgresql")

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = dt.datetime(2026, 1, 1, 12)


@pytest.fixture
def database() -> Iterator[str]:
    name = f"flowforge_incr_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {str(exc).splitlines()[0]}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(database: str) -> str:
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{database}"


def _sql(database: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(_url(database), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def _project(tmp_path: Path, database: str, incremental: Any = "updated_at") -> Path:
    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    settings = yaml.safe_load((folder / "flowforge.yml").read_text())
    settings["connections"]["shop"] = {"type": "postgres", "url": _url(database)}
    (folder / "flowforge.yml").write_text(yaml.safe_dump(settings))
    jobs = [{"name": "land", "kind": "ingest", "connection": "shop",
             "tables": [{"table": "orders", "target": "bronze_orders", "incremental": incremental,
                         "batch_size": 1000}]}]
    (folder / "workflows" / "shop.yml").write_text(yaml.safe_dump({"name": "shop", "jobs": jobs}))
    _sql(database, "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(12,2), updated_at timestamp)")
    return folder


def _insert(database: str, rows: list[tuple[int, str, dt.datetime]]) -> None:
    with psycopg.connect(_url(database), autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)", rows)


def _bronze(project: Path) -> DeltaTable:
    return DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_orders"))


def _ids(project: Path) -> list[int]:
    return sorted(_bronze(project).to_pyarrow_table(columns=["id"]).column("id").to_pylist())


def _watermark(project: Path) -> Any:
    meta = _bronze(project).history(1)[0]
    return decode_position(json.loads(meta["flowforge.watermark"])["high"])


def _run(project: Path) -> str:
    with Context.open(project) as ctx:
        summary = ctx.run("shop")
        assert summary.status == "success", summary
        detail = ctx.run_detail(summary.run_id)
    return "\n".join(j.log or "" for j in detail.job_runs)


def _seq_scans(database: str) -> int:
    return int(_sql(database, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'orders'")[0][0])


def test_an_incremental_run_scans_the_source_once_and_commits_the_max_it_read(tmp_path: Path,
                                                                                 database: str) -> None:
    project = _project(tmp_path, database)
    _insert(database, [(i, "1.00", T0 + dt.timedelta(minutes=i)) for i in range(1, 301)])
    _run(project)  # the first run plans its window with max(): there is no watermark yet
    assert _watermark(project) == T0 + dt.timedelta(minutes=300)
    _insert(database, [(i, "2.00", T0 + dt.timedelta(hours=10, minutes=i)) for i in range(301, 321)])
    time.sleep(1.2)  # server statistics are flushed about once a second
    before = _seq_scans(database)
    log = _run(project)
    assert "appended 20 rows" in log and "<=" not in log, log
    assert _ids(project) == list(range(1, 321))
    assert _watermark(project) == T0 + dt.timedelta(hours=10, minutes=320)
    deadline = time.monotonic() + 10
    while _seq_scans(database) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.2)
    assert _seq_scans(database) == before + 1, "the window was read in one scan, with no max() query before it"
    # nothing new: no commit, the watermark stays
    version = _bronze(project).version()
    assert "no new data" in _run(project)
    assert _bronze(project).version() == version and _watermark(project) == T0 + dt.timedelta(hours=10, minutes=320)


def test_a_row_changed_while_the_run_reads_is_loaded_by_the_next_run(tmp_path: Path, database: str) -> None:
    project = _project(tmp_path, database)
    _insert(database, [(i, "1.00", T0) for i in range(1, 11)])
    _run(project)
    _insert(database, [(i, "1.00", T0 + dt.timedelta(seconds=i)) for i in range(11, 5011)])
    changed = []

    def change_a_row() -> None:  # once the read is under way (its snapshot taken), another writer commits
        if not changed:
            _sql(database, "UPDATE orders SET amount = 9.99, updated_at = %s WHERE id = 3",
                 (T0 + dt.timedelta(days=1),))
            _insert(database, [(9001, "5.00", T0 + dt.timedelta(days=1))])
            changed.append(True)

    with at_point("bronze.batch", change_a_row):
        _run(project)
    assert changed
    # the run committed what its snapshot held, and the watermark of exactly those rows
    assert _watermark(project) == T0 + dt.timedelta(seconds=5010)
    assert 9001 not in _ids(project)
    _run(project)
    rows = _bronze(project).to_pyarrow_table(columns=["id", "amount"]).to_pylist()
    assert sorted(r["id"] for r in rows if r["id"] in (3, 9001)) == [3, 3, 9001]  # id 3: its old and new row
    assert str(max(r["amount"] for r in rows if r["id"] == 3)) == "9.99"
    assert _watermark(project) == T0 + dt.timedelta(days=1)


def test_rows_sharing_the_boundary_value_are_loaded_once(tmp_path: Path, database: str) -> None:
    project = _project(tmp_path, database)
    _insert(database, [(1, "1.00", T0)])
    _run(project)
    same = T0 + dt.timedelta(hours=1)
    _insert(database, [(i, "1.00", same) for i in range(2, 7)])
    _run(project)
    _run(project)  # nothing after the boundary: none of the five is read again
    assert _ids(project) == [1, 2, 3, 4, 5, 6]
    _insert(database, [(7, "1.00", same + dt.timedelta(microseconds=1))])
    _run(project)
    assert _ids(project) == [1, 2, 3, 4, 5, 6, 7]
    assert _watermark(project) == same + dt.timedelta(microseconds=1)


def test_a_lookback_rereads_late_rows_and_never_moves_the_watermark_back(tmp_path: Path, database: str) -> None:
    project = _project(tmp_path, database, {"column": "updated_at", "lookback": "1h"})
    _insert(database, [(1, "1.00", T0), (2, "1.00", T0 + dt.timedelta(hours=2))])
    _run(project)
    # a long transaction commits row 3 below the watermark: alone, it is no new data
    _insert(database, [(3, "1.00", T0 + dt.timedelta(hours=1, minutes=30))])
    version = _bronze(project).version()
    assert "no new data" in _run(project)
    assert _bronze(project).version() == version
    assert _watermark(project) == T0 + dt.timedelta(hours=2)
    # with a new row, the hour below the watermark is read again: row 3 is caught (row 2 again too)
    _insert(database, [(4, "1.00", T0 + dt.timedelta(hours=3))])
    _run(project)
    assert _ids(project) == [1, 2, 2, 3, 4]
    assert _watermark(project) == T0 + dt.timedelta(hours=3)


def test_a_new_source_column_takes_the_planned_window_and_loses_nothing(tmp_path: Path, database: str) -> None:
    project = _project(tmp_path, database)
    _insert(database, [(1, "1.00", T0)])
    _run(project)
    _sql(database, "ALTER TABLE orders ADD COLUMN note text")
    _sql(database, "INSERT INTO orders VALUES (2, 2.00, %s, 'new')", (T0 + dt.timedelta(hours=1),))
    log = _run(project)
    assert "<=" in log, "a schema change commits with the window's upper bound fixed before the read"
    assert _ids(project) == [1, 2]
    assert _watermark(project) == T0 + dt.timedelta(hours=1)
    assert "note" in _bronze(project).schema().to_arrow().names  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["bronze.batch:2", "storage.streamed_written:1"])
def test_a_run_killed_during_the_read_or_before_its_commit_keeps_the_old_watermark(
        tmp_path: Path, database: str, fault: str) -> None:
    project = _project(tmp_path, database)
    _insert(database, [(1, "1.00", T0)])
    _run(project)
    _insert(database, [(i, "1.00", T0 + dt.timedelta(seconds=i)) for i in range(2, 5002)])
    killed = flowforge("run", "shop", project=project, env={"FLOWFORGE_FAULT": fault}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert _bronze(project).version() == 0 and _watermark(project) == T0
    _run(project)
    assert _ids(project) == list(range(1, 5002))
    assert _watermark(project) == T0 + dt.timedelta(seconds=5001)


def test_the_connector_reads_an_open_window_when_asked(database: str) -> None:
    _sql(database, "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(12,2), updated_at timestamptz)")
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(_url(database), autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO orders VALUES (%s, 1, %s)", [(i, at + dt.timedelta(seconds=i)) for i in range(5)])
    with open_connector("shop", PostgresConfig(type="postgres", url=_url(database))) as connector:
        state = {"column": "updated_at", "high": encode_position(at + dt.timedelta(seconds=1))}
        request = ReadRequest(table="orders", incremental_column="updated_at", watermark_from_rows=True)
        plan = connector.plan(request, state)
        assert plan.watermark_column == "updated_at" and plan.bounds == (at + dt.timedelta(seconds=1), None)
        rows, tracker = read_tracked(connector, plan)
        assert tracker is not None
        ids = rows.column("id").to_pylist()
        assert sorted(ids) == [2, 3, 4]
        assert decode_position(tracker.new_state()["high"]) == at + dt.timedelta(seconds=4)
        # without the flag (or on a partitioned read) the window is fixed by max() as before
        closed = connector.plan(ReadRequest(table="orders", incremental_column="updated_at"), state)
        assert closed.watermark_column is None and closed.bounds == (at + dt.timedelta(seconds=1),
                                                                     at + dt.timedelta(seconds=4))


def test_a_later_window_comes_in_pieces_so_writing_overlaps_reading(database: str) -> None:
    """The first read of a table comes in the driver's 16 MB batches; a later incremental window (rows
    the server finds spread over its whole scan) in batches of about 2 MB, written while the rest is
    still being read. Every row comes once either way."""
    _sql(database, "CREATE TABLE orders (id int PRIMARY KEY, note text, updated_at timestamp)")
    _sql(database, "INSERT INTO orders SELECT g, repeat('x', 200), %s FROM generate_series(1, 60000) g", (T0,))
    _sql(database, "UPDATE orders SET updated_at = %s WHERE id %% 2 = 0", (T0 + dt.timedelta(hours=1),))
    request = ReadRequest(table="orders", incremental_column="updated_at", batch_size=1_000_000)
    with open_connector("shop", PostgresConfig(type="postgres", url=_url(database))) as connector:
        first = [batch.num_rows for part in connector.read(connector.plan(request, None)) for batch in part.batches]
        state = {"column": "updated_at", "high": encode_position(T0)}
        later = [batch.num_rows for part in connector.read(connector.plan(request, state)) for batch in part.batches]
    assert sum(first) == 60_000 and len(first) == 1
    assert sum(later) == 30_000 and len(later) >= 2

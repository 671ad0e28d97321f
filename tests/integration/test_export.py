"""``flowforge export``: dated staging snapshots that are complete or invisible, and consistent.

Sources: the e-commerce demo in a real PostgreSQL database and in SQLite, and a lakehouse layer.
Targets: a local folder and an S3 bucket on the moto server. The export is killed half-way
(``FLOWFORGE_FAULT``), run twice on one day, and pointed at places it must not write.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from tests.cli_helpers import invoke
from tests.e2e.helpers import flowforge

from flowforge.core.context import Context
from flowforge.demo.ecommerce_load import load_postgres, load_sqlite
from flowforge.demo.ecommerce_schema import TABLES
from flowforge.export.service import ExportRequest

DAY = "2025-12-05"


def _project(tmp_path: Path, connection: dict[str, object], **settings: Any) -> Path:
    import yaml

    project = tmp_path / "project"
    (project / "workflows").mkdir(parents=True)
    (project / ".flowforge").mkdir()
    (project / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", **settings,
                                                           "connections": {"shop": connection}}), encoding="utf-8")
    return project


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Path:
    project = _project(tmp_path, {"type": "sqlite", "path": "data/shop.db"})
    (project / "data").mkdir()
    load_sqlite(project / "data" / "shop.db", scale=0.01, seed=5)
    return project


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_local_snapshot(folder: Path, counts: dict[str, int], ext: str = "csv") -> dict[str, Any]:
    """Every file is listed with its true row count and checksum; _SUCCESS is there and empty."""
    assert (folder / "_SUCCESS").read_bytes() == b""
    meta = json.loads((folder / "_metadata.json").read_text())
    assert set(meta["tables"]) == set(counts)
    for name, expected in counts.items():
        entry = meta["tables"][name]
        data = (folder / entry["file"]).read_bytes()
        assert entry["sha256"] == _sha256(data) and entry["bytes"] == len(data), name
        if ext == "csv":
            rows = list(csv.reader(io.StringIO(data.decode())))
            assert rows[0] == [c["name"] for c in entry["columns"]], name
            assert len(rows) - 1 == expected == entry["rows"], name
        else:
            assert pq.read_table(io.BytesIO(data)).num_rows == expected == entry["rows"], name
    assert meta["started_at"] <= meta["ended_at"]
    return meta


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.mark.postgres
def test_postgres_csv_snapshot_is_consistent_and_matches_the_source(pg_database: str, tmp_path: Path) -> None:
    load_postgres(pg_database, scale=0.02, seed=1)
    project = _project(tmp_path, {"type": "postgres", "url": pg_database, "schema": "ecommerce"})
    with psycopg.connect(pg_database) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM ecommerce.{t}").fetchone()[0] for t in TABLES}
    added: list[str] = []

    def meanwhile(file: Any) -> None:
        # another session commits new orders once the export has started: the snapshot must not see them
        if not added:
            with psycopg.connect(pg_database, autocommit=True) as other:
                other.execute("DELETE FROM ecommerce.invoice_items WHERE invoice_item_id <= 100")
                other.execute("DELETE FROM ecommerce.payments WHERE payment_id <= 50")
            added.append(file.file)

    with Context.open(project) as ctx:
        result = ctx.export(ExportRequest(source="shop", to="data/staging", day=dt.date(2025, 12, 5), parallel=1),
                            on_file=meanwhile)
    assert result.consistency == "repeatable_read_snapshot"
    folder = project / "data" / "staging" / f"snapshot_date={DAY}"
    assert result.location == str(folder)
    meta = _check_local_snapshot(folder, counts)
    assert meta["source"]["kind"] == "postgres" and meta["source"]["snapshot_id"]
    assert "password" not in json.dumps(meta).lower()
    types = {c["name"]: c["type"] for c in meta["tables"]["orders"]["columns"]}
    assert types["total_amount"] == "numeric(15,2)" and types["order_date"].startswith("timestamp")
    assert added == ["categories.csv"]  # the deletes ran before invoice_items and payments were written
    with psycopg.connect(pg_database) as conn:  # the source did change while the export ran
        assert conn.execute("SELECT count(*) FROM ecommerce.payments").fetchone()[0] == counts["payments"] - 50


@pytest.mark.postgres
def test_postgres_parquet_snapshot_keeps_exact_types_and_values(pg_database: str, tmp_path: Path) -> None:
    load_postgres(pg_database, scale=0.01, seed=2)
    project = _project(tmp_path, {"type": "postgres", "url": pg_database, "schema": "ecommerce"})
    code, out = invoke(project, "export", "--from", "shop", "--to", "data/staging", "--format", "parquet",
                       "--date", DAY, "--tables", "orders,order_items")
    assert code == 0, out
    folder = project / "data" / "staging" / f"snapshot_date={DAY}"
    with psycopg.connect(pg_database) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM ecommerce.{t}").fetchone()[0]
                  for t in ("orders", "order_items")}
        total = conn.execute("SELECT sum(total_amount) FROM ecommerce.orders").fetchone()[0]
    _check_local_snapshot(folder, counts, "parquet")
    orders = pq.read_table(folder / "orders.parquet")
    assert str(orders.schema.field("total_amount").type) == "decimal128(15, 2)"
    assert sum(orders.column("total_amount").to_pylist()) == total


def test_sqlite_snapshot_via_cli_and_a_second_export_of_the_day(sqlite_project: Path) -> None:
    counts = _sqlite_counts(sqlite_project / "data" / "shop.db")
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", "data/staging", "--date", DAY)
    assert code == 0, out
    assert "_SUCCESS written" in out
    folder = sqlite_project / "data" / "staging" / f"snapshot_date={DAY}"
    meta = _check_local_snapshot(folder, counts)
    assert meta["source"]["consistency"] == "backup_copy"
    first_id = folder.stat().st_ino
    with sqlite3.connect(sqlite_project / "data" / "shop.db") as conn:
        conn.execute("DELETE FROM invoice_items WHERE invoice_item_id % 2 = 0")
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", "data/staging", "--date", DAY)
    assert code == 0, out  # replaces the day's snapshot in one swap: never a mix of the two
    replaced = _check_local_snapshot(folder, _sqlite_counts(sqlite_project / "data" / "shop.db"))
    assert replaced["tables"]["invoice_items"]["rows"] < meta["tables"]["invoice_items"]["rows"]
    assert folder.stat().st_ino != first_id
    assert [p.name for p in (sqlite_project / "data" / "staging").iterdir()] == [f"snapshot_date={DAY}"]
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", "data/staging", "--date", DAY,
                       "--if-exists", "new_attempt", "--tables", "customers")
    assert code == 0, out
    attempt = sqlite_project / "data" / "staging" / f"snapshot_date={DAY}_attempt-2"
    assert json.loads((attempt / "_metadata.json").read_text())["attempt"] == 2
    _check_local_snapshot(attempt, {"customers": counts["customers"]})
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", "data/staging", "--date", DAY,
                       "--if-exists", "fail")
    assert code == 1 and "already exists" in out


@pytest.mark.parametrize("point", ["export.file:3", "export.before_success:1"])
def test_a_killed_export_leaves_no_success_marker_and_no_visible_folder(sqlite_project: Path, point: str) -> None:
    result = flowforge("export", "--from", "shop", "--to", "data/staging", "--date", DAY, "--parallel", "1",
                       project=sqlite_project, env={"FLOWFORGE_FAULT": point}, check=False)
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    staging = sqlite_project / "data" / "staging"
    assert not list(staging.rglob("_SUCCESS"))
    assert not (staging / f"snapshot_date={DAY}").exists()
    assert [p.name for p in staging.iterdir() if not p.name.startswith(".")] == []
    flowforge("export", "--from", "shop", "--to", "data/staging", "--date", DAY, project=sqlite_project)
    _check_local_snapshot(staging / f"snapshot_date={DAY}", _sqlite_counts(sqlite_project / "data" / "shop.db"))


@pytest.mark.parametrize(("target", "reason"), [
    (".flowforge/exports", "own state or lakehouse"), ("lakehouse", "own state or lakehouse"),
    ("lakehouse/gold/x", "own state or lakehouse"), ("../outside", "outside the data roots"),
    ("data/../../escape", "outside the data roots"), ("/var/tmp/ff-export", "outside the data roots"),
    ("/tmp", "own state or lakehouse"), ("data/link/x", "own state or lakehouse")])
def test_exports_write_only_under_the_data_roots(sqlite_project: Path, target: str, reason: str) -> None:
    (sqlite_project / "data" / "link").symlink_to(sqlite_project / ".flowforge")  # a way out, followed and refused
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", target, "--date", DAY)
    assert code == 1
    assert reason in out
    assert not list(sqlite_project.rglob("_SUCCESS"))


def test_a_lakehouse_layer_exports_its_delta_tables(tmp_path: Path) -> None:
    from tests.cli_helpers import init_project

    project = init_project(tmp_path / "p")
    code, out = invoke(project, "run", "example")
    assert code == 0, out
    code, out = invoke(project, "export", "--from", "silver", "--to", "data/out", "--format", "parquet",
                       "--date", DAY)
    assert code == 0, out
    folder = project / "data" / "out" / f"snapshot_date={DAY}"
    meta = _check_local_snapshot(folder, {"silver_orders": 3}, "parquet")
    assert meta["tables"]["silver_orders"]["delta_version"] == 0
    assert meta["source"] == {"kind": "lakehouse", "layer": "silver", "location": str(project / "lakehouse"),
                              "consistency": "delta_version_per_table"}


@pytest.mark.s3
def test_s3_snapshots_get_new_attempt_folders_and_success_last(sqlite_project: Path, s3_server: Any,
                                                               s3_bucket: str) -> None:
    storage = [f"--storage={k}={v}" for k, v in s3_server.options().items()]
    target = f"s3://{s3_bucket}/staging"
    counts = _sqlite_counts(sqlite_project / "data" / "shop.db")
    s3 = s3_server.client()

    def objects() -> dict[str, bytes]:
        listed = s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=s3_bucket, Key=o["Key"])["Body"].read() for o in listed}

    result = flowforge("export", "--from", "shop", "--to", target, "--date", DAY, "--parallel", "1", *storage,
                       project=sqlite_project, env={"FLOWFORGE_FAULT": "export.file:4"}, check=False)
    assert result.returncode == -signal.SIGKILL
    assert not [k for k in objects() if k.endswith("_SUCCESS")]  # killed: nothing a reader would trust
    for attempt in (2, 3):
        code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", target, "--date", DAY, *storage)
        assert code == 0, out
        prefix = f"staging/snapshot_date={DAY}_attempt-{attempt}/"
        found = {k.removeprefix(prefix): v for k, v in objects().items() if k.startswith(prefix)}
        assert found["_SUCCESS"] == b""
        meta = json.loads(found["_metadata.json"])
        assert meta["attempt"] == attempt
        for name, expected in counts.items():
            entry = meta["tables"][name]
            assert _sha256(found[entry["file"]]) == entry["sha256"]
            assert len(found[entry["file"]].decode().splitlines()) - 1 == expected == entry["rows"]
    code, out = invoke(sqlite_project, "export", "--from", "shop", "--to", target, "--date", DAY,
                       "--if-exists", "replace", *storage)
    assert code == 1 and "cannot replace" in out
    assert os.environ.get("FLOWFORGE_FAULT") is None

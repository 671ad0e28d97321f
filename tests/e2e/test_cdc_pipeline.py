"""CDC end to end: Debezium JSONL files → bronze (exactly once) → silver SCD1/SCD2, through the CLI.

Streams come from ``ProductStream`` (PostgreSQL-shaped, with unchanged-TOAST placeholders,
deletes and re-inserts), whose model says what silver must hold.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable

from flowforge.connectors.cdc.debezium.synthetic import CASTS, ProductStream
from flowforge.core.project import init_project, write_project_file
from tests.e2e.helpers import CLI, flowforge, table

pytestmark = pytest.mark.slow


def _project(root: Path, tables: list[dict[str, Any]] | None = None) -> Path:
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "events").mkdir()
    write_project_file(root, {"shop_events": {"type": "debezium", "path": str(root / "events")}},
                       data_roots=["events"])
    tables = tables or [{"target": "products", "strategy": "scd1", "keys": ["id"], "casts": CASTS},
                        {"target": "products_history", "strategy": "scd2", "keys": ["id"], "casts": CASTS}]
    wf = {"name": "shop_cdc", "jobs": [{"name": "products_cdc", "kind": "cdc", "connection": "shop_events",
                                        "files": "batch=*.jsonl", "target": "bronze_products_cdc",
                                        "batch_size": 50, "tables": tables}]}
    (root / "workflows" / "shop_cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
    return root


def _batch(root: Path, stream: ProductStream, n: int, index: int) -> list[str]:
    return stream.write(root / "events" / f"batch=20250101T{index:06d}Z.jsonl", n)


def _silver(root: Path) -> dict[int, tuple[str, str, int, str]]:
    rows = table(root, "silver", "products")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "one silver row per key"
    return {r["id"]: (r["name"], f"{r['price']:.2f}", r["qty"], r["description"]) for r in rows}


def _history_matches(root: Path, stream: ProductStream) -> None:
    hist = table(root, "silver", "products_history")
    current = {r["id"]: r for r in hist if r["is_current"]}
    assert {k: (r["name"], f"{r['price']:.2f}", r["qty"], r["description"]) for k, r in current.items()} == \
        stream.expected_rows()
    versions = sorted((r["id"], int(r["_position"].split(":")[1])) for r in hist)
    assert versions == sorted((k, lsn) for k, op, lsn in stream.history if op != "d"), "one version per c/u"
    assert len(versions) == len(set(versions)), "no duplicated versions"
    closed_by_delete = {(r["id"], r["_valid_to_position"]) for r in hist if r["is_deleted"]}
    deletes = {(k, f"pg:{lsn:020d}") for k, op, lsn in stream.history if op == "d"}
    assert closed_by_delete == deletes
    assert not any("__debezium_unavailable_value" in str(r["description"]) for r in hist)


def _bronze_once(root: Path, stream: ProductStream) -> None:
    bronze = table(root, "bronze", "bronze_products_cdc")
    ids = [r["_event_id"] for r in bronze]
    assert len(ids) == len(set(ids)) == len(stream.history), "every event stored exactly once"


def test_cdc_run_applies_changes_and_skips_replays(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    stream = ProductStream(keys=60, seed=3)
    _batch(root, stream, 400, 1)
    out = flowforge("run", "shop_cdc", project=root).stdout
    assert "bronze_products_cdc: 400 rows" in out
    assert _silver(root) == stream.expected_rows()
    _history_matches(root, stream)
    # a replayed file (same events under another name) and an overlapping one add nothing twice
    lines = _batch(root, stream, 300, 2)
    shutil.copy(root / "events" / "batch=20250101T000001Z.jsonl", root / "events" / "batch=20250101T000003Z.jsonl")
    (root / "events" / "batch=20250101T000004Z.jsonl").write_text("\n".join(lines[100:200]) + "\n")
    again = flowforge("run", "shop_cdc", project=root).stdout
    assert "bronze_products_cdc: 300 rows" in again, again
    _bronze_once(root, stream)
    assert _silver(root) == stream.expected_rows()
    _history_matches(root, stream)
    idle = flowforge("run", "shop_cdc", project=root).stdout
    assert "up to date" in idle


def test_out_of_order_and_toast_across_batches(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    stream = ProductStream(keys=20, seed=5, toast_every=3)
    early = list(stream.lines(200))
    late = list(stream.lines(200))
    # the newer file lands first; the older one arrives afterwards (out of order, across runs)
    (root / "events" / "batch=20250101T000002Z.jsonl").write_text("\n".join(late) + "\n")
    flowforge("run", "shop_cdc", project=root)
    (root / "events" / "batch=20250101T000001Z.jsonl").write_text("\n".join(early) + "\n")
    flowforge("run", "shop_cdc", project=root)
    got = _silver(root)
    assert set(got) == set(stream.expected_rows()), "older events did not resurrect or remove rows"
    assert got == stream.expected_rows(), "older events did not overwrite newer state"
    _bronze_once(root, stream)
    _history_matches(root, stream)  # SCD2: the late events' keys had their history rebuilt in order


def test_truncate_and_soft_delete(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop", [{"target": "products", "keys": ["id"], "casts": CASTS, "soft_delete": True}])
    stream = ProductStream(keys=30, seed=9)
    _batch(root, stream, 200, 1)
    flowforge("run", "shop_cdc", project=root)
    rows = table(root, "silver", "products")
    live = {r["id"] for r in rows if not r["_is_deleted"]}
    assert live == set(stream.expected_rows()) and len(rows) >= len(live)
    deleted = {k for k, op, _ in stream.history if op == "d"} - live
    assert {r["id"] for r in rows if r["_is_deleted"]} == deleted
    stream.lsn += 100
    trunc = {"source": {"connector": "postgresql", "ts_ms": stream.ts_ms, "snapshot": False, "db": "shop",
                        "schema": "public", "table": "products", "lsn": stream.lsn}, "op": "t", "ts_ms": stream.ts_ms}
    (root / "events" / "batch=20250101T000002Z.jsonl").write_text(json.dumps(trunc) + "\n")
    stream.state.clear()
    _batch(root, stream, 20, 3)
    flowforge("run", "shop_cdc", project=root)
    rows = table(root, "silver", "products")
    assert {r["id"] for r in rows if not r["_is_deleted"]} == set(stream.expected_rows())


@pytest.mark.parametrize("fault", ["bronze.batch:3", "cdc.bronze.committed:1", "cdc.silver.apply:1",
                                   "cdc.silver.apply:2", "cdc.silver.committed:1", "cdc.silver.committed:2"])
def test_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path, fault: str) -> None:
    root = _project(tmp_path / "shop")
    stream = ProductStream(keys=80, seed=11)
    _batch(root, stream, 300, 1)
    flowforge("run", "shop_cdc", project=root)
    _batch(root, stream, 300, 2)
    _batch(root, stream, 300, 3)
    killed = flowforge("run", "shop_cdc", project=root, env={"FLOWFORGE_FAULT": fault}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    if fault.startswith("bronze.batch"):
        assert len(table(root, "bronze", "bronze_products_cdc")) == 300, "a half-written batch is invisible"
    flowforge("run", "shop_cdc", project=root)
    _bronze_once(root, stream)
    assert _silver(root) == stream.expected_rows()
    _history_matches(root, stream)
    commits = DeltaTable(str(root / "lakehouse" / "bronze" / "bronze_products_cdc")).history()
    state = next(json.loads(c["flowforge.cdc_state"]) for c in commits if "flowforge.cdc_state" in c)
    assert len(state["files"]) == 3, "the stored position covers exactly the files whose events are in bronze"


def test_follow_mode_applies_new_files_until_interrupted(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    stream = ProductStream(keys=40, seed=13)
    proc = subprocess.Popen([*CLI, "-p", str(root), "run", "shop_cdc", "--follow", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for i in range(1, 4):
            _batch(root, stream, 50, i)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if _silver(root) == stream.expected_rows():
                        break
                except Exception:  # the table may not exist yet
                    pass
                time.sleep(0.1)
            assert _silver(root) == stream.expected_rows(), f"batch {i} visible in silver"
    finally:
        proc.send_signal(signal.SIGINT)  # ends the loop after the micro-batch in progress
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, out + err
    _bronze_once(root, stream)


def test_product_catalog_cdc_template(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "raw").mkdir()
    write_project_file(root, {"product_events": {"type": "debezium", "path": str(root / "raw")}},
                       data_roots=["raw"])
    flowforge("templates", "use", "product_catalog_cdc", "--param", "key=id", project=root)
    stream = ProductStream(keys=50, seed=17)
    stream.write(root / "raw" / "batch=20251018T143220Z.jsonl", 300)
    stream.write(root / "raw" / "batch=20251018T145647Z.jsonl", 300)
    out = flowforge("run", "product_catalog_cdc", project=root).stdout
    assert "PASS=2" in out, out
    gold = table(root, "gold", "gold_product_catalog")
    assert {int(r["id"]): r["description"] for r in gold} == {k: v[3] for k, v in stream.expected_rows().items()}
    silver = table(root, "silver", "silver_product")
    assert {int(r["id"]) for r in silver if r["_is_deleted"]} == {k for k, op, _ in stream.history if op == "d"} - set(
        stream.expected_rows())


def test_debezium_files_on_s3_in_the_seed_layout(tmp_path: Path) -> None:
    from tests.s3_server import S3Server

    root = tmp_path / "s3"
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    stream = ProductStream(keys=30, seed=19)
    with S3Server() as s3:
        bucket = s3.create_bucket("cord-raw")
        client = s3.client()
        for i, stamp in enumerate(("20251018T143220Z", "20251018T145647Z")):
            body = "\n".join(stream.lines(150)) + "\n"
            client.put_object(Bucket=bucket, Key=f"product/raw/batch={stamp}.jsonl", Body=body.encode())
            if i == 0:
                write_project_file(root, {"product_events": {"type": "debezium", "path": "s3://cord-raw/product/raw",
                                                             "storage_options": s3.options()}})
                flowforge("templates", "use", "product_catalog_cdc", "--param", "key=id", project=root)
        flowforge("run", "product_catalog_cdc", project=root)
        assert flowforge("run", "product_catalog_cdc", project=root).stdout.count("up to date") >= 1
    gold = table(root, "gold", "gold_product_catalog")
    assert {int(r["id"]): r["description"] for r in gold} == {k: v[3] for k, v in stream.expected_rows().items()}

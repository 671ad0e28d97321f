"""Tests on tables kept up to date from a change stream: they see the rows the apply writes (not
deletes, not the rows that close an SCD2 version), and a ``fail`` stops the apply before its commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowforge.connectors.cdc.debezium.synthetic import CASTS, ProductStream
from flowforge.core.context import Context
from flowforge.core.project import init_project, write_project_file


def _project(root: Path, tests: dict[str, list[dict[str, Any]]]) -> Path:
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "events").mkdir()
    write_project_file(root, {"shop_events": {"type": "debezium", "path": str(root / "events")}},
                       data_roots=["events"])
    tables = [{"target": "products", "strategy": "scd1", "keys": ["id"], "casts": CASTS,
               "tests": tests.get("products", [])},
              {"target": "products_history", "strategy": "scd2", "keys": ["id"], "casts": CASTS,
               "tests": tests.get("products_history", [])}]
    wf = {"name": "shop_cdc", "jobs": [{"name": "products_cdc", "kind": "cdc", "connection": "shop_events",
                                        "files": "batch=*.jsonl", "target": "bronze_products_cdc", "tables": tables}]}
    (root / "workflows" / "shop_cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
    return root


def test_change_tables_check_what_the_apply_writes(tmp_path: Path) -> None:
    stream = ProductStream(keys=30, seed=5)
    root = _project(tmp_path / "shop", {
        "products": [{"unique": "id"}, {"not_null": "name"}, {"range": {"column": "price", "min": 0}},
                     {"row_count": {"max": 30}}],
        # versions of one key share the id: a warning about history, by design of the test
        "products_history": [{"unique": {"column": "id", "severity": "warn"}}, {"not_null": "valid_from"}]})
    stream.write(root / "events" / "batch=20250101T000001Z.jsonl", 200)
    with Context.open(root) as ctx:
        run = ctx.run("shop_cdc")
        assert run.status == "success", [e.error for e in run.events]
        results = {(r.table_name, r.test_name): r for r in ctx.quality.run_results(run.run_id).results}
    scd1 = [results[("products", t)] for t in ("unique(id)", "not_null(name)", "range(0 <= price)")]
    assert all(r.status == "pass" for r in scd1)
    # one row per key whose latest change is an upsert was checked; keys deleted last were not
    assert scd1[0].rows_checked == len(stream.state) < len({k for k, _, _ in stream.history})
    history = results[("products_history", "unique(id)")]
    assert history.status == "warn" and history.failing_rows > 0
    assert results[("products_history", "not_null(valid_from)")].status == "pass"


def test_a_failing_change_table_test_commits_nothing(tmp_path: Path) -> None:
    stream = ProductStream(keys=30, seed=5)
    root = _project(tmp_path / "shop", {"products": [{"accepted_values": {"column": "name", "values": ["product 1"]}}]})
    stream.write(root / "events" / "batch=20250101T000001Z.jsonl", 100)
    with Context.open(root) as ctx:
        run = ctx.run("shop_cdc")
        assert run.status == "failed"
        assert "Silver table products: test accepted_values(name in [product 1]) failed" in (run.events[0].error or "")
        assert ctx.store.open("silver", "products") is None
        assert ctx.store.open("bronze", "bronze_products_cdc") is not None  # the events are safe in bronze

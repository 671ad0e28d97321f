"""Table lifecycle (issue 11 items 2, 3 and 11; issue 17 §1): a changed spec is detected and
reprocessed or refused by name, write dispositions (append, replace, merge), ``--full-refresh``
with Delta history kept, gold tables skipped while their inputs are unchanged, and a first commit
killed with SIGKILL that leaves nothing a reader trips on."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable
from tests.cli_helpers import init_project, invoke

from flowforge.core.context import Context
from flowforge.errors import SpecError


def _project(tmp_path: Path, rows: list[tuple[int, str, str]]) -> Path:
    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    db = folder / "data" / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, amount TEXT)")
    con.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    settings = yaml.safe_load((folder / "flowforge.yml").read_text())
    settings["connections"]["shop"] = {"type": "sqlite", "path": str(db)}
    (folder / "flowforge.yml").write_text(yaml.safe_dump(settings))
    return folder


def _source(project: Path, sql: str, *params: Any) -> None:
    con = sqlite3.connect(project / "data" / "shop.db")
    con.execute(sql, params)
    con.commit()
    con.close()


def _workflow(project: Path, ingest: dict[str, Any], silver: dict[str, Any] | None = None,
              gold_sql: str | None = None) -> None:
    jobs: list[dict[str, Any]] = [{"name": "land", "kind": "ingest", "connection": "shop",
                                   "tables": [{"table": "items", "target": "bronze_items", **ingest}]}]
    if silver is not None:
        jobs.append({"name": "clean", "kind": "silver",
                     "tables": [{"target": "silver_items", "source": "bronze_items", "keys": ["id"], **silver}]})
    if gold_sql is not None:
        jobs.append({"name": "report", "kind": "gold", "tables": [{"target": "gold_items", "sql": gold_sql}]})
    (project / "workflows" / "shop.yml").write_text(yaml.safe_dump({"name": "shop", "jobs": jobs}))


def _dt(project: Path, layer: str, table: str, version: int | None = None) -> DeltaTable:
    return DeltaTable(str(project / "lakehouse" / layer / table), version=version)


def _rows(project: Path, layer: str, table: str, version: int | None = None) -> list[dict[str, Any]]:
    return sorted(_dt(project, layer, table, version).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])


def _run(project: Path, *args: str) -> str:
    code, out = invoke(project, "run", "shop", *args)
    assert code == 0, out
    return out


def _log(project: Path, job: str) -> str:
    with Context.open(project) as ctx:
        run = ctx.runs("shop", 1)[0]
        detail = ctx.run_detail(run.id)
    return "\n".join(j.log or "" for j in detail.job_runs if j.job_name == job)


# -- item 2: changes in the spec are detected ---------------------------------------------------------

def test_new_casts_and_derived_columns_rebuild_silver_without_new_bronze_rows(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1.50"), (2, "b", "2.25")])
    _workflow(project, {"incremental": "id"}, {})
    _run(project)
    assert [r["amount"] for r in _rows(project, "silver", "silver_items")] == ["1.50", "2.25"]
    bronze_version = _dt(project, "bronze", "bronze_items").version()

    _workflow(project, {"incremental": "id"}, {"casts": {"amount": "DECIMAL(10,2)"},
                                               "derived": {"doubled": "amount * 2"}})
    out = _run(project)
    assert "silver_items: up to date" not in out
    assert _dt(project, "bronze", "bronze_items").version() == bronze_version, "no new bronze rows were read"
    rows = _rows(project, "silver", "silver_items")
    assert [(r["amount"], r["doubled"]) for r in rows] == [(Decimal("1.50"), Decimal("3.00")),
                                                         (Decimal("2.25"), Decimal("4.50"))]
    schema = pa.schema(_dt(project, "silver", "silver_items").schema().to_arrow())
    assert schema.field("amount").type == pa.decimal128(10, 2)
    log = _log(project, "clean")
    assert 'casts.amount: unset → "DECIMAL(10,2)"' in log and "rebuilding from all of bronze_items" in log
    history = _dt(project, "silver", "silver_items").history()
    assert history[0]["operation"] == "WRITE" and history[0]["operationParameters"]["mode"] == "Overwrite"
    assert [r["amount"] for r in _rows(project, "silver", "silver_items", 0)] == ["1.50", "2.25"], "time travel"
    assert "silver_items: up to date" in _run(project), "the new settings are recorded: the next run is idle"


def test_a_changed_key_on_an_ingest_table_is_refused_until_a_full_refresh(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    merge = {"incremental": "id", "write_disposition": "merge", "primary_key": ["id"]}
    _workflow(project, merge)
    _run(project)
    _workflow(project, {**merge, "primary_key": ["id", "name"]})
    code, out = invoke(project, "run", "shop")
    assert code == 1
    flat = " ".join(out.split())
    assert 'primary_key: ["id"] → ["id", "name"]' in flat, out
    assert "--full-refresh --select bronze_items" in flat, out
    assert _dt(project, "bronze", "bronze_items").version() == 0, "nothing was committed"

    _source(project, "UPDATE items SET name = 'A' WHERE id = 1")  # missed by the incremental read
    _run(project, "--full-refresh", "--select", "bronze_items")
    assert [(r["id"], r["name"]) for r in _rows(project, "bronze", "bronze_items")] == [(1, "A"), (2, "b")]
    assert _dt(project, "bronze", "bronze_items").version() == 1
    assert [r["name"] for r in _rows(project, "bronze", "bronze_items", 0)] == ["a", "b"], "history is kept"
    _source(project, "INSERT INTO items VALUES (3, 'c', '3')")
    _run(project)  # the watermark restarted with the rebuild: only id 3 is new
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items")] == [1, 2, 3]


# -- item 3: write dispositions ---------------------------------------------------------------------------

def test_a_full_table_ingest_run_twice_replaces_bronze_in_one_commit(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    _workflow(project, {}, {"strategy": "append", "keys": []})
    _run(project)
    _source(project, "INSERT INTO items VALUES (3, 'c', '3')")
    _run(project)
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items")] == [1, 2, 3], "no doubled rows"
    dt = _dt(project, "bronze", "bronze_items")
    assert dt.version() == 1 and dt.history()[0]["operationParameters"]["mode"] == "Overwrite"
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items", 0)] == [1, 2], "time travel to the old one"
    assert "replaced the table with 3 rows" in _log(project, "land")


def test_merge_upserts_on_the_primary_key(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    _workflow(project, {"query": None, "write_disposition": "merge", "primary_key": "id"})
    _run(project)
    _source(project, "UPDATE items SET name = 'B' WHERE id = 2")
    _source(project, "INSERT INTO items VALUES (3, 'c', '3')")
    _run(project)
    assert [(r["id"], r["name"]) for r in _rows(project, "bronze", "bronze_items")] == [(1, "a"), (2, "B"), (3, "c")]


@pytest.mark.parametrize(("table", "message"), [
    ({"write_disposition": "merge"}, "needs 'primary_key'"),
    ({"write_disposition": "replace", "incremental": "id"}, "remove 'incremental'"),
    ({"write_disposition": "upsert"}, "write_disposition"),
])
def test_write_dispositions_are_validated(tmp_path: Path, table: dict[str, Any], message: str) -> None:
    from flowforge.spec import parse_workflow

    text = yaml.safe_dump({"name": "w", "jobs": [{"name": "j", "kind": "ingest", "connection": "c",
                                                  "tables": [{"table": "t", "target": "b", **table}]}]})
    with pytest.raises(SpecError, match=message):
        parse_workflow(text, "w.yml")


# -- full refresh ----------------------------------------------------------------------------------------

def test_full_refresh_rebuilds_what_depends_on_a_table_and_keeps_history(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    _workflow(project, {"incremental": "id"}, {}, "SELECT count(*) AS n, string_agg(name, ',' ORDER BY id) AS names "
                                                  "FROM silver_items")
    _run(project)
    _source(project, "DELETE FROM items WHERE id = 1")
    _source(project, "UPDATE items SET name = 'B' WHERE id = 2")  # neither is seen incrementally
    _run(project)
    assert _dt(project, "gold", "gold_items").to_pyarrow_table().to_pylist() == [{"n": 2, "names": "a,b"}]
    _run(project, "--full-refresh", "--select", "bronze_items")
    assert [(r["id"], r["name"]) for r in _rows(project, "silver", "silver_items")] == [(2, "B")]
    assert _dt(project, "gold", "gold_items").to_pyarrow_table().to_pylist() == [{"n": 1, "names": "B"}]
    for layer, table in (("bronze", "bronze_items"), ("silver", "silver_items")):
        dt = _dt(project, layer, table)
        assert dt.history()[0]["operationParameters"]["mode"] == "Overwrite"
        assert len(_rows(project, layer, table, 0)) == 2, f"{table} version 0 is still readable"
    with Context.open(project) as ctx:  # the watermark went with the rebuild: id 2 is the highest read
        found = ctx.store.progress("bronze", "bronze_items", "watermark")
    assert found is not None and found[1] == _dt(project, "bronze", "bronze_items").version()
    assert found[0]["high"]["value"] == 2

    code, out = invoke(project, "run", "shop", "--full-refresh", "--select", "nope")
    assert code == 1 and "writes no table(s) nope" in out


# -- issue 17 §1: a gold table with unchanged inputs is up to date ------------------------------------------

def test_gold_is_skipped_while_its_inputs_are_unchanged(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    sql = "SELECT count(*) AS n FROM silver_items"
    _workflow(project, {"incremental": "id"}, {}, sql)
    _run(project)
    version = _dt(project, "gold", "gold_items").version()
    out = _run(project)
    assert "gold_items: up to date" in out
    assert _dt(project, "gold", "gold_items").version() == version
    assert "gold_items: up to date (silver_items@v0 unchanged" in _log(project, "report")

    _source(project, "INSERT INTO items VALUES (3, 'c', '3')")
    _run(project)
    assert _dt(project, "gold", "gold_items").version() == version + 1
    assert _dt(project, "gold", "gold_items").to_pyarrow_table().to_pylist() == [{"n": 3}]

    _run(project, "--force")
    assert _dt(project, "gold", "gold_items").version() == version + 2, "--force recomputes"
    _workflow(project, {"incremental": "id"}, {}, "SELECT count(*) * 10 AS n FROM silver_items")
    _run(project)
    assert _dt(project, "gold", "gold_items").to_pyarrow_table().to_pylist() == [{"n": 30}], "a changed SQL recomputes"
    assert "sql:" in _log(project, "report")


def test_a_check_added_to_an_up_to_date_gold_table_runs_on_the_next_run(tmp_path: Path) -> None:
    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    _workflow(project, {"incremental": "id"}, {}, "SELECT count(*) AS n FROM silver_items")
    _run(project)
    assert "gold_items: up to date" in _run(project)
    wf = yaml.safe_load((project / "workflows" / "shop.yml").read_text())
    wf["jobs"][2]["tables"][0]["tests"] = [{"expression": {"sql": "n >= 5", "severity": "fail"}}]
    (project / "workflows" / "shop.yml").write_text(yaml.safe_dump(wf))
    code, out = invoke(project, "run", "shop")  # same inputs, but a new check: it must run, and it fails
    assert code != 0 and "n >= 5" in out, out
    wf["jobs"][2]["tables"][0]["tests"] = [{"expression": {"sql": "n >= 2", "severity": "fail"}}]
    (project / "workflows" / "shop.yml").write_text(yaml.safe_dump(wf))
    out = _run(project)
    assert "gold_items: up to date" not in out and "n >= 2" in _log(project, "report")
    assert "gold_items: up to date" in _run(project), "once checked, an unchanged table is skipped again"


# -- item 11: crash leftovers -------------------------------------------------------------------------------

def _committed(folder: Path) -> bool:
    return any(p.name[:20].isdigit() for p in (folder / "_delta_log").glob("*")) if folder.exists() else False


@pytest.mark.parametrize("fault", ["storage.first_commit:1", "bronze.batch:1"])
def test_a_first_commit_killed_with_sigkill_leaves_nothing_to_trip_on(tmp_path: Path, fault: str) -> None:
    from tests.e2e.helpers import flowforge

    project = _project(tmp_path, [(i, f"n{i}", str(i)) for i in range(1, 6)])
    _workflow(project, {"batch_size": 2}, {})
    killed = flowforge("run", "shop", project=project, env={"FLOWFORGE_FAULT": fault}, check=False)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    folder = project / "lakehouse" / "bronze" / "bronze_items"
    assert folder.exists() and not _committed(folder), "killed before its first commit"

    listed = flowforge("tables", project=project)  # readers see no table, and no error
    assert "bronze_items" not in listed.stdout
    with Context.open(project) as ctx:
        assert ctx.store.open("bronze", "bronze_items") is None
        assert "bronze_items" not in {t.name for t in ctx.tables()}
    flowforge("run", "shop", project=project)
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items")] == [1, 2, 3, 4, 5], "no leftover rows"
    assert [r["id"] for r in _rows(project, "silver", "silver_items")] == [1, 2, 3, 4, 5]
    referenced = {Path(u).name for u in _dt(project, "bronze", "bronze_items").file_uris()}
    assert {p.name for p in folder.glob("*.parquet*")} == referenced, "the dead attempt's files are gone"
    assert [p.name for p in (folder / "_delta_log").iterdir() if not p.name[:20].isdigit()] == []


def test_vacuum_removes_orphans_older_than_the_retention_and_keeps_fresh_ones(tmp_path: Path) -> None:
    import os
    import time

    import pyarrow.parquet as pq

    project = _project(tmp_path, [(1, "a", "1")])
    _workflow(project, {})
    _run(project)
    folder = project / "lakehouse" / "bronze" / "bronze_items"
    orphan, fresh = folder / "part-00000-killed.parquet", folder / "part-00001-writing.parquet"
    for path in (orphan, fresh):
        pq.write_table(pa.table({"id": [9]}), path)
    old = time.time() - 3 * 3600
    os.utime(orphan, (old, old))
    code, out = invoke(project, "vacuum", "--retention-hours", "2")
    assert code == 0, out
    assert not orphan.exists() and fresh.exists()
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items")] == [1]
    code, out = invoke(project, "vacuum", "--retention-hours", "0.5")
    assert code == 1 and "below the minimum of 1h" in out
    code, out = invoke(project, "vacuum", "--retention-hours", "2", "--retention", "2h")
    assert code == 2 and "not both" in out


def test_a_full_refresh_killed_before_silver_is_finished_by_the_next_run(tmp_path: Path) -> None:
    from tests.e2e.helpers import flowforge

    project = _project(tmp_path, [(1, "a", "1"), (2, "b", "2")])
    _workflow(project, {"incremental": "id"}, {})
    _run(project)
    _source(project, "DELETE FROM items WHERE id = 1")
    killed = flowforge("run", "shop", "--full-refresh", "--select", "bronze_items", project=project,
                       env={"FLOWFORGE_FAULT": "silver.before_commit:1"}, check=False)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert [r["id"] for r in _rows(project, "bronze", "bronze_items")] == [2], "bronze was rebuilt"
    assert [r["id"] for r in _rows(project, "silver", "silver_items")] == [1, 2], "silver was not, yet"
    flowforge("run", "shop", project=project)  # a plain run: silver sees its bronze was rebuilt
    assert [r["id"] for r in _rows(project, "silver", "silver_items")] == [2]
    assert "bronze_items was rebuilt by a full refresh since version 0" in _log(project, "clean")

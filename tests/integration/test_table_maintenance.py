"""Table maintenance (issue 18 item 7, issue 11's cleanup): automatic compaction and vacuum of
micro-batch tables under the policy, ``flowforge optimize`` / ``flowforge vacuum``, files left by
killed runs, and a first commit that never completed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tests.cdc_project import BRONZE, SCD1, SCD2, WORKFLOW, CdcProject, current, scd2_problems
from tests.cli_helpers import invoke
from tests.integration.test_cdc_debezium_edges import event

POLICY = {"optimize_every": 4, "max_small_files": 3, "vacuum_retention": "1h"}


def _cdc(tmp_path: Path, **policy: Any) -> CdcProject:
    (tmp_path / "events").mkdir()
    return CdcProject(tmp_path / "p", {"type": "debezium", "path": str(tmp_path / "events")}, files="*.jsonl",
                      settings={"maintenance": {**POLICY, **policy}})


def _files(project: CdcProject, layer: str, table: str) -> int:
    return len(project.dt(layer, table).file_uris())


def _age(path: Path, hours: float) -> None:
    old = time.time() - hours * 3600
    os.utime(path, (old, old))


def test_micro_batches_are_compacted_and_vacuumed_under_the_policy(tmp_path: Path) -> None:
    project = _cdc(tmp_path)
    want: dict[int, tuple[Any, ...]] = {}
    for batch in range(12):
        lines = []
        for i in range(5):
            key = batch * 3 + i  # overlapping keys: every batch updates rows of the last one
            want[key] = (f"v{batch}",)
            lines.append(event("u" if key in want else "c", 1000 * batch + i + 1, None,
                               {"id": key, "name": f"v{batch}", "notes": None}))
        (tmp_path / "events" / f"b{batch:03d}.jsonl").write_text("\n".join(lines) + "\n")
        project.run()
    assert "OPTIMIZE" in [h["operation"] for h in project.dt("bronze", BRONZE).history()], "bronze was compacted"
    for layer, table in (("bronze", BRONZE), ("silver", SCD1), ("silver", SCD2)):
        assert _files(project, layer, table) <= 4, f"{table} holds few files after 12 micro-batches"
    assert current(project.rows(SCD1), ["name"]) == want
    assert scd2_problems(project.rows(SCD2)) == []
    events = [r["_event_id"] for r in project.rows(BRONZE, "bronze")]
    assert len(events) == len(set(events)) == 60, "compacting bronze added no row and lost none"
    idle = project.run()  # a compaction is not new data for silver
    assert "has no new change events" in project.logs(idle.run_id)
    with project.context() as ctx:
        actions = {a.action for a in ctx.audit_log(500, object_type="table")}
    assert {"table.optimize"} <= actions


def test_a_bronze_table_waits_for_its_readers(tmp_path: Path) -> None:
    """Files land in bronze by an ingest job; a silver job appends them. Compacting bronze before
    silver read its newest files would make silver read them twice."""
    root = tmp_path / "p"
    CdcProject(root, {"type": "debezium", "path": str(tmp_path)}, settings={"maintenance": POLICY})
    settings = yaml.safe_load((root / "flowforge.yml").read_text())
    (tmp_path / "csv").mkdir()
    settings["connections"]["drop"] = {"type": "files", "path": str(tmp_path / "csv"), "format": "csv"}
    (root / "flowforge.yml").write_text(yaml.safe_dump(settings))
    wf = {"name": "files", "jobs": [
        {"name": "land", "kind": "ingest", "connection": "drop",
         "tables": [{"files": "*.csv", "target": "bronze_csv"}]},
        {"name": "clean", "kind": "silver", "tables": [{"target": "silver_csv", "source": "bronze_csv",
                                                        "strategy": "append"}]}]}
    (root / "workflows" / "files.yml").write_text(yaml.safe_dump(wf))
    from flowforge.core.context import Context

    with Context.open(root) as ctx:
        for n in range(6):
            (tmp_path / "csv" / f"f{n}.csv").write_text(f"id,v\n{n},{n * 10}\n")
            assert ctx.run("files", select=["land"]).status == "success"  # silver lags behind
        skipped = [a for a in ctx.audit_log(100, action="table.skipped") if a.object_id == "bronze_csv"]
        assert skipped and "silver_csv has not read its newest rows" in skipped[0].after["detail"]
        assert "OPTIMIZE" not in [h["operation"] for h in ctx.store.open("bronze", "bronze_csv").history()]
        assert ctx.run("files").status == "success"  # silver catches up; then bronze may be compacted
        (tmp_path / "csv" / "f9.csv").write_text("id,v\n9,90\n")
        assert ctx.run("files").status == "success"
        assert "OPTIMIZE" in [h["operation"] for h in ctx.store.open("bronze", "bronze_csv").history()]
        rows = sorted((r["id"], r["v"]) for r in ctx.query("SELECT id, v FROM silver_csv").to_pylist())
    assert rows == [(n, n * 10) for n in (0, 1, 2, 3, 4, 5, 9)], "every file once in silver"


def test_optimize_and_vacuum_on_demand(tmp_path: Path) -> None:
    project = _cdc(tmp_path, auto=False)
    for batch in range(5):
        (tmp_path / "events" / f"b{batch}.jsonl").write_text(
            event("c", batch + 1, None, {"id": batch, "name": "x", "notes": None}) + "\n")
        project.run()
    assert _files(project, "silver", SCD1) == 5, "auto: false leaves the files alone"
    code, out = invoke(project.root, "optimize", SCD1)
    assert code == 0 and "5 files compacted into 1" in out, out
    assert _files(project, "silver", SCD1) == 1
    assert project.dt("silver", SCD1).to_pyarrow_table().num_rows == 5

    folder = project.path("silver", SCD1)
    orphan, young = folder / "part-00000-killed-run.parquet", folder / "part-00001-running.parquet"
    for path in (orphan, young):
        pq.write_table(pa.table({"id": [1]}), path)
    _age(orphan, 2)
    log = folder / "_delta_log"
    removed_in = max(int(p.name[:20]) for p in log.glob("0*.json"))  # the OPTIMIZE tombstoned 5 files
    entry = log / f"{removed_in:020d}.json"
    lines = [json.loads(x) for x in entry.read_text().splitlines()]
    for action in lines:  # as if the compaction had run two hours ago
        if "remove" in action:
            action["remove"]["deletionTimestamp"] -= 2 * 3600 * 1000
    entry.write_text("\n".join(json.dumps(a) for a in lines) + "\n")
    for checkpoint in [*log.glob("*.checkpoint.parquet"), log / "_last_checkpoint"]:
        checkpoint.unlink()  # the log alone now tells the (backdated) story
    old_versions = sum(1 for a in lines if "remove" in a)

    code, out = invoke(project.root, "vacuum", SCD1, "--retention", "1h")
    assert code == 0, out
    assert not orphan.exists() and young.exists(), "only files older than the retention go"
    assert len(list(folder.glob("*.parquet"))) == 1 + old_versions + 1, "old versions stay without --versions"
    code, out = invoke(project.root, "vacuum", SCD1, "--retention", "1h", "--versions")
    assert code == 0, out
    assert len(list(folder.glob("*.parquet"))) == 2, "the compacted file and the young one"
    assert project.dt("silver", SCD1).to_pyarrow_table().num_rows == 5
    code, out = invoke(project.root, "vacuum", "--retention", "10m")
    assert code == 1 and "below the minimum of 1h" in out


def test_a_first_commit_that_never_completed_leaves_nothing_to_trip_on(tmp_path: Path) -> None:
    project = _cdc(tmp_path)
    (tmp_path / "events" / "a.jsonl").write_text(event("c", 1, None, {"id": 1, "name": "a", "notes": None}) + "\n")
    project.run()
    ghost = project.path("silver", "ghost")  # killed between its data files and its first commit
    (ghost / "_delta_log").mkdir(parents=True)
    (ghost / "_delta_log" / "_commit_0a1b.json.tmp").write_text("{}")
    pq.write_table(pa.table({"id": [1]}), ghost / "part-00000-ghost.parquet")
    with project.context() as ctx:
        assert "ghost" not in {t.name for t in ctx.tables()}, "the catalog lists committed tables only"
        kept = ctx.maintenance.vacuum(["ghost"], retention="1h")
        assert ghost.exists() and "younger" in kept[0].detail, "a first commit may still be under way"
        for path in [ghost / "_delta_log" / "_commit_0a1b.json.tmp", ghost / "part-00000-ghost.parquet",
                     ghost / "_delta_log"]:
            _age(path, 2)
        done = ctx.maintenance.vacuum(retention="1h")
        assert not ghost.exists()
        assert any(d.table == "ghost" and "never-committed" in d.detail for d in done)
        assert {t.name for t in ctx.tables()} == {BRONZE, SCD1, SCD2}

    leftover = project.path("silver", SCD1 + "_next")  # and a table can be created where one was left behind
    (leftover / "_delta_log").mkdir(parents=True)
    settings = yaml.safe_load((project.root / "workflows" / f"{WORKFLOW}.yml").read_text())
    settings["jobs"][0]["tables"].append({"target": SCD1 + "_next", "strategy": "scd1", "keys": ["id"]})
    (project.root / "workflows" / f"{WORKFLOW}.yml").write_text(yaml.safe_dump(settings))
    project.run()
    assert project.rows(SCD1 + "_next") and len(project.rows(SCD1 + "_next")) == 1

"""One run at a time per workflow, between real processes: two simultaneous runs never load rows
twice; a ``--follow`` loop and a manual run collide without losing or duplicating an event; a run
killed with SIGKILL while holding its leases is taken over and shown as failed (abandoned)."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cli_helpers import init_project
from tests.e2e.helpers import CLI, flowforge, table
from tests.waiting import eventually

from flowforge.core.context import Context

pytestmark = pytest.mark.slow

LOAD = """\
name: load
jobs:
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - {files: "orders*.csv", target: bronze_orders, batch_size: 20000}
  - name: clean
    kind: silver
    tables:
      - {target: silver_orders, source: bronze_orders, keys: [order_id]}
"""


def write_orders(folder: Path, name: str, start: int, count: int) -> None:
    with (folder / name).open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["order_id", "amount"])
        out.writerows((i, i % 101) for i in range(start, start + count))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    (folder / "data" / "orders.csv").unlink()
    (folder / "workflows" / "load.yml").write_text(LOAD, encoding="utf-8")
    return folder


# -- two runs at once -----------------------------------------------------------------------------------
_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _run_at_once(project: str) -> tuple[str, int]:
    with Context.open(project) as ctx:
        ctx.metadata  # noqa: B018 - migrated before the race, so the race is between the runs
        _barrier.wait()
        summary = ctx.run("load")
        return summary.status, summary.run_id


def test_twenty_trials_of_two_simultaneous_runs_load_no_row_twice(project: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    total = 0
    with spawn.Pool(2, initializer=_init, initargs=(barrier,)) as pool:
        for trial in range(20):
            write_orders(project / "data", f"orders{trial:02d}.csv", total, 40_000 if trial == 0 else 500)
            total += 40_000 if trial == 0 else 500
            outcomes = pool.map(_run_at_once, [str(project), str(project)], chunksize=1)
            assert [status for status, _ in outcomes] == ["success", "success"], trial
    bronze = table(project, "bronze", "bronze_orders")
    ids = [r["order_id"] for r in bronze]
    assert len(ids) == total and len(set(ids)) == total, "every source row in bronze exactly once"
    assert len(table(project, "silver", "silver_orders")) == total
    with Context.open(project) as ctx:
        assert ctx.metadata.leases.held("workflow:") == []  # nothing left held


# -- --follow and a manual run ---------------------------------------------------------------------------
def _cdc_project(root: Path) -> Path:
    from flowforge.core.project import write_project_file

    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "events").mkdir()
    write_project_file(root, {"shop_events": {"type": "debezium", "path": str(root / "events")}},
                       data_roots=["events"])
    from flowforge.connectors.cdc.debezium.synthetic import CASTS

    wf = {"name": "shop_cdc", "jobs": [{"name": "products_cdc", "kind": "cdc", "connection": "shop_events",
                                        "files": "batch=*.jsonl", "target": "bronze_products_cdc", "batch_size": 50,
                                        "tables": [{"target": "products", "strategy": "scd1", "keys": ["id"],
                                                    "casts": CASTS}]}]}
    (root / "workflows" / "shop_cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
    return root


def test_follow_and_a_manual_run_collide_without_loss_or_duplicates(tmp_path: Path) -> None:
    from flowforge.connectors.cdc.debezium.synthetic import ProductStream

    root = _cdc_project(tmp_path / "shop")
    stream = ProductStream(keys=40, seed=21)
    stream.write(root / "events" / "batch=20250101T000001Z.jsonl", 200)
    follow = subprocess.Popen([*CLI, "-p", str(root), "run", "shop_cdc", "--follow", "--interval", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manual: subprocess.Popen[str] | None = None
    try:
        with Context.open(root) as ctx:
            assert eventually(lambda: ctx.metadata.leases.held("workflow:shop_cdc"), bool, attempts=600)
            stream.write(root / "events" / "batch=20250101T000002Z.jsonl", 200)
            manual = subprocess.Popen([*CLI, "-p", str(root), "run", "shop_cdc"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            queued = eventually(lambda: [r for r in ctx.runs("shop_cdc", 50) if r.status == "queued"], bool,
                                attempts=600)
            assert queued and queued[0].trigger == "manual"
            stream.write(root / "events" / "batch=20250101T000003Z.jsonl", 200)
            done = eventually(lambda: _rows(root, "bronze_products_cdc"), lambda n: n == 600, attempts=600)
            assert done == 600
    finally:
        follow.send_signal(signal.SIGINT)
        follow_out, follow_err = follow.communicate(timeout=120)
    assert follow.returncode == 0, follow_out + follow_err
    assert manual is not None
    out, err = manual.communicate(timeout=120)
    assert manual.returncode == 0, out + err
    assert "is already running: run" in out and "queued behind it" in out
    bronze = [r["_event_id"] for r in table(root, "bronze", "bronze_products_cdc")]
    assert len(bronze) == len(set(bronze)) == len(stream.history) == 600
    silver = {r["id"]: (r["name"], f"{r['price']:.2f}", r["qty"], r["description"])
              for r in table(root, "silver", "products")}
    assert silver == stream.expected_rows()


def _rows(root: Path, name: str) -> int:
    try:
        return len(table(root, "bronze", name))
    except Exception:  # not created yet
        return 0


# -- kill -9 of a lease holder ----------------------------------------------------------------------------
def test_a_killed_lease_holder_is_taken_over_and_its_run_shown_abandoned(project: Path) -> None:
    write_orders(project / "data", "orders1.csv", 0, 100_000)
    killed = flowforge("run", "load", project=project, env={"FLOWFORGE_FAULT": "bronze.batch:2"}, check=False)
    assert killed.returncode == -signal.SIGKILL
    with Context.open(project) as ctx:
        held = {lease.name: lease for lease in ctx.metadata.leases.held()}
        assert set(held) == {"workflow:load", "table:bronze_orders"}  # the dead process still holds them
        dead_run = held["workflow:load"].run_id
    listing = flowforge("runs", project=project).stdout
    assert "failed (abandoned)" in listing and "running" not in listing
    again = flowforge("run", "load", project=project)
    assert "PASS=2" in again.stdout
    with Context.open(project) as ctx:
        run = ctx.run_detail(dead_run)
        assert run.status_label == "failed (abandoned)" and "last seen at" in (run.error or "")
        assert ctx.metadata.leases.takeovers() >= 1
        metrics = __import__("flowforge.core.metrics", fromlist=["render"]).render(ctx)
    assert "flowforge_lease_takeovers_total 0" not in metrics
    ids = [r["order_id"] for r in table(project, "bronze", "bronze_orders")]
    assert len(ids) == len(set(ids)) == 100_000


def test_stopping_follow_while_it_waits_for_the_lease(project: Path, tmp_path: Path) -> None:
    """A follow loop queued behind a running run ends cleanly on Ctrl-C, holding nothing."""
    root = _cdc_project(tmp_path / "shop2")
    with Context.open(root) as ctx:
        ctx.register_workflow(ctx.load_workflow("shop_cdc"))
        from flowforge.runner.leases import LeaseKeeper, workflow_lease

        keeper = LeaseKeeper(ctx.metadata, timeout=30)
        assert keeper.try_acquire([workflow_lease("shop_cdc")]).acquired
        follow = subprocess.Popen([*CLI, "-p", str(root), "run", "shop_cdc", "--follow"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "300"})
        assert follow.stdout is not None
        first = follow.stdout.readline()
        assert "is already running" in first and "Waiting for it" in first
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=60)
        keeper.close()
        assert follow.returncode == 0, out + err
        assert ctx.metadata.leases.held() == []


"""Jobs on Celery workers through the RabbitMQ broker on 127.0.0.1: a 20-job workflow run across three
worker processes gives the same tables as in-process, and a worker killed with SIGKILL mid-job loses
nothing (its job is redelivered, the dead worker's table lease taken over, the job run again).

Each test uses its own queue, deleted afterwards, so tests and other users of the broker never meet.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.helpers import table

from flowforge.core.context import Context
from flowforge.core.project import init_project

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
AMQP_URL = os.environ.get("FLOWFORGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
TABLES = 7  # 7 ingest + 7 silver + 6 gold jobs = 20
AUDIT = {"_batch_id", "_ingestion_time", "_silver_updated_at", "_source_file", "_file_modified_time",
         "_source_system"}


@pytest.fixture(scope="module")
def broker() -> str:
    try:
        from kombu import Connection

        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # no broker here; the reason is reported
        reason = f"RabbitMQ not reachable at 127.0.0.1:5672: {str(exc).splitlines()[0]}"
        if os.environ.get("FLOWFORGE_REQUIRE_RABBITMQ"):
            pytest.fail(reason)
        pytest.skip(reason)
    return AMQP_URL


@pytest.fixture
def queue(broker: str) -> Iterator[str]:
    name = f"flowforge-test-{uuid.uuid4().hex[:10]}"
    yield name
    from kombu import Connection

    with Connection(broker) as conn:
        conn.default_channel.queue_delete(name)


def workflow() -> dict[str, Any]:
    jobs: list[dict[str, Any]] = []
    for i in range(TABLES):
        jobs.append({"name": f"land_{i}", "kind": "ingest", "connection": "local_files",
                     "tables": [{"files": f"t{i}_*.csv", "target": f"bronze_t{i}", "batch_size": 5000}]})
        jobs.append({"name": f"clean_{i}", "kind": "silver",
                     "tables": [{"target": f"silver_t{i}", "source": f"bronze_t{i}", "keys": ["id"]}]})
    for i in range(TABLES - 1):
        jobs.append({"name": f"join_{i}", "kind": "gold", "tables": [{
            "target": f"gold_pair_{i}",
            "sql": f"SELECT a.id, a.v + b.v AS total FROM silver_t{i} a JOIN silver_t{i + 1} b USING (id)"}]})
    return {"name": "wide", "jobs": jobs}


def make_project(root: Path, executor: dict[str, Any] | None) -> Path:
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "data" / "orders.csv").unlink()
    for i in range(TABLES):
        with (root / "data" / f"t{i}_1.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["id", "v"])
            out.writerows((k, (k * (i + 3)) % 1000) for k in range(20_000 + i * 1000))
    (root / "workflows" / "wide.yml").write_text(yaml.safe_dump(workflow(), sort_keys=False))
    if executor:
        with (root / "flowforge.yml").open("a") as fh:
            fh.write("\n" + yaml.safe_dump(executor))
    return root


class Workers:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    def start(self, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        log = self.project.parent / f"worker{len(self.procs)}.log"
        full = {**os.environ, "FLOWFORGE_SCHEDULER__LEASE_TIMEOUT": "5", **(env or {})}
        with log.open("w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(self.project), "worker"],
                                    stdout=fh, stderr=subprocess.STDOUT, text=True, env=full)
        self.procs.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rows(project: Path, layer: str, name: str) -> list[tuple[Any, ...]]:
    found = table(project, layer, name)
    return sorted(tuple(v for k, v in sorted(r.items()) if k not in AUDIT) for r in found)


def same_tables(distributed: Path, local: Path) -> None:
    for i in range(TABLES):
        assert rows(distributed, "bronze", f"bronze_t{i}") == rows(local, "bronze", f"bronze_t{i}")
        assert rows(distributed, "silver", f"silver_t{i}") == rows(local, "silver", f"silver_t{i}")
    for i in range(TABLES - 1):
        assert rows(distributed, "gold", f"gold_pair_{i}") == rows(local, "gold", f"gold_pair_{i}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    local = make_project(tmp_path_factory.mktemp("local") / "local", None)
    with Context.open(local) as ctx:
        assert ctx.run("wide").status == "success"
    return local


@pytest.fixture
def setup(tmp_path: Path, queue: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Workers]]:
    monkeypatch.setenv("FLOWFORGE_SCHEDULER__LEASE_TIMEOUT", "5")
    project = make_project(tmp_path / "distributed", {"executor": "celery", "executor_options": {
        "broker_url": AMQP_URL, "queue": queue}})
    workers = Workers(project)
    try:
        yield project, workers
    finally:
        workers.stop()
        shutil.rmtree(project / "lakehouse", ignore_errors=True)


def test_twenty_jobs_on_three_workers_give_the_tables_of_an_in_process_run(setup: tuple[Path, Workers],
                                                                         reference: Path) -> None:
    project, workers = setup
    for _ in range(3):
        workers.start()
    with Context.open(project) as ctx:
        summary = ctx.run("wide")
        assert summary.status == "success", [e.error for e in summary.failed]
        run = ctx.run_detail(summary.run_id)
    assert len(run.job_runs) == 20 and {j.status for j in run.job_runs} == {"success"}
    pids = {j.worker.split(":")[1] for j in run.job_runs if j.worker}
    assert pids == {str(p.pid) for p in workers.procs}  # the jobs ran on the three workers, not here
    same_tables(project, reference)


def test_a_worker_killed_mid_job_loses_nothing(setup: tuple[Path, Workers], reference: Path) -> None:
    project, workers = setup
    doomed = workers.start({"FLOWFORGE_FAULT": "bronze.batch:2"})  # dies in its first job's second batch
    result: dict[str, Any] = {}

    def coordinate() -> None:
        with Context.open(project) as ctx:
            result["summary"] = ctx.run("wide")

    thread = threading.Thread(target=coordinate)
    thread.start()
    assert doomed.wait(120) == -signal.SIGKILL
    workers.start()
    workers.start()
    thread.join(timeout=600)
    summary = result["summary"]
    assert summary.status == "success", [e.error for e in summary.failed]
    with Context.open(project) as ctx:
        run = ctx.run_detail(summary.run_id)
        taken = [j for j in run.job_runs if "took over" in (j.log or "")]
        assert len(taken) == 1 and f"pid {doomed.pid}" in (taken[0].log or "")
        assert str(doomed.pid) not in (taken[0].worker or "")
        assert ctx.metadata.leases.takeovers() >= 1
    same_tables(project, reference)

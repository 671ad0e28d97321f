"""Leases in the metadata store and what runs do with them: one run at a time per workflow (queue,
skip, fail), takeover of a dead holder's lease, runs whose process is gone shown as failed
(abandoned), and cancelling a queued run."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.cli_helpers import init_project
from tests.waiting import eventually

from flowforge.core.context import Context
from flowforge.metadata.tables import runs
from flowforge.runner.executor import WorkflowBusy
from flowforge.runner.leases import LeaseKeeper, workflow_lease
from flowforge.runner.owner import host, is_dead, process_id

TINY = ("name: {name}\n{extra}jobs:\n"
        "  - {{name: g, kind: gold, tables: [{{target: gold_{name}, sql: SELECT 1 AS x}}]}}\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = init_project(tmp_path / "p")
    for name, extra in (("queued", ""), ("skipping", "concurrency: skip\n"), ("failing", "concurrency: fail\n")):
        (folder / "workflows" / f"{name}.yml").write_text(TINY.format(name=name, extra=extra), encoding="utf-8")
    return folder


@pytest.fixture
def ctx(project: Path) -> Iterator[Context]:
    with Context.open(project) as context:
        yield context


def test_a_lease_is_exclusive_reentrant_and_released(ctx: Context) -> None:
    with LeaseKeeper(ctx.metadata, timeout=30) as a, LeaseKeeper(ctx.metadata, timeout=30) as b:
        assert a.try_acquire(["table:t1", "table:t2"]).acquired
        assert a.try_acquire(["table:t1"]).acquired  # re-entrant for its holder
        refused = b.try_acquire(["table:t2", "table:t3"])
        assert not refused.acquired and refused.blocker is not None and refused.blocker.holder == a.holder
        assert ctx.metadata.leases.get("table:t3").holder is None  # all or nothing
        a.release(["table:t1"])
        assert not b.try_acquire(["table:t1"]).acquired  # still held once
        a.release(["table:t1", "table:t2"])
        assert b.try_acquire(["table:t1", "table:t2", "table:t3"]).acquired


def test_an_expired_lease_is_taken_over_and_its_run_marked_abandoned(ctx: Context) -> None:
    ctx.register_workflow(ctx.load_workflow("queued"))
    elsewhere = "db-batch-07:4242:1:cafe"  # another machine: only the expiry can tell it is gone
    run = ctx.metadata.start_run("queued", "schedule", "ops", owner=elsewhere,
                                 expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert ctx.metadata.leases.acquire([workflow_lease("queued")], elsewhere, timeout=1, is_dead=is_dead,
                                       run_id=run.id, now=past).acquired
    with LeaseKeeper(ctx.metadata, timeout=30) as keeper:
        grant = keeper.try_acquire([workflow_lease("queued")], abandon=True)
    assert grant.acquired and [lease.holder for lease in grant.took_over] == [elsewhere]
    after = ctx.metadata.get_run(run.id)
    assert after.status == "failed" and after.reason == "abandoned" and after.status_label == "failed (abandoned)"
    assert "db-batch-07 pid 4242" in after.error and f"last seen at {past:%Y-%m-%d %H:%M:%S} UTC" in after.error
    assert ctx.metadata.leases.takeovers() == 1


def test_a_holder_whose_process_died_on_this_host_is_known_dead_at_once(ctx: Context) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder_of_child = f"{host()}:{child.pid}:{_ticks(child.pid)}:abcd"
    assert not is_dead(holder_of_child)
    assert not is_dead(process_id() + ":x")
    child.kill()  # not reaped yet: a zombie still has its pid
    assert eventually(lambda: is_dead(holder_of_child), bool)
    child.wait()
    assert is_dead(holder_of_child)
    assert not is_dead("some-other-host:1:1:x")


def _ticks(pid: int) -> str:
    from flowforge.runner.owner import _start_ticks

    return _start_ticks(pid)


def test_runs_never_show_as_running_once_their_process_is_gone(project: Path, ctx: Context) -> None:
    ctx.register_workflow(ctx.load_workflow("queued"))
    old = ctx.metadata.start_run("queued", "manual", "ana")  # as runs were recorded before run owners
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = ctx.metadata.start_run("queued", "manual", "ana", owner=f"{host()}:{child.pid}:{_ticks(child.pid)}:t",
                                  expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    code, out = wide(project, "runs")
    assert code == 0
    assert _row(out, old.id) and "failed (abandoned)" in _row(out, old.id)  # no process can be shown to hold it
    assert "running" in _row(out, gone.id)  # its process is alive
    child.kill()
    child.wait()
    code, out = wide(project, "runs", "--id", str(gone.id))
    assert code == 0 and "failed (abandoned)" in out and f"pid {child.pid}" in out
    assert "did not record run owners" in ctx.metadata.get_run(old.id).error
    code, out = wide(project, "runs")
    assert "running" not in out


def wide(project: Path, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from flowforge.cli.main import app

    result = CliRunner().invoke(app, ["-p", str(project), *args], env={"COLUMNS": "300"})
    return result.exit_code, result.output


def _row(out: str, run_id: int) -> str:
    return next((line for line in out.splitlines() if line.startswith(f"│ {run_id} ")), "")


def _hold(ctx: Context, name: str) -> tuple[LeaseKeeper, int]:
    """Another run of ``name`` holding its lease, as a second process would."""
    ctx.register_workflow(ctx.load_workflow(name))
    keeper = LeaseKeeper(ctx.metadata, timeout=30)
    run = ctx.metadata.start_run(name, "schedule", "scheduler", owner=keeper.holder,
                                 expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    keeper.keep_alive(run.id)
    assert keeper.try_acquire([workflow_lease(name)], run_id=run.id).acquired
    return keeper, run.id


def test_concurrency_fail_and_skip_refuse_naming_the_running_run(ctx: Context) -> None:
    for name, skipped in (("failing", False), ("skipping", True)):
        keeper, running = _hold(ctx, name)
        with pytest.raises(WorkflowBusy, match=f"already running: run {running} .schedule, by scheduler") as exc:
            ctx.run(name)
        assert exc.value.skipped is skipped and exc.value.running == running
        assert f"flowforge cancel {running}" in (exc.value.hint or "")
        keeper.close()
        assert ctx.run(name).status == "success"


def test_concurrency_queue_waits_for_the_running_run(ctx: Context) -> None:
    keeper, running = _hold(ctx, "queued")
    started: list[int] = []
    waits: list[str] = []
    result: dict[str, object] = {}

    def second() -> None:
        with Context(ctx.settings) as other:
            result["summary"] = other.run("queued", on_start=started.append, on_wait=waits.append)

    thread = threading.Thread(target=second)
    thread.start()
    assert eventually(lambda: started, bool)
    assert ctx.metadata.get_run(started[0]).status == "queued"
    assert waits and f"run {running}" in waits[0] and f"Run {started[0]} is queued" in waits[0]
    ctx.metadata.finish_run(running, status="success")
    keeper.close()
    thread.join(timeout=60)
    summary = result["summary"]
    assert summary.status == "success" and summary.run_id == started[0]  # type: ignore[attr-defined]


def test_a_queued_run_can_be_cancelled_before_it_starts(ctx: Context) -> None:
    keeper, _ = _hold(ctx, "queued")
    started: list[int] = []
    result: dict[str, object] = {}

    def second() -> None:
        with Context(ctx.settings) as other:
            result["summary"] = other.run("queued", on_start=started.append)

    thread = threading.Thread(target=second)
    thread.start()
    assert eventually(lambda: started, bool)
    ctx.run_service.cancel(started[0])
    thread.join(timeout=60)
    keeper.close()
    cancelled = ctx.metadata.get_run(started[0])
    assert cancelled.status == "cancelled" and cancelled.job_runs == ()
    assert ctx.audit_log(5, action="run.cancel")[0].actor == ctx.actor  # who cancelled it


def test_finished_runs_cannot_be_cancelled(ctx: Context) -> None:
    done = ctx.run("queued")
    with pytest.raises(Exception, match=f"Run {done.run_id} is not running .it is success"):
        ctx.run_service.cancel(done.run_id)
    with ctx.metadata.engine.begin() as conn:  # a heartbeat that stopped long ago is not "alive"
        conn.execute(update(runs).where(runs.c.id == done.run_id).values(status="running", expires_at=dt.datetime(
            2020, 1, 1, tzinfo=dt.UTC)))
    assert ctx.reap() == [done.run_id]

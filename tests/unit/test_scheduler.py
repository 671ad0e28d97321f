"""The scheduler under a clock the test moves: which slots fire, how missed ones catch up, paused
workflows, two schedulers on one store, after-triggers and backfills. Fires are recorded by a
launcher instead of running the workflow, except where the run itself is what is checked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli_helpers import init_project, invoke
from typer.testing import CliRunner

from flowforge.cli.main import app
from flowforge.core.context import Context
from flowforge.metadata.fires import FireRecord
from flowforge.runner.scheduler import Scheduler

T0 = dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC)  # a Friday, two days before Berlin's spring change
TINY = "jobs:\n  - {name: g, kind: gold, tables: [{target: gold_NAME, sql: SELECT 1 AS x}]}\n"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def write(project: Path, name: str, triggers: str = "", extra: str = "") -> None:
    body = f"name: {name}\n{extra}" + TINY.replace("NAME", name) + (f"triggers:\n{triggers}" if triggers else "")
    (project / "workflows" / f"{name}.yml").write_text(body, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    return folder


@pytest.fixture
def ctx(project: Path) -> Iterator[Context]:
    with Context.open(project) as context:
        yield context


def scheduler(ctx: Context, clock: Clock, fired: list[FireRecord]) -> Scheduler:
    return Scheduler(ctx, clock=clock, launch=fired.append, threads=2, tick=0.01)


def drive(sched: Scheduler, clock: Clock, until: dt.datetime, step: dt.timedelta) -> None:
    while clock.now < until:
        clock.now += step
        sched.tick()
    for _ in range(3):  # fires claimed in the last tick start when a thread is free
        sched.tick()
    sched._pool.shutdown(wait=True)


def slots(fired: list[FireRecord], workflow: str | None = None) -> list[dt.datetime]:
    return sorted(f.slot for f in fired if f.slot and (workflow is None or f.workflow_name == workflow))


def test_cron_in_berlin_fires_the_expected_slots_across_the_spring_change(project: Path, ctx: Context) -> None:
    write(project, "nightly", '  - {cron: "30 2 * * *", timezone: Europe/Berlin, catchup: all}\n')
    write(project, "hourly", '  - {cron: "0 * * * *", timezone: Europe/Berlin, catchup: all}\n')
    clock, fired = Clock(T0), []
    drive(scheduler(ctx, clock, fired), clock, dt.datetime(2026, 3, 31, tzinfo=dt.UTC), dt.timedelta(minutes=10))
    assert [f"{s:%m-%d %H:%M}" for s in slots(fired, "nightly")] == ["03-28 01:30", "03-29 01:00", "03-30 00:30"]
    hours = [T0 + dt.timedelta(hours=h) for h in range(1, 85)]  # 13:00 on the 27th .. 00:00 on the 31st, UTC
    assert slots(fired, "hourly") == hours


def test_missed_slots_follow_catchup(project: Path, ctx: Context) -> None:
    write(project, "latest", "  - {every: 1h}\n")
    write(project, "everything", "  - {every: 1h, catchup: all}\n")
    write(project, "skip_missed", "  - {every: 1h, catchup: none}\n")
    clock, fired = Clock(T0), []
    sched = scheduler(ctx, clock, fired)
    sched.tick()  # arms the triggers at 12:00
    clock.now = T0 + dt.timedelta(hours=5, minutes=30)  # down for five slots
    for _ in range(7):
        sched.tick()
    sched._pool.shutdown(wait=True)
    assert slots(fired, "latest") == [T0 + dt.timedelta(hours=5)]
    assert "missed" in next(f.detail for f in fired if f.workflow_name == "latest")
    assert slots(fired, "everything") == [T0 + dt.timedelta(hours=h) for h in range(1, 6)]
    assert slots(fired, "skip_missed") == []
    fired.clear()
    sched = scheduler(ctx, clock, fired)
    drive(sched, clock, T0 + dt.timedelta(hours=6), dt.timedelta(minutes=30, seconds=30))  # to 18:00:30
    assert slots(fired, "skip_missed") == [T0 + dt.timedelta(hours=6)]  # 30 s late is on time: it fires


def test_paused_workflows_fire_nothing_and_catch_up_on_resume(project: Path, ctx: Context) -> None:
    write(project, "pausable", "  - {every: 1h}\n")
    clock, fired = Clock(T0), []
    sched = scheduler(ctx, clock, fired)
    sched.tick()
    ctx.workflows.pause("pausable")
    drive(sched, clock, T0 + dt.timedelta(hours=4, minutes=10), dt.timedelta(minutes=20))
    assert fired == []
    ctx.workflows.resume("pausable")
    sched = scheduler(ctx, clock, fired)
    sched.tick()
    sched._pool.shutdown(wait=True)
    assert slots(fired) == [T0 + dt.timedelta(hours=4)]  # catchup latest: the newest missed slot only


def test_two_schedulers_on_one_store_fire_each_slot_once(project: Path, ctx: Context) -> None:
    write(project, "shared", "  - {every: 1m, catchup: all}\n")
    clock, fired_a, fired_b = Clock(T0), [], []
    with Context.open(project) as other:
        a, b = scheduler(ctx, clock, fired_a), scheduler(other, clock, fired_b)
        for _ in range(120):
            clock.now += dt.timedelta(seconds=30)
            a.tick()
            b.tick()
        a._pool.shutdown(wait=True)
        b._pool.shutdown(wait=True)
    every = slots(fired_a) + slots(fired_b)
    assert sorted(every) == [T0 + dt.timedelta(minutes=m) for m in range(1, 61)]
    assert len(set(every)) == len(every) == 60


def test_after_trigger_fires_once_per_upstream_success(project: Path, ctx: Context) -> None:
    write(project, "upstream")
    write(project, "downstream", "  - {after: [upstream]}\n")
    clock, fired = Clock(T0), []
    sched = scheduler(ctx, clock, fired)
    sched.tick()  # arms: runs before this do not count
    assert ctx.run("upstream").status == "success"
    sched.tick()
    sched.tick()
    (project / "workflows" / "upstream.yml").write_text(
        "name: upstream\njobs:\n  - {name: g, kind: gold, tables: [{target: gold_upstream, sql: SELECT nope}]}\n")
    assert ctx.run("upstream").status == "failed"
    sched.tick()
    sched._pool.shutdown(wait=True)
    assert [f.workflow_name for f in fired] == ["downstream"]
    assert fired[0].kind == "after" and "upstream" in fired[0].slot_key


def test_backfill_queues_past_slots_once_and_the_scheduler_runs_them(project: Path, ctx: Context) -> None:
    write(project, "daily", '  - {cron: "0 6 * * *"}\n')
    ctx.schedules.sync_files()
    start, end = dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 4, 7, tzinfo=dt.UTC)
    first = ctx.schedules.backfill("daily", start, end, now=T0)
    assert [f"{f.slot:%m-%d %H:%M}" for f in first.queued] == ["03-01 06:00", "03-02 06:00", "03-03 06:00",
                                                                 "03-04 06:00"]
    again = ctx.schedules.backfill("daily", start, end, now=T0)
    assert again.queued == () and len(again.already) == 4
    clock, fired = Clock(T0), []
    sched = scheduler(ctx, clock, fired)
    for _ in range(6):
        sched.tick()
    sched._pool.shutdown(wait=True)
    assert [f"{f.slot:%m-%d}" for f in fired if f.kind == "backfill"] == ["03-01", "03-02", "03-03", "03-04"]
    with pytest.raises(Exception, match="past slots only"):
        ctx.schedules.backfill("daily", start, T0 + dt.timedelta(days=1), now=T0)


def test_backfilled_slot_is_not_fired_again_by_the_schedule(project: Path, ctx: Context) -> None:
    write(project, "hourly_bf", "  - {every: 1h, catchup: all}\n")
    clock, fired = Clock(T0), []
    sched = scheduler(ctx, clock, fired)
    sched.tick()
    ctx.schedules.backfill("hourly_bf", T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1), now=T0 +
                           dt.timedelta(hours=1))
    drive(sched, clock, T0 + dt.timedelta(hours=3), dt.timedelta(minutes=30))
    assert slots(fired) == [T0 - dt.timedelta(hours=1), T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2),
                            T0 + dt.timedelta(hours=3)]


def test_validate_refuses_a_bad_schedule_with_the_reason(project: Path) -> None:
    write(project, "bad", extra="schedule: banana\n")
    code, out = invoke(project, "validate", "bad")
    assert code == 1
    assert "schedule" in out and "'banana' is not a cron expression" in out and "bad.yml:2" in out
    write(project, "bad2", "  - {cron: \"0 6 * * *\", timezone: Europe/Berlln}\n")
    code, out = invoke(project, "validate", "bad2")
    assert code == 1 and "unknown time zone 'Europe/Berlln'" in out
    write(project, "bad3", "  - {after: [nobody_has_this]}\n")
    code, out = invoke(project, "validate", "bad3")
    assert code == 1 and "unknown workflow(s) nobody_has_this" in out


def test_schedules_lists_the_next_five_fire_times(project: Path) -> None:
    write(project, "legacy", extra='schedule: "15 3 * * *"\n')
    result = CliRunner().invoke(app, ["-p", str(project), "schedules", "legacy"], env={"COLUMNS": "300"})
    code, out = result.exit_code, result.output
    assert code == 0, out
    assert "cron 15 3 * * * (UTC)" in out
    assert out.count(":15 UTC") == 5  # five daily 03:15 slots

"""Two scheduler processes on one PostgreSQL metadata store, on an accelerated clock (a virtual
minute every 0.05 s): an every-minute trigger with catchup all has 200 slots, and each fires exactly
once across both schedulers."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import time
from pathlib import Path

import pytest
from tests.cli_helpers import init_project

from flowforge.core.context import Context

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

T0 = dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.UTC)
SLOTS = 200
SPEED = 1200.0  # virtual seconds per real second: a minute every 0.05 s


def _scheduler_process(project: str, start_real: float, out: str) -> None:
    from flowforge.runner.scheduler import Scheduler

    end = T0 + dt.timedelta(minutes=SLOTS, seconds=30)  # the clock stops here: the last slot is the 200th

    def clock() -> dt.datetime:
        return min(end, T0 + dt.timedelta(seconds=(time.time() - start_real) * SPEED))

    launched: list[str] = []
    with Context.open(project) as ctx:
        scheduler = Scheduler(ctx, clock=clock, launch=lambda fire: launched.append(fire.slot_key), threads=4,
                              tick=0.005)
        while clock() < end:
            scheduler.tick()
        for _ in range(20):
            scheduler.tick()
        scheduler._pool.shutdown(wait=True)
    Path(out).write_text(json.dumps({"launched": launched, "claimed": scheduler.claimed}))


def test_two_schedulers_fire_each_of_200_slots_exactly_once(tmp_path: Path, pg_database: str) -> None:
    project = init_project(tmp_path / "p")
    (project / "workflows" / "example.yml").unlink()
    with (project / "flowforge.yml").open("a") as fh:
        fh.write(f"\nmetadata_url: {pg_database}\n")
    (project / "workflows" / "every_minute.yml").write_text(
        "name: every_minute\njobs:\n  - {name: g, kind: gold, tables: [{target: gold_m, sql: SELECT 1 AS x}]}\n"
        "triggers:\n  - {every: 1m, catchup: all}\n", encoding="utf-8")
    with Context.open(project) as ctx:
        wf = ctx.load_workflow("every_minute")
        ctx.register_workflow(wf)
        record = ctx.metadata.get_workflow("every_minute")
        ctx.metadata.fires.arm(record.id, wf.all_triggers()[0].key(), "every", None, now=T0)
    spawn = multiprocessing.get_context("spawn")
    start_real = time.time() + 6  # both processes are up before virtual time reaches T0
    outs = [tmp_path / f"scheduler{i}.json" for i in range(2)]
    procs = [spawn.Process(target=_scheduler_process, args=(str(project), start_real, str(out))) for out in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    results = [json.loads(out.read_text()) for out in outs]
    launched = [slot for r in results for slot in r["launched"]]
    expected = [(T0 + dt.timedelta(minutes=m)).isoformat() for m in range(1, SLOTS + 1)]
    assert sorted(launched) == expected  # every slot, and none twice
    assert sum(r["claimed"] for r in results) == SLOTS
    with Context.open(project) as ctx:
        fires = ctx.schedules.fires("every_minute", limit=1000)
        assert len(fires) == SLOTS and {f.status for f in fires} == {"started"}

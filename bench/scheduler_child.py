"""The scheduler benchmark's measured side, run in a child process (it imports FlowForge; the harness
never does). Prints one JSON object as its last stdout line.

    python bench/scheduler_child.py lag --dir DIR --workflows 10 --every 1 --fires 500 --threads 4
    python bench/scheduler_child.py burst --dir DIR --workflows 1000 --threads 4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

TINY = "name: {name}\njobs:\n  - {{name: g, kind: gold, tables: [{{target: gold_{name}, sql: SELECT 1 AS x}}]}}\n" \
       "triggers:\n  - {{every: {every}}}\n"


def project(folder: Path, workflows: int, every: str) -> Path:
    from flowforge.core.project import init_project

    init_project(folder)
    (folder / "workflows" / "example.yml").unlink()
    for i in range(workflows):
        name = f"tiny_{i:04d}"
        (folder / "workflows" / f"{name}.yml").write_text(TINY.format(name=name, every=every), encoding="utf-8")
    return folder


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[min(998, max(0, round(q * 1000) - 1))]


def summary(lags: list[float]) -> dict[str, Any]:
    return {"fires": len(lags), "p50_s": round(quantile(lags, 0.5), 4), "p90_s": round(quantile(lags, 0.9), 4),
            "p99_s": round(quantile(lags, 0.99), 4), "max_s": round(max(lags), 4)}


def finished_scheduled(ctx: Any) -> int:
    from sqlalchemy import func, select

    from flowforge.metadata.tables import runs

    with ctx.metadata.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(runs).where(
            runs.c.trigger == "schedule", runs.c.status.in_(("success", "failed", "partial")))).scalar_one())


def first_job_starts(ctx: Any, since: dt.datetime) -> list[float]:
    """Seconds from ``since`` to each scheduled run's first job start."""
    from sqlalchemy import func, select

    from flowforge.metadata.tables import job_runs, runs

    query = (select(func.min(job_runs.c.started_at)).join(runs, runs.c.id == job_runs.c.run_id)
             .where(runs.c.trigger == "schedule").group_by(job_runs.c.run_id))
    with ctx.metadata.engine.connect() as conn:
        starts = [row[0] for row in conn.execute(query)]
    return [((s if s.tzinfo else s.replace(tzinfo=dt.UTC)) - since).total_seconds() for s in starts]


def lag(args: argparse.Namespace) -> dict[str, Any]:
    """Workflows firing every ``every`` seconds until ``fires`` scheduled runs ended; lag = slot to first job."""
    from flowforge.core.context import Context
    from flowforge.runner.scheduler import Scheduler

    folder = project(Path(args.dir), args.workflows, f"{args.every}s")
    with Context.open(folder) as ctx:
        ctx.schedules.sync_files()
        stop = threading.Event()
        scheduler = Scheduler(ctx, threads=args.threads)
        thread = threading.Thread(target=scheduler.run, args=(stop,))
        started = time.perf_counter()
        thread.start()
        while finished_scheduled(ctx) < args.fires + args.warmup and time.perf_counter() - started < args.limit:
            time.sleep(0.5)
        stop.set()
        thread.join()
        seconds = time.perf_counter() - started
        lags = ctx.metadata.fires.lags(args.fires + args.warmup)[: args.fires]  # newest first: warm-up left out
    return {"scenario": "lag", "workflows": args.workflows, "every_s": args.every, "threads": args.threads,
            "seconds": round(seconds, 2), **summary(lags)}


def burst(args: argparse.Namespace) -> dict[str, Any]:
    """``workflows`` tiny workflows all due at the same instant (an hourly slot): how long until every
    run has ended, so how many an hour one server starts, and each run's lag from its slot."""
    from flowforge.core.context import Context
    from flowforge.runner.scheduler import Scheduler
    from flowforge.spec.workflow import Workflow

    folder = project(Path(args.dir), args.workflows, "1h")
    with Context.open(folder) as ctx:
        setup = time.perf_counter()
        ctx.schedules.sync_files()
        past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        for record in ctx.metadata.list_workflows():  # armed two hours ago: the newest hourly slot is due now
            trigger = Workflow.model_validate(record.spec).all_triggers()[0]
            ctx.metadata.fires.arm(record.id, trigger.key(), trigger.kind, None, now=past)
        setup = time.perf_counter() - setup
        stop = threading.Event()
        scheduler = Scheduler(ctx, threads=args.threads)
        ticks: list[float] = []
        original = scheduler.tick

        def timed_tick() -> Any:
            begin = time.perf_counter()
            try:
                return original()
            finally:
                ticks.append(time.perf_counter() - begin)

        scheduler.tick = timed_tick  # type: ignore[method-assign]
        thread = threading.Thread(target=scheduler.run, args=(stop,))
        started = time.perf_counter()
        due_since = dt.datetime.now(dt.UTC)  # every slot is overdue: lag counts from the scheduler's start
        thread.start()
        while finished_scheduled(ctx) < args.workflows and time.perf_counter() - started < args.limit:
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        done = finished_scheduled(ctx)
        idle_ticks = len(ticks)
        time.sleep(3)  # a few ticks with nothing due: the steady cost of looking at every trigger
        stop.set()
        thread.join()
        idle = ticks[idle_ticks:]
        lags = first_job_starts(ctx, due_since)
    return {"scenario": "burst", "workflows": args.workflows, "threads": args.threads, "runs_ended": done,
            "seconds": round(seconds, 2), "runs_per_hour": round(done / seconds * 3600) if seconds else None,
            "setup_seconds": round(setup, 1),
            "idle_tick_ms": round(statistics.median(idle) * 1000, 1) if idle else None, **summary(lags)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["lag", "burst"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--workflows", type=int, default=10)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--fires", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--limit", type=float, default=3600.0, help="give up after this many seconds")
    args = parser.parse_args()
    result = lag(args) if args.scenario == "lag" else burst(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

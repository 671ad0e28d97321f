"""``scheduler``: how fast the scheduler starts what is due, with SQLite metadata on one server.

* **lag** — for each ``WxS`` of ``--lag`` (default ``2x1,10x5``): W tiny workflows (one gold job,
  ``SELECT 1``) each with ``every: S`` seconds, until ``--fires`` scheduled runs have ended (after 20
  warm-up fires): seconds from each slot to its run's first job start, p50/p90/p99/max. Slots of every
  workflow fall on the same instants, so ``2x1`` is a steady two fires a second and ``10x5`` the same
  rate in bursts of ten, on ``scheduler.threads`` (4) threads.
* **burst** — ``--burst`` tiny workflows with ``every: 1h``, all due at once (as at the top of an
  hour): seconds until every run has ended, hence runs per hour one server starts; seconds from the
  scheduler's start to each run's first job; and the median cost of one tick with nothing due (it looks
  at every trigger of every workflow).

Each runs in its own child process (bench/scheduler_child.py) on a fresh project.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common import Options, child_env, remove
from measure import format_table, run_child

CHILD = Path(__file__).resolve().parent / "scheduler_child.py"


def run_scheduler(opts: Options, fires: int, lag: list[tuple[int, int]], burst: int) -> dict[str, Any]:
    results = []
    cases = [("lag", ["--workflows", str(w), "--every", str(s), "--fires", str(fires)]) for w, s in lag]
    for scenario, extra in [*cases, ("burst", ["--workflows", str(burst)])]:
        folder = opts.workdir / f"scheduler-{scenario}"
        remove(folder)
        print(f"scheduler {scenario} {' '.join(extra)} ...", flush=True)
        sample = run_child([opts.python, str(CHILD), scenario, "--dir", str(folder), *extra], env=child_env(),
                           timeout=3 * 3600)
        result: dict[str, Any] = sample.last_json() if sample.ok else {"scenario": scenario, "error": sample.failure()}
        result.update(ok=sample.ok, wall_seconds=round(sample.seconds, 1), peak_rss_mb=round(sample.peak_rss_bytes /
                                                                                          2**20, 1))
        results.append(result)
        if not opts.keep:
            remove(folder)
    lags = [r for r in results if r["scenario"] == "lag"]
    burst_ = next(r for r in results if r["scenario"] == "burst")
    print(format_table(["fires", "workflows", "every s", "threads", "p50 s", "p90 s", "p99 s", "max s"],
                       [[r.get("fires"), r.get("workflows"), r.get("every_s"), r.get("threads"), r.get("p50_s"),
                         r.get("p90_s"), r.get("p99_s"), r.get("max_s")] for r in lags],
                       title="\nscheduler lag: slot → first job start (target p99 < 1 s)"))
    print(format_table(["workflows", "ended", "seconds", "runs/hour", "start p50 s", "start p99 s", "idle tick ms",
                        "peak RSS MB"],
                       [[burst_.get("workflows"), burst_.get("runs_ended"), burst_.get("seconds"),
                         burst_.get("runs_per_hour"), burst_.get("p50_s"), burst_.get("p99_s"),
                         burst_.get("idle_tick_ms"), burst_.get("peak_rss_mb")]],
                       title="\nscheduler burst: tiny workflows all due at once, SQLite metadata (target 1,000/hour)"))
    for r in results:
        if not r["ok"]:
            print(f"  {r['scenario']}: FAILED {r.get('error')}", file=sys.stderr)
    return {"benchmark": "scheduler", "results": results}

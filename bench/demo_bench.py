"""``demo``: the whole BFSI demo (generate the source, then bronze → silver → gold) at several
scales, each run as ``python -m flowforge demo --dir <tmp> --scale N`` in a child."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Options, child, child_env, flowforge_cli, mb, remove, rows_per_second, run_seconds
from measure import Sample, Timing, format_table, interleave, print_round, run_child


def run_demo(opts: Options, scales: list[float]) -> dict[str, Any]:
    targets = {f"{scale:g}": opts.workdir / f"demo-scale-{scale:g}" for scale in scales}
    cases = {name: _case(opts, name, target) for name, target in targets.items()}
    print(f"demo (warm-up, then {opts.repeat} rounds over scales {', '.join(targets)}):")
    timings = interleave(cases, repeat=opts.repeat, on_round=print_round)
    rows = []
    for scale, (name, target) in zip(scales, targets.items(), strict=True):
        facts = child(opts, "inspect-demo", "--dir", str(target)).last_json() if timings[name].ok else {}
        rows.append(_row(scale, timings[name], facts))
        if not opts.keep:
            remove(target)
    print(format_table(
        ["scale", "wall s", "pipeline s", "setup s", "rows landed", "rows/s (wall)", "rows/s (pipeline)",
         "peak RSS MB", "runs (s)"],
        [[f"{r['scale']:g}", r["seconds"], r["pipeline_seconds"], r["setup_seconds"], r["rows_landed"],
          r["rows_per_second"], r["pipeline_rows_per_second"], r["peak_rss_mb"],
          " ".join(f"{s:.2f}" for s in r["timing"]["all_seconds"])] for r in rows],
        title=f"\ndemo: BFSI Customer 360, start to gold (best of {opts.repeat}, after one warm-up run)"))
    for r in rows:
        if not r["ok"]:
            print(f"  scale {r['scale']:g}: FAILED {r['error']}")
    _print_jobs(rows)
    return {"benchmark": "demo", "scales": scales, "repeat": opts.repeat, "results": rows}


def _case(opts: Options, scale: str, target: Path) -> Callable[[int], Sample]:
    cmd = flowforge_cli(opts, "demo", "--dir", str(target), "--scale", scale)

    def once(_: int) -> Sample:
        remove(target)
        return run_child(cmd, env=child_env())

    return once


def _print_jobs(rows: list[dict[str, Any]]) -> None:
    """Seconds per job (from the run record of the fastest run's project) by scale."""
    scales = [r for r in rows if r.get("jobs")]
    if not scales:
        return
    names = [j["job"] for j in scales[0]["jobs"]]
    table = [[name, *(next((j["seconds"] for j in r["jobs"] if j["job"] == name), None) for r in scales)]
             for name in names]
    print(format_table(["job", *(f"scale {r['scale']:g} s" for r in scales)], table,
                       title="\ndemo: seconds per job (last measured run)"))


def _row(scale: float, timing: Timing, facts: dict[str, Any]) -> dict[str, Any]:
    error = timing.samples[-1].failure() if not timing.ok else None
    if error is None and not facts.get("bronze_rows"):
        error = f"exited 0 but no bronze rows were found ({facts.get('error', 'empty lakehouse')})"
    if error is not None:
        return {"scale": scale, "ok": False, "error": error, "timing": timing.summary(),
                "seconds": None, "pipeline_seconds": None, "setup_seconds": None, "rows_landed": None,
                "rows_per_second": None, "pipeline_rows_per_second": None, "peak_rss_mb": None}
    landed = facts.get("bronze_rows")
    pipeline = run_seconds(timing.best.stdout) or facts.get("run", {}).get("seconds")
    return {
        "scale": scale, "ok": True,
        "seconds": timing.seconds,
        "pipeline_seconds": pipeline,
        "setup_seconds": timing.seconds - pipeline if pipeline is not None else None,
        "rows_landed": landed,
        "bronze_tables": facts.get("bronze"),
        "rows_per_second": rows_per_second(landed, timing.seconds),
        "pipeline_rows_per_second": rows_per_second(landed, pipeline),
        "peak_rss_mb": mb(timing.peak_rss_bytes),
        "jobs": facts.get("run", {}).get("jobs"),
        "timing": timing.summary(),
    }

"""``ecommerce``: seed 003's system on PostgreSQL, three measurements (see bench/README.md).

* ``ecom_generate``: the generator's 644,489 rows (scale 1) into PostgreSQL with keys and indexes,
  against psql ``\\copy FROM`` of the same rows from CSV files (with the same keys and indexes, and
  without: the floor);
* ``ecom_export``: ``flowforge export`` of the 8 tables to CSV against psql ``\\copy TO`` x8 in the same
  run (the seed's hand-written export took 8.37 s); the files must be byte-identical;
* ``ecom_template``: ``flowforge demo ecommerce --postgres`` (generate, then bronze → silver → star
  schema → marts, staging snapshot, publish) at each scale, with seconds per job.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BENCH_DIR, Options, child_env, flowforge_cli, mb, remove, rows_per_second, run_seconds
from measure import Sample, Timing, format_table, interleave, print_round, run_child

CHILD = BENCH_DIR / "ecommerce_child.py"
DATABASE = "flowforge_bench_ecom"
SEED_ROWS = 644_489
_EXPORT_SECONDS = re.compile(r"rows in ([0-9.]+)s; _SUCCESS written")
_JOB = re.compile(r"\d+ of \d+ OK (\w+) (\w+) \.+ \[.* in ([0-9.]+)s\]")


class Unreachable(Exception):
    pass


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("psql") is None:
        raise Unreachable("psql is not installed (apt-get install postgresql-client)")
    return subprocess.run(["psql", url, "-X", "-q", *args], capture_output=True, text=True, timeout=600, check=False)


def _database(server: str, name: str) -> str:
    """``server`` (no database) plus a benchmark database, created when missing."""
    base = server.rstrip("/")
    found = _psql(f"{base}/postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if found.returncode != 0:
        raise Unreachable(found.stderr.strip().splitlines()[0] if found.stderr.strip() else "psql failed")
    if found.stdout.strip() != "1":
        made = _psql(f"{base}/postgres", "-c", f'CREATE DATABASE "{name}"')
        if made.returncode != 0:
            raise Unreachable(made.stderr.strip())
    return f"{base}/{name}"


def _child(opts: Options, *args: str) -> Sample:
    sample = run_child([opts.python, str(CHILD), *args], env=child_env())
    if not sample.ok:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {sample.failure()}")
    return sample


def _row(name: str, timing: Timing, rows: int | None, **extra: Any) -> dict[str, Any]:
    return {"contestant": name, "ok": timing.ok, "seconds": round(timing.seconds, 3) if timing.samples else None,
            "rows_per_second": rows_per_second(rows, timing.seconds) if timing.ok else None,
            "peak_rss_mb": mb(timing.peak_rss_bytes) if timing.samples else None, "timing": timing.summary(),
            **({"error": timing.samples[-1].failure()} if not timing.ok and timing.samples else {}), **extra}


def run_generate(opts: Options, url: str) -> dict[str, Any]:
    work = opts.workdir / "ecom-generate"
    work.mkdir(parents=True, exist_ok=True)
    _child(opts, "csv", "--scale", "1", "--dir", str(work / "csv"))
    for schema, keys in (("ecom_floor", False), ("ecom_floor_keys", True)):
        _child(opts, "copy-script", "--dir", str(work / "csv"), "--schema", schema,
               "--out", str(work / f"{schema}.sql"), *(["--keys"] if keys else []))
    psql = shutil.which("psql") or "psql"
    cases: dict[str, Callable[[int], Sample]] = {
        "flowforge": lambda _: run_child([opts.python, str(CHILD), "generate", "--url", url, "--scale", "1",
                                          "--schema", "ecom_gen"], env=child_env()),
        "copy+keys": lambda _: run_child([psql, url, "-X", "-q", "-f", str(work / "ecom_floor_keys.sql")]),
        "copy": lambda _: run_child([psql, url, "-X", "-q", "-f", str(work / "ecom_floor.sql")]),
    }
    print(f"ecom_generate: {SEED_ROWS:,} rows into PostgreSQL (warm-up, then {opts.repeat} rounds):")
    timings = interleave(cases, repeat=opts.repeat, on_round=print_round)
    rows = [_row(n, t, SEED_ROWS) for n, t in timings.items()]
    ff = timings["flowforge"]
    rows[0]["inner_seconds"] = round(float(ff.best.last_json().get("seconds", 0)), 3) if ff.ok else None
    for r in rows:
        base = timings[r["contestant"]]
        r["flowforge_vs_this"] = round(ff.seconds / base.seconds, 2) if ff.ok and base.ok else None
    print(format_table(["contestant", "wall s", "inner s", "rows/s", "peak RSS MB", "FlowForge ÷ this"],
                       [[r["contestant"], r["seconds"], r.get("inner_seconds"), r["rows_per_second"], r["peak_rss_mb"],
                         r["flowforge_vs_this"]] for r in rows],
                       title="\necom_generate: generate + load 8 tables (keys, unique codes, FKs, indexes, ANALYZE) "
                             "vs psql \\copy FROM of the same rows"))
    if not opts.keep:
        remove(work)
    return {"benchmark": "ecom_generate", "rows": SEED_ROWS, "repeat": opts.repeat, "results": rows}


def run_export(opts: Options, url: str, scale: float = 1.0) -> dict[str, Any]:
    work = opts.workdir / "ecom-export"
    work.mkdir(parents=True, exist_ok=True)
    total = int(_child(opts, "generate", "--url", url, "--scale", f"{scale:g}", "--schema", "ecommerce")
                .last_json()["rows"])
    _child(opts, "project", "--url", url, "--dir", str(work / "project"))
    _child(opts, "export-script", "--dir", str(work / "psql"), "--out", str(work / "export.sql"))
    psql = shutil.which("psql") or "psql"

    data = work / "project" / "data"  # exports write under the project's data roots

    def flowforge(parallel: str, out: str) -> Callable[[int], Sample]:
        def once(_: int) -> Sample:
            remove(data / out)
            return run_child(flowforge_cli(opts, "-p", str(work / "project"), "export", "--from", "shop", "--to",
                                           f"data/{out}", "--format", "csv", "--date", "2025-12-05",
                                           "--parallel", parallel), env=child_env())
        return once

    def psql_once(_: int) -> Sample:
        remove(work / "psql")
        (work / "psql").mkdir()
        return run_child([psql, url, "-X", "-q", "-f", str(work / "export.sql")])

    cases = {"flowforge": flowforge("2", "ff2"), "flowforge_p1": flowforge("1", "ff1"), "psql_copy_x8": psql_once}
    print(f"ecom_export: 8 tables ({total:,} rows, scale {scale:g}) to CSV (warm-up, then {opts.repeat} rounds):")
    timings = interleave(cases, repeat=opts.repeat, on_round=print_round)
    identical = timings["flowforge"].ok and _same_files(data / "ff2" / "snapshot_date=2025-12-05", work / "psql")
    floor = timings["psql_copy_x8"]
    rows = []
    for name, t in timings.items():
        inner = None
        if name.startswith("flowforge") and t.ok and (m := _EXPORT_SECONDS.search(t.best.stdout)):
            inner = float(m.group(1))
        ok = t.ok and floor.ok
        rows.append(_row(name, t, total, inner_seconds=inner,
                         vs_psql=round(t.seconds / floor.seconds, 2) if ok else None,
                         inner_vs_psql=round(inner / floor.seconds, 2) if ok and inner else None))
    print(format_table(["contestant", "wall s", "inner s", "rows/s", "peak RSS MB", "wall ÷ psql", "inner ÷ psql"],
                       [[r["contestant"], r["seconds"], r["inner_seconds"], r["rows_per_second"], r["peak_rss_mb"],
                         r["vs_psql"], r["inner_vs_psql"]] for r in rows],
                       title="\necom_export: CSV snapshot of the 8 tables (seed 003: 8.37 s; target ≤ 1.2x psql)"))
    print(f"  FlowForge's CSV files byte-identical to psql's: {identical}")
    if not opts.keep:
        remove(work)
    return {"benchmark": "ecom_export", "scale": scale, "rows": total, "repeat": opts.repeat, "results": rows,
            "files_identical_to_psql": identical, "seed_reported_seconds": 8.37}


def _same_files(snapshot: Path, psql_dir: Path) -> bool:
    import filecmp

    names = sorted(p.name for p in psql_dir.glob("*.csv"))
    return bool(names) and all(filecmp.cmp(snapshot / n, psql_dir / n, shallow=False) for n in names)


def run_template(opts: Options, url: str, scales: list[float]) -> dict[str, Any]:
    results = []
    for scale in scales:
        target = opts.workdir / f"ecom-template-{scale:g}"

        def once(_: int, target: Path = target, scale: float = scale) -> Sample:
            remove(target)
            _psql(url, "-c", "DROP SCHEMA IF EXISTS warehouse CASCADE")
            return run_child(flowforge_cli(opts, "demo", "ecommerce", "--dir", str(target), "--scale", f"{scale:g}",
                                           "--postgres", url), env=child_env())

        repeat = opts.repeat if scale < 10 or opts.full else 1
        print(f"ecom_template: scale {scale:g} ({'warm-up, then ' if scale < 10 else ''}{repeat} run(s)):")
        timing = interleave({f"scale {scale:g}": once}, repeat=repeat, warmup=scale < 10,
                            on_round=print_round)[f"scale {scale:g}"]
        best = timing.best if timing.samples else None
        jobs = [{"kind": m[0], "job": m[1], "seconds": float(m[2])} for m in _JOB.findall(best.stdout)] if best else []
        rows = round(SEED_ROWS * scale)
        pipeline = run_seconds(best.stdout) if best else None
        results.append(_row(f"scale {scale:g}", timing, rows, scale=scale, source_rows=rows,
                            pipeline_seconds=pipeline, jobs=jobs,
                            pipeline_rows_per_second=rows_per_second(rows, pipeline)))
        if not opts.keep:
            remove(target)
    print(format_table(["scale", "source rows", "wall s", "pipeline s", "rows/s (pipeline)", "peak RSS MB"],
                       [[r["scale"], r["source_rows"], r["seconds"], r["pipeline_seconds"],
                         r["pipeline_rows_per_second"], r["peak_rss_mb"]] for r in results],
                       title="\necom_template: flowforge demo ecommerce --postgres (wall = generate + run + output)"))
    names = [j["job"] for j in results[0]["jobs"]] if results and results[0]["jobs"] else []
    if names:
        print(format_table(["job", *(f"scale {r['scale']:g} s" for r in results)],
                           [[n, *(next((j["seconds"] for j in r["jobs"] if j["job"] == n), None) for r in results)]
                            for n in names], title="\necom_template: seconds per job"))
    return {"benchmark": "ecom_template", "scales": scales, "results": results}


def run_ecommerce(opts: Options, server: str, scales: list[float], parts: set[str],
                  export_scale: float = 1.0) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if "generate" in parts:
        out["ecom_generate"] = run_generate(opts, _database(server, DATABASE))
    if "export" in parts:
        name = "ecom_export" if export_scale == 1 else f"ecom_export_{export_scale:g}"
        out[name] = run_export(opts, _database(server, DATABASE), export_scale)
    if "template" in parts:
        out["ecom_template"] = run_template(opts, _database(server, DATABASE + "_tpl"), scales)
    return out

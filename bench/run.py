"""FlowForge benchmarks. ``make bench`` runs ``demo`` (scales 1 and 10), ``pg_bronze`` and
``mysql_bronze`` (1M rows each); ``scheduler`` runs when named.

    python bench/run.py                               # demo + pg_bronze + mysql_bronze, ~5 minutes
    python bench/run.py demo --scales 1,10,100
    python bench/run.py pg_bronze mysql_bronze --rows 10000000 --repeat 3
    python bench/run.py pg_bronze --sweep 250000,1000000,4000000
    python bench/run.py pg_bronze --profile           # where FlowForge's time goes
    python bench/run.py --full     # demo up to scale 100, both loads at 10M rows with pandas (~30 min, ~15 GB)
    python bench/run.py scheduler                     # lag over 500 fires (steady, bursts), 1,000 due at once (~12 min)
    python bench/run.py scheduler --fires 50 --burst 50   # the same, small

Results print as tables and go to bench/results/<benchmark>.json. See bench/README.md.
This process imports only the standard library: every measured thing runs in a child.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, Options, load_average, machine, python_default, remove
from db_bench import SOURCES, Unreachable, run_bronze, run_profile, run_sweep
from demo_bench import run_demo
from ecommerce_bench import run_ecommerce
from measure import harness_rss_mb, write_json
from scheduler_bench import run_scheduler

BENCHMARKS = ("demo", *SOURCES, "ecommerce", "scheduler")
DEFAULT_BENCHMARKS = ("demo", *SOURCES)
DEFAULT_SERVERS = {"pg_bronze": "postgresql://postgres@127.0.0.1:5432", "mysql_bronze": "mysql://root@127.0.0.1:3306"}
DEFAULT_ROWS = 1_000_000
FULL_ROWS = 10_000_000


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                   help=f"which to run: {', '.join(BENCHMARKS)} (default: all but scheduler)")
    p.add_argument("--full", action="store_true", help="demo scale 100 too; pg_bronze at 10M rows with pandas")
    p.add_argument("--repeat", type=int, default=3, help="measured runs per case, after one warm-up (best of N)")
    p.add_argument("--rows", type=int, help="table size of the loads (default 1,000,000; 10,000,000 with --full)")
    p.add_argument("--scales", help="demo scales, comma-separated (default 1,10; 1,10,100 with --full)")
    p.add_argument("--sweep", help="pg_bronze: FlowForge alone at these sizes, e.g. 250000,1000000")
    p.add_argument("--profile", action="store_true", help="pg_bronze: also profile one FlowForge run")
    names = sorted({c.name for s in SOURCES.values() for c in s.contestants})
    p.add_argument("--contestants", help=f"subset of the loads' contestants: {','.join(names)}")
    p.add_argument("--pg-url", default=DEFAULT_SERVERS["pg_bronze"],
                   help=f"PostgreSQL server, no database (default {DEFAULT_SERVERS['pg_bronze']}); database "
                        f"flowforge_bench is created there")
    p.add_argument("--mysql-url", default=DEFAULT_SERVERS["mysql_bronze"],
                   help=f"MariaDB/MySQL server, no database (default {DEFAULT_SERVERS['mysql_bronze']})")
    p.add_argument("--workdir", type=Path,
                   help="where outputs are written and kept (default: a new folder in $TMPDIR, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep outputs and the work folder")
    p.add_argument("--python", default=python_default(), help="interpreter with FlowForge installed")
    p.add_argument("--ecom-parts", default="generate,export,template",
                   help="ecommerce: which of generate, export, template (default: all)")
    p.add_argument("--ecom-scales", default="1,10", help="ecommerce: template scales (default 1,10)")
    p.add_argument("--ecom-export-scale", type=float, default=1.0, help="ecommerce: source scale of the export")
    p.add_argument("--fires", type=int, default=500, help="scheduler: scheduled runs the lag is measured over")
    p.add_argument("--lag", default="2x1,10x5", help="scheduler: WxS,... = W workflows firing every S seconds")
    p.add_argument("--burst", type=int, default=1000, help="scheduler: workflows due at the same instant")
    args = p.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})")
    wrong = [n for n in (args.contestants or "").split(",") if n.strip() and n.strip() not in names]
    if wrong:
        p.error(f"unknown contestant {', '.join(wrong)} (choose from {', '.join(names)})")
    return args


def numbers(text: str | None, default: list[float]) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()] if text else default


def main(argv: list[str]) -> int:
    args = parse(argv)
    chosen = args.benchmarks or list(DEFAULT_BENCHMARKS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flowforge-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    opts = Options(python=args.python, workdir=workdir.resolve(), repeat=max(1, args.repeat), full=args.full,
                   keep=args.keep)
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB, Python {info['python']}, "
          f"commit {info['commit']}; outputs in {opts.workdir}")
    busy = info["load_average_at_start"]
    if busy and info["cpus"] and busy[0] > 0.5 * info["cpus"]:
        print(f"warning: load average {busy[0]} on {info['cpus']} CPUs: other work will skew the timings")
    failures = 0
    try:
        if "demo" in chosen:
            scales = numbers(args.scales, [1.0, 10.0, 100.0] if args.full else [1.0, 10.0])
            demo = run_demo(opts, scales)
            save("demo", demo, info)
            failures += sum(not r["ok"] for r in demo["results"])
        for benchmark in SOURCES:
            if benchmark in chosen:
                failures += bronze(benchmark, args, opts, info)
        if "ecommerce" in chosen:
            parts = {p.strip() for p in args.ecom_parts.split(",") if p.strip()}
            for name, payload in run_ecommerce(opts, args.pg_url, numbers(args.ecom_scales, [1.0, 10.0]),
                                               parts, args.ecom_export_scale).items():
                save(name, payload, info)
                failures += sum(not r["ok"] for r in payload["results"])
        if "scheduler" in chosen:
            lag = [(int(w), int(s)) for w, s in (item.split("x") for item in args.lag.split(",") if item.strip())]
            result = run_scheduler(opts, args.fires, lag, args.burst)
            save("scheduler", result, info)
            failures += sum(not r["ok"] for r in result["results"])
    finally:
        if not args.keep and args.workdir is None:  # a folder the user named is never removed
            remove(opts.workdir)
    return 1 if failures else 0


def bronze(benchmark: str, args: argparse.Namespace, opts: Options, info: dict[str, Any]) -> int:
    source = SOURCES[benchmark]
    server = args.pg_url if benchmark == "pg_bronze" else args.mysql_url
    rows = args.rows or (FULL_ROWS if args.full else DEFAULT_ROWS)
    names = [n.strip() for n in args.contestants.split(",")] if args.contestants else None
    if names:
        names = [n for n in names if n in {c.name for c in source.contestants}]
    try:
        if args.sweep:
            sizes = [int(float(x)) for x in args.sweep.split(",") if x.strip()]
            save(f"{benchmark}_sweep", run_sweep(opts, source, server, sizes), info)
        else:
            result = run_bronze(opts, source, server, rows, names)
            save(benchmark if rows == DEFAULT_ROWS else f"{benchmark}_{rows}", result, info)
            if not all(r["ok"] for r in result["results"]):
                return 1
        if args.profile and benchmark == "pg_bronze":
            save(f"pg_bronze_profile_{rows}", run_profile(opts, server, rows), info)
    except Unreachable as exc:
        print(f"\n{benchmark} skipped: {source.product} at {server} is not usable: {exc}\n"
              f"Start it (or pass --pg-url / --mysql-url) and run: python bench/run.py {benchmark}")
    return 0


def save(name: str, payload: dict[str, Any], info: dict[str, Any]) -> None:
    payload = {**payload, "machine": info, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "load_average_at_end": load_average(), "harness_peak_rss_mb": round(harness_rss_mb(), 1)}
    path = write_json(RESULTS / f"{name}.json", payload)
    print(f"→ {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

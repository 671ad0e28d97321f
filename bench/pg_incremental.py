"""Incremental extract benchmark: 1 % of a 10M-row PostgreSQL table changed since the last run.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/pg_incremental.py --rows 10000000      # the issue's scale
    .venv/bin/python bench/pg_incremental.py --rows 1000000       # quick

The table (the 12 columns of ``pg_bronze``, ``child.py``) is generated once, server-side with
``generate_series``, in the database ``flowforge_bench_incr``; then ``--rows / 100`` rows get an
``updated_at`` after the watermark (and a changed amount). Later runs find it and reuse it; ``--drop``
removes the database at the end.

Contestants, each in its own child process, in interleaved rounds (best of ``--repeat``), reading
``WHERE updated_at > <watermark>``:

* ``flowforge``: ``flowforge run`` of an ingest job with ``incremental: updated_at``, from a
  bronze table whose last commit holds the watermark (as the previous run left it); it appends the
  changed rows to bronze. Wall time from spawn to exit, and the job's own seconds ("inner").
* ``psql binary COPY`` (the floor): ``\\copy (SELECT …) TO '/dev/null' (FORMAT binary)``.
* ``psql CSV COPY``: the text form a CSV-reading tool (Polars' ``read_csv`` over ``COPY … CSV``)
  starts from; Polars itself runs when installed.
* ``connectorx``: ``read_sql(..., return_type="arrow")`` of the same query.

Two settings: without an index on ``updated_at`` (every contestant scans the table), then with one.

``--warm`` adds ``flowforge, warm worker``: the job run four times in one process (as a scheduler or
``serve`` worker runs it), its best run after the first; its "wall" is ``Context.run`` alone.

``--daemon`` adds ``flowforge, daemon``: the same ``flowforge run`` handed to ``flowforge daemon``
(started once for the benchmark); its wall time is the caller's, spawn to exit, and its CPU and
memory columns are the caller's alone (the job runs in the daemon's child).

``--baseline-src /work/main/src`` adds ``flowforge (baseline)``: the same job run with another
source tree first on ``PYTHONPATH`` (before/after of a change in one run, on one machine load), and
with ``--daemon`` / ``--warm`` the baseline's daemon (a second one) and warm worker too. CPU
seconds are the child's own (user + system, ``wait4``); the server's scan is not in them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from child import CREATE_SQL, INSERT_SQL  # noqa: E402
from common import run_seconds  # noqa: E402
from measure import format_table, interleave, run_child, write_json  # noqa: E402

DB = os.environ.get("FLOWFORGE_BENCH_INCR_DB", "flowforge_bench_incr")  # another database, for profiling
TABLE = "incr"
SERVER = "postgresql://postgres@127.0.0.1:5432"
WATERMARK = "2030-01-01 00:00:00"
MB = 1024 * 1024


def _psql(sql: str, db: str = DB) -> str:
    out = subprocess.run(["psql", f"{SERVER}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def prepare(rows: int) -> None:
    if not _psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'", "postgres"):
        _psql(f'CREATE DATABASE "{DB}"', "postgres")
    found = _psql(f"SELECT to_regclass('{TABLE}') IS NOT NULL")
    if found == "t" and _psql(f"SELECT count(*) FROM {TABLE}") == str(rows):
        return
    start = time.perf_counter()
    _psql(f"DROP TABLE IF EXISTS {TABLE}")
    _psql(CREATE_SQL.format(table=TABLE))
    _psql(INSERT_SQL.format(table=TABLE, rows=rows))
    _psql(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)")
    # 1 % of the rows changed after the watermark
    _psql(f"UPDATE {TABLE} SET updated_at = TIMESTAMP '{WATERMARK}' + (id % 1000) * INTERVAL '1 second', "
          f"amount = amount + 1 WHERE id % 100 = 7")
    _psql(f"VACUUM (FREEZE, ANALYZE) {TABLE}")
    print(f"generated {rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)


def _query() -> str:
    return f"SELECT * FROM {TABLE} WHERE updated_at > TIMESTAMP '{WATERMARK}'"


# -- children ----------------------------------------------------------------------------------------

def child_seed(project: str) -> dict[str, Any]:
    """The bronze table as the previous incremental run left it: the source's columns and the audit
    columns (so the measured run changes no schema), and a last commit that holds the watermark."""
    import datetime as dt

    import pyarrow as pa

    from flowforge.connectors import open_connector
    from flowforge.connectors.base import ReadRequest, encode_position
    from flowforge.connectors.config import parse_connection
    from flowforge.layers.bronze import audit_fields
    from flowforge.storage.delta import LakehouseStore, delta_compatible

    config = parse_connection({"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres",
                               "database": DB})
    with open_connector("bench", config) as connector:
        source = connector.plan(ReadRequest(table=TABLE), None).schema
    schema = delta_compatible(pa.schema(list(source) + audit_fields()))
    store = LakehouseStore(f"{project}/lakehouse")
    state = {"column": "updated_at", "high": encode_position(dt.datetime.fromisoformat(WATERMARK))}
    store.append("bronze", "bronze_incr", schema.empty_table(), {"watermark": state, "batch_id": "seed", "job": "load"})
    return {}


def child_warm(project: str) -> dict[str, Any]:
    """The job as a long-lived worker runs it (scheduler, ``serve``): several runs in one process,
    each from a freshly seeded table; the best of the runs after the first (imports and connections
    warm). Seconds and CPU seconds of ``Context.run`` alone."""
    import shutil

    from flowforge.core.context import Context

    best: tuple[float, float] | None = None
    first = None
    with Context.open(project) as ctx:
        for attempt in range(4):
            shutil.rmtree(f"{project}/lakehouse/bronze", ignore_errors=True)
            child_seed(project)
            cpu, start = time.process_time(), time.perf_counter()
            summary = ctx.run("incr_bench")
            took = (time.perf_counter() - start, time.process_time() - cpu)
            assert summary.status == "success", summary
            if attempt == 0:
                first = took[0]
            elif best is None or took[0] < best[0]:
                best = took
    assert best is not None
    return {"seconds": round(best[0], 3), "cpu": round(best[1], 3), "first": round(first or 0, 3)}


def _warm(project: Path, src: str | None = None) -> Any:
    from measure import Sample

    sample = run_child(_me("warm", str(project)), env=_env(src))
    assert sample.ok, sample.failure()
    found = sample.last_json()
    return Sample(found["seconds"], sample.peak_rss_bytes, 0, sample.stdout, sample.stderr, found["cpu"])


def child_connectorx(_: str) -> dict[str, Any]:
    import connectorx as cx

    start = time.perf_counter()
    table = cx.read_sql(f"{SERVER}/{DB}", _query(), return_type="arrow")
    return {"seconds": round(time.perf_counter() - start, 3), "rows": table.num_rows}


def child_polars(_: str) -> dict[str, Any]:
    import io

    import polars as pl

    start = time.perf_counter()
    csv = subprocess.run(["psql", f"{SERVER}/{DB}", "-Atqc", f"\\copy ({_query()}) TO STDOUT (FORMAT csv, HEADER)"],
                         capture_output=True, check=True).stdout
    frame = pl.read_csv(io.BytesIO(csv))
    return {"seconds": round(time.perf_counter() - start, 3), "rows": frame.height}


# -- parent ------------------------------------------------------------------------------------------

def _project(root: Path) -> None:
    import yaml

    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "flowforge.yml").write_text(yaml.safe_dump({
        "lakehouse": "lakehouse",
        "connections": {"bench": {"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres",
                                  "database": DB}}}))
    wf = {"name": "incr_bench", "jobs": [{"name": "load", "kind": "ingest", "connection": "bench", "tables": [
        {"table": TABLE, "target": "bronze_incr", "incremental": "updated_at"}]}]}
    (root / "workflows" / "incr_bench.yml").write_text(yaml.safe_dump(wf, sort_keys=False))


def _env(src: str | None = None, daemon: Path | None = None) -> dict[str, str]:
    src = src or str(BENCH.parent / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)  # no empty entry: that is the cwd
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}
    if daemon is None:
        env["FLOWFORGE_NO_DAEMON"] = "1"
    else:
        env.pop("FLOWFORGE_NO_DAEMON", None)
        env["FLOWFORGE_RUNTIME_DIR"] = str(daemon)
    return env


def _me(*args: str) -> list[str]:
    return [sys.executable, __file__, "--child", *args]


INNER: dict[str, list[float]] = {}


def _flowforge(project: Path, name: str, src: str | None = None, daemon: Path | None = None) -> Any:
    shutil.rmtree(project / "lakehouse", ignore_errors=True)
    seeded = run_child(_me("seed", str(project)), env=_env(src))
    assert seeded.ok, seeded.failure()
    sample = run_child([sys.executable, "-m", "flowforge", "run", "incr_bench"], cwd=project, env=_env(src, daemon))
    assert sample.ok, sample.failure()
    inner = run_seconds(sample.stdout)
    if inner is not None:
        INNER.setdefault(name, []).append(inner)
    return sample


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, arg = sys.argv[2], sys.argv[3]
        result = {"seed": child_seed, "connectorx": child_connectorx, "polars": child_polars,
                  "warm": child_warm}[kind](arg)
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    parser.add_argument("--baseline-src", help="also run the job with this source tree (e.g. /work/main/src)")
    parser.add_argument("--daemon", action="store_true", help="also run the job through 'flowforge daemon'")
    parser.add_argument("--warm", action="store_true",
                        help="also time the job in a long-lived process (its best run after the first)")
    args = parser.parse_args()
    prepare(args.rows)
    changed = int(_psql(f"SELECT count(*) FROM ({_query()}) q"))
    polars = subprocess.run([sys.executable, "-c", "import polars"], capture_output=True, check=False).returncode == 0
    work = Path(tempfile.mkdtemp(prefix="flowforge-incr-bench-"))
    project, baseline = work / "project", work / "baseline"
    _project(project)
    if args.baseline_src:
        _project(baseline)
    daemon = work / "rt"
    if args.daemon:
        daemon.mkdir(mode=0o700)
        subprocess.run([sys.executable, "-m", "flowforge", "daemon", "start"], env=_env(None, daemon), check=True)
        if args.baseline_src:  # another tree, another daemon (its own socket in the same folder)
            subprocess.run([sys.executable, "-m", "flowforge", "daemon", "start"],
                           env=_env(args.baseline_src, daemon), check=True)
    copy = f"\\copy ({_query()}) TO '/dev/null'"
    results: dict[str, Any] = {"rows": args.rows, "changed": changed, "polars": polars, "settings": {}}
    try:
        for setting in ("no index", "index"):
            if setting == "index":
                _psql(f"CREATE INDEX IF NOT EXISTS {TABLE}_updated_at ON {TABLE} (updated_at)")
                _psql(f"ANALYZE {TABLE}")
            else:
                _psql(f"DROP INDEX IF EXISTS {TABLE}_updated_at")
            cases = {
                "flowforge": lambda _: _flowforge(project, "flowforge"),
                "psql binary COPY": lambda _: run_child(["psql", f"{SERVER}/{DB}", "-qc", copy + " (FORMAT binary)"]),
                "psql CSV COPY": lambda _: run_child(["psql", f"{SERVER}/{DB}", "-qc", copy + " (FORMAT csv)"]),
                "connectorx": lambda _: run_child(_me("connectorx", "-"), env=_env()),
            }
            if args.baseline_src:
                cases["flowforge (baseline)"] = lambda _: _flowforge(baseline, "flowforge (baseline)",
                                                                     args.baseline_src)
            if args.daemon:
                cases["flowforge, daemon"] = lambda _: _flowforge(project, "flowforge, daemon", None, daemon)
                if args.baseline_src:
                    cases["flowforge (baseline), daemon"] = lambda _: _flowforge(
                        baseline, "flowforge (baseline), daemon", args.baseline_src, daemon)
            if args.warm:
                cases["flowforge, warm worker"] = lambda _: _warm(project)
                if args.baseline_src:
                    cases["flowforge (baseline), warm worker"] = lambda _: _warm(baseline, args.baseline_src)
            if polars:
                cases["polars (COPY CSV)"] = lambda _: run_child(_me("polars", "-"), env=_env())
            INNER.clear()
            timings = interleave(cases, repeat=args.repeat)
            inner = {name: min(found) for name, found in INNER.items()}
            floor = timings["psql binary COPY"].seconds
            cx = timings["connectorx"].seconds
            table = []
            for name, t in timings.items():
                job = inner.get(name)
                table.append([name, round(t.seconds, 3), round(t.seconds / floor, 2), round(t.seconds / cx, 2),
                              job, round(job / floor, 2) if job is not None else None,
                              round(t.best.cpu_seconds, 2), round(t.peak_rss_bytes / MB)])
            results["settings"][setting] = {name: t.summary() for name, t in timings.items()}
            results["settings"][setting]["flowforge_inner_s"] = inner
            print(format_table(["contestant", "wall s", "x psql binary", "x connectorx", "job s", "job x psql",
                                "CPU s", "peak MB"], table,
                               title=f"{setting}: {changed:,} changed rows of {args.rows:,}"), flush=True)
    finally:
        if args.daemon:
            for src in (None, args.baseline_src) if args.baseline_src else (None,):
                subprocess.run([sys.executable, "-m", "flowforge", "daemon", "stop"], env=_env(src, daemon),
                               check=False)
        shutil.rmtree(work, ignore_errors=True)
        _psql(f"DROP INDEX IF EXISTS {TABLE}_updated_at")
        if args.drop:
            _psql(f'DROP DATABASE IF EXISTS "{DB}"', "postgres")
    write_json(BENCH / "results" / "pg_incremental.json", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

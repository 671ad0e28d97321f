"""Gold "up to date" and silver rebuilds: what a run costs when nothing changed, and what a changed
setting costs (issue 17 §1, issue 11).

Standalone (not part of bench/run.py):

    .venv/bin/python bench/lifecycle_bench.py --rows 1000000 --repeat 3

One project, one process, the same data: a SQLite table of ``--rows`` orders is ingested
incrementally to bronze, merged into silver and aggregated by a gold job (a GROUP BY over every
silver row). Then, best of ``--repeat``:

* **gold, up to date**: the gold job of a run with nothing new (its inputs' versions and its
  settings equal those recorded in its last commit, so it is skipped);
* **gold, forced**: the same job with ``--force`` (read every silver row, aggregate, commit);
* **anchor**: the same aggregate written by hand with DuckDB over the silver snapshot's Parquet
  files, to Parquet (what a user would otherwise run);
* **silver rebuild after new casts** (one run: the fingerprint changed, all of bronze is read again
  and committed in one overwrite) against **the first silver build** of the same rows.

Prints a table and writes ``bench/results/lifecycle.json``. On a machine shared with other work
the wall times vary; the ratios are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
GOLD_SQL = ("SELECT customer_id % 1000 AS segment, count(*) AS orders, sum(CAST(amount AS DECIMAL(12,2))) AS revenue "
            "FROM silver_orders GROUP BY 1")


def _source(db: Path, rows: int) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount TEXT, status TEXT)")
    batch = 100_000
    for start in range(0, rows, batch):
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                        ((i, i % 50_000, f"{i % 997}.{i % 100:02d}", ("placed", "shipped")[i % 2])
                         for i in range(start, min(rows, start + batch))))
    con.commit()
    con.close()


def _workflow(project: Path, casts: dict[str, str]) -> None:
    spec = {"name": "bench", "jobs": [
        {"name": "land", "kind": "ingest", "connection": "shop",
         "tables": [{"table": "orders", "target": "bronze_orders", "incremental": "id"}]},
        {"name": "clean", "kind": "silver", "tables": [
            {"target": "silver_orders", "source": "bronze_orders", "keys": ["id"], "casts": casts}]},
        {"name": "report", "kind": "gold", "tables": [{"target": "gold_segments", "sql": GOLD_SQL}]}]}
    (project / "workflows" / "bench.yml").write_text(yaml.safe_dump(spec))


def _job_seconds(summary: Any, job: str) -> float:
    return float(next(e.seconds for e in summary.events if e.job == job))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import duckdb
    from deltalake import DeltaTable

    from flowforge.core.context import Context
    from flowforge.core.project import init_project

    with tempfile.TemporaryDirectory() as tmp:
        project = init_project(Path(tmp) / "p").project_dir
        (project / "workflows" / "example.yml").unlink()
        db = project / "data" / "shop.db"
        _source(db, args.rows)
        settings = yaml.safe_load((project / "flowforge.yml").read_text())
        settings["connections"]["shop"] = {"type": "sqlite", "path": str(db)}
        (project / "flowforge.yml").write_text(yaml.safe_dump(settings))
        _workflow(project, {})
        with Context.open(project) as ctx:
            first = ctx.run("bench")
            assert first.status == "success", first.failed
            first_silver = _job_seconds(first, "clean")
            skipped, forced, anchor = [], [], []
            silver = str(project / "lakehouse" / "silver" / "silver_orders")
            for _ in range(args.repeat):
                idle = ctx.run("bench", select=["report"])
                skipped.append(_job_seconds(idle, "report"))
                assert idle.events[0].result is not None and idle.events[0].result.tables[0].note == "up to date"
                busy = ctx.run("bench", select=["report"], force=True)
                forced.append(_job_seconds(busy, "report"))
                start = time.perf_counter()
                files = DeltaTable(silver).file_uris()
                con = duckdb.connect()
                con.execute(f"COPY ({GOLD_SQL.replace('silver_orders', 'read_parquet($files)')}) TO "
                            f"'{tmp}/anchor.parquet' (FORMAT parquet)", {"files": files})
                con.close()
                anchor.append(time.perf_counter() - start)
            _workflow(project, {"amount": "DECIMAL(12,2)"})
            rebuilt = ctx.run("bench", select=["clean"])
            assert rebuilt.status == "success"
            rebuild_silver = _job_seconds(rebuilt, "clean")
    result = {
        "rows": args.rows, "python": sys.version.split()[0],
        "gold_up_to_date_s": min(skipped), "gold_forced_s": min(forced), "duckdb_by_hand_s": min(anchor),
        "silver_first_build_s": first_silver, "silver_rebuild_after_casts_s": rebuild_silver,
    }
    result["forced_over_up_to_date"] = result["gold_forced_s"] / result["gold_up_to_date_s"]
    result["forced_over_duckdb"] = result["gold_forced_s"] / result["duckdb_by_hand_s"]
    result["rebuild_over_first_build"] = rebuild_silver / first_silver
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "lifecycle.json").write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key:32} {value:.3f}" if isinstance(value, float) else f"{key:32} {value}")


if __name__ == "__main__":
    main()

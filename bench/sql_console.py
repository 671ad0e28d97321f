"""SQL console benchmark: what the sandbox, the sealed engine and the history cost a query.

Standalone (not part of bench/run.py):

    python bench/sql_console.py                       # 1M-row silver table, best of 5
    python bench/sql_console.py --rows 200000 --repeat 3

One Delta table of ``--rows`` orders (8 columns) in a project's lakehouse; three queries a user
types into the console (an aggregate by day, a filtered top-100, a point lookup), each run:

* **through FlowForge's console** (``ctx.console.run``: sqlglot check against the sandbox, a new
  DuckDB engine with the table registered and sealed, the row limit, JSON-safe rows, and the
  query written to the user's history in the metadata store), and
* **as a Python user would without FlowForge**: ``deltalake.DeltaTable(path).to_pyarrow_dataset()``
  queried with ``duckdb`` in the same process, the result fetched as Arrow and turned into Python rows
  the same way ("dataset"), and
* **as a DuckDB expert would**: ``read_parquet`` over the table's current Parquet files (from the
  Delta log), no sandbox, no history ("parquet": the floor).

The three run by turns (console, dataset, parquet, console...) so both meet the same load on a shared
machine; wall and CPU seconds (all threads) are reported, best of ``--repeat``. Results print as a
table and go to bench/results/sql_console.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
QUERIES = {
    "aggregate by day": "SELECT order_date, count(*) AS orders, sum(amount) AS revenue FROM silver_orders "
                        "GROUP BY order_date ORDER BY order_date",
    "filtered top 100": "SELECT order_id, customer_id, amount FROM silver_orders WHERE status = 'shipped' "
                        "ORDER BY amount DESC LIMIT 100",
    "point lookup": "SELECT * FROM silver_orders WHERE order_id = 4242",
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(project: Path, rows: int) -> Any:
    import pyarrow as pa
    from deltalake import write_deltalake

    from flowforge.core.context import Context
    from flowforge.core.project import init_project
    from flowforge.settings import Settings

    init_project(project)
    ctx = Context(Settings.load(project))
    import datetime as dt
    import decimal

    n = range(rows)
    table = pa.table({
        "order_id": pa.array(n, pa.int64()),
        "customer_id": pa.array([i // 7 for i in n], pa.int64()),
        "order_date": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i % 365) for i in n], pa.date32()),
        "status": pa.array([("new", "shipped", "returned")[i % 3] for i in n]),
        "amount": pa.array([decimal.Decimal(i * 7919 % 100000).scaleb(-2) for i in n], pa.decimal128(12, 2)),
        "channel": pa.array([("web", "store")[i % 2] for i in n]),
        "note": pa.array(["n"] * rows),
        "updated_at": pa.array([0] * rows, pa.timestamp("us", "UTC")),
    })
    write_deltalake(ctx.store.location("silver", "silver_orders"), table)
    return ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import duckdb
    from deltalake import DeltaTable

    from flowforge.core.catalog import sample_rows

    with tempfile.TemporaryDirectory() as tmp:
        ctx = build(Path(tmp) / "project", args.rows)
        location = ctx.store.location("silver", "silver_orders")
        results: dict[str, Any] = {}
        for label, sql in QUERIES.items():
            best = {k: [float("inf"), float("inf")] for k in ("console", "plain", "parquet")}
            counts = {}
            for _ in range(args.repeat):
                w, c = time.perf_counter(), cpu()
                got = ctx.console.run(sql, 10_000)
                wall, spent = time.perf_counter() - w, cpu() - c
                best["console"] = [min(best["console"][0], wall), min(best["console"][1], spent)]
                counts["console"] = len(got.rows)

                w, c = time.perf_counter(), cpu()
                con = duckdb.connect()
                con.register("silver_orders", DeltaTable(location).to_pyarrow_dataset())
                rows = sample_rows(con.sql(sql).to_arrow_table().slice(0, 10_000))
                con.close()
                wall, spent = time.perf_counter() - w, cpu() - c
                best["plain"] = [min(best["plain"][0], wall), min(best["plain"][1], spent)]
                counts["plain"] = len(rows)

                w, c = time.perf_counter(), cpu()
                con = duckdb.connect()
                files = DeltaTable(location).file_uris()
                con.execute(f"CREATE VIEW silver_orders AS SELECT * FROM read_parquet({files!r})")
                rows = sample_rows(con.sql(sql).to_arrow_table().slice(0, 10_000))
                con.close()
                wall, spent = time.perf_counter() - w, cpu() - c
                best["parquet"] = [min(best["parquet"][0], wall), min(best["parquet"][1], spent)]
                counts["parquet"] = len(rows)
            if len(set(counts.values())) != 1:
                sys.exit(f"{label}: the contestants returned different row counts: {counts}")
            results[label] = {"rows": counts["console"], "console_wall": best["console"][0],
                              "console_cpu": best["console"][1], "plain_wall": best["plain"][0],
                              "plain_cpu": best["plain"][1],
                              "parquet_wall": best["parquet"][0], "parquet_cpu": best["parquet"][1],
                              "ratio_wall": best["console"][0] / best["plain"][0],
                              "ratio_cpu": best["console"][1] / max(best["plain"][1], 1e-9),
                              "ratio_parquet_wall": best["console"][0] / best["parquet"][0],
                              "ratio_parquet_cpu": best["console"][1] / max(best["parquet"][1], 1e-9)}
        ctx.close()
    print(f"{args.rows:,} rows, best of {args.repeat}")
    print(f"{'query':18} {'rows':>5} {'console':>9} {'dataset':>9} {'parquet':>9}  vs dataset (cpu)  vs parquet (cpu)")
    for label, r in results.items():
        print(f"{label:18} {r['rows']:>5} {r['console_wall'] * 1000:>7.0f}ms {r['plain_wall'] * 1000:>7.0f}ms "
              f"{r['parquet_wall'] * 1000:>7.0f}ms  {r['ratio_wall']:>5.2f}x ({r['ratio_cpu']:.2f}x)"
              f"     {r['ratio_parquet_wall']:>5.2f}x ({r['ratio_parquet_cpu']:.2f}x)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sql_console.json").write_text(json.dumps({"rows": args.rows, "repeat": args.repeat,
                                                          "queries": results}, indent=2))


if __name__ == "__main__":
    main()

"""Data-test benchmark: 8 row-level and 2 aggregate tests on a 10M-row silver table.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/quality_tests.py --rows 10000000      # the issue's scale (~4 GB RAM at peak)
    .venv/bin/python bench/quality_tests.py --rows 1000000 --repeat 1

What it measures, in one process and one run, on the same data:

* **The silver job**, without tests and with them (``flowforge run`` of a silver job building a
  fresh table from a bronze table of ``--rows`` orders, merged on ``order_id``): the time the tests
  add to the job is the difference (best of ``--repeat``).
* **FlowForge's test engine alone** on the batch the job has in hand (the Arrow table about to be
  committed): ``Checker.batch`` evaluating the ten tests, samples of failing rows included.
* **Plain DuckDB SQL** of the same ten checks over the same Arrow table: one query per check, each
  counting failing rows, as an engineer would write them by hand (``SELECT count(*) ... WHERE NOT ...``).
  The engine and the plain SQL run by turns (engine, SQL, engine, SQL...), so both meet the same
  load on a shared machine; wall and CPU seconds (all threads of the process) are both reported,
  best of ``--repeat``.
* **Great Expectations** (``great_expectations`` from the ``bench`` extra), pandas datasource, the
  same ten checks as one suite over the same data (``to_pandas()`` timed separately); its closest
  expectation for each: relationships become ``expect_column_values_to_be_in_set`` over the
  customer ids, the reconciliation ``expect_column_sum_to_be_between`` around the bronze sum.

Every contestant's failing-row counts are compared; a disagreement fails the benchmark. Results
print as a table and go to ``bench/results/quality_tests.json``. Timings come from a machine shared
with other work unless stated otherwise: re-run on a quiet one for figures to publish.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
STATUSES = ["placed", "shipped", "completed", "return_pending", "returned"]
EMAIL = r"^[a-z0-9._]+@[a-z0-9.]+\.[a-z]{2,}$"

TESTS = [
    {"not_null": {"column": "order_id", "severity": "warn"}},
    {"unique": {"column": "order_id", "severity": "warn"}},
    {"not_null": {"column": "customer_id", "severity": "warn"}},
    {"accepted_values": {"column": "status", "values": STATUSES, "severity": "warn"}},
    {"relationships": {"column": "customer_id", "to": "silver_customers", "field": "customer_id", "severity": "warn"}},
    {"range": {"column": "amount", "min": 0, "max": 10000, "severity": "warn"}},
    {"regex": {"column": "email", "pattern": EMAIL, "severity": "warn"}},
    {"expression": {"sql": "discount >= 0 AND discount <= 0.5", "severity": "warn"}},
    {"row_count": {"min": 1, "severity": "warn"}},
    {"reconcile": {"expression": "sum(amount)", "against": "bronze_orders", "severity": "warn"}},
]
PLAIN_SQL = [
    "SELECT count(*) FROM t WHERE order_id IS NULL",
    "SELECT count(*) FROM t WHERE order_id IN (SELECT order_id FROM t GROUP BY 1 HAVING count(*) > 1)",
    "SELECT count(*) FROM t WHERE customer_id IS NULL",
    f"SELECT count(*) FROM t WHERE status NOT IN ({', '.join(repr(s) for s in STATUSES)})",
    "SELECT count(*) FROM t WHERE customer_id IS NOT NULL AND customer_id NOT IN (SELECT customer_id FROM c)",
    "SELECT count(*) FROM t WHERE NOT (amount BETWEEN 0 AND 10000)",
    f"SELECT count(*) FROM t WHERE NOT regexp_matches(email, '{EMAIL}')",
    "SELECT count(*) FROM t WHERE NOT (discount >= 0 AND discount <= 0.5)",
    "SELECT count(*) FROM t",
    "SELECT (SELECT sum(amount) FROM t) - (SELECT sum(amount) FROM b)",
]


def generate(root: Path, rows: int, customers: int) -> None:
    """Bronze orders (about 0.1 % bad rows of each kind, deterministic) and customers, written as Delta."""
    import duckdb
    from deltalake import write_deltalake

    lake = root / "lakehouse" / "bronze"
    con = duckdb.connect()
    audit = ("'bench' AS _batch_id, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS _ingestion_time, 'bench' AS "
             "_source_system, 'bench' AS _source_file, CAST(NULL AS TIMESTAMPTZ) AS _file_modified_time")
    write_deltalake(str(lake / "bronze_customers"), con.sql(
        f"SELECT i::BIGINT AS customer_id, 'c' || i AS name, {audit} FROM range(1, {customers + 1}) t(i)"
    ).to_arrow_table())
    statuses = "[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        end = min(rows, start + chunk)
        batch = con.sql(f"""
            SELECT i::BIGINT AS order_id,
                   CASE WHEN hash(i, 1) % 1000 = 0 THEN {customers + 7} ELSE 1 + hash(i, 2) % {customers} END::BIGINT
                     AS customer_id,
                   CASE WHEN hash(i, 3) % 1000 = 0 THEN 'lost' ELSE {statuses}[(1 + hash(i, 4) % 5)::BIGINT] END
                     AS status,
                   ((CASE WHEN hash(i, 5) % 1000 = 0 THEN -1 ELSE 1 END) * (100 + hash(i, 6) % 500000) / 100)
                     ::DECIMAL(12, 2) AS amount,
                   CASE WHEN hash(i, 7) % 1000 = 0 THEN 'broken-' || i ELSE 'u' || i || '@mail.example.com' END
                     AS email,
                   CASE WHEN hash(i, 8) % 1000 = 0 THEN 0.9 ELSE (hash(i, 9) % 501) / 1000 END::DOUBLE AS discount,
                   (1 + hash(i, 10) % 19)::INTEGER AS quantity,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i) AS created_at, {audit}
            FROM range({start + 1}, {end + 1}) t(i)""").to_arrow_table()
        write_deltalake(str(lake / "bronze_orders"), batch, mode="append")
    con.close()


def project(root: Path) -> None:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", "connections": {}}))
    silver = {"source": "bronze_orders", "keys": ["order_id"], "order_by": "created_at"}
    wf = {"name": "quality_bench", "jobs": [
        {"name": "customers", "kind": "silver", "tables": [
            {"target": "silver_customers", "source": "bronze_customers", "keys": ["customer_id"]}]},
        {"name": "plain", "kind": "silver", "depends_on": ["customers"],
         "tables": [{"target": "silver_orders_plain", **silver}]},
        {"name": "tested", "kind": "silver", "depends_on": ["customers"],
         "tables": [{"target": "silver_orders", **silver, "tests": TESTS}]}]}
    (root / "workflows" / "quality_bench.yml").write_text(yaml.safe_dump(wf, sort_keys=False))


class Clock:
    """Best wall and best CPU seconds (all of the process's threads) over repeats: on a shared
    machine CPU time is the steadier of the two."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")

    def __enter__(self) -> Clock:
        gc.collect()
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = min(self.wall, time.perf_counter() - self._w)
        self.cpu = min(self.cpu, time.process_time() - self._c)

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 3), "cpu_s": round(self.cpu, 3)}


def job_seconds(ctx: Any, root: Path, job: str, target: str, repeat: int) -> Clock:
    clock = Clock()
    for _ in range(repeat):
        shutil.rmtree(root / "lakehouse" / "silver" / target, ignore_errors=True)
        with clock:
            summary = ctx.run("quality_bench", select=[job])
        assert summary.status == "success", [e.error for e in summary.failed]
    return clock


def batch_of(ctx: Any) -> Any:
    """The Arrow table the silver job commits (the same query the job runs)."""
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.layers.silver import BRONZE_VIEW, build_select

    wf = ctx.load_workflow("quality_bench")
    spec = wf.job("tested").tables[0]
    bronze = ctx.store.open("bronze", "bronze_orders")
    engine = DuckDBEngine()
    try:
        engine.register_files(BRONZE_VIEW, bronze.file_uris(), bronze.schema().to_arrow())
        return engine.query(build_select(spec, BRONZE_VIEW), "quality_bench"), spec.tests
    finally:
        engine.close()


def engine_and_sql(ctx: Any, data: Any, tests: Any, repeat: int) -> tuple[Clock, list[int], Clock, list[Any]]:
    """FlowForge's test engine and the plain SQL, run by turns so both see the same machine load."""
    from flowforge.quality.check import Checker

    engine_clock, sql_clock, counts, answers = Clock(), Clock(), [], []
    for _ in range(repeat):
        with engine_clock, Checker(ctx.store, "silver", "silver_orders") as checker:
            verdict = checker.batch(tests, data, mode="overwrite")
        counts = [r.failing_rows for r in verdict.results]
        statuses = {r.test: r.status for r in verdict.results}
        assert "error" not in statuses.values(), statuses
        answers = plain_sql(ctx, data, sql_clock)
    return engine_clock, counts, sql_clock, answers


def plain_sql(ctx: Any, data: Any, clock: Clock) -> list[Any]:
    """The ten checks as hand-written DuckDB queries over the same batch; the other tables are read
    from the lakehouse inside the timing, as FlowForge reads them."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        with clock:
            engine.register_arrow("t", data)
            engine.register_delta("c", ctx.store.open("silver", "silver_customers"))
            engine.register_delta("b", ctx.store.open("bronze", "bronze_orders"))
            return [engine.rows(q)[0][0] for q in PLAIN_SQL]
    finally:
        engine.close()


def great_expectations(ctx: Any, data: Any, repeat: int) -> dict[str, Any]:
    try:
        import great_expectations as gx
    except ImportError:
        return {"skipped": "great_expectations is not installed (pip install 'flowforge[bench]')"}
    import logging

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import pyarrow as pa

    start = time.perf_counter()
    # decimals as floats: pandas holds decimal128 as Python Decimal objects, on which GE's column sum
    # takes minutes per 100K rows; floats are what a pandas user would hand it
    amount = data.schema.get_field_index("amount")
    frame = data.set_column(amount, "amount", data.column("amount").cast(pa.float64())).to_pandas()
    to_pandas = time.perf_counter() - start
    customers = ctx.store.open("silver", "silver_customers").to_pyarrow_table(columns=["customer_id"])
    ids = customers.column("customer_id").to_pylist()
    bronze_sum = float(ctx.store.open("bronze", "bronze_orders").to_pyarrow_table(columns=["amount"])
                       .column("amount").cast("float64").to_numpy().sum())
    e = gx.expectations

    def suite_items() -> list[Any]:
        return [
            e.ExpectColumnValuesToNotBeNull(column="order_id"),
            e.ExpectColumnValuesToBeUnique(column="order_id"),
            e.ExpectColumnValuesToNotBeNull(column="customer_id"),
            e.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES),
            e.ExpectColumnValuesToBeInSet(column="customer_id", value_set=ids),
            e.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=10000),
            e.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL),
            e.ExpectColumnValuesToBeBetween(column="discount", min_value=0, max_value=0.5),
            e.ExpectTableRowCountToBeBetween(min_value=1),
            e.ExpectColumnSumToBeBetween(column="amount", min_value=bronze_sum - 1, max_value=bronze_sum + 1),
        ]

    clock, counts = Clock(), []
    for i in range(repeat):
        context = gx.get_context(mode="ephemeral")
        asset = context.data_sources.add_pandas(f"p{i}").add_dataframe_asset("orders")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
        suite = gx.ExpectationSuite(name=f"bench{i}")
        for item in suite_items():
            suite.add_expectation(item)
        with clock:
            result = batch.validate(suite)
        found = {(r.expectation_config.type, r.expectation_config.kwargs.get("column"),
                  _key(r.expectation_config.kwargs)): r for r in result.results}
        failed = [f"{t}: {r.exception_info}" for (t, _, _), r in found.items()
                  if r.exception_info.get("raised_exception")]
        assert not failed, failed
        counts = [found[(x.configuration.type, x.configuration.kwargs.get("column"), _key(x.configuration.kwargs))]
                  .result.get("unexpected_count") for x in suite_items()]
    return {**clock.as_dict(), "to_pandas_s": round(to_pandas, 3), "unexpected_counts": counts,
            "version": gx.__version__}


def _key(kwargs: dict[str, Any]) -> str:
    """What tells two expectations of one type and column apart (their bounds or value sets)."""
    return json.dumps({k: kwargs.get(k) for k in ("min_value", "max_value", "regex")}, default=str, sort_keys=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N for each measurement")
    parser.add_argument("--no-ge", action="store_true", help="leave Great Expectations out")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH.parent / "src"))
    from flowforge.core.context import Context

    root = args.workdir or Path(tempfile.mkdtemp(prefix="flowforge-quality-bench-"))
    try:
        t0 = time.perf_counter()
        generate(root, args.rows, args.customers)
        project(root)
        print(f"generated {args.rows:,} bronze orders in {time.perf_counter() - t0:.1f} s (not measured)")
        with Context.open(root) as ctx:
            first = ctx.run("quality_bench", select=["customers"])
            assert first.status == "success", [e.error for e in first.failed]
            plain_job = job_seconds(ctx, root, "plain", "silver_orders_plain", args.repeat)
            tested_job = job_seconds(ctx, root, "tested", "silver_orders", args.repeat)
            data, tests = batch_of(ctx)
            engine_s, ff_counts, sql_s, answers = engine_and_sql(ctx, data, tests, args.repeat)
            ge = {"skipped": "--no-ge"} if args.no_ge else great_expectations(ctx, data, args.repeat)
        sql_counts = [int(a) for a in answers[:8]]
        assert ff_counts[:8] == sql_counts, f"FlowForge {ff_counts[:8]} and plain SQL {sql_counts} disagree"
        if "unexpected_counts" in ge:
            ge_rows = list(ge["unexpected_counts"][:8])
            assert ge_rows == sql_counts, f"Great Expectations {ge_rows} and plain SQL {sql_counts} disagree"
        out = {"rows": args.rows, "repeat": args.repeat, "job_without_tests": plain_job.as_dict(),
               "job_with_tests": tested_job.as_dict(),
               "added_to_job": {"wall_s": round(tested_job.wall - plain_job.wall, 3),
                                "cpu_s": round(tested_job.cpu - plain_job.cpu, 3)},
               "flowforge_engine": engine_s.as_dict(), "plain_sql": sql_s.as_dict(), "great_expectations": ge,
               "failing_rows": dict(zip([next(iter(t)) + ":" + str(next(iter(t.values())).get("column", ""))
                                         for t in TESTS[:8]], sql_counts, strict=True)),
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_average": list(os.getloadavg())},
               "at": dt.datetime.now(dt.UTC).isoformat()}
        _print(out)
        (BENCH / "results").mkdir(exist_ok=True)
        (BENCH / "results" / "quality_tests.json").write_text(json.dumps(out, indent=2, default=str))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _print(r: dict[str, Any]) -> None:
    ge, ff, sql = r["great_expectations"], r["flowforge_engine"], r["plain_sql"]

    def line(label: str, m: dict[str, Any], extra: str = "") -> None:
        print(f"  {label:<34} {m['wall_s']:8.2f} s wall {m['cpu_s']:8.2f} s CPU   {extra}")

    print(f"\n{r['rows']:,} rows, 8 row-level + 2 aggregate tests, best of {r['repeat']}:")
    line("silver job without tests", r["job_without_tests"])
    line("silver job with tests", r["job_with_tests"], f"(+{r['added_to_job']['wall_s']:.2f} s wall, "
                                                       f"+{r['added_to_job']['cpu_s']:.2f} s CPU)")
    line("FlowForge test engine alone", ff)
    line("plain DuckDB SQL, 10 queries", sql, f"(FlowForge = {ff['wall_s'] / sql['wall_s']:.2f}x wall, "
                                                f"{ff['cpu_s'] / sql['cpu_s']:.2f}x CPU)")
    if "wall_s" in ge:
        line(f"Great Expectations {ge['version']}", ge, f"(+{ge['to_pandas_s']:.2f} s to_pandas; FlowForge is "
                                                        f"{ge['wall_s'] / ff['wall_s']:.1f}x faster)")
    else:
        print(f"  Great Expectations: {ge['skipped']}")
    print(f"  failing rows found (all contestants agree): {r['failing_rows']}")
    print(f"  load average {r['machine']['load_average']} on {r['machine']['cpus']} CPUs (a shared machine skews "
          f"wall timings)")


if __name__ == "__main__":
    sys.exit(main())

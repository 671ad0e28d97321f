"""Silver merge benchmark: a batch of changed rows merged into a large Delta table, and the first
silver build's peak memory.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/silver_merge.py --rows 10000000           # the issue's scale
    .venv/bin/python bench/silver_merge.py --rows 1000000 --quick    # a few minutes

What it measures, in one run, each contestant in its own child process (wall seconds inside the
child, from opening the table to the commit, and the child's peak RSS from ``wait4``):

* **Merge.** A table of ``--rows`` rows (id, customer, status, amount, note, updated_at), built by
  FlowForge's first silver build (streamed, sorted by id). A batch of ``--changes`` rows, half
  updates and half new ids, is merged on ``id`` by each contestant, on its own copy of the table:
  - ``flowforge``: ``LakehouseStore.merge``, the silver job's write (file-pruned rewrite);
  - ``flowforge (before)``: the same from another source tree (``--before-src``, e.g. the main
    branch's ``src``), so a change is measured against what it replaces in the same run;
  - ``delta-rs merge``: ``DeltaTable.merge(...).when_matched_update_all().when_not_matched_insert_all()``;
  - ``duckdb MERGE``: the table read into DuckDB, ``MERGE INTO`` the batch, written back as the
    table's next version (overwrite);
  - ``duckdb rewrite``: ``SELECT`` of the table anti-joined with the batch, ``UNION ALL`` the batch,
    streamed back as an overwrite;
  - ``polars rewrite``: the same with Polars' lazy anti-join, when Polars is installed;
  - ``append`` (the floor): the batch appended, nothing matched.
  Two batches: **random** updates (any id) and **recent** updates (the newest ids, as incremental
  and CDC batches usually are). Every contestant's result is checked against the others (row count
  and a checksum of every row); a disagreement fails the benchmark.
* **First build.** ``flowforge run`` of a silver job over a bronze table of ``--rows`` rows
  (dedup on ``id``, then written sorted by id), against DuckDB's ``COPY`` of the same dedup query
  to a Parquet file (default settings): wall seconds and peak RSS, at ``--rows`` and a tenth of it,
  to show the peak stays flat as the table grows.

Results print as a table and go to ``bench/results/silver_merge.json``. The machine is shared:
the ratios, measured side by side in one run, hold better than the absolute seconds.
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
from measure import format_table, run_child, write_json  # noqa: E402

MB = 1024 * 1024
COLUMNS = ("id::BIGINT AS id, 'customer-' || (id % 100000) AS customer, "
           "['new','paid','shipped','done'][(1 + id % 4)::BIGINT] AS status, "
           "(id % 100000) / 100.0 AS amount, 'note ' || md5(id::VARCHAR)[:12] AS note, "
           "TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(id) AS updated_at")
METHODS = ("flowforge", "flowforge (before)", "delta-rs merge", "duckdb MERGE", "duckdb rewrite", "polars rewrite",
           "append")


# -- children ---------------------------------------------------------------------------------------

def _store(root: str) -> Any:
    from flowforge.storage.delta import LakehouseStore

    return LakehouseStore(root)


def child_base(root: str, rows: int) -> dict[str, Any]:
    """The merged table as the first silver build leaves it: streamed, sorted by id."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    reader = con.sql(f"SELECT {COLUMNS} FROM range(1, {rows + 1}) t(id) ORDER BY id").to_arrow_reader(131_072)
    _store(root).merge("silver", "t", pa.RecordBatchReader.from_batches(reader.schema, reader), ("id",), {})
    return {}


def child_batch(path: str, rows: int, changes: int, recent: bool) -> dict[str, Any]:
    import duckdb

    updates, inserts = changes // 2, changes - changes // 2
    span = max(updates * 2, 1)
    pick = (f"{rows} - {span} + 1 + (hash(i, 1) % {span})" if recent else f"1 + (hash(i, 1) % {rows})")
    con = duckdb.connect()
    con.execute(f"""COPY (
        WITH ids AS (SELECT DISTINCT {pick} AS id FROM range({updates}) t(i)
                     UNION ALL SELECT {rows} + 1 + i FROM range({inserts}) t(i)),
             base AS (SELECT {COLUMNS} FROM ids)
        SELECT id, customer, 'changed' AS status, amount + 1 AS amount, note, updated_at FROM base)
        TO '{path}' (FORMAT parquet)""")
    return {"rows": con.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]}


def child_merge(method: str, root: str, batch_path: str) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from deltalake import DeltaTable, write_deltalake

    loc = f"{root}/silver/t"
    batch = pq.read_table(batch_path)
    start, cpu = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if method in ("flowforge", "flowforge (before)"):
        commit = _store(root).merge("silver", "t", batch, ("id",), {})
        extra = {"inserted": commit.rows_written, "updated": commit.rows_updated}
    elif method == "delta-rs merge":
        dt = DeltaTable(loc)
        m = (dt.merge(batch, predicate="t.id = s.id", source_alias="s", target_alias="t")
             .when_matched_update_all().when_not_matched_insert_all().execute())
        extra = {"inserted": m["num_target_rows_inserted"], "updated": m["num_target_rows_updated"]}
    elif method in ("duckdb MERGE", "duckdb rewrite"):
        import duckdb

        dt = DeltaTable(loc)
        con = duckdb.connect()
        con.register("b", batch)
        files = ", ".join(f"'{f}'" for f in dt.file_uris())
        if method == "duckdb MERGE":
            con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet([{files}])")
            con.execute("MERGE INTO t USING b ON t.id = b.id WHEN MATCHED THEN UPDATE SET * "
                        "WHEN NOT MATCHED THEN INSERT *")
            rel = con.sql("SELECT * FROM t")
        else:
            rel = con.sql(f"SELECT * FROM read_parquet([{files}]) ANTI JOIN b USING (id) UNION ALL BY NAME "
                          "SELECT * FROM b")
        write_deltalake(dt, rel.to_arrow_reader(131_072), mode="overwrite")
    elif method == "polars rewrite":
        import polars as pl

        dt = DeltaTable(loc)
        b = pl.from_arrow(batch)
        assert isinstance(b, pl.DataFrame)
        out = pl.concat([pl.scan_parquet(dt.file_uris()).join(b.lazy(), on="id", how="anti"), b.lazy()])
        write_deltalake(dt, out.collect().to_arrow(), mode="overwrite")
    elif method == "append":
        write_deltalake(DeltaTable(loc), batch, mode="append")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    dt = DeltaTable(loc)
    return {"seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "files": len(dt.file_uris()), **extra}


def child_check(root: str) -> dict[str, Any]:
    import duckdb
    from deltalake import DeltaTable

    files = ", ".join(f"'{f}'" for f in DeltaTable(f"{root}/silver/t").file_uris())
    row = duckdb.sql(f"SELECT count(*), count(DISTINCT id), sum(hash(id, customer, status, amount, note, "
                     f"updated_at) % 1000003) FROM read_parquet([{files}])").fetchall()[0]
    return {"rows": row[0], "keys": row[1], "checksum": int(row[2])}


def child_bronze(root: str, rows: int) -> dict[str, Any]:
    import duckdb
    from deltalake import write_deltalake

    con = duckdb.connect()
    audit = ("'bench' AS _batch_id, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS _ingestion_time, 'bench' AS "
             "_source_system, 'bench' AS _source_file, CAST(NULL AS TIMESTAMPTZ) AS _file_modified_time")
    chunk = 1_000_000
    for first in range(0, rows, chunk):
        # ids in hash order, as a source hands them over; 1 % repeated (updates within the load)
        sql = (f"SELECT {COLUMNS}, {audit} FROM (SELECT CASE WHEN i % 100 = 0 THEN i - 1 ELSE i END AS id "
               f"FROM range({first + 1}, {min(rows, first + chunk) + 1}) t(i) ORDER BY hash(i))")
        write_deltalake(f"{root}/lakehouse/bronze/bronze_t", con.sql(sql).to_arrow_table(), mode="append")
    return {}


def child_build(root: str) -> dict[str, Any]:
    from flowforge.core.context import Context

    shutil.rmtree(f"{root}/lakehouse/silver", ignore_errors=True)
    start = time.perf_counter()
    with Context.open(Path(root)) as ctx:
        summary = ctx.run("merge_bench", select=["build"])
        assert summary.status == "success", [e.error for e in summary.failed]
    return {"seconds": round(time.perf_counter() - start, 3)}


def child_copy(root: str) -> dict[str, Any]:
    import duckdb

    out = f"{root}/duckdb_copy.parquet"
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * EXCLUDE (_batch_id, _source_system, _source_file, _file_modified_time)
        FROM read_parquet('{root}/lakehouse/bronze/bronze_t/*.parquet')
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY _ingestion_time DESC) = 1 ORDER BY id)
        TO '{out}' (FORMAT parquet)""")
    seconds = time.perf_counter() - start
    os.unlink(out)
    return {"seconds": round(seconds, 3)}


def child_main(argv: list[str]) -> None:
    kind, args = argv[0], argv[1:]
    if kind == "base":
        result = child_base(args[0], int(args[1]))
    elif kind == "batch":
        result = child_batch(args[0], int(args[1]), int(args[2]), args[3] == "recent")
    elif kind == "merge":
        result = child_merge(args[0], args[1], args[2])
    elif kind == "check":
        result = child_check(args[0])
    elif kind == "bronze":
        result = child_bronze(args[0], int(args[1]))
    elif kind == "build":
        result = child_build(args[0])
    else:
        result = child_copy(args[0])
    print(json.dumps(result))


# -- parent ---------------------------------------------------------------------------------------

BEFORE_SRC: str | None = None  # --before-src


def _env(src: str | None = None) -> dict[str, str]:
    src = src or str(BENCH.parent / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _child(*args: str) -> tuple[dict[str, Any], float]:
    before = len(args) > 1 and args[1] == "flowforge (before)"
    sample = run_child([sys.executable, __file__, "--child", *args], env=_env(BEFORE_SRC if before else None))
    if not sample.ok:
        raise SystemExit(f"child {args[:2]} failed:\n{sample.failure()}")
    return sample.last_json(), sample.peak_rss_bytes / MB


def _polars() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import polars"], capture_output=True, check=False)
    return probe.returncode == 0


def merges(work: Path, rows: int, changes: int) -> list[dict[str, Any]]:
    base = work / "base"
    _child("base", str(base), str(rows))
    methods = [m for m in METHODS if (m != "polars rewrite" or _polars()) and (m != "flowforge (before)" or BEFORE_SRC)]
    results = []
    for case in ("random", "recent"):
        batch = work / f"batch_{case}.parquet"
        _child("batch", str(batch), str(rows), str(changes), case)
        checks: dict[str, Any] = {}
        for method in methods:
            copy = work / "copy"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(base, copy)
            out, rss = _child("merge", method, str(copy), str(batch))
            check, _ = _child("check", str(copy))
            if method != "append":
                checks[method] = check
            counts = {k: v for k, v in out.items() if k in ("inserted", "updated")}
            results.append({"case": case, "method": method, "seconds": out["seconds"], "cpu_s": out["cpu_s"],
                            "peak_rss_mb": round(rss),
                            "files_after": out["files"], **counts, "rows_after": check["rows"]})
            load = os.getloadavg()[0]
            results[-1]["load_average"] = round(load, 2)
            print(f"  {case:7} {method:18} {out['seconds']:7.2f} s {out['cpu_s']:7.2f} s CPU {rss:7.0f} MB"
                  f"  (load {load:.1f})", flush=True)
        if len({json.dumps(c, sort_keys=True) for c in checks.values()}) != 1:
            raise SystemExit(f"contestants disagree on the merged table ({case}): {checks}")
    shutil.rmtree(work / "copy", ignore_errors=True)
    return results


def builds(work: Path, sizes: list[int]) -> list[dict[str, Any]]:
    import yaml

    results = []
    for rows in sizes:
        root = work / f"build_{rows}"
        (root / "workflows").mkdir(parents=True, exist_ok=True)
        (root / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", "connections": {}}))
        wf = {"name": "merge_bench", "jobs": [{"name": "build", "kind": "silver", "tables": [
            {"target": "silver_t", "source": "bronze_t", "keys": ["id"]}]}]}
        (root / "workflows" / "merge_bench.yml").write_text(yaml.safe_dump(wf, sort_keys=False))
        _child("bronze", str(root), str(rows))
        for method, kind in (("flowforge silver build", "build"), ("duckdb COPY (dedup, sorted)", "copy")):
            out, rss = _child(kind, str(root))
            results.append({"rows": rows, "method": method, "seconds": out["seconds"], "peak_rss_mb": round(rss)})
            print(f"  build {rows:>10,} {method:28} {out['seconds']:7.2f} s {rss:7.0f} MB", flush=True)
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-build", action="store_true", help="only the merges")
    parser.add_argument("--skip-merge", action="store_true", help="only the first build")
    parser.add_argument("--quick", action="store_true", help="the first build at --rows only")
    parser.add_argument("--before-src", default=None,
                        help="another source tree (e.g. main's src) to merge with as 'flowforge (before)'")
    args = parser.parse_args()
    global BEFORE_SRC
    BEFORE_SRC = args.before_src
    work = Path(tempfile.mkdtemp(prefix="flowforge-merge-bench-", dir=args.workdir))
    try:
        merged = [] if args.skip_merge else merges(work, args.rows, args.changes)
        built = [] if args.skip_build else builds(work, [args.rows] if args.quick else [args.rows // 10, args.rows])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for case in ("random", "recent") if merged else ():
        mine = next(r for r in merged if r["case"] == case and r["method"] == "flowforge")
        for r in (r for r in merged if r["case"] == case):
            rows.append([case, r["method"], r["seconds"], round(r["seconds"] / mine["seconds"], 2), r["cpu_s"],
                         round(r["cpu_s"] / mine["cpu_s"], 2), r["peak_rss_mb"],
                         round(r["peak_rss_mb"] / mine["peak_rss_mb"], 2), r["files_after"]])
    print(format_table(["batch", "method", "s", "x FlowForge s", "CPU s", "x FlowForge CPU", "peak MB",
                        "x FlowForge MB", "files"], rows,
                       title=f"merge of {args.changes:,} changed rows (50 % updates) into {args.rows:,} rows"))
    if built:
        print(format_table(["rows", "method", "s", "peak MB"],
                           [[b["rows"], b["method"], b["seconds"], b["peak_rss_mb"]] for b in built],
                           title="first silver build"))
    write_json(BENCH / "results" / "silver_merge.json",
               {"rows": args.rows, "changes": args.changes, "merges": merged, "builds": built,
                "polars": _polars(), "before_src": args.before_src,
                "load_average": os.getloadavg()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

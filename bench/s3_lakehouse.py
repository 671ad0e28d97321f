"""``s3_lakehouse``: the same lakehouse work on local disk and on an S3-protocol server.

    python bench/s3_lakehouse.py                      # 1M-row bronze load, 100K-row silver merge, best of 3
    python bench/s3_lakehouse.py --rows 200000 --merge-rows 20000 --repeat 1

Three steps, each on both backends through ``LakehouseStore`` (what the layers call):

* bronze load: append 1M rows (12 columns, Arrow batches of 100K) as one Delta commit;
* silver merge: upsert 100K rows (half updates of existing keys, half new) into a 1M-row table;
* query: a DuckDB aggregate over the bronze table (native Parquet reader on disk, Arrow
  dataset through delta-rs' object store on S3: DuckDB's own S3 reader is an extension).

The S3 server is moto on 127.0.0.1 (``tests/s3_server.py``), an in-memory Python server: the
ratio measures FlowForge's object-store path plus that server's overhead, not AWS latency.
Results print as a table and go to ``bench/results/s3_lakehouse.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # tests/s3_server.py starts the S3 server


def make_rows(n: int, start: int = 0, seed: int = 7) -> Any:
    """``n`` deterministic rows with ids ``start..start+n-1``: ints, decimals, timestamps and text."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed + start)
    ids = np.arange(start, start + n, dtype=np.int64)
    cents = rng.integers(-500_000, 5_000_000, n)
    base = np.datetime64("2026-01-01T00:00:00", "us")
    return pa.table({
        "event_id": ids,
        "customer_id": rng.integers(1, 200_000, n),
        "account_id": rng.integers(1, 400_000, n),
        "amount": _cents_to_decimal(cents),
        "currency": pa.array(np.array(["EUR", "USD", "GBP", "CHF"])[rng.integers(0, 4, n)]),
        "channel": pa.array(np.array(["branch", "online", "mobile", "atm", "partner"])[rng.integers(0, 5, n)]),
        "status": pa.array(np.array(["posted", "pending", "reversed"])[rng.integers(0, 3, n)]),
        "merchant": pa.array([f"merchant-{i % 5000:05d}" for i in rng.integers(0, 10**6, n)]),
        "booked_at": pa.array(base + rng.integers(0, 86_400_000_000 * 365, n).astype("timedelta64[us]")),
        "value_date": pa.array((base + rng.integers(0, 365, n).astype("timedelta64[D]")).astype("datetime64[D]")),
        "score": rng.random(n),
        "is_international": rng.random(n) < 0.1,
    })


def _cents_to_decimal(cents: Any) -> Any:
    """decimal(20,2) straight from integer cents: the 128-bit unscaled values, sign-extended."""
    import numpy as np
    import pyarrow as pa

    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(20, 2), len(cents), [None, pa.py_buffer(words.tobytes())])


def _reader(table: Any, batch_rows: int = 100_000) -> Any:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))


def _best(fn: Callable[[int], float], repeat: int) -> dict[str, Any]:
    samples = [fn(i) for i in range(repeat)]
    return {"seconds": min(samples), "all_seconds": samples}


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_backend(store: Any, bronze: Any, updates: Any, repeat: int) -> dict[str, Any]:
    """Time the three steps on one ``LakehouseStore``; each repeat writes fresh tables."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    def load(i: int) -> float:
        return _timed(lambda: store.append("bronze", f"events_{i}", _reader(bronze), {"bench": i}))

    def merge(i: int) -> float:
        store.overwrite("silver", f"events_{i}", bronze, {})  # the 1M-row target, not timed
        return _timed(lambda: store.merge("silver", f"events_{i}", updates, ("event_id",), {"bench": i}))

    def query(i: int) -> float:
        dt = store.open("bronze", "events_0")

        def run() -> None:
            engine = DuckDBEngine()
            try:
                engine.register_delta("events", dt)
                engine.query("SELECT channel, count(*), sum(amount), avg(score) FROM events GROUP BY 1", "bench")
            finally:
                engine.close()

        return _timed(run)

    out = {"bronze_load": _best(load, repeat), "silver_merge": _best(merge, repeat),
           "query": _best(query, repeat)}
    dt = store.open("silver", "events_0")
    out["silver_rows_after_merge"] = sum(int(n) for n in dt.get_add_actions(flatten=True)["num_records"]
                                         .to_pylist()) if dt is not None else None
    return out


def run_s3_lakehouse(rows: int = 1_000_000, merge_rows: int = 100_000, repeat: int = 3,
                     workdir: Path | None = None) -> dict[str, Any]:
    """Both backends, same data; returns seconds per step and the S3/local ratios."""
    from tests.s3_server import S3Server

    from flowforge.storage import LakehouseStore

    bronze = make_rows(rows)
    updates = merge_source(rows, merge_rows)
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix="ff-bench-s3-")) if workdir is None else workdir
    try:
        local = run_backend(LakehouseStore(str(base / "lakehouse")), bronze, updates, repeat)
        with S3Server() as server:
            server.create_bucket("ff-bench")
            s3 = run_backend(LakehouseStore("s3://ff-bench/lakehouse", server.options()), bronze, updates, repeat)
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)
    steps = ("bronze_load", "silver_merge", "query")
    return {
        "benchmark": "s3_lakehouse", "rows": rows, "merge_rows": merge_rows, "repeat": repeat,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "local": local, "s3": s3,
        "ratio_s3_over_local": {s: s3[s]["seconds"] / local[s]["seconds"] for s in steps},
        "s3_server": "moto (in-memory, Python) on 127.0.0.1",
    }


def merge_source(rows: int, merge_rows: int) -> Any:
    """Half updates of existing keys drawn at random, half new keys."""
    import numpy as np
    import pyarrow as pa

    half = merge_rows // 2
    changed = make_rows(merge_rows - half, seed=99)
    keys = np.random.default_rng(5).choice(rows, size=changed.num_rows, replace=False).astype(np.int64)
    changed = changed.set_column(0, "event_id", pa.array(keys))
    return pa.concat_tables([changed, make_rows(half, start=rows, seed=98)])


def print_report(result: dict[str, Any]) -> None:
    rows, merge_rows = result["rows"], result["merge_rows"]
    labels = {"bronze_load": f"bronze load, {rows:,} rows", "silver_merge": f"silver merge, {merge_rows:,} "
              f"into {rows:,}", "query": "DuckDB aggregate over bronze"}
    print(f"\ns3_lakehouse: local disk vs S3 server (best of {result['repeat']}; {result['s3_server']})")
    print(f"{'step':<42} {'local s':>9} {'S3 s':>9} {'S3/local':>9} {'local rows/s':>14} {'S3 rows/s':>12}")
    for step, label in labels.items():
        loc, s3 = result["local"][step]["seconds"], result["s3"][step]["seconds"]
        n = rows if step != "silver_merge" else merge_rows
        print(f"{label:<42} {loc:>9.2f} {s3:>9.2f} {s3 / loc:>8.2f}x {n / loc:>14,.0f} {n / s3:>12,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/s3_lakehouse.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="bronze rows (default 1,000,000)")
    parser.add_argument("--merge-rows", type=int, default=100_000, help="rows merged into silver (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step and backend; the best is reported")
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "s3_lakehouse.json",
                        help="where to write the results")
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    parser.add_argument("--json-line", action="store_true",
                        help="print the results as one JSON line last (how bench/run.py children report)")
    args = parser.parse_args(argv)
    result = run_s3_lakehouse(args.rows, args.merge_rows, args.repeat)
    print_report(result)
    if not args.no_save:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwritten to {args.json}")
    if args.json_line:
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

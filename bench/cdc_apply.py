"""CDC benchmark: change events applied to silver per second, and follow-mode latency.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/cdc_apply.py --events 1000000 --keys 100000
    .venv/bin/python bench/cdc_apply.py --latency-batches 50

What it measures, honestly:

* **Throughput.** ``--events`` Debezium PostgreSQL-shaped change events (inserts, updates with
  some unchanged-TOAST placeholders, deletes; ``ProductStream``) are written as JSONL files, then
  one ``flowforge run`` of a cdc job lands them in bronze (decode, dedup, Delta append) and applies
  them to an SCD1 silver table (and, with ``--scd2``, a history table). Reported: events/s for the
  whole run, and for bronze and silver separately. The events come from files, not from a live
  PostgreSQL slot: the direct logical-decoding source is a separate connector.
* **Latency.** ``flowforge run --follow`` (in-process, ``--interval`` polling) is started; the
  benchmark then writes ``--latency-batches`` small JSONL files one after another and, for each,
  measures the time from the file being fully written (the moment an upstream writer such as
  Kafka Connect or the direct source would hand over a committed change) to the row being visible
  in silver through a fresh Delta snapshot. This is *file written → visible in silver*; a commit in
  PostgreSQL adds the capture delay of whatever writes the files.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml


def _project(root: Path, tables: list[dict[str, Any]], interval: float = 1.0) -> None:
    from flowforge.core.project import init_project, write_project_file

    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    (root / "data" / "events").mkdir(parents=True)
    write_project_file(root, {"shop_events": {"type": "debezium", "path": str(root / "data" / "events")}})
    wf = {"name": "bench_cdc", "jobs": [{"name": "products_cdc", "kind": "cdc", "connection": "shop_events",
                                         "files": "batch=*.jsonl", "target": "bronze_products_cdc",
                                         "batch_size": 100_000, "follow_interval": interval, "tables": tables}]}
    (root / "workflows" / "bench_cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")


def throughput(events: int, keys: int, files: int, scd2: bool, workdir: Path) -> dict[str, float]:
    from flowforge.connectors.cdc.debezium.synthetic import CASTS, ProductStream
    from flowforge.core.context import Context

    root = workdir / "throughput"
    tables = [{"target": "products", "strategy": "scd1", "keys": ["id"], "casts": CASTS}]
    if scd2:
        tables.append({"target": "products_history", "strategy": "scd2", "keys": ["id"], "casts": CASTS})
    _project(root, tables)
    stream = ProductStream(keys=keys, seed=1)
    t0 = time.perf_counter()
    per_file = events // files
    for i in range(files):
        stream.write(root / "data" / "events" / f"batch=20250101T{i:06d}Z.jsonl", per_file if i < files - 1
                     else events - per_file * (files - 1))
    gen = time.perf_counter() - t0
    timings: dict[str, float] = {}
    with Context.open(root) as ctx:
        start = time.perf_counter()
        summary = ctx.run("bench_cdc")
        total = time.perf_counter() - start
    assert summary.status == "success", [e.error for e in summary.failed]
    notes = ctx  # noqa: F841 - keep the context closed before reading tables
    from deltalake import DeltaTable

    silver = DeltaTable(str(root / "lakehouse" / "silver" / "products")).to_pyarrow_table(columns=["id"])
    assert silver.num_rows == len(stream.state), "silver holds the model's final state"
    bronze_hist = DeltaTable(str(root / "lakehouse" / "bronze" / "bronze_products_cdc")).history(1)[0]
    silver_hist = DeltaTable(str(root / "lakehouse" / "silver" / "products")).history(1)[0]
    timings = {"events": events, "generate_s": gen, "run_s": total,
               "bronze_commit_ms": float(bronze_hist.get("operationMetrics", {}).get("execution_time_ms", 0)),
               "silver_commit_ms": float(silver_hist.get("operationMetrics", {}).get("execution_time_ms", 0))}
    timings["events_per_s"] = events / total
    return timings


def latency(batches: int, rows: int, interval: float, workdir: Path) -> dict[str, float]:
    from deltalake import DeltaTable

    from flowforge.connectors.cdc.debezium.synthetic import CASTS, ProductStream
    from flowforge.core.context import Context

    root = workdir / "latency"
    _project(root, [{"target": "products", "strategy": "scd1", "keys": ["id"], "casts": CASTS}], interval)
    stream = ProductStream(keys=5000, seed=2, delete_every=0)
    stream.write(root / "data" / "events" / "batch=20250101T000000Z.jsonl", 20_000)  # a table to merge into
    stop = threading.Event()
    ctx = Context.open(root)
    worker = threading.Thread(target=ctx.follow, args=("bench_cdc",), kwargs={"stop": stop}, daemon=True)
    worker.start()
    silver = root / "lakehouse" / "silver" / "products"
    while not (silver / "_delta_log").is_dir():
        time.sleep(0.05)
    waits: list[float] = []
    try:
        for i in range(1, batches + 1):
            time.sleep(interval * 1.5)
            lines = list(stream.lines(rows))
            marker = stream.lsn
            path = root / "data" / "events" / f"batch=20250101T{i:06d}Z.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.rename(path)  # the file appears complete, as an upstream writer would publish it
            written = time.perf_counter()
            want = f"pg:{marker:020d}"
            while True:
                dt_ = DeltaTable(str(silver))
                if dt_.to_pyarrow_dataset().to_table(columns=["_position"]).column("_position").to_pylist() \
                        and max(dt_.to_pyarrow_table(columns=["_position"]).column("_position").to_pylist()) >= want:
                    break
                time.sleep(0.005)
            waits.append(time.perf_counter() - written)
    finally:
        stop.set()
        worker.join(timeout=60)
        ctx.close()
    waits.sort()
    return {"batches": batches, "rows_per_batch": rows, "interval_s": interval,
            "p50_s": statistics.median(waits), "p99_s": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
            "max_s": waits[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--scd2", action="store_true", help="also maintain an SCD2 history table")
    parser.add_argument("--latency-batches", type=int, default=50)
    parser.add_argument("--latency-rows", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowforge-cdc-bench-"))
    try:
        if not args.skip_throughput:
            t = throughput(args.events, args.keys, args.files, args.scd2, workdir)
            print(f"throughput: {t['events']:,} events in {t['run_s']:.1f} s = {t['events_per_s']:,.0f} events/s "
                  f"applied (bronze + silver{' + scd2' if args.scd2 else ''}; generating the files took "
                  f"{t['generate_s']:.1f} s, not counted)")
        if args.latency_batches:
            lat = latency(args.latency_batches, args.latency_rows, args.interval, workdir)
            print(f"latency (file written -> visible in silver, {lat['batches']} batches of {lat['rows_per_batch']} "
                  f"changes, poll {lat['interval_s']} s): p50 {lat['p50_s']:.3f} s, p99 {lat['p99_s']:.3f} s, "
                  f"max {lat['max_s']:.3f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

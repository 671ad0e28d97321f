"""Reading CSV files through a files connection, against the readers a user would pick instead.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/files_read.py --rows 2000000 --repeat 3

What it measures, in one run, side by side on the same files (best of ``--repeat``, by turns):

* **FlowForge**: ``FilesConnector.plan`` + ``read`` of every batch of a ``;``-separated file with
  ``delimiter: ";"``, ``null_values: ["?"]`` and a declared decimal: the sample, the dialect check
  (a file that reads as one column is refused), the inferred schema and the streamed Arrow batches.
* **pyarrow.csv** streaming the same file with the same explicit types (the floor: FlowForge reads
  with it).
* **DuckDB** ``read_csv`` (its own sniffer) to an Arrow table: what a user would reach for.
* **A file with no line break** (``--blob-mb``, default 512): time until FlowForge refuses it and the
  peak RSS of that process, beside DuckDB's ``read_csv`` on the same file, each in a fresh process.

Results print as a table and go to ``bench/results/files_read.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = """
import sys, time
start = time.perf_counter()
kind, folder = sys.argv[1], sys.argv[2]
try:
    if kind == "flowforge":
        from flowforge.connectors.base import ReadRequest
        from flowforge.connectors.files.config import FilesConfig
        from flowforge.connectors.files.connector import FilesConnector
        conn = FilesConnector("raw", FilesConfig(path=folder))
        plan = conn.plan(ReadRequest(files="blob.csv"), None)
        for part in conn.read(plan):
            for _ in part.batches:
                pass
    else:
        import duckdb
        duckdb.sql(f"SELECT count(*) FROM read_csv('{folder}/blob.csv')").fetchall()
    outcome = "read"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc).splitlines()[0][:120]
print(time.perf_counter() - start)
# VmHWM is this process's own peak (ru_maxrss keeps the parent's peak across fork and exec)
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) * 1024)
print(outcome)
"""


def write_csv(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(7)
    ids = pa.array(np.arange(rows))
    whole = pc.cast(pa.array(rng.integers(-10**5, 10**5, rows)), pa.string())
    cents = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 100, rows)), pa.string()), 2, "0")
    amount = pc.binary_join_element_wise(whole, cents, pa.scalar("."))
    amount = pc.if_else(pc.equal(pc.bit_wise_and(ids, 63), 0), pa.scalar("?"), amount)
    table = pa.table({
        "id": ids,
        "customer": pc.binary_join_element_wise(pa.scalar("customer "), pc.cast(pa.array(rng.integers(0, 10**6, rows)),
                                                                                 pa.string()), pa.scalar("")),
        "amount": amount,
        "qty": pa.array(rng.integers(0, 1000, rows)),
        "day": pa.array(rng.integers(19000, 20000, rows)).cast(pa.int32()).cast(pa.date32()),
        "note": pa.array(rng.choice(["", "gift", "express", "NULL"], rows)),
    })
    pcsv.write_csv(table, path, write_options=pcsv.WriteOptions(delimiter=";", quoting_style="needed"))


def flowforge_read(folder: Path) -> int:
    from flowforge.connectors.base import ReadRequest
    from flowforge.connectors.files.config import FilesConfig
    from flowforge.connectors.files.connector import FilesConnector

    conn = FilesConnector("bench", FilesConfig(path=str(folder), delimiter=";", null_values=["?"],
                                               columns={"amount": "decimal(12,2)"}))
    plan = conn.plan(ReadRequest(files="orders.csv"), None)
    return sum(b.num_rows for part in conn.read(plan) for b in part.batches)


def pyarrow_read(folder: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {"id": pa.int64(), "customer": pa.string(), "amount": pa.decimal128(12, 2), "qty": pa.int64(),
             "day": pa.date32(), "note": pa.string()}
    stream = pcsv.open_csv(folder / "orders.csv", read_options=pcsv.ReadOptions(block_size=1 << 22),
                           parse_options=pcsv.ParseOptions(delimiter=";"),
                           convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                               null_values=["", "NULL", "null", "?"]))
    return sum(b.num_rows for b in stream)


def duckdb_read(folder: Path) -> int:
    import duckdb

    sql = f"SELECT * FROM read_csv('{folder}/orders.csv', nullstr=['', 'NULL', '?'])"
    return duckdb.sql(sql).to_arrow_table().num_rows


def child(kind: str, folder: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(folder)], capture_output=True, text=True, env=env,
                         timeout=900).stdout.splitlines()
    return {"seconds": round(float(out[0]), 2), "peak_rss_mb": round(int(out[1]) / 2**20), "outcome": out[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blob-mb", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_csv(folder / "orders.csv", args.rows)
        size_mb = (folder / "orders.csv").stat().st_size / 2**20
        best: dict[str, float] = {}
        for fn in (flowforge_read, pyarrow_read, duckdb_read):  # imports and caches warm, untimed
            fn(folder)
        for _ in range(args.repeat):
            for name, fn in (("flowforge", flowforge_read), ("pyarrow", pyarrow_read), ("duckdb", duckdb_read)):
                start = time.perf_counter()
                assert fn(folder) == args.rows, name
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        (folder / "orders.csv").unlink()
        with (folder / "blob.csv").open("wb") as fh:
            fh.write(b"a,b\n")
            for _ in range(args.blob_mb):
                fh.write(b"x" * (1 << 20))
        blob = {kind: child(kind, folder) for kind in ("flowforge", "duckdb")}
    result = {
        "rows": args.rows, "file_mb": round(size_mb, 1),
        "seconds": {k: round(v, 3) for k, v in best.items()},
        "ratio_vs_pyarrow": round(best["flowforge"] / best["pyarrow"], 2),
        "ratio_vs_duckdb": round(best["flowforge"] / best["duckdb"], 2),
        "no_newline_file_mb": args.blob_mb, "no_newline": blob,
        "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "files_read.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

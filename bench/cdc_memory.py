"""CDC from PostgreSQL logical decoding: peak memory and events/s of a run as the backlog grows,
and the delay from COMMIT in PostgreSQL to the row being visible in silver.

Standalone: ``python bench/cdc_memory.py [--sizes 100000,1000000,10000000] [--latency-seconds 60]
[--anchor-src /path/to/another/checkout/src] [--url postgresql://...]``. Without ``--url`` it
starts its own PostgreSQL with ``wal_level=logical`` (``initdb``, see ``cdc_pg_source.py``).

**Memory.** For each size N a table gets N changes after its slot exists: N/2 INSERTs, then N/2
UPDATEs, committed in ``--txn-rows`` transactions (``--txn-rows 0``: all of them in one
transaction, the case of issue 18 item 9). Then one ``flowforge run`` in a child process lands
them: in bronze only (``bronze``, the CDC bronze path), and in bronze plus an SCD1 silver table
(``bronze+scd1``, on its own slot over the same WAL, up to ``--silver-max``). Reported: wall seconds of the command,
events/s, and peak RSS from ``wait4`` (the harness imports only the standard library, so the
figure is the child's). ``--anchor-src`` runs the same bronze load with another checkout's code
(e.g. the main branch, which buffered a whole run's events) for sizes up to 1M.

**Latency.** A writer process commits single-row INSERTs at ``--rate`` per second for
``--latency-seconds``; ``flowforge run --follow --interval`` runs in a child with an SCD1 silver
table; a poller process opens the silver table every 20 ms and records when each row first
appears. Latency = first seen in silver - the writer's COMMIT returned (one wall clock, one
machine). Results go to bench/results/cdc_memory.json. Nothing is asserted: tests decide.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdc_pg_source import PG_BIN, own_server
from measure import MB, format_table, harness_rss_mb, run_child, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "cdc_memory.json"
SRC = Path(__file__).resolve().parents[1] / "src"


def psql(url: str, sql: str) -> str:
    psql_bin = PG_BIN / "psql" if (PG_BIN / "psql").exists() else Path("psql")
    done = subprocess.run([str(psql_bin), url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def project(root: Path, url: str, slot: str, table: str, silver: bool, anchor: bool = False,
            job: str = "") -> Path:
    import textwrap

    (root / "workflows").mkdir(parents=True)
    # compaction is measured apart from the load (code without the setting has no maintenance)
    policy = "" if anchor else "maintenance: {auto: false}"
    (root / "flowforge.yml").write_text(textwrap.dedent(f"""\
        lakehouse: lakehouse
        {policy}
        connections:
          src: {{type: pg_logical, url: "{url}", slot: {slot}, tables: [public.{table}]}}
        """), encoding="utf-8")
    tables = "\n    tables: [{target: silver_events, strategy: scd1, keys: [id]}]" if silver else ""
    (root / "workflows" / "cdc.yml").write_text(
        f"name: cdc\njobs:\n  - name: events\n    kind: cdc\n    connection: src\n    target: bronze_events{tables}\n"
        + "".join(f"    {item.strip()}\n" for item in job.split(";") if item.strip() and not anchor),
        encoding="utf-8")
    return root


def flowforge(src: Path, *args: str, timeout: float = 7200) -> Any:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return run_child([sys.executable, "-m", "flowforge", *args], env=env, timeout=timeout)


def generate(url: str, table: str, changes: int, txn_rows: int) -> float:
    inserts = changes // 2
    step = txn_rows or changes
    started = time.perf_counter()
    statements = []
    for lo in range(1, inserts + 1, step):
        hi = min(lo + step - 1, inserts)
        statements.append(f"INSERT INTO public.{table} SELECT g, g % 100, g * 0.5, 'item ' || g, now() "
                          f"FROM generate_series({lo}, {hi}) g;")
    for lo in range(1, changes - inserts + 1, step):
        hi = min(lo + step - 1, changes - inserts)
        statements.append(f"UPDATE public.{table} SET qty = qty + 1, updated = now() WHERE id BETWEEN {lo} AND {hi};")
    script = "\n".join(statements) if txn_rows else "BEGIN;\n" + "\n".join(statements) + "\nCOMMIT;"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    try:
        psql_bin = PG_BIN / "psql" if (PG_BIN / "psql").exists() else Path("psql")
        subprocess.run([str(psql_bin), url, "-v", "ON_ERROR_STOP=1", "-q", "-f", fh.name], check=True,
                       capture_output=True)
    finally:
        os.unlink(fh.name)
    return time.perf_counter() - started


def _read(stdout: str) -> int | None:
    import re

    found = re.search(r"\[([\d,]+) read", stdout)
    return int(found.group(1).replace(",", "")) if found else None


def memory(url: str, sizes: list[int], txn_rows: int, anchor: Path | None, work: Path,
           job: str = "", silver_max: int = 1_000_000) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        table = f"mem_{n}"
        psql(url, f"DROP TABLE IF EXISTS public.{table}; CREATE TABLE public.{table} (id bigint PRIMARY KEY, qty int, "
                  "price numeric(12,2), name text, updated timestamptz)")
        cases = {"bronze": (SRC, False)}
        if n <= silver_max:  # the silver merge at 10M rows is issue 17's section 2, measured elsewhere
            cases["bronze+scd1"] = (SRC, True)
        if anchor is not None and n <= 1_000_000:
            cases["bronze, anchor code"] = (anchor, False)
        projects = {}
        for i, (name, (src, silver)) in enumerate(cases.items()):
            root = project(work / f"{table}_{i}", url, f"ff_mem_{n}_{i}", table, silver, anchor=src != SRC, job=job)
            first = flowforge(src, "-p", str(root), "run", "cdc")  # the empty snapshot creates the slot
            if first.returncode:
                raise RuntimeError(first.failure())
            projects[name] = (root, src)
        seconds = generate(url, table, n, txn_rows)
        print(f"{n:,} changes generated in {seconds:.1f} s", flush=True)
        for name, (root, src) in projects.items():
            sample = flowforge(src, "-p", str(root), "run", "cdc")
            events = _read(sample.stdout) if sample.ok else None
            row = {"events": n, "case": name, "ok": sample.ok and events is not None and events >= n,
                   "seconds": round(sample.seconds, 2), "events_read": events,
                   "events_per_s": round(n / sample.seconds) if sample.ok else None,
                   "peak_rss_mb": round(sample.peak_rss_bytes / MB, 1)}
            if not sample.ok:
                row["error"] = sample.failure()
            print(json.dumps(row), flush=True)
            out.append(row)
        for i in range(len(cases)):
            psql(url, f"SELECT pg_drop_replication_slot('ff_mem_{n}_{i}')")
        psql(url, f"DROP TABLE public.{table}")
    return out


WRITER = """
import json, sys, time, psycopg
url, table, seconds, rate, out = sys.argv[1:6]
conn = psycopg.connect(url, autocommit=True)
end, ident, stamps = time.time() + float(seconds), 0, {}
while time.time() < end:
    ident += 1
    conn.execute(f"INSERT INTO public.{table} VALUES (%s, 'x')", (ident,))
    stamps[ident] = time.time()
    time.sleep(1.0 / float(rate))
open(out, "w").write(json.dumps(stamps))
"""

POLLER = """
import json, os, sys, time
from deltalake import DeltaTable
path, stop, out = sys.argv[1:4]
seen = {}
while not os.path.exists(stop):
    try:
        ids = DeltaTable(path).to_pyarrow_table(columns=["id"]).column("id").to_pylist()
    except Exception:
        ids = []
    now = time.time()
    for i in ids:
        seen.setdefault(i, now)
    time.sleep(0.02)
open(out, "w").write(json.dumps(seen))
"""


def latency(url: str, seconds: float, rate: float, interval: float, src: Path, work: Path,
            label: str) -> dict[str, Any]:
    table = f"lat_{abs(hash(label)) % 10_000}"
    psql(url, f"DROP TABLE IF EXISTS public.{table}; CREATE TABLE public.{table} (id int PRIMARY KEY, note text)")
    root = project(work / f"{table}_follow", url, f"ff_{table}", table, silver=True, anchor=src != SRC)
    env = {**os.environ, "PYTHONPATH": str(src)}
    first = flowforge(src, "-p", str(root), "run", "cdc")
    if first.returncode:
        raise RuntimeError(first.failure())
    stop, stamps, seen = work / f"{table}.stop", work / f"{table}.commits", work / f"{table}.seen"
    follow = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(root), "run", "cdc", "--follow",
                               "--interval", str(interval)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    poller = subprocess.Popen([sys.executable, "-c", POLLER, str(root / "lakehouse" / "silver" / "silver_events"),
                               str(stop), str(seen)], env=env)
    time.sleep(3)  # the follow loop is up
    subprocess.run([sys.executable, "-c", WRITER, url, table, str(seconds), str(rate), str(stamps)], env=env,
                   check=True)
    time.sleep(max(5.0, interval * 10))
    stop.touch()
    poller.wait(60)
    follow.send_signal(2)
    follow.wait(120)
    committed = {int(k): v for k, v in json.loads(stamps.read_text()).items()}
    visible = {int(k): v for k, v in json.loads(seen.read_text()).items()}
    waits = sorted(visible[i] - t for i, t in committed.items() if i in visible)
    psql(url, f"SELECT pg_drop_replication_slot('ff_{table}'); DROP TABLE public.{table}")
    q = statistics.quantiles(waits, n=100) if len(waits) >= 2 else waits * 99
    return {"code": label, "rows": len(committed), "seen": len(waits), "rate_per_s": rate, "interval_s": interval,
            "p50_s": round(q[49], 3), "p99_s": round(q[98], 3), "max_s": round(waits[-1], 3) if waits else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--txn-rows", type=int, default=100_000, help="rows per source transaction (0: one)")
    parser.add_argument("--url", help="a PostgreSQL with wal_level=logical (default: start one)")
    parser.add_argument("--anchor-src", type=Path, help="another checkout's src/ to measure the same way")
    parser.add_argument("--silver-max", type=int, default=1_000_000, help="largest size with the SCD1 case")
    parser.add_argument("--job", default="", help="extra cdc job settings as YAML flow, e.g. "
                                                 "'commit_every: 50000; batch_size: 20000'")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    sizes = [int(float(x)) for x in args.sizes.split(",") if x.strip()]
    work = Path(tempfile.mkdtemp(prefix="ff_bench_cdc_memory_"))
    result: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    try:
        with own_server() if not args.url else _given(args.url) as url:
            if sizes:
                result["memory"] = memory(url, sizes, args.txn_rows, args.anchor_src, work, args.job,
                                          args.silver_max)
                print(format_table(["events", "case", "seconds", "events/s", "peak RSS MB"],
                                   [[r["events"], r["case"], r["seconds"], r["events_per_s"], r["peak_rss_mb"]]
                                    for r in result["memory"]], title="\nCDC run, PostgreSQL logical decoding"))
            if args.latency_seconds > 0:
                result["latency"] = [latency(url, args.latency_seconds, args.rate, args.interval, SRC, work, "this")]
                if args.anchor_src is not None:
                    result["latency"].append(latency(url, args.latency_seconds, args.rate, args.interval,
                                                     args.anchor_src, work, "anchor"))
                print(format_table(["code", "rows", "p50 s", "p99 s", "max s"],
                                   [[r["code"], r["rows"], r["p50_s"], r["p99_s"], r["max_s"]]
                                    for r in result["latency"]], title="\nCOMMIT in PostgreSQL -> visible in silver"))
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    result["load_average_at_end"] = os.getloadavg()
    result["harness_peak_rss_mb"] = round(harness_rss_mb(), 1)
    write_json(RESULTS, result)


def _given(url: str) -> Any:
    from contextlib import nullcontext

    return nullcontext(url)


if __name__ == "__main__":
    main()

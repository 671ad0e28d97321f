"""PostgreSQL logical decoding through the pg_logical connector: events/s and follow latency.

Standalone: ``python bench/cdc_pg_source.py [--changes 1000000] [--url postgresql://...]``.
Without ``--url`` it starts its own PostgreSQL (``initdb`` from /usr/lib/postgresql/15/bin, as the
``postgres`` user when run as root) with ``wal_level=logical`` and removes it afterwards.

Throughput: half the changes are INSERTs, half UPDATEs, committed in 100k-row transactions after
the slot exists; then one plan + read of all of them. Peers measured in the same run on the same
WAL: the server decoding pgoutput alone (``count(*)`` over ``pg_logical_slot_peek_binary_changes``,
the floor of any SQL-function reader) and ``test_decoding`` to text (what a simple reader parses).

Latency (``--follow-seconds``): a writer commits single-row INSERTs at ``--rate`` per second while
``Context.follow`` runs a bronze-only cdc workflow every ``--interval`` seconds; the latency of a
row is (end of the micro-batch whose bronze commit holds it) - (its source COMMIT returned).
Results go to bench/results/cdc_pg_source.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("FLOWFORGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RESULTS = Path(__file__).resolve().parent / "results" / "cdc_pg_source.json"


@contextmanager
def own_server() -> Iterator[str]:
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="ff_bench_pglogical_"))
    if owner:
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run([*owner, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_size=4GB "
            "-c max_replication_slots=10 -c shared_buffers=256MB -c work_mem=64MB")
    subprocess.run([*owner, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*owner, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _connector(url: str, slot: str, table: str) -> Any:
    from flowforge.connectors import open_connector
    from flowforge.connectors.config import parse_connection

    return open_connector("bench", parse_connection({"type": "pg_logical", "url": url, "slot": slot,
                                                     "tables": [table]}))


def throughput(url: str, changes: int, batch_size: int) -> dict[str, Any]:
    import psycopg

    from flowforge.connectors.base import ReadRequest

    db = psycopg.connect(url, autocommit=True)
    db.execute("DROP TABLE IF EXISTS public.bench_items")
    db.execute("CREATE TABLE public.bench_items (id int PRIMARY KEY, qty int, price numeric(12,2), "
               "name text, updated timestamptz)")
    conn = _connector(url, "ff_bench", "public.bench_items")
    plan = conn.plan(ReadRequest(batch_size=batch_size), None)
    for part in conn.read(plan):
        for _ in part.batches:
            pass
    state = plan.new_state
    db.execute("SELECT pg_create_logical_replication_slot('ff_bench_text', 'test_decoding')")
    inserts = changes // 2
    started = time.perf_counter()
    step = 100_000
    for lo in range(1, inserts + 1, step):
        hi = min(lo + step - 1, inserts)
        db.execute("INSERT INTO public.bench_items SELECT g, g %% 100, g * 0.5, 'item ' || g, now() "
                   "FROM generate_series(%s::int, %s::int) g", (lo, hi))
    for lo in range(1, changes - inserts + 1, step):
        hi = min(lo + step - 1, changes - inserts)
        db.execute("UPDATE public.bench_items SET qty = qty + 1, updated = now() WHERE id BETWEEN %s AND %s", (lo, hi))
    generate_s = time.perf_counter() - started
    upto = db.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]  # type: ignore[index]

    started = time.perf_counter()
    floor = db.execute("SELECT count(*) FROM pg_logical_slot_peek_binary_changes('ff_bench', %s::pg_lsn, NULL, "
                       "'proto_version', '1', 'publication_names', 'flowforge_ff_bench')", (upto,)).fetchone()
    floor_s = time.perf_counter() - started
    started = time.perf_counter()
    text = db.execute("SELECT count(*) FROM pg_logical_slot_peek_changes('ff_bench_text', %s::pg_lsn, NULL)",
                      (upto,)).fetchone()
    text_s = time.perf_counter() - started

    started, cpu = time.perf_counter(), time.process_time()
    plan = conn.plan(ReadRequest(batch_size=batch_size), state)
    events = 0
    for part in conn.read(plan):
        for batch in part.batches:
            events += batch.num_rows
    ours_s, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.drop_slot()
    db.execute("SELECT pg_drop_replication_slot('ff_bench_text')")
    db.close()
    return {"changes": changes, "events": events, "generate_s": round(generate_s, 2),
            "flowforge_pg_logical_s": round(ours_s, 2), "events_per_s": round(events / ours_s),
            "client_cpu_s": round(ours_cpu, 2), "events_per_client_cpu_s": round(events / ours_cpu),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "server_pgoutput_count_s": round(floor_s, 2), "pgoutput_messages": floor[0] if floor else None,
            "server_test_decoding_count_s": round(text_s, 2), "test_decoding_rows": text[0] if text else None,
            "ratio_vs_server_pgoutput_floor": round(ours_s / floor_s, 2),
            "ratio_vs_server_test_decoding": round(ours_s / text_s, 2)}


def follow_latency(url: str, seconds: float, rate: float, interval: float) -> dict[str, Any]:
    import psycopg
    import yaml
    from deltalake import DeltaTable

    from flowforge.core.context import Context
    from flowforge.core.project import init_project, write_project_file

    db = psycopg.connect(url, autocommit=True)
    db.execute("DROP TABLE IF EXISTS public.follow_items")
    db.execute("CREATE TABLE public.follow_items (id int PRIMARY KEY, note text)")
    root = Path(tempfile.mkdtemp(prefix="ff_bench_follow_")) / "p"
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    write_project_file(root, {"src": {"type": "pg_logical", "url": url, "slot": "ff_follow",
                                      "tables": ["public.follow_items"]}})
    wf = {"name": "follow", "jobs": [{"name": "items", "kind": "cdc", "connection": "src", "target": "bronze_items"}]}
    (root / "workflows" / "follow.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
    committed: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop, writing_done = threading.Event(), threading.Event()

    def on_cycle(_summary: Any) -> None:
        now = time.perf_counter()
        path = root / "lakehouse" / "bronze" / "bronze_items"
        if not (path / "_delta_log").is_dir():
            return
        for key in DeltaTable(str(path)).to_pyarrow_table(columns=["_key"]).column("_key").to_pylist():
            ident = json.loads(key)["id"] if key else None
            if ident is not None and ident not in seen:
                seen[ident] = now
        if writing_done.is_set() and all(i in seen for i in committed):
            stop.set()

    def writer() -> None:
        time.sleep(2.0)  # let the first (snapshot) micro-batch create the slot
        w = psycopg.connect(url, autocommit=True)
        ident, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            ident += 1
            w.execute("INSERT INTO public.follow_items VALUES (%s, 'x')", (ident,))
            committed[ident] = time.perf_counter()
            time.sleep(1.0 / rate)
        w.close()
        writing_done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    watchdog = threading.Timer(seconds + 120, stop.set)
    watchdog.start()
    with Context.open(root) as ctx:
        cycles = ctx.follow("follow", interval=interval, on_cycle=on_cycle, stop=stop)
    watchdog.cancel()
    thread.join()
    latencies = sorted((seen[i] - t) * 1000 for i, t in committed.items() if i in seen)
    _connector(url, "ff_follow", "public.follow_items").drop_slot()
    db.close()
    shutil.rmtree(root.parent, ignore_errors=True)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    return {"rows": len(committed), "seen": len(latencies), "micro_batches": cycles, "interval_s": interval,
            "rate_per_s": rate, "latency_ms_p50": round(q[49], 1), "latency_ms_p99": round(q[98], 1),
            "latency_ms_max": round(latencies[-1], 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--url", help="an existing PostgreSQL with wal_level=logical (default: start one)")
    parser.add_argument("--follow-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    with (contextmanager(lambda: iter([args.url]))() if args.url else own_server()) as url:
        result: dict[str, Any] = {"throughput": throughput(url, args.changes, args.batch_size)}
        print(json.dumps(result["throughput"], indent=2))
        if args.follow_seconds > 0:
            result["follow"] = follow_latency(url, args.follow_seconds, args.rate, args.interval)
            print(json.dumps(result["follow"], indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

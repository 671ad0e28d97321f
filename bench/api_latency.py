"""API latency under load: p50/p99 and requests/s of the workflow list and lineage endpoints.

    python bench/api_latency.py                       # 1,000 workflows, 100,000 runs, 50 clients
    python bench/api_latency.py --requests 500        # quicker
    python bench/api_latency.py --metadata-url postgresql://postgres@127.0.0.1:5432/flowforge_bench

The metadata store is filled directly (bulk inserts of workflows, jobs, lineage edges, assets,
runs and job runs), ``flowforge serve`` starts in a subprocess on a free loopback port, and
``--clients`` concurrent httpx clients send a bounded number of requests to each endpoint.
Results print as a table and go to bench/results/api_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
ADMIN_PASSWORD = "bench-Admin-Pw-1"


def fill(project: Path, metadata_url: str | None, workflows: int, runs: int) -> tuple[str, list[str], dict[str, float]]:
    """A project with ``workflows`` workflows and ``runs`` runs (3 job runs each); returns an admin token,
    the workflow names and the seconds each step took."""
    from sqlalchemy import insert

    from flowforge.core.context import Context
    from flowforge.core.project import init_project
    from flowforge.lineage.graph import table_edges
    from flowforge.metadata import tables as t
    from flowforge.settings import Settings
    from flowforge.spec.workflow import Workflow

    timings: dict[str, float] = {}
    init_project(project)
    settings = Settings.load(project)
    if metadata_url:
        settings = settings.model_copy(update={"metadata_url": metadata_url})
        (project / "flowforge.yml").write_text((project / "flowforge.yml").read_text()
                                               + f"\nmetadata_url: {metadata_url}\n")
    ctx = Context(settings)
    ctx.users.create_user("admin", ADMIN_PASSWORD, "admin", actor="bench")
    token = ctx.users.create_token("admin", "bench", actor="bench")
    start = time.perf_counter()
    now = datetime.now(UTC)
    names, wf_rows, specs = [], [], []
    for i in range(workflows):
        name = f"wf_{i:05d}"
        spec = _spec(name)
        wf = Workflow.model_validate(spec)
        names.append(name)
        specs.append(wf)
        wf_rows.append({"id": i + 1, "name": name, "description": f"Benchmark workflow {i}", "team": f"team_{i % 7}",
                        "environment": ("dev", "prod")[i % 2], "tags": ["bench", f"t{i % 5}"], "status": "active",
                        "spec": wf.to_dict(), "source_path": None, "created_at": now, "updated_at": now})
    job_rows, edge_rows, asset_rows = [], [], []
    for wf_id, wf in enumerate(specs, start=1):
        for pos, job in enumerate(wf.jobs):
            job_rows.append({"workflow_id": wf_id, "name": job.name, "kind": job.kind,
                             "spec": job.model_dump(mode="json", exclude_defaults=True),
                             "inputs": list(job.inputs()), "outputs": list(job.outputs()), "position": pos})
            for target in job.outputs():
                asset_rows.append({"table_name": target, "layer": job.layer, "location": f"/lake/{target}",
                                   "schema": [{"name": "id", "type": "int64", "nullable": False}],
                                   "row_count": 1000 + wf_id, "delta_version": 3, "last_updated": now,
                                   "workflow_name": wf.name})
        edge_rows += [{"workflow_id": wf_id, "source": e.source, "target": e.target, "kind": e.kind,
                       "source_column": None, "target_column": None} for e in table_edges(wf)]
    with ctx.metadata.engine.begin() as conn:
        conn.execute(insert(t.workflows), wf_rows)
        conn.execute(insert(t.jobs), job_rows)
        conn.execute(insert(t.lineage_edges), edge_rows)
        conn.execute(insert(t.assets), asset_rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval('workflows_id_seq', (SELECT max(id) FROM workflows))")
    timings["insert workflows"] = time.perf_counter() - start
    start = time.perf_counter()
    rng = random.Random(7)
    batch = 20_000
    for first in range(0, runs, batch):
        run_rows, job_run_rows = [], []
        for run_id in range(first + 1, min(first + batch, runs) + 1):
            began = now - timedelta(minutes=runs - run_id)
            status = rng.choices(("success", "failed", "partial"), (90, 7, 3))[0]
            run_rows.append({"id": run_id, "workflow_id": (run_id % workflows) + 1, "trigger": "schedule",
                             "status": status, "actor": "bench", "started_at": began,
                             "ended_at": began + timedelta(seconds=30), "rows_read": 3000, "rows_written": 3000,
                             "error": None if status == "success" else "a job failed"})
            job_run_rows += [{"run_id": run_id, "job_name": job, "status": "success", "started_at": began,
                              "ended_at": began + timedelta(seconds=10), "rows_read": 1000, "rows_written": 1000,
                              "bytes_written": 65536, "error": None, "log": None}
                             for job in ("ingest_orders", "clean_orders", "daily_revenue")]
        with ctx.metadata.engine.begin() as conn:
            conn.execute(insert(t.runs), run_rows)
            conn.execute(insert(t.job_runs), job_run_rows)
    with ctx.metadata.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval('runs_id_seq', (SELECT max(id) FROM runs))")
            conn.exec_driver_sql("ANALYZE")
    timings["insert runs"] = time.perf_counter() - start
    ctx.close()
    return token, names, timings


def _spec(name: str) -> dict[str, Any]:
    return {"name": name, "description": "Benchmark workflow", "jobs": [
        {"name": "ingest_orders", "kind": "ingest", "connection": "local_files",
         "tables": [{"files": "orders*.csv", "target": f"bronze_{name}"}]},
        {"name": "clean_orders", "kind": "silver",
         "tables": [{"target": f"silver_{name}", "source": f"bronze_{name}", "keys": ["order_id"]}]},
        {"name": "daily_revenue", "kind": "gold",
         "tables": [{"target": f"gold_{name}", "sql": f"SELECT count(*) AS n FROM silver_{name}"}]}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(project: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--no-ui",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not start in 120 s")


async def drive(base: str, token: str, paths: list[str], clients: int) -> dict[str, float]:
    """Send every path once, ``clients`` at a time; latency percentiles in milliseconds."""
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = list(reversed(paths))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120,
                                 limits=limits) as client:
        async def worker() -> None:
            nonlocal errors
            while queue:
                path = queue.pop()
                start = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.TransportError:  # counted, not fatal: the figure says how many failed
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                errors += response.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "mean_ms": statistics.fmean(latencies), "max_ms": latencies[-1], "requests_per_s": len(latencies) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--metadata-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ff-api-bench-", dir=args.workdir) as tmp:
        project = Path(tmp) / "project"
        token, names, timings = fill(project, args.metadata_url, args.workflows, args.runs)
        port = free_port()
        server = start_server(project, port)
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            rng = random.Random(11)
            asyncio.run(drive(base, token, ["/workflows"] * min(50, args.requests), args.clients))  # warm up
            results = {
                "GET /workflows (page of 100)": asyncio.run(drive(base, token, ["/workflows"] * args.requests,
                                                                  args.clients)),
                "GET /workflows?limit=1000": asyncio.run(drive(base, token, ["/workflows?limit=1000"] * args.requests,
                                                               args.clients)),
                "GET /workflows/{name}/lineage": asyncio.run(drive(
                    base, token, [f"/workflows/{rng.choice(names)}/lineage" for _ in range(args.requests)],
                    args.clients)),
            }
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    backend = "postgresql" if args.metadata_url else "sqlite"
    print(f"\nAPI latency: {args.workflows:,} workflows, {args.runs:,} runs, {args.clients} clients, "
          f"{backend} metadata, one uvicorn process")
    print(f"(fill: {', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})")
    print(f"{'endpoint':34} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8}")
    for name, r in results.items():
        print(f"{name:34} {r['requests']:>8.0f} {r['errors']:>6.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['max_ms']:>8.1f} {r['requests_per_s']:>8.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "api_latency.json"
    out.write_text(json.dumps({"workflows": args.workflows, "runs": args.runs, "clients": args.clients,
                               "metadata": backend, "fill_seconds": timings, "results": results}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()

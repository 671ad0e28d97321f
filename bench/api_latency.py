"""API latency under load: p50/p99 and requests/s of the workflow list, detail, lineage, run and
catalog endpoints.

    python bench/api_latency.py                       # 1,000 workflows, 100,000 runs, 50 clients
    python bench/api_latency.py --requests 500        # quicker
    python bench/api_latency.py --metadata-url postgresql://postgres@127.0.0.1:5432/flowforge_bench
    python bench/api_latency.py --server before=/tmp/old/src:1 --server now=src:1 --server now_w4=src:4
    python bench/api_latency.py --server floor=hello:2 --server now=src:2   # against a hello-world app

The metadata store is filled directly (bulk inserts of workflows, jobs, lineage edges, assets,
runs and job runs), the lakehouse gets ``--tables`` small Delta tables (three commits each) for the
catalog routes, ``flowforge serve`` starts in a subprocess on a free loopback port, and the
load goes to each endpoint from ``--clients`` concurrent connections.

The load generator (``--load``): ``wrk`` (default; a compiled generator, ~0.02 ms of CPU per
request, so on a 2-core machine it leaves the cores to the server) keeps ``--clients`` connections
busy for ``--duration`` seconds per endpoint and reports p50/p99 and requests/s; when wrk is not
installed the benchmark installs it with apt-get if it runs as root, and otherwise says so and falls
back to ``httpx``: ``--clients`` asyncio httpx clients sending ``--requests`` requests per endpoint,
which cost ~1 ms of client CPU per request themselves, so their requests/s measure the client as
much as the server. Both report the server's CPU per request (all its processes, psutil) and the
load generator's own CPU per request.

``SRC`` ``hello`` is no FlowForge at all: a FastAPI app under the same uvicorn, whose every GET
answers a small fixed JSON object after the same kind of bearer check — the floor any route can
reach here (``bench/api_floor.py``).
Each ``--server LABEL=SRC[:WORKERS]`` is one server of the same filled project (each on a metadata
store of its own holding the same rows, so no server's writes reach another's answer cache),
FlowForge taken from SRC (put first on PYTHONPATH; ``-`` = the installed one) with
``--workers WORKERS``; all of
them are up at once and driven in turns, round after round, so they share the machine's load
alike (the figures to compare are their ratios). Results print as a table and go to
bench/results/api_latency[_<backend>].json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
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


def fill(project: Path, metadata_url: str | None, workflows: int, runs: int,
         tables: int = 0) -> tuple[str, list[str], dict[str, float]]:
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
    ctx.users.create_user("admin", ADMIN_PASSWORD, "admin")
    token = ctx.users.create_token("admin", "bench")
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
    start = time.perf_counter()
    lake_tables(ctx, tables)
    timings["write tables"] = time.perf_counter() - start
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


def start_server(project: Path, port: int, src: str | None = None, workers: int = 1) -> subprocess.Popen[bytes]:
    import httpx

    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD}
    if src == "hello":
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "api_floor:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    else:
        if src:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(src).resolve()), env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--no-ui", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not start in 180 s")


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server and its worker processes: a figure that the machine's
    other load disturbs far less than latency does."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def drive(base: str, token: str, paths: list[str], clients: int) -> dict[str, float]:
    """Send every path once, ``clients`` at a time; latency percentiles in milliseconds."""
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = list(reversed(paths))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300,
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
    if not latencies:  # every request failed (timed out): say so rather than stop the benchmark
        nan = float("nan")
        return {"requests": 0, "errors": errors, "p50_ms": nan, "p99_ms": nan, "mean_ms": nan, "max_ms": nan,
                "requests_per_s": 0.0}
    return {"requests": len(latencies), "errors": errors, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "mean_ms": statistics.fmean(latencies), "max_ms": latencies[-1], "requests_per_s": len(latencies) / wall}


WRK_SCRIPT = """
local paths = {%s}
local i = 0
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%.3f %%.3f %%.3f %%.3f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000))
end
"""


def find_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and this runs as root, else None (said why)."""
    found = shutil.which("wrk")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is not installed: apt-get install -y wrk ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=False)
        found = shutil.which("wrk")
    if found is None:
        print("wrk is not installed (apt-get install -y wrk): falling back to httpx clients, whose own CPU "
              "(~1 ms a request) shares the cores with the server, so requests/s measure the client too.",
              flush=True)
    return found


def drive_wrk(wrk: str, base: str, token: str, paths: list[str], clients: int, duration: float) -> dict[str, float]:
    """``clients`` connections busy for ``duration`` seconds over ``paths`` in turn (wrk, 2 threads)."""
    prefix = base.split("://", 1)[1].partition("/")[2]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (", ".join(json.dumps(f"/{prefix}{p}") for p in dict.fromkeys(paths)), token))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run([wrk, "-t2", f"-c{clients}", f"-d{max(1, round(duration))}s", "--timeout", "60s",
                              "-s", script.name, base.split("/api/")[0]], capture_output=True, text=True, check=True)
    finally:
        os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    requests, micros, errors, p50, p99, mean, longest = (float(x) for x in line.split()[1:])
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"requests": requests, "errors": errors, "p50_ms": p50, "p99_ms": p99, "mean_ms": mean,
            "max_ms": longest, "requests_per_s": requests / (micros / 1e6),
            "client_cpu_ms_per_request": client_cpu * 1000 / max(1.0, requests)}


def schema_head(src: str | None) -> frozenset[str]:
    """The newest migration revision(s) a FlowForge tree ships (read from its files, as engine.head_revisions)."""
    import re

    if src is None:
        import flowforge

        versions = Path(flowforge.__file__).resolve().parent / "metadata" / "migrations" / "versions"
    else:
        versions = Path(src).resolve() / "flowforge" / "metadata" / "migrations" / "versions"
    revisions, parents = set(), set()
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if found := re.search(r"^revision\b[^=]*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE):
            revisions.add(found.group(1))
        if down := re.search(r"^down_revision\b[^=]*=\s*(.+)$", text, re.MULTILINE):
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


def project_at(project: Path, metadata_url: str | None, head: frozenset[str], n: int, databases: list[str]) -> Path:
    """The filled project for the ``n``-th server. The first one, when it is the tree that filled it,
    serves it as is; every other gets a copy with a metadata store of its own (the same rows; SQLite:
    the files copied, PostgreSQL: CREATE DATABASE ... TEMPLATE), so one server's writes (a token's
    last use, stamped once a minute) never empty another's kept answers, and an older tree gets its
    copy taken back to its schema revision (an older server refuses a database a newer one migrated).
    Copies are made before any server starts: a template database must have no connection."""
    from alembic import command
    from sqlalchemy import create_engine

    from flowforge.metadata.engine import alembic_config, create_metadata_engine
    from flowforge.settings import Settings

    if n == 0 and head == schema_head(None):
        return project
    copy = project.parent / f"project_{n}"
    shutil.copytree(project, copy)
    if metadata_url:
        import psycopg

        base, _, name = metadata_url.rpartition("/")
        twin = f"{name}_{n}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{twin}"')
            conn.execute(f'CREATE DATABASE "{twin}" TEMPLATE "{name}"')
        databases.append(f"{base}/{twin}")
        text = (copy / "flowforge.yml").read_text().replace(metadata_url, f"{base}/{twin}")
        (copy / "flowforge.yml").write_text(text)
    if head == schema_head(None):
        return copy
    url = Settings.load(copy).metadata_database_url
    engine = create_metadata_engine(url) if url.startswith("postgresql") else create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, sorted(head)[0])
    finally:
        engine.dispose()
    return copy


def drop_databases(databases: list[str]) -> None:
    import psycopg

    for url in databases:
        base, _, name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def parse_server(text: str) -> tuple[str, str | None, int]:
    """``LABEL=SRC[:WORKERS]`` → (label, src or None for the installed FlowForge, workers)."""
    label, _, rest = text.partition("=")
    src, _, workers = (rest or "-").partition(":")
    return label, None if src in ("", "-") else src, int(workers or 1)


def lake_tables(ctx: Any, tables: int) -> None:
    """``tables`` Delta tables of 100 rows and three commits each, a third gold and the rest silver."""
    import pyarrow as pa

    for i in range(tables):
        layer = "gold" if i % 3 == 0 else "silver"
        for commit in range(3):
            ids = list(range(commit * 100, commit * 100 + 100))
            rows = pa.table({"id": ids, "name": [f"n{j}" for j in ids], "amount": [j * 0.5 for j in ids],
                             "updated_at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 100)})
            ctx.store.append(layer, f"table_{i:04d}", rows, {"batch": commit})


def endpoints(names: list[str], run_ids: int, requests: int, tables: int = 0) -> dict[str, list[str]]:
    rng = random.Random(11)
    routes = {
        "GET /workflows (page of 100)": ["/workflows"] * requests,
        "GET /workflows?limit=1000": ["/workflows?limit=1000"] * max(1, requests // 10),
        "GET /workflows/{name}": [f"/workflows/{rng.choice(names)}" for _ in range(requests)],
        "GET /workflows/{name}/lineage": [f"/workflows/{rng.choice(names)}/lineage" for _ in range(requests)],
        "GET /runs?limit=50": ["/runs?limit=50"] * requests,
        "GET /runs/{id}/jobs": [f"/runs/{rng.randint(1, run_ids)}/jobs" for _ in range(requests)],
    }
    if tables:
        routes["GET /catalog/tables"] = ["/catalog/tables"] * max(1, requests // 10)
        routes["GET /catalog/tables/{name}/docs"] = [f"/catalog/tables/table_{rng.randrange(tables):04d}/docs"
                                                     for _ in range(requests)]
        routes["GET /catalog/search?q=amount"] = ["/catalog/search?q=amount"] * max(1, requests // 10)
    return routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tables", type=int, default=300, help="Delta tables in the lakehouse (catalog routes)")
    parser.add_argument("--only", default=None, help="only the endpoints whose label contains this text")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint and round (limit=1000: a tenth)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--metadata-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--server", action="append", default=[], metavar="LABEL=SRC[:WORKERS]",
                        help="a server to measure (repeatable); default: the installed FlowForge, one worker")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--load", choices=("wrk", "httpx"), default="wrk",
                        help="load generator (wrk falls back to httpx when it is missing)")
    parser.add_argument("--duration", type=float, default=5.0, help="wrk: seconds per endpoint, server and round")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="wrk: seconds of unmeasured load per endpoint and server before the first round "
                             "(kept answers warm; default 0: only 100 requests, so most detail pages are made afresh)")
    args = parser.parse_args()
    wrk = find_wrk() if args.load == "wrk" else None
    load = "wrk" if wrk else "httpx"
    servers = [parse_server(text) for text in args.server] or [("flowforge", None, 1)]

    results: dict[str, dict[str, dict[str, float]]] = {label: {} for label, _, _ in servers}
    with tempfile.TemporaryDirectory(prefix="ff-api-bench-", dir=args.workdir) as tmp:
        project = Path(tmp) / "project"
        token, names, timings = fill(project, args.metadata_url, args.workflows, args.runs, args.tables)
        procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        databases: list[str] = []
        try:
            served = [project if src == "hello" else project_at(project, args.metadata_url, schema_head(src), n,
                                                                databases)
                      for n, (_, src, _) in enumerate(servers)]
            for (label, src, workers), folder in zip(servers, served, strict=True):
                port = free_port()
                procs[label] = (start_server(folder, port, src, workers), f"http://127.0.0.1:{port}/api/v1")
            for round_ in range(args.rounds):
                paths = {label: urls for label, urls in endpoints(names, args.runs, args.requests, args.tables).items()
                         if args.only is None or args.only in label}
                for endpoint, urls in paths.items():
                    for label, (_, base) in procs.items():
                        if round_ == 0:  # warm up: caches, pools, workers' first imports
                            asyncio.run(drive(base, token, urls[:min(100, len(urls) // 2 + 1)], args.clients))
                            if wrk and args.warmup:
                                drive_wrk(wrk, base, token, urls, args.clients, args.warmup)
                        cpu = server_cpu(procs[label][0])
                        if wrk:
                            measured = drive_wrk(wrk, base, token, urls, args.clients, args.duration)
                        else:
                            clock = resource.getrusage(resource.RUSAGE_SELF)
                            measured = asyncio.run(drive(base, token, urls, args.clients))
                            used = resource.getrusage(resource.RUSAGE_SELF)
                            measured["client_cpu_ms_per_request"] = (
                                (used.ru_utime + used.ru_stime - clock.ru_utime - clock.ru_stime) * 1000
                                / max(1.0, measured["requests"]))
                        measured["server_cpu_ms_per_request"] = ((server_cpu(procs[label][0]) - cpu) * 1000
                                                                 / max(1.0, measured["requests"]))
                        results[label].setdefault(endpoint, {"rounds": 0})
                        _merge(results[label][endpoint], measured)
        finally:
            for proc, _ in procs.values():
                stop_server(proc)
            drop_databases(databases)
    backend = "postgresql" if args.metadata_url else "sqlite"
    print(f"\nAPI latency: {args.workflows:,} workflows, {args.runs:,} runs, {args.clients} clients, "
          f"{backend} metadata, {args.rounds} round(s), load from {load}")
    print(f"(fill: {', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})")
    first = servers[0][0]
    print(f"{'server':12} {'endpoint':32} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'req/s':>8} {'vs first':>8} {'CPU ms/req':>10} {'load CPU':>8}")
    for label, _, _ in servers:
        for endpoint, r in results[label].items():
            base = results[first][endpoint]["requests_per_s"] or float("nan")
            print(f"{label:12} {endpoint:32} {r['requests']:>8.0f} {r['errors']:>6.0f} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['requests_per_s']:>8.1f} "
                  f"{r['requests_per_s'] / base:>8.2f} {r['server_cpu_ms_per_request']:>10.2f} "
                  f"{r['client_cpu_ms_per_request']:>8.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("api_latency.json" if backend == "sqlite" else f"api_latency_{backend}.json")
    out.write_text(json.dumps({"workflows": args.workflows, "runs": args.runs, "clients": args.clients,
                               "metadata": backend, "rounds": args.rounds, "fill_seconds": timings, "load": load,
                               "duration": args.duration if wrk else None, "warmup": args.warmup,
                               "commit": _commit(), "load_average": os.getloadavg(),
                               "servers": [{"label": label, "src": src, "workers": workers}
                                           for label, src, workers in servers],
                               "results": results}, indent=2))
    print(f"\nwritten to {out}")


def _merge(into: dict[str, float], measured: dict[str, float]) -> None:
    """Rounds combined: worst p99 and max, mean of the other figures."""
    n = into["rounds"]
    for key, value in measured.items():
        if key in ("p99_ms", "max_ms"):
            into[key] = max(into.get(key, 0.0), value)
        elif key in ("requests", "errors"):
            into[key] = into.get(key, 0.0) + value
        else:
            into[key] = (into.get(key, 0.0) * n + value) / (n + 1)
    into["rounds"] = n + 1


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    main()

"""CPU of building one detail answer afresh: a workflow's page, its lineage, a run's jobs.

    python bench/api_build_cost.py --src before=/tmp/old/src --src now=src
    python bench/api_build_cost.py --metadata-url postgresql://postgres@127.0.0.1:5432/flowforge_bench ...

The project is filled as ``api_latency.py`` fills it (1,000 workflows, 100,000 runs). For each
``--src`` tree a child process does what a route's worker thread does for a random id — the
service call, the response model, its JSON — ``--warm`` times unmeasured (parsed specs and other
caches filled, as in a server that has run a while), then ``--builds`` times measured, and reports
CPU and wall time per build. No HTTP, no answer cache: the part of a request that grows with the
store's round trips. The trees take turns in the same process order, so they share the machine's
load alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROUTES = ("GET /workflows/{name}", "GET /workflows/{name}/lineage", "GET /runs/{id}/jobs")

CHILD = r"""
import json, random, sys, time
from pathlib import Path
from flowforge.api.deps import json_answer
from flowforge.api.models import LineagePublic, RunDetailPublic, WorkflowDetailPublic
from flowforge.core.context import Context
from flowforge.settings import Settings

project, token = Path(sys.argv[1]), sys.argv[2]
runs, warm, builds = (int(x) for x in sys.argv[3:6])
base = Context(Settings.load(project))
ctx = base.as_user(base.users.verify_token(token))
rng = random.Random(5)
new = hasattr(ctx, "lineage_of")  # the tree answers a name or an id in one call


def workflow():
    name = f"wf_{rng.randrange(1000):05d}"
    detail = ctx.workflows.get(name) if new else ctx.workflows.get(ctx.workflows.resolve(name))
    return json_answer(WorkflowDetailPublic.model_validate(detail))


def lineage():
    name = f"wf_{rng.randrange(1000):05d}"
    if new:
        name, graph = ctx.lineage_of(name)
    else:
        name = ctx.workflows.resolve(name)
        graph = ctx.lineage(name)
    return json_answer(LineagePublic.model_validate({"workflow": name, **graph}))


def run_jobs():
    if not new:  # the answer cache asked this before building any run page
        ctx.metadata.leases.any_live()
    return json_answer(RunDetailPublic.model_validate(ctx.run_service.detail(rng.randint(1, runs))))


out = {}
for route, build in zip(json.loads(sys.argv[6]), (workflow, lineage, run_jobs)):
    for _ in range(warm):
        build()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(builds):
        build()
    out[route] = {"cpu_ms": (time.process_time() - cpu) * 1000 / builds,
                  "wall_ms": (time.perf_counter() - wall) * 1000 / builds}
base.close()
print(json.dumps(out))
"""


def main() -> None:
    sys.path.insert(0, str(BENCH_DIR))
    from api_latency import fill

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=SRC",
                        help="a FlowForge tree (repeatable); default: the installed one")
    parser.add_argument("--metadata-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--warm", type=int, default=3000)
    parser.add_argument("--builds", type=int, default=1000)
    args = parser.parse_args()
    trees = [(label, src) for label, _, src in (s.partition("=") for s in args.src)] or [("installed", "")]
    with tempfile.TemporaryDirectory(prefix="ff-build-cost-") as tmp:
        project = Path(tmp) / "project"
        token, _, _ = fill(project, args.metadata_url, 1000, args.runs)
        results = {}
        for label, src in trees:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path(src).resolve()) if src else "",
                                                                           os.environ.get("PYTHONPATH", "")) if p)}
            done = subprocess.run([sys.executable, "-c", CHILD, str(project), token, str(args.runs), str(args.warm),
                                   str(args.builds), json.dumps(ROUTES)], env=env, capture_output=True, text=True,
                                  check=True)
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
    backend = "postgresql" if args.metadata_url else "sqlite"
    print(f"\nOne answer built afresh, {backend} metadata, caches warm ({args.warm:,} builds first), "
          f"{args.builds:,} builds, load average {os.getloadavg()[0]:.1f}")
    print(f"{'tree':10} {'route':32} {'CPU ms':>8} {'wall ms':>8}")
    for label, found in results.items():
        for route, r in found.items():
            print(f"{label:10} {route:32} {r['cpu_ms']:>8.2f} {r['wall_ms']:>8.2f}")


if __name__ == "__main__":
    main()

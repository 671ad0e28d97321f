"""Schema-drift benchmark: a source column widens under a large bronze table.

Standalone (not part of bench/run.py):

    .venv/bin/python bench/schema_drift.py --rows 1000000     # needs PostgreSQL (FLOWFORGE_TEST_PG_URL)

A PostgreSQL table of ``--rows`` orders (6 columns, ``amount numeric(10,2)``) is landed in bronze
incrementally. Then ``amount`` becomes ``numeric(12,4)`` at the source and 1,000 rows arrive.
Measured, in the same run on the same data:

* **evolve**: ``flowforge run`` with ``on_schema_change: evolve`` — the bronze table is rewritten
  to ``DECIMAL(12,4)`` in one commit (every value kept) and the 1,000 new rows are appended.
* **reload**: what users did before (``rm -rf lakehouse`` and land the table again): a fresh
  ingest of all ``--rows`` + 1,000 rows from PostgreSQL into an empty lakehouse.
* **no change**: a run that only appends 1,000 rows to an unchanged table (what the drift check
  costs on an ordinary incremental run is part of it).

Results print as a table and go to ``bench/results/schema_drift.json``. Timings come from a
machine shared with other work unless stated otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

PG = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKFLOW = """\
name: drift
jobs:
  - name: land
    kind: ingest
    connection: shop
    tables:
      - {table: orders, target: bronze_orders, incremental: id, on_schema_change: evolve}
"""


def _project(folder: Path, url: str) -> Path:
    from flowforge.core.project import init_project

    init_project(folder)
    (folder / "workflows" / "example.yml").unlink()
    (folder / "workflows" / "drift.yml").write_text(WORKFLOW, encoding="utf-8")
    text = (folder / "flowforge.yml").read_text(encoding="utf-8")
    text = text.split("connections:")[0] + f"connections:\n  shop: {{type: postgres, url: '{url}'}}\n"
    (folder / "flowforge.yml").write_text(text, encoding="utf-8")
    return folder


def _run(folder: Path) -> float:
    from flowforge.core.context import Context

    with Context.open(folder) as ctx:
        start = time.perf_counter()
        summary = ctx.run("drift")
        took = time.perf_counter() - start
    assert summary.status == "success", summary
    return took


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"ff_bench_drift_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="ff-drift-"))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount numeric(10,2), "
                         "qty int, placed timestamp, status text)")
            conn.execute("INSERT INTO orders SELECT g, 'c' || (g %% 5000), (g %% 100000) / 100.0, g %% 7, "
                         "timestamp '2024-01-01' + g * interval '1 second', 'placed' "
                         "FROM generate_series(1, %s) g", (args.rows,))
        project = _project(tmp / "p", url)
        first = _run(project)

        def arrive(start: int) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("INSERT INTO orders SELECT g, 'new', 1.2345, 1, now(), 'placed' "
                             "FROM generate_series(%s, %s) g", (start, start + 999))

        arrive(args.rows + 1)
        unchanged = _run(project)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,4)")
        arrive(args.rows + 1001)
        evolve = _run(project)
        # what users did before: drop the lakehouse and land everything again
        shutil.rmtree(project / "lakehouse")
        shutil.rmtree(project / ".flowforge")
        reload = _run(_project(tmp / "q", url))
        results = {"rows": args.rows, "first_load_s": round(first, 2), "no_change_run_s": round(unchanged, 2),
                   "evolve_run_s": round(evolve, 2), "reload_s": round(reload, 2),
                   "evolve_over_reload": round(evolve / reload, 3)}
        print(f"{'first load':<28}{first:8.2f} s\n{'run, 1K new rows':<28}{unchanged:8.2f} s\n"
              f"{'run, widened + 1K new rows':<28}{evolve:8.2f} s\n{'reload (rm -rf + ingest)':<28}{reload:8.2f} s\n"
              f"evolve / reload = {evolve / reload:.2f}")
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        (out / "schema_drift.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

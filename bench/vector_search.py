"""Vector search latency and recall: FlowForge's exact DuckDB search and its IVF index against
pgvector's HNSW index, on the same vectors and queries, in the same run.

    .venv/bin/python bench/vector_search.py                          # 10K and 100K vectors
    .venv/bin/python bench/vector_search.py --sizes 10000,100000,1000000 --pg-max 100000

Vectors are synthetic, 384-dimensional and unit length, drawn around 500 cluster centres (real
sentence embeddings cluster too); queries are 200 perturbed data points, so every query has true
neighbours. Exact search runs the SQL the search service runs (``array_cosine_similarity`` over a
``FLOAT[384]`` table in DuckDB); IVF is ``flowforge.embed.ivf`` with its default probes; pgvector is
``ORDER BY embedding <=> q LIMIT k`` over an HNSW index (m 16, ef_construction 64, ef_search 64)
in a scratch database of the local server (needs the vector extension: ../shared/tools/install-pgvector).
Recall@10 is measured against the exact answer. Results: bench/results/vector_search.json.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, load_average, machine
from measure import write_json

DIMS = 384
K = 10


def vectors(n: int, seed: int = 1) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((500, DIMS)).astype(np.float32)
    data = centres[rng.integers(0, 500, n)] + 0.35 * rng.standard_normal((n, DIMS)).astype(np.float32)
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def queries(data: Any, count: int = 200, seed: int = 2) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    picked = data[rng.integers(0, len(data), count)] + 0.05 * rng.standard_normal((count, DIMS)).astype(np.float32)
    return (picked / np.linalg.norm(picked, axis=1, keepdims=True)).astype(np.float32)


def percentiles(samples: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.percentile(samples, 50)) * 1000, float(np.percentile(samples, 99)) * 1000


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True)) / (K * len(truth))


def exact_duckdb(data: Any, qs: Any) -> tuple[list[float], list[list[int]]]:
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine

    engine = DuckDBEngine()
    flat = pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), DIMS)
    engine.register_arrow("__vectors", pa.table({"__row": pa.array(range(len(data)), pa.int64()), "v": flat}))
    engine.con.execute(f"CREATE TABLE __emb AS SELECT __row, CAST(v AS FLOAT[{DIMS}]) AS __vector FROM __vectors")
    sql = (f"SELECT __row FROM __emb ORDER BY array_cosine_similarity(__vector, CAST(? AS FLOAT[{DIMS}])) DESC, "
           f"__row LIMIT {K}")
    times, found = [], []
    for q in qs:
        start = time.perf_counter()
        rows = engine.con.execute(sql, [q.tolist()]).fetchall()
        times.append(time.perf_counter() - start)
        found.append([r[0] for r in rows])
    engine.close()
    return times, found


def ivf(data: Any, qs: Any) -> tuple[float, list[float], list[list[int]]]:
    from flowforge.embed.ivf import IvfIndex

    start = time.perf_counter()
    index = IvfIndex.build(data)
    build = time.perf_counter() - start
    times, found = [], []
    for q in qs:
        start = time.perf_counter()
        rows, _ = index.search(q, K)
        times.append(time.perf_counter() - start)
        found.append([int(r) for r in rows])
    return build, times, found


def pgvector(data: Any, qs: Any, server: str) -> tuple[float, float, list[float], list[list[int]]]:
    import psycopg

    name = f"ff_vec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"{server}/{name}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute(f"CREATE TABLE v (id bigint PRIMARY KEY, embedding vector({DIMS}))")
            start = time.perf_counter()
            with conn.cursor().copy("COPY v (id, embedding) FROM STDIN") as copy:
                for i, row in enumerate(data):
                    copy.write_row((i, "[" + ",".join(f"{x:.7g}" for x in row) + "]"))
            conn.execute("SET maintenance_work_mem = '1GB'")
            load = time.perf_counter() - start
            start = time.perf_counter()
            conn.execute("CREATE INDEX ON v USING hnsw (embedding vector_cosine_ops) "
                         "WITH (m = 16, ef_construction = 64)")
            build = time.perf_counter() - start
            conn.execute("SET hnsw.ef_search = 64")
            times, found = [], []
            for q in qs:
                literal = "[" + ",".join(f"{x:.7g}" for x in q) + "]"
                start = time.perf_counter()
                rows = conn.execute("SELECT id FROM v ORDER BY embedding <=> %s::vector LIMIT %s",
                                    [literal, K]).fetchall()
                times.append(time.perf_counter() - start)
                found.append([r[0] for r in rows])
        return load, build, times, found
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="vector counts, comma-separated")
    p.add_argument("--pg-max", type=int, default=100_000, help="largest size also loaded into pgvector")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432", help="server, no database")
    args = p.parse_args(argv)
    import numpy as np

    report: dict[str, Any] = {"machine": machine(), "load": load_average(), "k": K, "sizes": {}}
    print(f"{'vectors':>10} {'method':<10}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}  build")
    for n in (int(x) for x in args.sizes.split(",")):
        data = vectors(n)
        qs = queries(data)
        truth = [list(np.argsort(-(data @ q), kind="stable")[:K]) for q in qs]
        rows: dict[str, Any] = {}
        t, found = exact_duckdb(data, qs)
        rows["exact"] = {"p50_ms": percentiles(t)[0], "p99_ms": percentiles(t)[1], "recall": recall(found, truth)}
        build, t, found = ivf(data, qs)
        rows["ivf"] = {"p50_ms": percentiles(t)[0], "p99_ms": percentiles(t)[1], "recall": recall(found, truth),
                       "build_s": build}
        if n <= args.pg_max:
            load, build, t, found = pgvector(data, qs, args.pg_url)
            rows["pgvector_hnsw"] = {"p50_ms": percentiles(t)[0], "p99_ms": percentiles(t)[1],
                                     "recall": recall(found, truth), "build_s": build, "load_s": load}
        for method, r in rows.items():
            extra = f"{r['build_s']:.1f} s" if "build_s" in r else ""
            print(f"{n:>10,} {method:<10}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['recall']:>11.3f}  {extra}")
        report["sizes"][n] = rows
    write_json(RESULTS / "vector_search.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

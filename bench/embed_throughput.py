"""Embedding throughput: FlowForge's all-MiniLM-L6-v2 on ONNX Runtime against
sentence-transformers' own ``encode`` (PyTorch), on the same product texts, in the same run.

    .venv/bin/python bench/embed_throughput.py                 # 2,000 texts, best of 3, 2 threads
    .venv/bin/python bench/embed_throughput.py --rows 10000 --repeat 5 --threads 2

Each contestant runs in a child process of its own (its thread pool and peak RSS alone), after a
warm-up batch; rows/s is the best of ``--repeat`` passes. The vectors of both are compared
(minimum cosine) so the speed is of the same answer. Results: bench/results/embed_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, load_average, machine
from measure import write_json


def texts(rows: int) -> list[str]:
    """Product texts as the product_search template builds them: name, description, vendor."""
    from flowforge.demo.products import ProductCatalog

    catalog = ProductCatalog(seed=7, products=rows)
    made = [catalog._product(i) for i in range(1, rows + 1)]  # the generator's rows, without the stream
    return [f"{p['Name']}. {p['Description']}. Vendor {p['VendorCode']}" for p in made]


def child(contestant: str, rows: int, repeat: int, threads: int, out: Path) -> None:
    import numpy as np
    import psutil

    data = texts(rows)
    if contestant == "flowforge":
        from flowforge.embed.models import load_model
        from flowforge.spec.embed import EmbedModel

        model = load_model(EmbedModel(threads=threads))

        def encode(batch: list[str]) -> np.ndarray:
            return model.encode(batch, batch_size=64)
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        from flowforge.embed.models import packaged_minilm

        torch.set_num_threads(threads)
        st = SentenceTransformer(str(packaged_minilm()), device="cpu")

        def encode(batch: list[str]) -> np.ndarray:
            return np.asarray(st.encode(batch, batch_size=64, normalize_embeddings=True, convert_to_numpy=True))

    encode(data[:64])  # warm-up
    best = float("inf")
    vectors = None
    for _ in range(repeat):
        start = time.perf_counter()
        vectors = encode(data)
        best = min(best, time.perf_counter() - start)
    assert vectors is not None
    np.save(out.with_suffix(".npy"), vectors)
    rss = psutil.Process().memory_info().rss / 2**20
    out.write_text(json.dumps({"contestant": contestant, "rows": rows, "seconds": best, "rows_per_s": rows / best,
                               "rss_mb": rss}))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.rows, args.repeat, args.threads, args.out)
        return 0
    import numpy as np

    results = {}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"ff-embed-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    for contestant in ("flowforge", "sentence-transformers"):
        out = workdir / f"{contestant}.json"
        subprocess.run([sys.executable, __file__, "--child", contestant, "--rows", str(args.rows), "--repeat",
                        str(args.repeat), "--threads", str(args.threads), "--out", str(out)], check=True)
        results[contestant] = json.loads(out.read_text())
    a = np.load(workdir / "flowforge.npy")
    b = np.load(workdir / "sentence-transformers.npy")
    min_cos = float(np.min(np.sum(a * b, axis=1)))  # both unit length
    ff, st = results["flowforge"], results["sentence-transformers"]
    print(f"{args.rows:,} product texts, {args.threads} threads, best of {args.repeat} (load {load_average()})")
    print(f"  {'contestant':<24}{'rows/s':>10}{'seconds':>10}{'peak RSS':>12}")
    for name, r in results.items():
        print(f"  {name:<24}{r['rows_per_s']:>10,.0f}{r['seconds']:>10.2f}{r['rss_mb']:>10,.0f} MB")
    print(f"  FlowForge takes {ff['seconds'] / st['seconds']:.2f}x sentence-transformers' time; "
          f"minimum cosine between their vectors {min_cos:.6f}")
    write_json(RESULTS / "embed_throughput.json", {"machine": machine(), "load": load_average(), "rows": args.rows,
                                                   "threads": args.threads, "results": results,
                                                   "min_cosine": min_cos})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

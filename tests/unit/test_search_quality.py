"""Search quality on a hand-labelled product set (recall@5 of exact search), and the IVF index's
recall@10 against exact search on 20,000 vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.embed_helpers import QUERIES, embed_project, product_table

from flowforge.core.context import Context
from flowforge.embed.ivf import IvfIndex


def test_exact_search_finds_the_labelled_products(tmp_path: Path) -> None:
    project = embed_project(tmp_path)
    with Context.open(project) as ctx:
        ctx.store.overwrite("silver", "silver_products", product_table(), {})
        assert ctx.run("search").status == "success"
        recalls = {}
        for query, relevant in QUERIES.items():
            hits = ctx.search.search("silver_products", query, k=5).hits
            found = {h.key["id"] for h in hits}
            recalls[query] = len(found & relevant) / min(5, len(relevant))
    recall = sum(recalls.values()) / len(recalls)
    print(f"\nrecall@5 of exact search over {len(QUERIES)} labelled queries: {recall:.3f}")
    assert recall >= 0.8, recalls
    assert sum(r == 0 for r in recalls.values()) == 0, recalls  # every query finds something relevant


def test_ivf_recall_at_10_against_exact() -> None:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((200, 384)).astype(np.float32)
    base = centres[rng.integers(0, 200, 20_000)] + 0.6 * rng.standard_normal((20_000, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index = IvfIndex.build(base)
    queries = base[rng.choice(len(base), 100, replace=False)] + 0.3 * rng.standard_normal((100, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    hits = 0
    for q in queries:
        exact = set(np.argsort(-(base @ q))[:10].tolist())
        rows, scores = index.search(q, 10)
        assert list(scores) == sorted(scores, reverse=True)
        hits += len(exact & set(rows.tolist()))
    recall = hits / (10 * len(queries))
    print(f"\nIVF recall@10 against exact over 20,000 vectors: {recall:.3f}")
    assert recall >= 0.95

"""An approximate index for the embedded search: IVF-flat (inverted lists over k-means
centroids), in memory, in numpy.

Vectors are unit length, so cosine similarity is a dot product. A query scores every centroid,
scans the vectors of the ``nprobe`` best lists exactly and keeps the top k. The index is built
from the embeddings table on first use and kept with it by the search service; it pays once the
exact scan stops fitting the latency budget (``bench/vector_search.py`` measures where).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass
class IvfIndex:
    centroids: np.ndarray  # (lists, dims)
    order: np.ndarray  # row numbers grouped by list
    offsets: np.ndarray  # list i holds order[offsets[i]:offsets[i + 1]]
    vectors: np.ndarray  # (rows, dims), grouped like ``order``
    nprobe: int

    @classmethod
    def build(cls, vectors: np.ndarray, *, lists: int | None = None, iterations: int = 8,
              sample: int = 100_000, seed: int = 0) -> IvfIndex:
        import numpy as np

        n = len(vectors)
        lists = lists or max(1, min(n // 40, int(2 * math.sqrt(n))))
        rng = np.random.default_rng(seed)
        train = vectors[rng.choice(n, size=min(n, max(sample, lists * 20)), replace=False)]
        centroids = train[rng.choice(len(train), size=lists, replace=False)].copy()
        for _ in range(iterations):  # spherical k-means
            assign = _nearest(train, centroids)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, train)
            empty = ~sums.any(axis=1)
            sums[empty] = train[rng.choice(len(train), size=int(empty.sum()))]
            centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        assign = _nearest(vectors, centroids)
        order = np.argsort(assign, kind="stable")
        offsets = np.searchsorted(assign[order], np.arange(lists + 1))
        nprobe = max(1, min(lists, math.ceil(lists * 0.06)))
        return cls(centroids.astype(np.float32), order, offsets, np.ascontiguousarray(vectors[order]), nprobe)

    def search(self, query: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, scores) of the approximate top k, best first."""
        import numpy as np

        probe = min(nprobe or self.nprobe, len(self.centroids))
        best = np.argpartition(-(self.centroids @ query), probe - 1)[:probe]
        spans = [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in best]
        scores = np.concatenate([self.vectors[a:b] @ query for a, b in spans]) if spans else np.empty(0, np.float32)
        positions = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.empty(0, np.int64)
        top = min(k, len(scores))
        if top == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        pick = np.argpartition(-scores, top - 1)[:top]
        pick = pick[np.argsort(-scores[pick], kind="stable")]
        return self.order[positions[pick]], scores[pick]


def _nearest(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    import numpy as np

    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        out[start:start + chunk] = np.argmax(vectors[start:start + chunk] @ centroids.T, axis=1)
    return out

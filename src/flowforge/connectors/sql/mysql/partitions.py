"""Partitioned reads: a table with a single-column integer key split into key ranges, each
streamed by its own connection in a thread, meeting in a bounded queue.

Each range reads in its own READ ONLY snapshot, so a partitioned read is not one snapshot of the
whole table (as with any split-by-key extractor); incremental windows are still exact because
their upper bound is fixed at plan time.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from flowforge.streams import merge


def ranges(bounds: tuple[Any, Any] | None, partitions: int) -> list[tuple[int, int]]:
    """Equal key ranges ``[lo, hi)`` between the smallest and the largest key."""
    if bounds is None or bounds[0] is None:
        return []
    lo, hi = int(bounds[0]), int(bounds[1]) + 1
    step = max(1, -(-(hi - lo) // partitions))
    return [(start, min(start + step, hi)) for start in range(lo, hi, step)]


def predicate(key: str, index: int, spans: list[tuple[int, int]]) -> str:
    """The outer ranges are open-ended, so a row whose key lies beyond the min/max seen when the
    read started is still read once (exactly as a single stream would)."""
    lo, hi = spans[index]
    parts = ([f"{key} >= {int(lo)}"] if index > 0 else []) + (
        [f"{key} < {int(hi)}"] if index < len(spans) - 1 else [])
    return " AND ".join(parts) or "TRUE"


def parallel(streams: list[Iterator[Any]]) -> Iterator[Any]:
    """Consume each stream in its own thread (``streams.merge``); the generators open their
    connections in those threads when first pulled."""
    return merge([partial(iter, s) for s in streams], "mysql-read")

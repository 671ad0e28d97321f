"""Partitioned reads: a table with a single-column integer key split into key ranges, each
streamed by its own connection in a thread, meeting in a bounded queue.

Each range reads in its own READ ONLY snapshot, so a partitioned read is not one snapshot of the
whole table (as with any split-by-key extractor); incremental windows are still exact because
their upper bound is fixed at plan time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

QUEUE_BATCHES_PER_WORKER = 2  # bounds memory of a partitioned read to a few batches


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
    """Consume each stream in its own thread; a slow consumer slows the readers, and stopping
    early (or an error in one stream) stops them all."""
    out: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_BATCHES_PER_WORKER * len(streams))
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(stream: Iterator[Any]) -> None:
        try:
            for batch in stream:
                if not put(batch):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # releases the stream's connection in this thread
            put(done)

    threads = [threading.Thread(target=work, args=(s,), daemon=True, name=f"mysql-read-{i}")
               for i, s in enumerate(streams)]
    for thread in threads:
        thread.start()
    try:
        remaining = len(threads)
        while remaining:
            item = out.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()

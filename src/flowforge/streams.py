"""Streams read in background threads: partitioned source reads and read-ahead.

Items meet in a bounded queue, so memory stays at a few items per worker whatever the table
size and a slow consumer slows the readers; an error in any stream is re-raised in the
consumer, and closing the consumer stops every reader and closes its stream (releasing its
connection) in the reader's own thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def merge(streams: Sequence[Callable[[], Iterator[T]]], thread_name: str, per_worker: int = 2) -> Iterator[T]:
    """Run each stream in its own thread; items meet in a bounded queue, so a slow consumer slows
    the readers. An error in any stream is re-raised here; closing the iterator stops them all."""
    out: queue.Queue[Any] = queue.Queue(maxsize=per_worker * len(streams))
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

    def work(stream: Callable[[], Iterator[T]]) -> None:
        items: Iterator[T] | None = None
        try:
            items = stream()
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's finally releases its connection now, in this thread
            put(done)

    threads = [threading.Thread(target=work, args=(s,), daemon=True, name=f"{thread_name}-{i}")
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


def prefetch(source: Iterator[T], depth: int = 2, thread_name: str = "flowforge-prefetch") -> Iterator[T]:
    """``source`` pulled by one background thread at most ``depth`` items ahead, so extraction
    (driver decoding, network) overlaps the consumer's work (Parquet encoding)."""
    return merge([lambda: source], thread_name, per_worker=depth)

"""Merge several batch streams read in threads, with bounded memory and prompt cleanup."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
BATCHES_PER_WORKER = 2  # bounds memory of a partitioned read to a few batches per worker


def merge(streams: Sequence[Callable[[], Iterator[T]]], thread_name: str) -> Iterator[T]:
    """Run each stream in its own thread; items meet in a bounded queue, so a slow consumer slows
    the readers. An error in any stream is re-raised here; closing the iterator stops them all."""
    out: queue.Queue[Any] = queue.Queue(maxsize=BATCHES_PER_WORKER * len(streams))
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
        items = stream()
        try:
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

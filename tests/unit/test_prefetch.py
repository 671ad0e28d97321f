"""The read-ahead thread keeps order, passes errors through and stops when abandoned."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from flowforge.errors import ConnectionFailed
from flowforge.streams import prefetch


def test_order_and_completeness() -> None:
    assert list(prefetch(iter(range(1000)), depth=3)) == list(range(1000))


def test_source_error_reaches_the_consumer_after_the_good_items() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionFailed("Connection 'core': server closed the connection")

    got = []
    with pytest.raises(ConnectionFailed, match="server closed"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [1, 2]


def test_abandoning_the_consumer_stops_the_producer() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetch(source(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5), "the source must be closed when the consumer stops"
    time.sleep(0.1)
    assert len(produced) < 10, "the producer may run at most a few items ahead"

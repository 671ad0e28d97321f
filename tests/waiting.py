"""Waiting for a server to catch up (a killed or closed session leaves its process list once its
thread ends) without asserting on time: poll a reading until it is what is wanted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(read: Callable[[], T], wanted: Callable[[T], bool], *, attempts: int = 100,
               pause: float = 0.1) -> T:
    """The first reading that is ``wanted``, or the last one after ``attempts`` (the caller asserts)."""
    found = read()
    for _ in range(attempts):
        if wanted(found):
            break
        time.sleep(pause)
        found = read()
    return found

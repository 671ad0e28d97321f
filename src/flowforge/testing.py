"""Fault injection, so crash and resume paths are tested deterministically, not by luck.

Set ``FLOWFORGE_FAULT=<point>:<n>`` and the process kills itself with SIGKILL the n-th time
it reaches ``<point>``. Points: ``bronze.batch`` (a batch handed to the Delta writer),
``bronze.committed`` (after the Delta commit, before the metadata mirror is written),
``silver.committed``, ``silver.before_commit`` (merged rows computed, nothing committed),
``gold.batch`` (a gold batch handed to the Delta writer), ``storage.first_commit`` (every row of a
new table handed to the Delta writer, its first commit not yet written), ``storage.merge_written`` (a
key merge's new files written, its commit not yet). Unset, a fault point costs one dict lookup.

In-process tests can instead run a callback at a point (``with at_point("bronze.batch", fn):``),
e.g. to cancel a run exactly there.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_counts: dict[str, int] = {}
_hooks: dict[str, list[Callable[[], None]]] = {}


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, n = value.partition(":")
    return point, int(n)


_FAULT = _parse(os.environ.get("FLOWFORGE_FAULT"))


def read_environment() -> None:
    """Read ``FLOWFORGE_FAULT`` again (a command forked by ``flowforge daemon`` has its own environment)."""
    global _FAULT
    _FAULT = _parse(os.environ.get("FLOWFORGE_FAULT"))


@contextmanager
def at_point(name: str, callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` each time this process reaches fault point ``name`` (tests only)."""
    _hooks.setdefault(name, []).append(callback)
    try:
        yield
    finally:
        _hooks[name].remove(callback)


def fault_point(name: str) -> None:
    for callback in _hooks.get(name, ()):
        callback()
    if _FAULT is None or _FAULT[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _FAULT[1]:
        os.kill(os.getpid(), signal.SIGKILL)

"""Fault injection, so crash and resume paths are tested deterministically, not by luck.

Set ``FLOWFORGE_FAULT=<point>:<n>`` and the process kills itself with SIGKILL the n-th time
it reaches ``<point>``. Points: ``bronze.batch`` (a batch handed to the Delta writer),
``bronze.committed`` (after the Delta commit, before the metadata mirror is written),
``silver.committed``. Unset, a fault point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, n = value.partition(":")
    return point, int(n)


_FAULT = _parse(os.environ.get("FLOWFORGE_FAULT"))


def fault_point(name: str) -> None:
    if _FAULT is None or _FAULT[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _FAULT[1]:
        os.kill(os.getpid(), signal.SIGKILL)

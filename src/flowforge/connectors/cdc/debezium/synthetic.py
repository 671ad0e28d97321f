"""Debezium PostgreSQL-shaped change events for tests and the benchmark, with their expected result.

``ProductStream`` plays inserts, updates (some with the unchanged-TOAST placeholder for the
``description`` column), deletes and re-inserts of a ``public.products`` table, with strictly
increasing LSNs, and keeps the state a correct consumer must end with. Events are JSON lines
shaped as Debezium's PostgreSQL connector writes them (``decimal.handling.mode=string``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowforge.connectors.cdc.events import UNAVAILABLE

_SOURCE = ('{{"version":"2.4.0.Final","connector":"postgresql","name":"shop","ts_ms":{ts},"snapshot":"{snap}",'
           '"db":"shop","sequence":null,"schema":"public","table":"products","txId":{tx},"lsn":{lsn},"xmin":null}}')
_ROW = '{{"id":{id},"name":"{name}","price":"{price}","qty":{qty},"description":{desc}}}'


@dataclass
class ProductStream:
    """A deterministic stream; ``state`` is the latest row per id (deleted ids are absent)."""

    seed: int = 7
    keys: int = 1000
    lsn: int = 30_000_000
    ts_ms: int = 1_700_000_000_000
    toast_every: int = 7
    delete_every: int = 11
    state: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, str, int]] = field(default_factory=list)  # (id, op, lsn) in order
    _rng: random.Random = field(init=False)
    _n: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _row_json(self, row: dict[str, Any], toast: bool = False) -> str:
        desc = f'"{UNAVAILABLE}"' if toast else f'"{row["description"]}"'
        return _ROW.format(id=row["id"], name=row["name"], price=row["price"], qty=row["qty"], desc=desc)

    def _event(self, op: str, before: str, after: str, snapshot: bool = False) -> str:
        self.lsn += 8 + self._rng.randrange(64)
        self.ts_ms += 1 + self._rng.randrange(5)
        source = _SOURCE.format(ts=self.ts_ms, snap="true" if snapshot else "false", tx=self.lsn // 1000,
                                lsn=self.lsn)
        return (f'{{"before":{before},"after":{after},"source":{source},"op":"{op}",'
                f'"ts_ms":{self.ts_ms + 3},"transaction":null}}')

    def next_event(self) -> str:
        self._n += 1
        rng = self._rng
        key = rng.randrange(1, self.keys + 1)
        row = self.state.get(key)
        if row is None:
            row = {"id": key, "name": f"product {key}", "price": f"{rng.randrange(100, 100000) / 100:.2f}",
                   "qty": rng.randrange(1000), "description": f"description of {key} v{self._n}"}
            self.state[key] = row
            line = self._event("c", "null", self._row_json(row))
            self.history.append((key, "c", self.lsn))
            return line
        if self.delete_every and self._n % self.delete_every == 0:
            del self.state[key]
            line = self._event("d", self._row_json(row), "null")
            self.history.append((key, "d", self.lsn))
            return line
        before = self._row_json(row)
        toast = bool(self.toast_every) and self._n % self.toast_every == 0
        new = dict(row, price=f"{rng.randrange(100, 100000) / 100:.2f}", qty=rng.randrange(1000))
        if not toast:
            new["description"] = f"description of {key} v{self._n}"
        self.state[key] = new
        line = self._event("u", before, self._row_json(new, toast=toast))
        self.history.append((key, "u", self.lsn))
        return line

    def lines(self, n: int) -> Iterator[str]:
        for _ in range(n):
            yield self.next_event()

    def write(self, path: Any, n: int) -> list[str]:
        """Write ``n`` events as JSON lines to ``path``; returns the lines."""
        out = list(self.lines(n))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
        return out

    def expected_rows(self) -> dict[int, tuple[str, str, int, str]]:
        """id → (name, price, qty, description) of the final state."""
        return {k: (r["name"], r["price"], r["qty"], r["description"]) for k, r in self.state.items()}


CASTS = {"id": "BIGINT", "price": "DECIMAL(10,2)", "qty": "INTEGER"}

"""A product catalog and its Debezium change stream, as the seed's pipeline saw them: SQL Server
``ConcordDb.dbo.Product`` captured by Debezium, written by a Kafka consumer as JSONL batches of
Kafka records (``topic``, ``partition``, ``offset``, ``key``, ``value`` with the Connect schema).

Deterministic for a seed. The first batch is the snapshot (``op: r``); later batches hold
inserts, updates (price, description, name), deactivations and deletes, and re-deliver a few
records already written (the same topic/partition/offset), as a consumer restarted after a crash
does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

TOPIC = "cord.ConcordDb.dbo.Product"
CATEGORIES: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("Kitchen", ("electric kettle", "espresso machine", "chef's knife", "cast iron skillet", "blender",
                    "toaster", "cutting board", "stand mixer")),
    2: ("Outdoor", ("hiking boots", "rain jacket", "camping tent", "sleeping bag", "trekking poles",
                    "daypack", "headlamp", "water bottle")),
    3: ("Electronics", ("wireless headphones", "bluetooth speaker", "USB-C charger", "mechanical keyboard",
                        "computer mouse", "webcam", "portable SSD", "smart watch")),
    4: ("Home office", ("office chair", "standing desk", "desk lamp", "monitor arm", "filing cabinet",
                        "whiteboard", "notebook", "fountain pen")),
    5: ("Apparel", ("t-shirt", "wool sweater", "denim jeans", "running shoes", "baseball cap", "winter gloves",
                    "linen shirt", "rain boots")),
    6: ("Garden", ("garden hose", "pruning shears", "lawn mower", "watering can", "raised bed", "compost bin",
                   "leaf blower", "garden gloves")),
}
MATERIALS = ("stainless steel", "bamboo", "recycled plastic", "aluminium", "organic cotton", "merino wool",
             "leather", "ceramic", "glass", "oak", "nylon", "carbon fibre")
TRAITS = ("waterproof", "lightweight", "compact", "heavy-duty", "ergonomic", "energy-efficient", "foldable",
          "quiet", "rechargeable", "dishwasher-safe", "breathable", "adjustable")
COLOURS = ("black", "white", "navy", "forest green", "graphite", "sand", "red", "sky blue")
BRANDS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adatum", "Proseware", "Wingtip")
USES = ("for everyday use", "for small apartments", "for long trips", "for professionals", "for beginners",
        "for cold weather", "for the whole family", "for quick cleanup")

_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_TS = "io.debezium.time.Timestamp"
_COLUMNS: tuple[tuple[str, str, str | None, int | None], ...] = (
    ("ID", "int32", None, None), ("Name", "string", None, None), ("VendorCode", "string", None, None),
    ("Description", "string", None, None), ("Weight", "bytes", _DECIMAL, 3), ("Length", "bytes", _DECIMAL, 1),
    ("Width", "bytes", _DECIMAL, 1), ("Height", "bytes", _DECIMAL, 1), ("Volume", "bytes", _DECIMAL, 3),
    ("Price", "bytes", _DECIMAL, 2), ("IsActive", "boolean", None, None), ("CategoryID", "int32", None, None),
    ("ManufacturerID", "int32", None, None), ("CreatedAt", "int64", _TS, None), ("UpdatedAt", "int64", _TS, None),
)


def _field(name: str, kind: str, logical: str | None, scale: int | None) -> dict[str, Any]:
    f: dict[str, Any] = {"type": kind, "optional": name != "ID", "field": name}
    if logical:
        f["name"] = logical
        f["version"] = 1
    if scale is not None:
        f["parameters"] = {"scale": str(scale), "connect.decimal.precision": "12"}
    return f


def _schema() -> dict[str, Any]:
    row = [_field(*c) for c in _COLUMNS]
    return {"type": "struct", "name": f"{TOPIC}.Envelope", "optional": False, "fields": [
        {"type": "struct", "fields": row, "optional": True, "name": f"{TOPIC}.Value", "field": "before"},
        {"type": "struct", "fields": row, "optional": True, "name": f"{TOPIC}.Value", "field": "after"},
        {"type": "struct", "fields": [], "optional": False, "name": "io.debezium.connector.sqlserver.Source",
         "field": "source"},
        {"type": "string", "optional": False, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"}]}


def _decimal(value: Decimal, scale: int) -> str:
    unscaled = int((value * (10 ** scale)).to_integral_value())
    size = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(size, "big", signed=True)).decode()


@dataclass
class ProductCatalog:
    """The source table's rows (``rows``: ID → row) and the stream of its changes."""

    seed: int = 42
    products: int = 3000
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    offset: int = 0
    clock: dt.datetime = dt.datetime(2025, 10, 18, 14, 0, tzinfo=dt.UTC)
    lsn: int = 0x27000
    _rng: random.Random = field(init=False)
    _next_id: int = field(init=False, default=1)
    _last: list[dict[str, Any]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _product(self, pid: int) -> dict[str, Any]:
        rng = self._rng
        category = rng.choice(sorted(CATEGORIES))
        kind = rng.choice(CATEGORIES[category][1])
        material, trait, colour = rng.choice(MATERIALS), rng.choice(TRAITS), rng.choice(COLOURS)
        brand = rng.randrange(len(BRANDS))
        name = f"{BRANDS[brand]} {trait} {kind}, {colour}"
        description = (f"A {trait} {kind} made of {material}, {rng.choice(USES)}. "
                       f"{CATEGORIES[category][0]} range, {colour} finish.")
        dims = [Decimal(rng.randrange(50, 1500)) / 10 for _ in range(3)]
        created = self.clock - dt.timedelta(days=rng.randrange(30, 900))
        return {"ID": pid, "Name": name, "VendorCode": f"{BRANDS[brand][:3].upper()}-{pid:05d}",
                "Description": description, "Weight": Decimal(rng.randrange(100, 25000)) / 1000,
                "Length": dims[0], "Width": dims[1], "Height": dims[2],
                "Volume": (dims[0] * dims[1] * dims[2] / 1000).quantize(Decimal("0.001")),
                "Price": Decimal(rng.randrange(299, 99999)) / 100, "IsActive": rng.random() > 0.05,
                "CategoryID": category, "ManufacturerID": brand + 1, "CreatedAt": created, "UpdatedAt": created}

    def _payload_row(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out: dict[str, Any] = {}
        for name, _, logical, scale in _COLUMNS:
            value = row[name]
            if logical == _DECIMAL:
                value = _decimal(value, int(scale or 0))
            elif logical == _TS:
                value = int(value.timestamp() * 1000)
            out[name] = value
        return out

    def _record(self, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                snapshot: str = "false") -> dict[str, Any]:
        self.offset += 1
        self.lsn += 1 + self._rng.randrange(40)
        self.clock += dt.timedelta(milliseconds=self._rng.randrange(5, 900))
        ts = int(self.clock.timestamp() * 1000)
        lsn = f"{self.lsn >> 32:08x}:{self.lsn & 0xFFFFFFFF:08x}:0002"
        source = {"version": "2.4.0.Final", "connector": "sqlserver", "name": "cord", "ts_ms": ts,
                  "snapshot": snapshot, "db": "ConcordDb", "schema": "dbo", "table": "Product",
                  "change_lsn": None if op == "r" else lsn, "commit_lsn": lsn, "event_serial_no": 1}
        key = (after or before or {})["ID"]
        return {"topic": TOPIC, "partition": 0, "offset": self.offset, "timestamp": ts,
                "key": {"ID": key},
                "value": {"schema": _schema(), "payload": {"before": self._payload_row(before),
                                                           "after": self._payload_row(after), "source": source,
                                                           "op": op, "ts_ms": ts + 40}}}

    def snapshot(self) -> list[dict[str, Any]]:
        records = []
        for i in range(self.products):
            pid = self._next_id
            self._next_id += 1
            self.rows[pid] = self._product(pid)
            last = "last" if i == self.products - 1 else "true"
            records.append(self._record("r", None, self.rows[pid], snapshot=last))
        return records

    def changes(self, n: int) -> list[dict[str, Any]]:
        rng = self._rng
        records = []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.1 or not self.rows:
                pid = self._next_id
                self._next_id += 1
                self.rows[pid] = self._product(pid)
                records.append(self._record("c", None, self.rows[pid]))
                continue
            pid = rng.choice(sorted(self.rows))
            before = self.rows[pid]
            if roll < 0.15:
                del self.rows[pid]
                records.append(self._record("d", before, None))
                continue
            after = dict(before, UpdatedAt=self.clock)
            if roll < 0.55:
                after["Price"] = (before["Price"] * Decimal(rng.choice(("0.9", "0.95", "1.05", "1.1")))).quantize(
                    Decimal("0.01"))
            elif roll < 0.8:
                after["Description"] = before["Description"] + f" Now {rng.choice(TRAITS)} too."
            elif roll < 0.9:
                after["IsActive"] = not before["IsActive"]
            else:
                after["Name"] = before["Name"] + " (2025 edition)"
            self.rows[pid] = after
            records.append(self._record("u", before, after))
        return records

    def write_batch(self, folder: Path, records: list[dict[str, Any]], redeliver: int = 0) -> Path:
        """One ``batch=<time>.jsonl`` file; ``redeliver`` repeats that many earlier records first."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"batch={self.clock:%Y%m%dT%H%M%S%fZ}.jsonl"
        repeat = self._last[-redeliver:] if redeliver else []
        with path.open("w", encoding="utf-8") as fh:
            for record in [*repeat, *records]:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._last = records
        return path


def write_demo_stream(folder: Path, *, products: int = 3000, batches: int = 3, changes: int = 300,
                      seed: int = 42) -> ProductCatalog:
    """The snapshot and ``batches`` change batches as JSONL files in ``folder``."""
    catalog = ProductCatalog(seed=seed, products=products)
    catalog.write_batch(folder, catalog.snapshot())
    for _ in range(batches):
        catalog.clock += dt.timedelta(minutes=5)
        catalog.write_batch(folder, catalog.changes(changes), redeliver=5)
    return catalog

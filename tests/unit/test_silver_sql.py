"""The SQL silver generates: snapshot of its text, and what it does to real rows in DuckDB."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import os
from pathlib import Path

import pyarrow as pa

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.layers.bronze import audit_fields
from flowforge.layers.silver import build_select
from flowforge.spec.jobs import SilverTable

SNAPSHOTS = Path(__file__).parent / "snapshots"

SPEC = SilverTable(
    target="silver_customers", source="bronze_customers", keys=("customer_id",), order_by="modified_date",
    surrogate_key="customer_sk", casts={"score": "INTEGER"},
    derived={"full_name": "first_name || ' ' || last_name"},
)


def _snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("FLOWFORGE_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


def test_silver_select_snapshot() -> None:
    _snapshot("silver_merge_select.sql", build_select(SPEC, "__bronze_new"))


def _bronze(rows: list[dict[str, object]]) -> pa.Table:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    schema = pa.schema([
        pa.field("customer_id", pa.int64()), pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()), pa.field("score", pa.string()),
        pa.field("balance", pa.decimal128(15, 2)), pa.field("modified_date", pa.timestamp("us")),
        *audit_fields(),
    ])
    full = [{**r, "_batch_id": "b1", "_ingestion_time": now, "_source_system": "sqlite:core",
             "_source_file": "customers", "_file_modified_time": None} for r in rows]
    return pa.Table.from_pylist(full, schema=schema)


def test_latest_row_per_key_wins_and_derivations_apply() -> None:
    t0 = dt.datetime(2026, 1, 1)
    rows = [
        {"customer_id": 1, "first_name": "Ann", "last_name": "Lee", "score": "700",
         "balance": decimal.Decimal("10.10"), "modified_date": t0},
        {"customer_id": 1, "first_name": "Ann", "last_name": "Moss", "score": "710",
         "balance": decimal.Decimal("20.20"), "modified_date": t0 + dt.timedelta(days=1)},
        {"customer_id": 2, "first_name": "Bo", "last_name": "Chan", "score": "650",
         "balance": decimal.Decimal("0.05"), "modified_date": t0},
    ]
    engine = DuckDBEngine()
    engine.register_arrow("__bronze_new", _bronze(rows))
    out = engine.query(build_select(SPEC, "__bronze_new") + " ORDER BY customer_id", "test").to_pylist()
    assert [r["customer_id"] for r in out] == [1, 2]
    assert out[0]["full_name"] == "Ann Moss"
    assert out[0]["balance"] == decimal.Decimal("20.20")
    assert out[0]["score"] == 710
    assert out[0]["customer_sk"] == hashlib.md5(b"1").hexdigest()
    assert "_source_system" not in out[0] and out[0]["_batch_id"] == "b1"

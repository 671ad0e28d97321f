"""PostgreSQL arrays and intervals: exact Arrow types from the connector, and bronze keeps them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest
from flowforge.connectors.config import parse_connection
from flowforge.storage import LakehouseStore
from flowforge.storage.delta import conform_reader

pytestmark = pytest.mark.postgres


def test_arrays_and_intervals_round_trip_to_bronze(pg_database: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_database) as con:
        con.execute("CREATE TABLE t (id int PRIMARY KEY, tags text[], scores int[], prices numeric(10,2)[], "
                    "wait interval)")
        con.execute("INSERT INTO t VALUES (1, '{a,b}', '{1,NULL,3}', '{1.10,2.25}', '1 mon 2 days 03:04:05.000006'),"
                    " (2, NULL, '{}', NULL, NULL)")
    connector = open_connector("pg", parse_connection({"type": "postgres", "url": pg_database}))
    request = ReadRequest(table="t")
    types = {c.name: c.arrow_type for c in connector.columns(request)}
    assert types["tags"] == pa.list_(pa.string())
    assert types["scores"] == pa.list_(pa.int32())
    assert types["prices"] == pa.list_(pa.decimal128(10, 2))
    assert types["wait"] == pa.month_day_nano_interval()
    plan = connector.plan(request, None)
    rows = pa.Table.from_batches([b for p in connector.read(plan) for b in p.batches], schema=plan.schema)
    first = rows.sort_by("id").to_pylist()[0]
    assert first["tags"] == ["a", "b"] and first["scores"] == [1, None, 3]
    assert first["prices"] == [Decimal("1.10"), Decimal("2.25")]
    assert (first["wait"].months, first["wait"].days, first["wait"].nanoseconds) == (1, 2, 11045000006000)

    store = LakehouseStore(str(tmp_path))
    store.append("bronze", "t", conform_reader(rows.to_reader()), {})
    back = {r["id"]: r for r in DeltaTable(str(tmp_path / "bronze" / "t")).to_pyarrow_table().to_pylist()}
    assert back[1]["wait"] == {"months": 1, "days": 2, "nanoseconds": 11045000006000}
    assert back[1]["prices"] == [Decimal("1.10"), Decimal("2.25")] and back[2]["scores"] == []
    assert back[2]["wait"] is None
    assert dt.timedelta(days=2, hours=3, minutes=4, seconds=5, microseconds=6) == dt.timedelta(
        days=back[1]["wait"]["days"], microseconds=back[1]["wait"]["nanoseconds"] // 1000)

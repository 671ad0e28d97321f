"""Constant columns built from buffers equal what pyarrow builds from Python values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from flowforge.arrowutil import constant

CASES = [
    ("orders_2024.csv", pa.string()), ("", pa.string()), ("ünïcødé ✓", pa.string()), (None, pa.string()),
    (dt.datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC")),
    (dt.datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=ZoneInfo("Europe/Berlin")), pa.timestamp("us", tz="UTC")),
    (dt.datetime(2026, 1, 1, 0, 0, 0, 999999), pa.timestamp("ms")),
    (None, pa.timestamp("us", tz="UTC")), (42, pa.int64()), (-7, pa.int64()), (1.5, pa.float64()),
]


@pytest.mark.parametrize(("value", "type_"), CASES)
@pytest.mark.parametrize("n", [0, 1, 1000])
def test_constant_equals_pyarrow_from_python(value: object, type_: pa.DataType, n: int) -> None:
    built = constant(value, type_, n)
    built.validate(full=True)
    assert built.type == type_ and len(built) == n
    assert built.equals(pa.array([value] * n, type_))

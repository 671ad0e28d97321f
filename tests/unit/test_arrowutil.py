"""Constant columns built from buffers equal what pyarrow builds from Python values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from flowforge.arrowutil import constant, from_pylist

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


PYLISTS = [
    ([1, None, -(2**63), 2**63 - 1], pa.int64()), ([1, 2, None], pa.int32()), ([1.5, None, 2, 2**53], pa.float64()),
    (["a", None, "ünïcødé ✓", ""], pa.string()), ([b"\x00x", None], pa.binary()), ([True, None, False], pa.bool_()),
    ([], pa.int64()), ([None, None], pa.string()), ([dt.date(2026, 12, 5), None], pa.date32()),
    # what pa.array refuses, refused the same way (arro3 alone would take True as 1 and round 2**53 + 1)
    ([True], pa.int64()), ([2**53 + 1], pa.float64()), ([2**63], pa.int64()), (["1"], pa.int64()),
    ([1], pa.string()), ([300], pa.int8()), ([1], pa.bool_()),
]


@pytest.mark.parametrize(("values", "type_"), PYLISTS)
def test_from_pylist_equals_pyarrow(values: list[object], type_: pa.DataType) -> None:
    try:
        expected = pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            from_pylist(values, type_)
        return
    built = from_pylist(values, type_)
    built.validate(full=True)
    assert built.type == type_ and built.equals(expected)

"""Arrow arrays built without pyarrow's Python-object conversion where a hot path needs them.

``pa.array(values)`` and ``pa.scalar(value)`` first ask pandas whether the input is a pandas
object, which imports pandas (about 0.4 s) in a process that never uses it. The constant audit
columns of every bronze batch are built here from raw buffers instead, and Python values of the
plain types (a database row's integers, floats, text, bytes, booleans) through arro3 (delta-rs'
own Arrow library), whose arrays pyarrow takes over through the C data interface without a copy.

Example::

    from_pylist([1, None, 3], pa.int64())      # what pa.array([1, None, 3], pa.int64()) gives
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def constant(value: object, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` copies of ``value`` as an array of ``type_`` (strings, timestamps, integers, nulls;
    anything else through ``pa.array``)."""
    import numpy as np
    import pyarrow as pa

    if value is None:
        return pa.nulls(n, type_)
    if pa.types.is_string(type_) and isinstance(value, str):
        data = value.encode("utf-8")
        if (n + 1) * len(data) < 2**31:
            offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(data))
            return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])
    elif pa.types.is_timestamp(type_) and isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH
        per_second = _PER_SECOND[type_.unit]
        ticks = (delta.days * 86_400 + delta.seconds) * per_second + delta.microseconds * per_second // 1_000_000
        return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(np.full(n, ticks, dtype=np.int64))])
    elif pa.types.is_int64(type_) and isinstance(value, int) and not isinstance(value, bool):
        return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(np.full(n, value, dtype=np.int64))])
    return pa.array([value] * n, type_)


# Beyond this a float64 cannot hold every integer; pa.array refuses such an int, arro3 would round it.
_EXACT_FLOAT_INT = 2**53


def from_pylist(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """``pa.array(values, type_)`` without importing pandas, for the types a database row holds
    as plain Python values: int and float of every width, string, binary, boolean. Anything else,
    and any value arro3 refuses, goes to ``pa.array``, which converts or raises as it always has
    (``ArrowInvalid``, ``ArrowTypeError``, ``OverflowError``)."""
    import pyarrow as pa

    if not (pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_)
            or pa.types.is_string(type_) or pa.types.is_binary(type_)):
        return pa.array(values, type_)
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        kinds = set(map(type, values))
        if bool in kinds and pa.types.is_integer(type_):  # arro3 takes True as 1, pa.array refuses it
            return pa.array(values, type_)
        if int in kinds and pa.types.is_floating(type_) and any(
                type(v) is int and not -_EXACT_FLOAT_INT <= v <= _EXACT_FLOAT_INT for v in values):
            return pa.array(values, type_)
    from arro3.core import Array

    try:
        built = Array(values, type_)
    except Exception:  # pa.array decides, and raises its own error
        return pa.array(values, type_)
    return pa.array(built)

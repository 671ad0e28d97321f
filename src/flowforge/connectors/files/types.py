"""Type names users write in a spec (``decimal(12,2)``, ``timestamp``) and CSV inference."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_DECIMAL = re.compile(r"^\s*(?:decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$", re.I)
_INT = re.compile(r"^[+-]?\d{1,18}$")
_DEC = re.compile(r"^[+-]?(\d*)\.(\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")
_BOOL = {"true", "false"}


def arrow_type(name: str) -> pa.DataType:
    """Parse a type name from a spec; raise ValueError listing the accepted names."""
    import pyarrow as pa

    simple = {
        "string": pa.string(), "text": pa.string(), "varchar": pa.string(),
        "int": pa.int32(), "integer": pa.int32(), "int32": pa.int32(),
        "bigint": pa.int64(), "int64": pa.int64(), "smallint": pa.int16(),
        "double": pa.float64(), "float": pa.float64(), "real": pa.float32(),
        "bool": pa.bool_(), "boolean": pa.bool_(),
        "date": pa.date32(), "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    key = name.strip().lower()
    if key in simple:
        return simple[key]
    m = _DECIMAL.match(name)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unknown type '{name}'; use one of {', '.join(sorted(simple))} or decimal(p,s)")


def infer_type(values: list[str]) -> pa.DataType:
    """The narrowest exact type that fits every sample value (decimals stay decimal)."""
    import pyarrow as pa

    sample = [v for v in values if v != ""]
    if not sample:
        return pa.string()
    if all(_INT.match(v) for v in sample):
        return pa.int64()
    if all(_INT.match(v) or _DEC.match(v) for v in sample):
        scale = max(len(m.group(2)) for v in sample if (m := _DEC.match(v)))
        return pa.decimal128(38, scale)
    if all(_DATE.match(v) for v in sample):
        return pa.date32()
    if all(_TS.match(v) for v in sample):
        return pa.timestamp("us")
    if all(v.lower() in _BOOL for v in sample):
        return pa.bool_()
    return pa.string()

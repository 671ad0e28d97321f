"""Text-protocol values → Arrow arrays of the planned type, exactly or not at all.

Both drivers run without value converters, so a fetched value is ``bytes`` / ``str`` / ``None``
exactly as the server wrote it. Arrow parses that text in C (numbers, decimals,
dates, timestamps), which is far cheaper than building ``Decimal`` and ``datetime`` objects and
is exact: a value Arrow cannot parse into the type (a zero date, TIME '838:59:59', a 2 in a
TINYINT(1)) raises ``SourceSchemaError`` naming the column, the row and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.sql.mysql.typemap import MyColumn

_EPOCH_DAY = "1970-01-01 "
_DATES = ("date", "datetime", "timestamp")


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[pa.Array]:
    """Fetched rows → one binary array per column (text and bytes alike, None as null).

    One Arrow array of every value, then a strided ``take`` per column: about twice as fast as
    transposing the tuples in Python and building an array per column."""
    import itertools

    import pyarrow as pa

    flat = pa.array(list(itertools.chain.from_iterable(rows)), pa.binary())
    size = len(flat)
    return [flat.take(pa.array(range(i, size, width), pa.int64())) for i in range(width)]


def to_array(raw: pa.Array, col: MyColumn, where: str, first_row: int) -> pa.Array:
    """Convert one fetched column (binary, see ``columns``); ``first_row`` numbers rows in
    messages (1-based)."""
    import pyarrow as pa

    if col.kind == "binary":
        return raw
    if col.kind == "bits":  # a procedure's BIT column arrives as big-endian bytes
        return pa.array([None if v is None else int.from_bytes(v, "big") for v in raw.to_pylist()],
                        col.arrow_type)
    text = _strings(raw, col, where, first_row)
    if col.kind == "string":
        return text
    try:
        return _parse(text, col)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _bad_value(text, col, where, first_row, exc) from None


def from_native(array: pa.Array, col: MyColumn, where: str, first_row: int) -> pa.Array:
    """Convert one column of the fast path (``fast.py``): text goes through ``to_array``; numbers
    arrive typed by the server and only need widening to the planned type."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return array.cast(pa.binary()) if col.kind == "binary" else to_array(array, col, where, first_row)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return to_array(array, col, where, first_row)
    if col.kind == "bool":  # 0/1 checked, and a bad value named, exactly as for text
        return to_array(array.cast(pa.string()), col, where, first_row)
    return array.cast(col.arrow_type)  # a safe cast: widening only (see typemap._INTEGERS)


def _strings(raw: pa.Array, col: MyColumn, where: str, first_row: int) -> pa.Array:
    import pyarrow as pa

    try:
        return raw.cast(pa.string())
    except pa.ArrowInvalid:
        values = raw.to_pylist()
        index = next(i for i, v in enumerate(values) if v is not None and not _is_utf8(v))
        raise SourceSchemaError(
            f"{where}: column {col.name!r}, row {first_row + index}: value {values[index]!r} is not "
            "valid UTF-8 text.",
            hint="Check the column's character set, or select it as binary with CAST(col AS BINARY).",
        ) from None


def _parse(text: pa.Array, col: MyColumn) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    target = col.arrow_type
    if col.kind == "bool":
        numbers = text.cast(pa.int8())
        bounds = pc.min_max(numbers).as_py()
        if bounds["min"] is not None and (bounds["min"] < 0 or bounds["max"] > 1):
            raise pa.ArrowInvalid("a TINYINT(1) value other than 0 or 1 is not a boolean")
        return numbers.cast(pa.bool_())
    if col.kind == "float32":
        return text.cast(pa.float64()).cast(pa.float32())  # the double holds a float exactly
    if col.kind == "timestamptz":  # the session time zone is UTC, so the text is UTC
        return text.cast(pa.timestamp("us")).cast(target)
    if col.kind == "time":
        stamps = pc.binary_join_element_wise(_EPOCH_DAY, text, "").cast(pa.timestamp("us"))
        return stamps.cast(pa.int64()).cast(target)
    return text.cast(target)


def _bad_value(text: pa.Array, col: MyColumn, where: str, first_row: int, exc: Exception) -> SourceSchemaError:
    """Find the first value that does not fit, so the message can show it."""
    import pyarrow as pa

    index, value = 0, None
    for index, value in enumerate(text.to_pylist()):  # noqa: B007 - both are used after the loop
        if value is None:
            continue
        try:
            _parse(pa.array([value], pa.string()), col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            break
    why = {
        "time": "TIME values outside 00:00:00-23:59:59 (durations, negative times) have no Arrow time",
        "bool": "TINYINT(1) is read as a boolean, so it must hold 0 or 1",
    }.get(col.kind, f"it cannot be read as {col.arrow_type} exactly ({str(exc).splitlines()[0]})")
    if col.base in _DATES and isinstance(value, str) and (value.startswith("0000") or "-00" in value[:10]):
        why = "zero dates and dates with a zero month or day have no Arrow equivalent"
    return SourceSchemaError(
        f"{where}: column {col.name!r} ({col.source_type}), row {first_row + index}: value {value!r}: {why}.",
        hint="Set type_fallback: string on this table to read such columns as text, or select the "
             "column through a query that CASTs or fixes it (e.g. NULLIF(col, '0000-00-00')).",
    )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True

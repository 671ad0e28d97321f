"""Timestamp digits below the microsecond, handled as the ingest table's ``sub_microseconds`` says.

Delta Lake stores timestamps in microseconds; SQL Server's datetime2(7) and datetimeoffset(7) and
Parquet files carry nanosecond timestamps (``timestamp('ns')``). Bronze applies one of three
stated choices to every nanosecond timestamp column, whatever the connector:

* ``error`` (default): the first value with a digit below the microsecond stops the job before
  anything is committed, naming the column, the row and the value with all its digits;
* ``truncate``: those digits are dropped, toward the earlier instant (never rounded up), and the
  run log says how many values of each column lost them;
* ``string``: the column lands as ISO-8601 text with nine fraction digits
  (``2024-01-01T10:00:00.123456700``; zoned columns as the UTC instant ending in ``Z``), exact and
  ordered like the instants.

Under ``error`` and ``truncate`` values that are whole microseconds land unchanged. TIME columns
are not affected: they land as text with every digit in any case. The watermark of an incremental
column is the source's own value (SQL Server keeps 7-digit text, compared as datetime2(7)), so it
covers exactly the rows committed whatever is done to their digits here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.spec.jobs import SubMicrosecondMode

_ISO = "%Y-%m-%dT%H:%M:%S"  # %S of a nanosecond timestamp carries the nine fraction digits


class SubMicroseconds:
    """The choice for one ingest table, applied to its source columns batch by batch."""

    def __init__(self, mode: SubMicrosecondMode, source: pa.Schema, target: str) -> None:
        import pyarrow as pa

        self.mode = mode
        self.target = target
        self.columns = {i: f.name for i, f in enumerate(source)
                        if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}
        self.truncated = dict.fromkeys(self.columns.values(), 0)
        self._rows: dict[str, int] = {}  # rows already seen per source part, for the row number

    def schema(self, delta: pa.Schema) -> pa.Schema:
        """``delta`` (the Delta types, source columns first) with the text columns of ``string``."""
        import pyarrow as pa

        if self.mode != "string":
            return delta
        for i in self.columns:
            f = delta.field(i)
            delta = delta.set(i, pa.field(f.name, pa.string(), f.nullable, f.metadata))
        return delta

    def apply(self, columns: list[pa.Array], part: str) -> list[pa.Array]:
        """The source columns of one batch of ``part`` (a file or table), ready for the Delta cast."""
        if not self.columns or not columns:
            return columns
        offset = self._rows.get(part, 0)
        self._rows[part] = offset + len(columns[0])
        out = list(columns)
        for i, name in self.columns.items():
            out[i] = self._column(out[i], name, part, offset)
        return out

    def note(self) -> str | None:
        """The run-log line of ``truncate``: how many values lost digits, per column."""
        if self.mode != "truncate" or not self.columns:
            return None
        per_column = ", ".join(f"{n} in {name}" for name, n in self.truncated.items())
        return (f"truncated {sum(self.truncated.values())} timestamp value(s) to the microsecond "
                f"(sub_microseconds: truncate): {per_column}")

    def _column(self, array: pa.Array, name: str, part: str, offset: int) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        zoned = array.type.tz is not None
        # the stored value is the UTC instant: plain arithmetic on it needs no time zone rules
        wall = array.view(pa.timestamp("ns"))
        if self.mode == "string":
            return pc.strftime(wall, format=_ISO + ("Z" if zoned else ""))
        floored = pc.floor_temporal(wall, unit="microsecond")
        finer = pc.not_equal(floored, wall)
        count = pc.sum(finer).as_py() or 0
        if not count:
            return array
        if self.mode == "error":
            index = pc.index(finer, True).as_py()
            raise self._error(name, array.type, wall, index, offset + index + 1, part)
        self.truncated[name] += count
        return floored.view(array.type)

    def _error(self, name: str, kind: pa.DataType, wall: pa.Array, index: int, row: int,
               part: str) -> SourceSchemaError:
        import pyarrow.compute as pc

        text = pc.strftime(wall.slice(index, 1), format=_ISO)[0].as_py().rstrip("0")
        value = text + ("Z" if kind.tz is not None else "")
        described = f"nanosecond timestamp, {kind.tz}" if kind.tz else "nanosecond timestamp"
        return SourceSchemaError(
            f"{self.target}: column {name!r} ({described}) holds {value} in row {row} of {part}: digits below "
            f"the microsecond, which a Delta timestamp cannot store. Nothing was committed.",
            hint=f"Choose in the job, on the table with target {self.target}: 'sub_microseconds: truncate' "
                 f"drops those digits (toward the earlier instant; the run log counts them), or "
                 f"'sub_microseconds: string' lands the column as ISO-8601 text with every digit.")

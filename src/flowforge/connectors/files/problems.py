"""Turn pyarrow's CSV conversion errors ("In CSV column #9: ...", no line) into errors naming
the file, the line, the column by name and the value, found by reading the file again as text
(only when a read failed; memory stays bounded by the block size)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flowforge.errors import SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import FileEntry
    from flowforge.connectors.files.folders import Folder
    from flowforge.connectors.files.options import FileRead

_COLUMN = re.compile(r"CSV column #(\d+)")


def conversion_error(folder: Folder, entry: FileEntry, label: str, read: FileRead, schema: pa.Schema,
                     text: str) -> SourceSchemaError | None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from flowforge.connectors.files.connector import csv_options

    m = _COLUMN.search(text)
    if not m or int(m.group(1)) >= len(schema):
        return None
    field = schema.field(int(m.group(1)))
    reason = _COLUMN.sub(f"column '{field.name}'", text).removeprefix("In ")
    hint = (f"Fix the value in the file, or declare the column's type under 'columns' (for example "
            f"{{{field.name}: string}}); it reads as {field.type} now.")
    row = 0
    try:
        stream = pcsv.open_csv(folder.open_arrow(entry), **csv_options(read, schema, max(1 << 22, read.max_line_size),
                                                                         convert=False))
        for batch in stream:
            bad = _first_bad(batch.column(field.name), field.type, read)
            if bad is not None:
                line = row + bad + (2 if read.header else 1)
                value = batch.column(field.name)[bad].as_py()
                shown = value if len(value) <= 60 else value[:57] + "..."
                return SourceSchemaError(f"{label}, line {line}, column '{field.name}': {shown!r} is not a "
                                         f"valid {field.type}", hint=hint)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError):
        pass
    return SourceSchemaError(f"{label}: {reason}", hint=hint)


def _converts(values: pa.Array, type_: pa.DataType, read: FileRead) -> bool:
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(pa.table({"v": values}), buf, write_options=pcsv.WriteOptions(quoting_style="all_valid"))
    try:
        pcsv.read_csv(io.BytesIO(buf.getvalue()), convert_options=pcsv.ConvertOptions(
            column_types={"v": type_}, null_values=list(read.null_values), strings_can_be_null=True,
            quoted_strings_can_be_null=True, true_values=["true", "True", "TRUE", "1"],
            false_values=["false", "False", "FALSE", "0"]))
    except pa.ArrowInvalid:
        return False
    return True


def _first_bad(values: pa.Array, type_: pa.DataType, read: FileRead) -> int | None:
    """Index of the first value that does not convert (bisection: a few reads of the block)."""
    if _converts(values, type_, read):
        return None
    lo, hi = 0, len(values)  # the first bad value lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _converts(values.slice(lo, mid - lo), type_, read):
            lo = mid
        else:
            hi = mid
    return lo

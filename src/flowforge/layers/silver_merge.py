"""The rows a silver job commits, as the write wants them.

The first build of a merged table (and a rebuild: a full refresh, changed settings) streams:
DuckDB's result goes to the Delta writer in record batches, sorted by key, so the table starts
clustered (each file holds a narrow key
range, and later merges rewrite only the files a batch can touch; see
``flowforge.storage.delta_merge``). DuckDB works within ``BUILD_MEMORY`` and spills the rest of
the sort to a temporary folder, so the peak stays flat as the table grows. Later batches are the
change only, and come back as one Arrow table.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flowforge.engine.sql import quote

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.layers.base import JobContext
    from flowforge.spec.jobs import SilverTable

BUILD_MEMORY = "384MB"
BATCH_ROWS = 131_072


def first_build(ctx: JobContext, spec: SilverTable, rebuild: bool = False) -> bool:
    """Whether the job writes the whole table (a first build, or a rebuild), sorted by key."""
    if spec.strategy != "merge" or not spec.keys:
        return False
    return rebuild or ctx.store.open("silver", spec.target) is None


def prepare(engine: DuckDBEngine, stream: bool) -> str | None:
    """Bound DuckDB's memory for a streamed build (before the engine is sealed); the spill folder."""
    if not stream:
        return None
    spill = tempfile.mkdtemp(prefix="flowforge-silver-")
    engine.con.execute(f"SET memory_limit = '{BUILD_MEMORY}'")
    engine.con.execute("SET temp_directory = ?", [spill])
    return spill


def discard(engine: DuckDBEngine, spill: str | None) -> None:
    engine.close()
    if spill is not None:
        shutil.rmtree(spill, ignore_errors=True)


def silver_rows(engine: DuckDBEngine, spec: SilverTable, select: str,
                spill: str | None) -> pa.Table | pa.RecordBatchReader:
    """The selection as one table, or (a first build, ``spill`` set) a key-sorted stream that
    closes the engine once read."""
    context = f"silver table {spec.target}"
    if spill is None:
        return engine.query(select, context)
    import pyarrow as pa

    order = ", ".join(quote(k) for k in spec.keys)
    reader = engine.reader(f"SELECT * FROM ({select}) ORDER BY {order}", context, batch_size=BATCH_ROWS)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            discard(engine, spill)

    return pa.RecordBatchReader.from_batches(reader.schema, batches())

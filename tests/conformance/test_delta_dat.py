"""Delta acceptance tables (DAT): the engine's Delta reader returns exactly the expected rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from flowforge.engine.duckdb_engine import DuckDBEngine


def _cases(conformance_dir: Path) -> list[str]:
    summary = json.loads((conformance_dir / "delta_dat" / "expected_summary.json").read_text())
    return sorted(summary)


def _normalize(table: pa.Table) -> list[dict[str, object]]:
    cols = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            col = pc.cast(col, pa.timestamp("us", tz=None) if field.type.tz is None else pa.timestamp("us", tz="UTC"))
            if field.type.tz is not None:
                col = pc.cast(col.cast(pa.int64()), pa.timestamp("us"))
        cols.append(col)
    norm = pa.table(cols, names=table.column_names)
    rows = norm.to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_every_dat_case_reads_as_expected(conformance_dir: Path) -> None:
    base = conformance_dir / "delta_dat" / "reader_tests" / "generated"
    cases = _cases(conformance_dir)
    assert len(cases) == 11
    checked = 0
    for case in cases:
        expected_dir = base / case / "expected" / "latest" / "table_content.parquet"
        expected = pq.read_table(expected_dir)
        engine = DuckDBEngine()
        try:
            engine.register_delta("t", DeltaTable(str(base / case / "delta")))
            got = engine.query(f"SELECT {', '.join(repr(c).replace(chr(39), chr(34)) for c in expected.column_names)} "
                               "FROM t", case)
        finally:
            engine.close()
        assert got.num_rows == expected.num_rows, case
        assert _normalize(got) == _normalize(expected), case
        checked += 1
    assert checked == len(cases)


@pytest.mark.parametrize("case", ["basic_append", "with_schema_change"])
def test_engine_reads_old_versions_too(conformance_dir: Path, case: str) -> None:
    base = conformance_dir / "delta_dat" / "reader_tests" / "generated" / case
    for vdir in sorted((base / "expected").glob("v*")):
        version = int(vdir.name[1:])
        expected = pq.read_table(vdir / "table_content.parquet")
        engine = DuckDBEngine()
        engine.register_delta("t", DeltaTable(str(base / "delta"), version=version))
        got = engine.query("SELECT * FROM t", case).select(expected.column_names)
        engine.close()
        assert _normalize(got) == _normalize(expected), f"{case} v{version}"

"""Nanosecond timestamps through the real pipeline (files connector, Parquet → bronze), as a user
runs them: each ``sub_microseconds`` choice, what lands in Delta and what the user is told."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from tests.cli_helpers import init_project, invoke

WORKFLOW = """\
name: ticks
jobs:
  - name: land
    kind: ingest
    connection: pq
    tables:
      - {{files: "ticks_*.parquet", target: bronze_ticks{setting}}}
"""

# Epoch nanoseconds. 'at' is naive with nine digits (as Parquet writers produce), 'at_tz' zoned with
# SQL Server's seven (datetimeoffset(7)), 't' a TIME with nine.
AT = [1704103200123456000, 1704103200123456789, -1, None]  # -1 ns: 1969-12-31T23:59:59.999999999
AT_TZ = [1704099600123456700, 1704099600000000000, 1719791999999999900, 1719791999999999000]
TIME = [36000123456789, 0, None, 86399999999999]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "p")
    with open(project / "flowforge.yml", "a") as fh:
        fh.write("  pq: {type: files, path: data, format: parquet}\n")
    return project


def _workflow(project: Path, mode: str | None) -> None:
    setting = f", sub_microseconds: {mode}" if mode else ""
    (project / "workflows" / "ticks.yml").write_text(WORKFLOW.format(setting=setting))


def _parquet(project: Path, name: str, at: Sequence[int | None], at_tz: Sequence[int | None],
             time: Sequence[int | None]) -> None:
    pq.write_table(pa.table({
        "id": list(range(1, len(at) + 1)),
        "at": pa.array(at, pa.timestamp("ns")),
        "at_tz": pa.array(at_tz, pa.timestamp("ns", tz="Europe/Paris")),
        "t": pa.array(time, pa.time64("ns")),
    }), project / "data" / name)


def _bronze(project: Path) -> DeltaTable:
    return DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_ticks"))


def _rows(project: Path) -> pa.Table:
    return _bronze(project).to_pyarrow_table().sort_by([("_source_file", "ascending"), ("id", "ascending")])


def _floor_us(values: Sequence[int | None]) -> list[int | None]:
    return [None if v is None else v // 1000 for v in values]  # Python floors toward the earlier instant


def test_error_on_a_first_run_names_column_row_and_value_and_creates_no_table(project: Path) -> None:
    _parquet(project, "ticks_1.parquet", AT, AT_TZ, TIME)
    _workflow(project, None)  # the default is 'error'
    code, out = invoke(project, "run", "ticks")
    assert code == 1
    assert "column 'at'" in out and "2024-01-01T10:00:00.123456789" in out and "row 2 of ticks_1.parquet" in out
    assert "sub_microseconds: truncate" in out and "sub_microseconds: string" in out
    assert "Traceback" not in out and "C Data interface" not in out
    assert not (project / "lakehouse" / "bronze" / "bronze_ticks" / "_delta_log").exists()


def test_error_passes_whole_microseconds_and_commits_nothing_on_a_finer_value(project: Path) -> None:
    whole = [v if v is None else v // 1000 * 1000 for v in AT]
    whole_tz = [v if v is None else v // 1000 * 1000 for v in AT_TZ]
    _parquet(project, "ticks_1.parquet", whole, whole_tz, TIME)
    _workflow(project, "error")
    code, out = invoke(project, "run", "ticks")
    assert code == 0, out
    rows = _rows(project)
    assert rows.column("at").cast(pa.int64()).to_pylist() == _floor_us(whole)
    assert rows.column("at_tz").cast(pa.int64()).to_pylist() == _floor_us(whole_tz)
    assert rows.column("t").to_pylist() == ["10:00:00.123456789", "00:00:00.000000000", None,
                                            "23:59:59.999999999"]  # TIME keeps every digit as text

    # a later file with one 100 ns digit in the zoned column, third row
    _parquet(project, "ticks_2.parquet", whole, [*whole_tz[:2], AT_TZ[2], whole_tz[3]], TIME)
    code, out = invoke(project, "run", "ticks")
    assert code == 1
    assert "column 'at_tz'" in out and "2024-06-30T23:59:59.9999999Z" in out and "row 3 of ticks_2.parquet" in out
    assert "Nothing was committed" in out
    assert _bronze(project).version() == 0 and _rows(project).num_rows == 4

    # the file was not marked as read either: choosing truncate now lands it
    _workflow(project, "truncate")
    code, out = invoke(project, "run", "ticks")
    assert code == 0, out
    assert _bronze(project).version() == 1 and _rows(project).num_rows == 8


def test_truncate_lands_the_floor_of_each_value_and_counts_them_in_the_run_log(project: Path) -> None:
    _parquet(project, "ticks_1.parquet", AT, AT_TZ, TIME)
    _workflow(project, "truncate")
    code, out = invoke(project, "run", "ticks")
    assert code == 0, out
    rows = _rows(project)
    assert rows.schema.field("at").type == pa.timestamp("us")
    assert rows.schema.field("at_tz").type == pa.timestamp("us", tz="UTC")
    assert rows.column("at").cast(pa.int64()).to_pylist() == _floor_us(AT)
    assert rows.column("at_tz").cast(pa.int64()).to_pylist() == _floor_us(AT_TZ)
    # toward the earlier instant: .999999999 before 1970 and .9999999 before July stay in their second
    assert rows.column("at").to_pylist()[2] == dt.datetime(1969, 12, 31, 23, 59, 59, 999999)
    assert rows.column("at_tz").to_pylist()[2] == dt.datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert rows.column("t").to_pylist()[0] == "10:00:00.123456789"
    code, out = invoke(project, "runs", "--id", "1")
    assert code == 0
    assert ("bronze_ticks: truncated 4 timestamp value(s) to the microsecond (sub_microseconds: truncate): "
            "2 in at, 2 in at_tz") in out


def test_string_lands_every_digit_as_iso_text(project: Path) -> None:
    _parquet(project, "ticks_1.parquet", AT, AT_TZ, TIME)
    _workflow(project, "string")
    code, out = invoke(project, "run", "ticks")
    assert code == 0, out
    rows = _rows(project)
    assert rows.column("at").to_pylist() == ["2024-01-01T10:00:00.123456000", "2024-01-01T10:00:00.123456789",
                                             "1969-12-31T23:59:59.999999999", None]
    # zoned values as the UTC instant (the file's zone was Europe/Paris)
    assert rows.column("at_tz").to_pylist() == ["2024-01-01T09:00:00.123456700Z", "2024-01-01T09:00:00.000000000Z",
                                                "2024-06-30T23:59:59.999999900Z", "2024-06-30T23:59:59.999999000Z"]
    assert rows.column("t").to_pylist() == ["10:00:00.123456789", "00:00:00.000000000", None, "23:59:59.999999999"]
    code, out = invoke(project, "query", "SELECT max(at_tz) AS newest FROM bronze_ticks")
    assert code == 0 and "2024-06-30T23:59:59.999999900Z" in out  # fixed width: text order is time order

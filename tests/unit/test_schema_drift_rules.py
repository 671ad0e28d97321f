"""The schema drift rules: which type changes widen, which narrow, which are refused and what a
refusal says; and a write the table refuses is never blamed on the lakehouse location."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flowforge.errors import SchemaDriftError
from flowforge.layers.schema_drift import arrow_type, compare, conform, resolve, widens
from flowforge.spec.jobs import IngestTable
from flowforge.storage.delta import LakehouseStore


@pytest.mark.parametrize(("old", "new"), [
    (pa.int32(), pa.int64()), (pa.int16(), pa.int32()), (pa.int8(), pa.int64()), (pa.float32(), pa.float64()),
    (pa.decimal128(10, 2), pa.decimal128(12, 4)), (pa.decimal128(10, 2), pa.decimal128(11, 2)),
    (pa.int32(), pa.decimal128(10, 0)), (pa.int64(), pa.decimal128(21, 2)), (pa.int32(), pa.float64()),
    (pa.timestamp("ms"), pa.timestamp("us")), (pa.timestamp("ms", tz="UTC"), pa.timestamp("us", tz="UTC"))])
def test_safe_widenings(old: pa.DataType, new: pa.DataType) -> None:
    assert widens(old, new)
    assert not widens(new, old)


@pytest.mark.parametrize(("old", "new"), [
    (pa.decimal128(10, 2), pa.decimal128(10, 4)),  # two fewer integer digits
    (pa.decimal128(12, 4), pa.decimal128(12, 2)),  # fewer fraction digits
    (pa.int64(), pa.float64()),                     # above 2**53 floats lose digits
    (pa.int32(), pa.decimal128(9, 0)), (pa.int32(), pa.string()), (pa.string(), pa.int32()),
    (pa.timestamp("us"), pa.timestamp("us", tz="UTC")), (pa.int32(), pa.int32())])
def test_not_widenings(old: pa.DataType, new: pa.DataType) -> None:
    assert not widens(old, new)


def test_string_kinds_are_the_same_type() -> None:
    assert compare(pa.schema([("a", pa.string())]), pa.schema([("a", pa.large_string())])) == []


def test_a_rename_is_reported_as_drop_and_add() -> None:
    old = pa.schema([("id", pa.int32()), ("note", pa.string()), ("qty", pa.int32())])
    new = pa.schema([("id", pa.int32()), ("remark", pa.string()), ("qty", pa.int32())])
    changes = {c.column: c for c in compare(old, new)}
    assert changes["remark"].kind == "added"
    assert changes["note"].kind == "dropped" and changes["note"].renamed_to == "remark"


def test_evolve_keeps_dropped_columns_and_adds_new_ones_at_the_end() -> None:
    old = pa.schema([("id", pa.int32()), ("name", pa.string()), ("amount", pa.decimal128(10, 2))])
    new = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 4)), ("note", pa.string())])
    drift = resolve("bronze", "b", "evolve", old, new, dropped_before={})
    assert drift.target.names == ["id", "name", "amount", "note"]
    assert drift.target.field("id").type == pa.int64() and drift.rewrite
    assert set(drift.dropped) == {"name"} and drift.marks_changed
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1], pa.int64()), "amount": [Decimal("1.2345")],
                                        "note": ["x"]}, schema=new)
    out = conform(batch, drift.target)
    assert out.to_pylist() == [{"id": 1, "name": None, "amount": Decimal("1.2345"), "note": "x"}]
    # a column already marked dropped is no news the next time
    again = resolve("bronze", "b", "evolve", drift.target, new, dropped_before=drift.dropped)
    assert again.none and not again.marks_changed


@pytest.mark.parametrize("policy", ["evolve", "fail", "ignore"])
def test_incompatible_change_is_refused_under_every_policy(policy: str) -> None:
    old = pa.schema([("id", pa.int32()), ("amount", pa.int32())])
    new = pa.schema([("id", pa.int32()), ("amount", pa.string())])
    with pytest.raises(SchemaDriftError) as err:
        resolve("bronze", "bronze_orders", policy, old, new, dropped_before={})  # type: ignore[arg-type]
    text = str(err.value)
    assert "bronze table bronze_orders: column 'amount' changed from INTEGER to TEXT" in text
    assert "Nothing was committed" in text
    assert "Cast it with casts: {amount: INTEGER}, or run with --full-refresh" in text


def test_narrowing_is_refused_under_evolve_but_fits_under_ignore() -> None:
    old = pa.schema([("qty", pa.int64())])
    new = pa.schema([("qty", pa.int32())])
    with pytest.raises(SchemaDriftError, match="column 'qty' narrowed from BIGINT to INTEGER"):
        resolve("silver", "s", "evolve", old, new, dropped_before={})
    drift = resolve("silver", "s", "ignore", old, new, dropped_before={})
    assert drift.target.field("qty").type == pa.int64() and not drift.rewrite


def test_ignore_leaves_new_columns_out() -> None:
    old = pa.schema([("id", pa.int32())])
    new = pa.schema([("id", pa.int32()), ("extra", pa.string())])
    drift = resolve("bronze", "b", "ignore", old, new, dropped_before={})
    assert drift.target.names == ["id"]


def test_ingest_casts_name_exact_types() -> None:
    assert arrow_type("decimal(12, 4)") == pa.decimal128(12, 4)
    assert arrow_type("BIGINT") == pa.int64()
    assert arrow_type("varchar(20)") == pa.string()
    assert arrow_type("timestamptz") == pa.timestamp("us", tz="UTC")
    with pytest.raises(ValueError, match="precision must be"):
        arrow_type("DECIMAL(40,2)")
    with pytest.raises(ValueError, match=r"casts\.amount: 'MONEY' is not a type an ingest cast can name"):
        IngestTable.model_validate({"table": "t", "target": "b", "casts": {"amount": "MONEY"}})
    with pytest.raises(ValueError, match="on_schema_change"):
        IngestTable.model_validate({"table": "t", "target": "b", "on_schema_change": "merge"})


def test_a_write_the_table_refuses_names_the_column_not_the_location(tmp_path: Path) -> None:
    store = LakehouseStore(str(tmp_path / "lake"))
    store.append("bronze", "x", pa.table({"a": pa.array([Decimal("1.10")], pa.decimal128(10, 2))}), {})
    with pytest.raises(SchemaDriftError) as err:
        store.append("bronze", "x", pa.table({"a": pa.array([Decimal("1.1000")], pa.decimal128(12, 4))}), {})
    text = str(err.value)
    assert "column 'a' is Decimal128(10, 2) in the table but Decimal128(12, 4) in the data" in text
    assert "casts: {col: TYPE}" in text and "--full-refresh" in text
    assert "lakehouse location exists" not in text


def test_a_column_sent_again_is_no_longer_marked_dropped() -> None:
    table = pa.schema([("id", pa.int32()), ("name", pa.string())])
    drift = resolve("bronze", "b", "evolve", table, table, dropped_before={"name": {"at": "2026-01-01"}})
    assert [(c.column, c.kind) for c in drift.changes] == [("name", "restored")]
    assert drift.dropped == {} and drift.marks_changed
    # marks of columns the table no longer has (a full refresh rebuilt it) are forgotten
    gone = resolve("bronze", "b", "evolve", table, pa.schema([("id", pa.int32())]),
                   dropped_before={"ghost": {"at": "2026-01-01"}})
    assert set(gone.dropped) == {"name"}


def test_a_text_column_takes_numbers_as_text_but_fail_still_stops() -> None:
    old = pa.schema([("balance", pa.string())])
    new = pa.schema([("balance", pa.decimal128(14, 2))])
    drift = resolve("silver", "s", "evolve", old, new, dropped_before={})
    assert [c.describe() for c in drift.changes] == [
        "column 'balance' is now DECIMAL(14,2) at the source; kept as TEXT"]
    assert drift.target.field("balance").type == pa.string() and not drift.rewrite
    batch = pa.RecordBatch.from_pydict({"balance": pa.array([Decimal("1200.50"), None], pa.decimal128(14, 2))})
    assert conform(batch, drift.target).column(0).to_pylist() == ["1200.50", None]
    with pytest.raises(SchemaDriftError, match="on_schema_change is 'fail'"):
        resolve("silver", "s", "fail", old, new, dropped_before={})

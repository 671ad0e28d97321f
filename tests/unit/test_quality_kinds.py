"""Each test kind on small tables: which rows fail, what is counted, what the table tests observe.

Expected rows are written out by hand from the data, never computed by FlowForge.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import TypeAdapter

from flowforge.quality.check import Checker, Verdict
from flowforge.quality.evaluate import TestResult
from flowforge.quality.spec import Tests
from flowforge.storage import LakehouseStore


@pytest.fixture
def store(tmp_path: Path) -> LakehouseStore:
    return LakehouseStore(str(tmp_path / "lake"))


def check(store: LakehouseStore, tests: list[object], data: pa.Table, *, mode: str = "overwrite",
          keys: tuple[str, ...] = (), table: str = "t") -> Verdict:
    parsed = TypeAdapter(Tests).validate_python(tests)
    with Checker(store, "silver", table) as checker:
        return checker.batch(parsed, data, mode=mode, keys=keys, existing=store.open("silver", table))


def one(verdict: Verdict) -> TestResult:
    (result,) = verdict.results
    return result


def failing_ids(result: TestResult) -> list[object]:
    return sorted(r["id"] for r in result.sample)


def test_not_null_counts_every_row(store: LakehouseStore) -> None:
    r = one(check(store, [{"not_null": "v"}], pa.table({"id": [1, 2, 3, 4], "v": [1, None, 3, None]})))
    assert (r.status, r.failing_rows, r.rows_checked) == ("fail", 2, 4)
    assert failing_ids(r) == [2, 4]


def test_unique_sees_the_rows_that_stay_in_the_table(store: LakehouseStore) -> None:
    store.overwrite("silver", "t", pa.table({"id": [1, 2], "v": ["a", "b"]}), {})
    batch = pa.table({"id": [2, 3, 3, None], "v": ["b2", "c", "c2", "n"]})
    appended = one(check(store, [{"unique": "id"}], batch, mode="append"))
    assert appended.failing_rows == 3  # 2 is already there; 3 twice; a null is never a duplicate
    assert appended.rows_checked == 3
    merged = one(check(store, [{"unique": "id"}], batch, mode="merge", keys=("id",)))
    assert merged.failing_rows == 2  # the merge replaces the row with id 2
    rebuilt = one(check(store, [{"unique": "id"}], batch, mode="overwrite"))
    assert rebuilt.failing_rows == 2


def test_unique_combination_treats_nulls_as_equal_and_skips_empty_rows(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4, 5, 6], "a": [1, 1, None, None, None, 2], "b": ["x", "x", "y", "y", None, None]})
    r = one(check(store, [{"unique_combination": ["a", "b"]}], data))
    assert failing_ids(r) == [1, 2, 3, 4]
    assert r.rows_checked == 5  # row 5 has neither value


def test_accepted_values_keeps_yaml_types_and_ignores_nulls(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4], "code": [10, 20, 30, None], "status": ["placed", "lost", "shipped", None]})
    r = check(store, [{"accepted_values": {"column": "code", "values": ["10", 20, "not a number"]}},
                      {"accepted_values": {"column": "status", "values": ["placed", "shipped"]}},
                      {"accepted_values": {"column": "status", "values": [], "name": "nothing"}}], data).results
    assert failing_ids(r[0]) == [3]
    assert failing_ids(r[1]) == [2]
    assert (r[2].failing_rows, r[2].rows_checked) == (3, 3)


def test_relationships_look_up_another_lakehouse_table(store: LakehouseStore) -> None:
    store.overwrite("silver", "customers", pa.table({"customer_id": [1, 2, None]}), {})
    data = pa.table({"id": [1, 2, 3, 4], "customer_id": [1, 9, None, 2]})
    r = one(check(store, [{"relationships": {"column": "customer_id", "to": "customers", "field": "customer_id"}}],
                  data))
    assert failing_ids(r) == [2] and r.rows_checked == 3
    missing = one(check(store, [{"relationships": {"column": "customer_id", "to": "nobody", "field": "id"}}], data))
    assert missing.status == "error" and "'nobody' is not in the lakehouse" in missing.message


def test_expression_null_passes_like_a_check_constraint(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3], "opened": [1, 5, 3], "closed": [2, 4, None]})
    r = one(check(store, [{"expression": "closed >= opened"}], data))
    assert failing_ids(r) == [2] and r.rows_checked == 3


def test_regex_searches_and_negates(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4], "email": ["a@b.io", "bad", "x@y", None]})
    r = check(store, [{"regex": {"column": "email", "pattern": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"}},
                      {"regex": {"column": "email", "pattern": "@", "negate": True}}], data).results
    assert failing_ids(r[0]) == [2, 3]
    assert failing_ids(r[1]) == [1, 3]


def test_range_takes_numbers_dates_and_strict_bounds(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4], "amount": [0, 5, 10, None],
                     "day": pa.array([dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(2024, 12, 31),
                                      dt.date(2025, 1, 1)])})
    r = check(store, [{"range": {"column": "amount", "min": 0, "max": 10, "strict_min": True}},
                      {"range": {"column": "day", "min": "2024-01-01", "max": "2024-12-31"}}], data).results
    assert failing_ids(r[0]) == [1] and r[0].rows_checked == 3
    assert failing_ids(r[1]) == [1, 4]


def test_row_count_bounds_and_change_against_the_table_before(store: LakehouseStore) -> None:
    store.overwrite("silver", "t", pa.table({"id": list(range(10))}), {})
    half = pa.table({"id": list(range(5))})
    r = one(check(store, [{"row_count": {"min": 1, "max_change_pct": 20}}], half, mode="overwrite"))
    assert r.status == "fail" and "a change of 50.0%" in r.message
    # appended, the table grows from 10 to 15 rows: +50 %
    grew = one(check(store, [{"row_count": {"max": 14, "severity": "warn"}}], half, mode="append"))
    assert grew.status == "warn" and grew.observed == {"rows": 15}


def test_freshness_measures_the_newest_value(store: LakehouseStore) -> None:
    now = dt.datetime.now(dt.UTC)
    data = pa.table({"id": [1, 2], "ts": pa.array([now - dt.timedelta(days=3), now - dt.timedelta(hours=2)],
                                                  pa.timestamp("us", tz="UTC"))})
    assert one(check(store, [{"freshness": {"column": "ts", "max_age": "6h"}}], data)).status == "pass"
    stale = one(check(store, [{"freshness": {"column": "ts", "max_age": "1h"}}], data))
    assert stale.status == "fail" and 7000 < stale.observed["age_seconds"] < 7400


def test_schema_compares_names_types_and_order(store: LakehouseStore) -> None:
    data = pa.table({"id": pa.array([1], pa.int64()), "name": ["a"], "_batch_id": ["b"]})
    r = check(store, [{"schema": {"columns": {"id": "BIGINT", "name": "TEXT"}, "exact": True, "ordered": True}},
                      {"schema": {"columns": {"name": None, "id": "INT"}, "ordered": True, "name": "wrong"}}],
              data).results
    assert r[0].status == "pass"  # FlowForge's own _batch_id does not count against 'exact'
    assert r[1].status == "fail" and "id is BIGINT, expected INT" in r[1].message and "order" in r[1].message


def test_reconcile_compares_aggregates_within_a_tolerance(store: LakehouseStore) -> None:
    store.overwrite("silver", "items", pa.table({"line_total": pa.array(["10.00", "5.50"]).cast(pa.decimal128(9, 2))}),
                    {})
    data = pa.table({"id": [1], "total": pa.array(["15.49"]).cast(pa.decimal128(9, 2))})
    spec = {"expression": "sum(total)", "against": "items", "against_expression": "sum(line_total)"}
    assert one(check(store, [{"reconcile": {**spec, "tolerance": 0.01}}], data)).status == "pass"
    off = one(check(store, [{"reconcile": spec}], data))
    assert off.status == "fail" and off.observed == {"this": "15.49", "other": "15.50", "difference": "0.01"}


def test_aggregate_bounds_a_value_or_records_it(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4], "amount": [10.0, 20.0, 30.0, None],
                     "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 3, 1), None, None])})
    r = check(store, [{"aggregate": {"sql": "avg(amount)", "min": 15, "max": 20}},
                      {"aggregate": {"sql": "avg(amount)", "min": 20, "strict_min": True, "name": "strict"}},
                      {"aggregate": {"sql": "max(day)", "min": "2024-02-01"}},
                      {"aggregate": {"sql": "count(DISTINCT amount)", "name": "distinct amounts"}},
                      {"aggregate": {"sql": "sum(amount)", "where": "id > 10", "min": 0, "name": "nothing"}}],
              data).results
    assert [(x.status, x.observed) for x in r] == [("pass", 20.0), ("fail", 20.0), ("pass", "2024-03-01"),
                                                   ("pass", 3), ("fail", None)]
    assert "no rows to aggregate" in r[4].message


def test_mostly_lets_a_share_of_rows_fail(store: LakehouseStore) -> None:
    data = pa.table({"id": list(range(1, 11)), "v": [1] * 9 + [None]})
    assert one(check(store, [{"not_null": {"column": "v", "mostly": 0.9}}], data)).status == "pass"
    assert one(check(store, [{"not_null": {"column": "v", "mostly": 0.95}}], data)).status == "fail"
    # a drop test removes the failing rows within the threshold, and stops the job beyond it
    within = check(store, [{"not_null": {"column": "v", "mostly": 0.9, "severity": "drop"}}], data)
    assert one(within).status == "warn" and within.data.num_rows == 9 and within.dropped == 1
    beyond = check(store, [{"not_null": {"column": "v", "mostly": 0.95, "severity": "drop"}}], data)
    assert one(beyond).status == "fail" and beyond.stops


def test_drop_and_quarantine_split_the_rows_exactly(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2, 3, 4, 5], "amount": [5, -1, -2, 7, 8], "email": ["a@b", "a@b", "bad", "bad", "c@d"]})
    v = check(store, [{"expression": {"sql": "amount >= 0", "severity": "drop"}},
                      {"regex": {"column": "email", "pattern": "@", "severity": "quarantine"}}], data)
    assert v.data.column("id").to_pylist() == [1, 5]
    assert v.quarantine is not None
    # a row failing both stays in quarantine with both names: kept for inspection, not lost
    assert v.quarantine.select(["id", "_quarantine_failed_tests"]).to_pylist() == [
        {"id": 3, "_quarantine_failed_tests": ["expression(amount >= 0)", "regex(email ~ @)"]},
        {"id": 4, "_quarantine_failed_tests": ["regex(email ~ @)"]}]
    assert (v.rows_in, v.data.num_rows, v.dropped, v.quarantined) == (5, 2, 1, 2)


def test_a_broken_test_is_named_and_the_others_still_count(store: LakehouseStore) -> None:
    data = pa.table({"id": [1, 2], "v": [None, 1]})
    r = check(store, [{"not_null": "v"}, {"not_null": "nope"}, {"expression": "v + 'x' > 0"}], data).results
    assert (r[0].status, r[0].failing_rows) == ("fail", 1)
    assert r[1].status == "error" and "column nope is not in silver table t (columns: id, v)" in r[1].message
    assert r[2].status == "error" and "Could not convert" in r[2].message


def test_samples_hold_at_most_twenty_failing_rows(store: LakehouseStore) -> None:
    data = pa.table({"id": list(range(100)), "v": [None if i % 2 else i for i in range(100)]})
    r = one(check(store, [{"not_null": "v"}], data))
    assert r.failing_rows == 50
    assert failing_ids(r) == list(range(1, 40, 2))


def test_many_row_tests_take_one_query(store: LakehouseStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from flowforge.engine.duckdb_engine import DuckDBEngine

    calls: list[str] = []
    original = DuckDBEngine.query
    monkeypatch.setattr(DuckDBEngine, "query", lambda self, sql, context: calls.append(sql) or original(
        self, sql, context))
    data = pa.table({"id": [1, 2, 3], "a": [1, 2, 3], "s": ["x", "y", "z"]})
    tests = [{"not_null": "a"}, {"unique": "id"}, {"range": {"column": "a", "min": 0}},
             {"accepted_values": {"column": "s", "values": ["x", "y", "z"]}}, {"expression": "a < 10"},
             {"regex": {"column": "s", "pattern": "^[a-z]$"}}, {"unique_combination": ["a", "s"]}]
    v = check(store, tests, data)
    assert [r.status for r in v.results] == ["pass"] * 7
    assert len(calls) == 1  # one pass over the rows, however many row tests

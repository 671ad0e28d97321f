"""Great Expectations' language-neutral expectation cases, run through FlowForge's test engine.

Each expectation type FlowForge covers is mapped to the FlowForge test a user would write for it
(``MAPPED``); each case's data is loaded with the column types of GE's PostgreSQL schema (the SQL
dialect DuckDB follows), evaluated by ``flowforge.quality``, and compared with the case's
``success``, ``unexpected_list``, ``unexpected_index_list``, ``observed_value`` and the counts of
``result``. A case for another backend (``only_for`` without postgresql/sqlalchemy) or
suppressed for ours (``suppress_test_for``) does not apply.

``python tests/conformance/great_expectations.py`` prints the table in the README.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

BACKENDS = {"postgresql", "sqlalchemy"}

Spec = dict[str, Any]


class NotMapped(Exception):
    """A case argument with no FlowForge equivalent."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _mostly(kw: dict[str, Any], spec: Spec) -> Spec:
    if kw.get("mostly") is not None:
        spec["mostly"] = kw["mostly"]
    return spec


def _not_missing(cols: list[str], how: str) -> str | None:
    """GE's ``ignore_row_if`` as a row filter."""
    if how in ("both_values_are_missing", "all_values_are_missing"):
        return "NOT (" + " AND ".join(f"{_q(c)} IS NULL" for c in cols) + ")"
    if how in ("either_value_is_missing", "any_value_is_missing"):
        return " AND ".join(f"{_q(c)} IS NOT NULL" for c in cols)
    if how == "never":
        return None
    raise NotMapped(f"ignore_row_if={how}")


def _param(value: Any) -> Any:
    """GE evaluation parameters (``{"$PARAMETER": "now() - timedelta(weeks=52*100)"}``) as values."""
    if not isinstance(value, dict) or "$PARAMETER" not in value:
        return value
    text = value["$PARAMETER"]
    now = dt.datetime.now()
    m = re.fullmatch(r"now\(\)(?:\s*-\s*timedelta\(weeks=(\d+)(?:\*(\d+))?\))?", text)
    if m:
        weeks = int(m.group(1)) * int(m.group(2) or 1) if m.group(1) else 0
        return (now - dt.timedelta(weeks=weeks)).isoformat(sep=" ")
    m = re.fullmatch(r"datetime\((\d+), (\d+), (\d+)\)", text)
    if m:
        return dt.datetime(*map(int, m.groups())).isoformat(sep=" ")
    raise NotMapped(f"$PARAMETER {text}")


# -- expectation → FlowForge test ---------------------------------------------------------------
# each returns the test (YAML form) and the columns whose values make up an unexpected_list entry

def not_null(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    return _mostly(kw, {"test": "not_null", "column": kw["column"]}), [kw["column"]]


def be_null(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    return _mostly(kw, {"test": "expression", "sql": f"{_q(kw['column'])} IS NULL"}), [kw["column"]]


def unique(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    return _mostly(kw, {"test": "unique", "column": kw["column"]}), [kw["column"]]


def in_set(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    return _mostly(kw, {"test": "accepted_values", "column": kw["column"], "values": kw["value_set"]}), [kw["column"]]


def not_in_set(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    spec = {"test": "not_accepted_values", "column": kw["column"], "values": kw["value_set"]}
    return _mostly(kw, spec), [kw["column"]]


def between(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    spec: Spec = {"test": "range", "column": kw.get("column"), "min": _param(kw.get("min_value")),
                  "max": _param(kw.get("max_value")), "strict_min": kw.get("strict_min", False),
                  "strict_max": kw.get("strict_max", False)}
    return _mostly(kw, {k: v for k, v in spec.items() if v is not None}), [kw["column"]]


def regex(kw: dict[str, Any], negate: bool = False) -> tuple[Spec, list[str]]:
    spec = {"test": "regex", "column": kw["column"], "pattern": kw["regex"], "negate": negate}
    return _mostly(kw, spec), [kw["column"]]


def like(kw: dict[str, Any], negate: bool = False) -> tuple[Spec, list[str]]:
    c = _q(kw["column"])
    pattern = "'" + str(kw["like_pattern"]).replace("'", "''") + "'"
    sql = f"{c} {'NOT ' if negate else ''}LIKE {pattern}"
    return _mostly(kw, {"test": "expression", "sql": sql, "where": f"{c} IS NOT NULL"}), [kw["column"]]


def lengths(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    c = _q(kw["column"])
    low, high = kw.get("min_value", kw.get("value")), kw.get("max_value", kw.get("value"))
    if low is None and high is None:
        raise ValueError("give min_value or max_value")
    checks = []
    if low is not None:
        checks.append(f"length({c}) >= {int(low)}")
    if high is not None:
        checks.append(f"length({c}) <= {int(high)}")
    return _mostly(kw, {"test": "expression", "sql": " AND ".join(checks), "where": f"{c} IS NOT NULL"}), \
        [kw["column"]]


def compound_unique(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    cols = list(kw["column_list"])
    spec: Spec = {"test": "unique_combination", "columns": cols}
    how = kw.get("ignore_row_if", "all_values_are_missing")
    if how != "all_values_are_missing":
        spec["where"] = _not_missing(cols, how)
    return _mostly(kw, spec), cols


def unique_within_record(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    cols = list(kw["column_list"])
    pairs = [f"{_q(a)} IS DISTINCT FROM {_q(b)}" for i, a in enumerate(cols) for b in cols[i + 1:]]
    where = _not_missing(cols, kw.get("ignore_row_if", "all_values_are_missing"))
    return _mostly(kw, {"test": "expression", "sql": " AND ".join(pairs), **({"where": where} if where else {})}), \
        cols


def pair_equal(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    a, b = kw["column_A"], kw["column_B"]
    where = _not_missing([a, b], kw.get("ignore_row_if", "both_values_are_missing"))
    spec = {"test": "expression", "sql": f"{_q(a)} IS NOT DISTINCT FROM {_q(b)}", **({"where": where} if where else {})}
    return _mostly(kw, spec), [a, b]


def pair_greater(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    a, b = kw["column_A"], kw["column_B"]
    where = _not_missing([a, b], kw.get("ignore_row_if", "both_values_are_missing"))
    op = ">=" if kw.get("or_equal") else ">"
    spec = {"test": "expression", "sql": f"coalesce({_q(a)} {op} {_q(b)}, false)",
            **({"where": where} if where else {})}
    return _mostly(kw, spec), [a, b]


def pair_in_set(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    a, b = kw["column_A"], kw["column_B"]
    where = _not_missing([a, b], kw.get("ignore_row_if", "both_values_are_missing"))
    pairs = " OR ".join(f"({_q(a)} = {_lit(x)} AND {_q(b)} = {_lit(y)})" for x, y in kw["value_pairs_set"])
    spec = {"test": "expression", "sql": f"coalesce({pairs or 'false'}, false)", **({"where": where} if where else {})}
    return _mostly(kw, spec), [a, b]


def multicolumn_sum(kw: dict[str, Any]) -> tuple[Spec, list[str]]:
    cols = list(kw["column_list"])
    where = _not_missing(cols, kw.get("ignore_row_if", "all_values_are_missing"))
    total = float(kw["sum_total"])
    sql = f"abs(({' + '.join(_q(c) for c in cols)}) - {total!r}) < 1e-9"
    return _mostly(kw, {"test": "expression", "sql": sql, **({"where": where} if where else {})}), cols


def _lit(value: Any) -> str:
    from flowforge.quality.sqlsafe import literal

    return literal(value)


def _aggregate(sql: str) -> Callable[[dict[str, Any]], Spec]:
    def spec(kw: dict[str, Any]) -> Spec:
        return {"test": "aggregate", "sql": sql.format(c=_q(kw["column"])), "min": _param(kw.get("min_value")),
                "max": _param(kw.get("max_value")), "strict_min": kw.get("strict_min", False),
                "strict_max": kw.get("strict_max", False)}
    return spec


def row_count_between(kw: dict[str, Any]) -> Spec:
    low, high = kw.get("min_value"), kw.get("max_value")
    return {"test": "row_count", "min": 0 if low is None and high is None else low, "max": high}


def row_count_equal(kw: dict[str, Any]) -> Spec:
    return {"test": "row_count", "min": kw.get("value"), "max": kw.get("value")}


def columns_match_set(kw: dict[str, Any]) -> Spec:
    return {"test": "schema", "columns": list(kw.get("column_set") or []), "exact": bool(kw.get("exact_match", True))}


def columns_match_ordered_list(kw: dict[str, Any]) -> Spec:
    cols = kw.get("column_list")
    if cols is None:
        return {"test": "schema", "columns": []}
    return {"test": "schema", "columns": list(cols), "exact": True, "ordered": True}


ROW_MAPPED: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Spec, list[str]]]]] = {
    "expect_column_values_to_not_be_null": ("not_null", not_null),
    "expect_column_values_to_be_null": ("expression", be_null),
    "expect_column_values_to_be_unique": ("unique", unique),
    "expect_column_values_to_be_in_set": ("accepted_values", in_set),
    "expect_column_values_to_not_be_in_set": ("not_accepted_values", not_in_set),
    "expect_column_values_to_be_between": ("range", between),
    "expect_column_values_to_match_regex": ("regex", regex),
    "expect_column_values_to_not_match_regex": ("regex (negate)", lambda kw: regex(kw, negate=True)),
    "expect_column_values_to_match_like_pattern": ("expression (LIKE)", like),
    "expect_column_values_to_not_match_like_pattern": ("expression (NOT LIKE)", lambda kw: like(kw, negate=True)),
    "expect_column_value_lengths_to_be_between": ("expression (length)", lengths),
    "expect_column_value_lengths_to_equal": ("expression (length)", lengths),
    "expect_compound_columns_to_be_unique": ("unique_combination", compound_unique),
    "expect_select_column_values_to_be_unique_within_record": ("expression", unique_within_record),
    "expect_column_pair_values_to_be_equal": ("expression", pair_equal),
    "expect_column_pair_values_a_to_be_greater_than_b": ("expression", pair_greater),
    "expect_column_pair_values_to_be_in_set": ("expression", pair_in_set),
    "expect_multicolumn_sum_to_equal": ("expression", multicolumn_sum),
}
TABLE_MAPPED: dict[str, tuple[str, Callable[[dict[str, Any]], Spec]]] = {
    "expect_column_min_to_be_between": ("aggregate: min()", _aggregate("min({c})")),
    "expect_column_max_to_be_between": ("aggregate: max()", _aggregate("max({c})")),
    "expect_column_mean_to_be_between": ("aggregate: avg()", _aggregate("avg({c})")),
    "expect_column_median_to_be_between": ("aggregate: median()", _aggregate("median({c})")),
    "expect_column_sum_to_be_between": ("aggregate: sum()", _aggregate("sum({c})")),
    "expect_column_stdev_to_be_between": ("aggregate: stddev_samp()", _aggregate("stddev_samp({c})")),
    "expect_column_unique_value_count_to_be_between": ("aggregate: count(DISTINCT)",
                                                       _aggregate("count(DISTINCT {c})")),
    "expect_column_proportion_of_unique_values_to_be_between": ("aggregate: count(DISTINCT) / count()",
                                                                _aggregate("count(DISTINCT {c}) / count({c})")),
    "expect_table_row_count_to_be_between": ("row_count", row_count_between),
    "expect_table_row_count_to_equal": ("row_count", row_count_equal),
    "expect_table_columns_to_match_set": ("schema", columns_match_set),
    "expect_table_columns_to_match_ordered_list": ("schema (ordered)", columns_match_ordered_list),
}
MAPPED = {**{k: v[0] for k, v in ROW_MAPPED.items()}, **{k: v[0] for k, v in TABLE_MAPPED.items()}}

# types left out, and why
LEFT_OUT = {
    "expect_column_to_exist": "its column_index (a column's absolute position) has no FlowForge equivalent; "
                              "schema checks presence and relative order",
    "expect_table_column_count_to_equal": "FlowForge's schema test names the columns it expects; it does not "
                                          "count them",
    "expect_table_column_count_to_be_between": "as above: no column-count test",
    "expect_table_row_count_to_equal_other_table": "reconcile compares with another lakehouse table; the cases "
                                                   "need two tables in one dataset, which the harness does not load",
    "expect_column_values_to_be_of_type": "backend type names (pandas, Spark, each SQL dialect) with no single "
                                          "meaning; FlowForge's schema test checks SQL types",
    "expect_column_values_to_be_in_type_list": "as above",
    "expect_column_values_to_be_dateutil_parseable": "Python's dateutil has no SQL equivalent",
    "expect_column_values_to_be_json_parseable": "no json test kind (an expression with json_valid() does it)",
    "expect_column_values_to_match_json_schema": "no JSON Schema validation in SQL",
    "expect_column_values_to_match_strftime_format": "strftime formats are checked by Python, not SQL",
    "expect_column_values_to_be_increasing": "order-dependent: rows of a lakehouse batch have no order",
    "expect_column_values_to_be_decreasing": "order-dependent, as above",
    "expect_column_value_z_scores_to_be_less_than": "a statistical test; no z-score kind",
    "expect_column_values_to_match_regex_list": "one regex test per pattern covers 'all'; 'any' has no kind",
    "expect_column_values_to_not_match_regex_list": "as above",
    "expect_column_values_to_match_like_pattern_list": "as above, for LIKE patterns",
    "expect_column_values_to_not_match_like_pattern_list": "as above, for LIKE patterns",
    "expect_this_test_to_be_suppressed": "a fixture of GE's own runner",
    "unexpected_rows_expectation": "a query expectation: FlowForge tests are expressions, not queries",
}
for _t in ("distinct_values_to_be_in_set", "distinct_values_to_contain_set", "distinct_values_to_equal_set"):
    LEFT_OUT[f"expect_column_{_t}"] = "compares a column's set of distinct values with a set; the aggregate test " \
                                      "compares one value with bounds"
LEFT_OUT["expect_column_most_common_value_to_be_in_set"] = "the mode (with ties) in a set: no aggregate test form"
LEFT_OUT["expect_column_quantile_values_to_be_between"] = "several quantiles each with its own range in one test"
LEFT_OUT["expect_column_pair_cramers_phi_value_to_be_less_than"] = "a statistical test"
for _t in ("chisquare_test_p_value_to_be_greater_than", "kl_divergence_to_be_less_than",
           "parameterized_distribution_ks_test_p_value_to_be_greater_than",
           "bootstrapped_ks_test_p_value_to_be_greater_than"):
    LEFT_OUT[f"expect_column_{_t}"] = "a distribution test, out of scope for row and table checks"


# -- loading a dataset ----------------------------------------------------------------------------

_TIME = {"TIMESTAMP", "DATETIME", "TIMESTAMP_NTZ"}


def load(dataset: dict[str, Any]) -> pa.Table:
    """The dataset as an Arrow table with the column types of GE's PostgreSQL (else SQLite) schema."""
    schemas = dataset.get("schemas") or {}
    types = {k: v.upper() for k, v in (schemas.get("postgresql") or schemas.get("sqlite") or {}).items()}
    cols = {name: _column(values, types.get(name)) for name, values in dataset["data"].items()}
    return pa.table(cols) if cols else pa.table({})


def _column(values: list[Any], kind: str | None) -> pa.Array:
    from dateutil import parser

    present = [v for v in values if v is not None]
    if kind in ("INTEGER", "BIGINT", "INT"):
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if kind in ("TEXT", "VARCHAR"):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if kind in ("DOUBLE_PRECISION", "FLOAT", "NUMERIC"):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kind in _TIME:
        return pa.array([None if v is None else parser.parse(str(v)) for v in values], pa.timestamp("us"))
    if kind == "DATE":
        return pa.array([None if v is None else parser.parse(str(v)).date() for v in values], pa.date32())
    if kind == "BOOLEAN":
        return pa.array(values, pa.bool_())
    if not values:
        return pa.array([], pa.float64())  # an empty column: numeric, so aggregates over it are NULL
    if not present:
        return pa.array(values, pa.string())
    if all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


# -- running a case -------------------------------------------------------------------------------

@dataclass
class Outcome:
    success: bool | None = None
    error: str | None = None
    ids: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    rows: int = 0
    checked: int = 0
    observed: Any = None


def run(expectation: str, dataset: dict[str, Any], kwargs: dict[str, Any], store: Any) -> Outcome:
    from pydantic import TypeAdapter, ValidationError

    from flowforge.quality.check import Checker
    from flowforge.quality.evaluate import decide
    from flowforge.quality.spec import Tests

    data = load(dataset)
    kw = {k: v for k, v in kwargs.items() if k not in ("result_format", "catch_exceptions", "meta")}
    try:
        if expectation in ROW_MAPPED:
            spec, value_cols = ROW_MAPPED[expectation][1](kw)
        else:
            spec, value_cols = TABLE_MAPPED[expectation][1](kw), []
        spec = {k: v for k, v in spec.items() if v is not None}
        (test,) = TypeAdapter(Tests).validate_python([spec])
    except (KeyError, TypeError, ValueError, ValidationError, NotMapped) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    with Checker(store, "silver", "ge") as checker:
        if test.row_level:
            (o,) = checker.row_outcomes([test], data)
            if o.error:
                return Outcome(error=o.error)
            ids = sorted(o.all_ids.to_pylist()) if o.all_ids is not None else []
            values = [_entry(data, i, value_cols) for i in ids]
            return Outcome(decide(test, o.failing, o.checked) != "fail", None, ids, values, o.rows, o.checked)
        (result,) = checker.batch([test], data, mode="overwrite").results
    if result.status == "error":
        return Outcome(error=result.message)
    if test.test == "aggregate" and result.observed is None and "no rows" in result.message:
        return Outcome(False, observed=None, rows=data.num_rows)
    observed = result.observed
    if test.test == "aggregate" and isinstance(observed, str) and re.fullmatch(r"-?\d+(\.\d+)?", observed):
        observed = float(observed)
    if test.test == "row_count":
        observed = observed["rows"]
    elif test.test == "schema":
        observed = [c["name"] for c in observed["columns"]]
    return Outcome(result.status == "pass", observed=observed, rows=data.num_rows)


def _entry(data: pa.Table, i: int, cols: list[str]) -> Any:
    row = {c: data.column(c)[i].as_py() for c in cols}
    if len(cols) == 1:
        return row[cols[0]]
    return row


# -- comparing with the expected result -------------------------------------------------------------

def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else round(float(value), 9)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?", value):
            return value.replace("T", " ")
        return value
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k != "pk_index"}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


def _pairs(entries: list[Any], cols: list[str]) -> list[Any]:
    """GE lists pair expectations' values as [a, b]; FlowForge's entries are {a: .., b: ..}."""
    return [[e[c] for c in cols] if isinstance(e, dict) else e for e in entries]


def compare(expectation: str, case: dict[str, Any], got: Outcome) -> list[str]:
    """What differs between the case's expected output and FlowForge's (empty: the case passes)."""
    out = case["out"]
    asserts_nothing = case["in"].get("catch_exceptions") and not set(out) - {"traceback_substring"}
    if "traceback_substring" in out or asserts_nothing:
        if "traceback_substring" in out:
            return [] if got.error else ["expected an error, got a result"]
        return []  # the case asserts nothing beyond running; it ran (with a result or an error)
    if got.error:
        return [f"error: {got.error}"]
    problems = []
    if "success" in out and out["success"] != got.success:
        problems.append(f"success {got.success}, expected {out['success']}")
    kw = case["in"]
    pair_cols = [kw["column_A"], kw["column_B"]] if "column_A" in kw else None
    values = _pairs(got.values, pair_cols) if pair_cols else got.values
    if "unexpected_list" in out and _norm(out["unexpected_list"]) != _norm(values):
        problems.append(f"unexpected_list {values}, expected {out['unexpected_list']}")
    if "unexpected_index_list" in out:
        want = [e["pk_index"] if isinstance(e, dict) else e for e in out["unexpected_index_list"]]
        if want != got.ids:
            problems.append(f"unexpected_index_list {got.ids}, expected {want}")
    if "observed_value" in out and _norm(out["observed_value"]) != _norm(got.observed):
        problems.append(f"observed_value {got.observed}, expected {out['observed_value']}")
    problems += _result(out.get("result") or {}, got, values, table=expectation in TABLE_MAPPED)
    return problems


def _result(result: dict[str, Any], got: Outcome, values: list[Any], table: bool) -> list[str]:
    failing = len(got.ids)
    computed = {
        "element_count": got.rows,
        "missing_count": got.rows - got.checked,
        "missing_percent": 100 * (got.rows - got.checked) / got.rows if got.rows else None,
        "unexpected_count": failing,
        "unexpected_percent": 100 * failing / got.checked if got.checked else None,
        "unexpected_percent_total": 100 * failing / got.rows if got.rows else None,
        "unexpected_percent_nonmissing": 100 * failing / got.checked if got.checked else None,
        "partial_unexpected_list": values[:20],
        "unexpected_list": values,
        "observed_value": got.observed,
    }
    problems = []
    for key, want in result.items():
        if key == "details" or (table and key in TABLE_UNCOMPARED):
            continue  # see TABLE_UNCOMPARED
        if key not in computed:
            problems.append(f"result.{key} is not compared by this harness")
        elif _norm(want) != _norm(computed[key]):
            problems.append(f"result.{key} {computed[key]}, expected {want}")
    return problems


# GE's result keys that FlowForge's table tests do not produce (a row count and an aggregate
# report their observed value, not counts of missing values); success and observed_value are compared
TABLE_UNCOMPARED = {"element_count", "missing_count", "missing_percent"}

# cases of mapped types that no engine but the one GE recorded them on could pass, and why
NOT_PORTABLE = {
    ("expect_column_stdev_to_be_between", "positive_test__exact_min_and_max_sqlalchemy"):
        "bounds equal to one engine's floating-point result (…515; DuckDB, NumPy and GE's own pandas "
        "case give the correctly rounded …517)",
}


# -- the cases --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    expectation: str
    file: str
    title: str
    dataset: dict[str, Any]
    case: dict[str, Any]
    applies: bool


def cases(root: Path) -> Iterator[Case]:
    for path in sorted((root / "great_expectations" / "test_definitions").glob("*/*.json")):
        doc = json.loads(path.read_text())
        for ds in doc.get("datasets") or []:
            for t in ds.get("tests") or []:
                only = t.get("only_for") or ds.get("only_for")
                suppressed = set(t.get("suppress_test_for") or []) | set(ds.get("suppress_test_for") or [])
                applies = (not only or bool(set(only) & BACKENDS)) and not suppressed & BACKENDS \
                    and (doc["expectation_type"], t["title"]) not in NOT_PORTABLE
                yield Case(doc["expectation_type"], path.name, t["title"], ds, t, applies)


def report(root: Path) -> dict[str, dict[str, int]]:
    from flowforge.storage import LakehouseStore

    table: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = LakehouseStore(tmp)
        for c in cases(root):
            row = table.setdefault(c.expectation, {"cases": 0, "applicable": 0, "passed": 0})
            row["cases"] += 1
            if c.expectation in MAPPED and c.applies:
                row["applicable"] += 1
                row["passed"] += not compare(c.expectation, c.case, run(c.expectation, c.dataset, c.case["in"], store))
    return table


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    root = Path(os.environ.get("FLOWFORGE_CONFORMANCE", Path(__file__).resolve().parents[3] / "shared" / "conformance"))
    rows = report(root)
    mapped = {k: v for k, v in rows.items() if k in MAPPED}
    print("| expectation | FlowForge test | cases | for SQL | pass |\n|---|---|---|---|---|")
    for name, r in sorted(mapped.items()):
        print(f"| `{name}` | `{MAPPED[name]}` | {r['cases']} | {r['applicable']} | {r['passed']} |")
    total = {k: sum(r[k] for r in mapped.values()) for k in ("cases", "applicable", "passed")}
    print(f"| **{len(mapped)} types** | | **{total['cases']}** | **{total['applicable']}** | **{total['passed']}** |")
    print("\nnot portable: " + "; ".join(f"{t} {c}: {why}" for (t, c), why in NOT_PORTABLE.items()))
    print(f"\nall cases: {sum(r['cases'] for r in rows.values())} in {len(rows)} types; left out:")
    for name, r in sorted(rows.items()):
        if name not in MAPPED:
            print(f"- `{name}` ({r['cases']}): {LEFT_OUT.get(name, '?')}")

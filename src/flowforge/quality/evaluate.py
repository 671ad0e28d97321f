"""Evaluating tests: every row test in ONE pass over the rows, then each table test.

The row pass is a single DuckDB query: each test contributes two flags per row (fails,
counted), and one aggregate over the flags returns, per test, the failing count, the counted
rows, the first 20 failing row positions and, where rows must be dropped or quarantined, all
of them. A test's helper sets (duplicate values, the keys of a referenced table) are common
table expressions of that query, so uniqueness and relationships cost one hash join each,
never a scan per test. Only a failing test's sample costs more, and only 20 rows of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.errors import FlowForgeError, UserCodeError
from flowforge.quality.base import ROW_SEVERITIES, RowTest, TableTest, TestSpec
from flowforge.quality.scope import OUTER, ROW, Scope

if TYPE_CHECKING:
    import pyarrow as pa

SAMPLE_ROWS = 20


@dataclass(frozen=True)
class TestResult:
    """One test's outcome as it is recorded, printed and shown.

    ``status``: ``pass``; ``warn`` (severity warn, or rows dropped/quarantined); ``fail`` (the job
    stops before its commit); ``error`` (the test could not run: a missing column, bad SQL).
    """

    __test__ = False  # not a pytest test class

    table: str
    test: str
    kind: str
    columns: tuple[str, ...]
    severity: str
    status: str
    failing_rows: int = 0
    rows_checked: int | None = None
    observed: Any = None
    message: str = ""
    sample: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "test": self.test, "kind": self.kind, "columns": list(self.columns),
                "severity": self.severity, "status": self.status, "failing_rows": self.failing_rows,
                "rows_checked": self.rows_checked, "observed": self.observed, "message": self.message,
                "sample": list(self.sample)}


@dataclass
class RowOutcome:
    test: RowTest
    failing: int = 0
    checked: int = 0
    rows: int = 0
    first: list[int] = field(default_factory=list)  # positions of the first failing rows
    all_ids: pa.Array | None = None  # every failing position, when asked for
    error: str | None = None


def decide(test: TestSpec, failing: int, checked: int | None) -> str:
    """pass / warn / fail for a row test with ``failing`` of ``checked`` rows failing."""
    if failing == 0:
        return "pass"
    mostly = getattr(test, "mostly", None)
    exceeded = mostly is None or not (not checked or (checked - failing) / checked >= mostly)
    if test.severity in ROW_SEVERITIES:
        return "fail" if mostly is not None and exceeded else "warn"
    if not exceeded:
        return "pass"
    return "warn" if test.severity == "warn" else "fail"


def row_pass(scope: Scope, tests: list[RowTest], *, batch: pa.Table | None = None) -> list[RowOutcome]:
    """Evaluate ``tests`` over ``scope.data``, every predicate in one pass over the rows.

    With ``batch`` (the Arrow table registered as ``scope.data``, its rows carrying their position
    ``__ff_row``), the pass returns only the rows that fail some test, with one flag per test: counts,
    samples and the positions to drop or quarantine come from those, so the work beyond evaluating
    the predicates grows with the failures, not with the table. Counted rows come from the batch's
    null counts where they can. Without ``batch`` (a committed table), one aggregate counts per test.
    """
    if not tests:
        return []
    outcomes = [RowOutcome(t) for t in tests]
    parts: list[tuple[int, str, str]] = []
    for i, o in enumerate(outcomes):
        missing = [c for c in o.test.column_names() if c not in scope.types]
        if missing:
            o.error = (f"column {', '.join(missing)} is not in {scope.label} "
                       f"(columns: {', '.join(c for c in scope.names if not c.startswith('__ff'))})")
            continue
        try:
            where = scope.where(o.test)
            fails = o.test.failing(scope)
            applies = o.test.applies(scope)
        except ValueError as exc:
            o.error = str(exc)
            continue
        filtered = o.test.where is not None
        # a NULL flag counts as not failing (a FILTER, a WHERE and Arrow's filter all drop it): no coalesce
        fail = f"({where}) AND ({fails})" if filtered else f"({fails})"
        counted = " AND ".join([f"coalesce({where}, false)"] * filtered
                               + [f"coalesce({applies}, false)"] * bool(applies))
        parts.append((i, fail, counted or "TRUE"))
    if not parts:
        return outcomes
    try:
        if batch is not None:
            _failing_rows(scope, outcomes, parts, batch)
        else:
            _aggregate(scope, outcomes, parts)
    except UserCodeError as exc:
        if len(parts) == 1:
            outcomes[parts[0][0]].error = exc.message.split(": tests: ", 1)[-1]
            return outcomes
        return _one_by_one(scope, tests, batch)
    return outcomes


def _failing_rows(scope: Scope, outcomes: list[RowOutcome], parts: list[tuple[int, str, str]],
                  batch: pa.Table) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    flags = ", ".join(f"{f} AS __f{i}" for i, f, _ in parts)
    any_fail = " OR ".join(f"__f{i}" for i, _, _ in parts)
    failing = scope.engine.query(scope.with_ctes(
        f"SELECT * FROM (SELECT {ROW}, {flags} FROM {scope.data} AS {OUTER}) WHERE {any_fail}"),
        f"{scope.label}: tests")
    sql_counts = [(i, a) for i, _, a in parts if outcomes[i].test.where is not None
                  or outcomes[i].test.counted() is None]
    counted: dict[int, int] = {}
    if sql_counts:
        row = scope.engine.query(scope.with_ctes("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE {a}) AS __c{i}" for i, a in sql_counts) + f" FROM {scope.data} AS {OUTER}"),
            f"{scope.label}: tests").to_pylist()[0]
        counted = {i: int(row[f"__c{i}"]) for i, _ in sql_counts}
    positions = failing.column(ROW)
    for i, _, _ in parts:
        o = outcomes[i]
        o.rows = batch.num_rows
        mine = positions.filter(failing.column(f"__f{i}"))
        mine = mine.take(pc.sort_indices(mine)).combine_chunks() if len(mine) else pa.nulls(0, pa.int64())
        o.failing = len(mine)
        o.first = mine.slice(0, SAMPLE_ROWS).to_pylist()
        o.all_ids = mine if o.failing else None
        o.checked = counted[i] if i in counted else _present_rows(batch, o.test.counted() or (), o.test.count_if_any)


def _present_rows(batch: pa.Table, columns: tuple[str, ...], any_of: bool) -> int:
    """Rows with a value in all of ``columns`` (or in any of them), from the batch itself."""
    import pyarrow.compute as pc

    if not columns:
        return int(batch.num_rows)
    if len(columns) == 1:
        return int(batch.num_rows - batch.column(columns[0]).null_count)
    valid = pc.is_valid(batch.column(columns[0]))
    for c in columns[1:]:
        valid = (pc.or_ if any_of else pc.and_)(valid, pc.is_valid(batch.column(c)))
    return int(pc.sum(valid).as_py() or 0)


def _aggregate(scope: Scope, outcomes: list[RowOutcome], parts: list[tuple[int, str, str]]) -> None:
    flags = ", ".join(f"{f} AS __f{i}, {a} AS __a{i}" for i, f, a in parts)
    aggs = ["count(*) AS __n"] + [f"count(*) FILTER (WHERE __f{i}) AS __fails{i}, "
                                  f"count(*) FILTER (WHERE __a{i}) AS __checked{i}" for i, _, _ in parts]
    sql = scope.with_ctes(f"SELECT {', '.join(aggs)} FROM (SELECT {flags} FROM {scope.data} AS {OUTER})")
    row = scope.engine.query(sql, f"{scope.label}: tests").to_pylist()[0]
    for i, _, _ in parts:
        o = outcomes[i]
        o.rows, o.failing, o.checked = int(row["__n"]), int(row[f"__fails{i}"]), int(row[f"__checked{i}"])


def _one_by_one(scope: Scope, tests: list[RowTest], batch: pa.Table | None) -> list[RowOutcome]:
    """The combined query failed: evaluate each test alone, so the broken one is named and the others count."""
    out = []
    for test in tests:
        scope.ctes.clear()
        out.append(row_pass(scope, [test], batch=batch)[0])
    scope.ctes.clear()
    return out


def table_test(scope: Scope, test: TableTest) -> TestResult:
    missing = [c for c in test.column_names() if c not in scope.types]
    if missing:
        return _error(scope, test, f"column {', '.join(missing)} is not in {scope.label}")
    try:
        seen = test.evaluate(scope)
    except (FlowForgeError, ValueError) as exc:
        return _error(scope, test, exc.message if isinstance(exc, FlowForgeError) else str(exc))
    status = "pass" if seen.success else ("warn" if test.severity == "warn" else "fail")
    return TestResult(scope.table_name, test.title(), test.test, test.column_names(), test.severity, status,
                      observed=seen.observed, message=seen.message)


def row_result(scope: Scope, o: RowOutcome, sample: list[dict[str, Any]]) -> TestResult:
    t = o.test
    if o.error is not None:
        return _error(scope, t, o.error)
    status = decide(t, o.failing, o.checked)
    if o.failing == 0:
        message = f"{o.checked:,} row(s) checked"
    else:
        message = f"{o.failing:,} of {o.checked:,} checked row(s) fail"
        if t.severity in ROW_SEVERITIES and status != "fail":
            message += " (dropped)" if t.severity == "drop" else " (quarantined)"
        if getattr(t, "mostly", None) is not None:
            message += f"; mostly {t.mostly:g} {'holds' if status != 'fail' or t.severity == 'warn' else 'broken'}"
    observed = {"unexpected_percent": round(100 * o.failing / o.checked, 6) if o.checked else 0.0}
    return TestResult(scope.table_name, t.title(), t.test, t.column_names(), t.severity, status, o.failing,
                      o.checked, observed, message, tuple(sample))


def _error(scope: Scope, test: TestSpec, message: str) -> TestResult:
    return TestResult(scope.table_name, test.title(), test.test, test.column_names(), test.severity, "error",
                      message=message)


def sample_by_query(scope: Scope, test: RowTest) -> list[dict[str, Any]]:
    """Up to 20 failing rows of a view without positions (``flowforge test`` over a committed table)."""
    scope.ctes.clear()
    sql = scope.with_ctes(f"SELECT * FROM {scope.data} AS {OUTER} WHERE coalesce({scope.where(test)}, false) "
                          f"AND coalesce({test.failing(scope)}, false) LIMIT {SAMPLE_ROWS}")
    scope.ctes.clear()
    return json_rows(scope.engine.query(sql, f"{scope.label}: sample of {test.title()}"))


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts, long text cut, FlowForge's row position left out."""
    from flowforge.core.catalog import json_safe

    out = []
    for row in table.to_pylist():
        clean = {}
        for k, v in row.items():
            if k == ROW:
                continue
            v = json_safe(v)
            clean[k] = v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v
        out.append(clean)
    return out

"""``aggregate``: an aggregate of the table lies between bounds (or is recorded as a metric)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from flowforge.quality.base import Observation, TableTest, register_test
from flowforge.quality.scope import Scope
from flowforge.quality.sqlsafe import aggregate_expression

Bound = int | float | str


@register_test("aggregate")
class Aggregate(TableTest):
    """``sql``, an aggregate over the table after the commit (``avg(amount)``, ``max(order_date)``,
    ``count(DISTINCT customer_id)``), is at least ``min`` and at most ``max`` (``strict_min`` /
    ``strict_max`` exclude the bound; dates and timestamps as text). With no bound the test only
    records the value, so the table's Quality tab charts it run after run. An empty table (a NULL
    aggregate) fails.

    ```yaml
    tests:
      - aggregate: {sql: avg(amount), min: 10, max: 500, severity: warn}
      - aggregate: {sql: "max(order_date)", min: "2024-01-01"}
      - aggregate: {sql: "count(DISTINCT country)", name: countries}
    ```
    """

    test: Literal["aggregate"]
    sql: str = Field(min_length=1)
    min: Bound | None = None
    max: Bound | None = None
    strict_min: bool = False
    strict_max: bool = False

    shorthand: ClassVar[str | None] = None

    @field_validator("sql")
    @classmethod
    def _aggregate(cls, value: str) -> str:
        aggregate_expression(value, "sql")
        return value

    def describe(self) -> str:
        low = "" if self.min is None else f"{self.min} {'<' if self.strict_min else '<='} "
        high = "" if self.max is None else f" {'<' if self.strict_max else '<='} {self.max}"
        return f"{low}{self.sql}{high}"

    def evaluate(self, scope: Scope) -> Observation:
        value = scope.agg(self.sql, "sql")
        where = f" WHERE {scope.where(self)}" if self.where else ""
        got = scope.row(f"SELECT CAST(v AS VARCHAR) AS text, typeof(v) AS type, v FROM "
                        f"(SELECT {value} AS v FROM {scope.table}{where})", self.title())
        if got.get("v") is None:
            return Observation(False, None, f"{self.sql} is NULL (no rows to aggregate)")
        observed = _json(got["v"])
        checks = []
        if self.min is not None:
            checks.append(f"v {'>' if self.strict_min else '>='} {scope.lit(self.min)}")
        if self.max is not None:
            checks.append(f"v {'<' if self.strict_max else '<='} {scope.lit(self.max)}")
        if not checks:
            return Observation(True, observed, f"{self.sql} = {observed} (recorded)")
        # compared on the value alone, not on the table again
        ok = bool(scope.scalar(f"SELECT {' AND '.join(checks)} FROM (SELECT CAST({scope.lit(got['text'])} AS "
                               f"{got['type']}) AS v)", self.title()))
        return Observation(ok, observed, f"{self.sql} = {observed}" + ("" if ok else f", outside {self.describe()}"))


def _json(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    import datetime as dt
    import decimal

    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, as the reconcile test keeps money
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)

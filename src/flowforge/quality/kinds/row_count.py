"""``row_count``: the table's row count is within bounds, or close to the previous one."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from flowforge.quality.base import Observation, TableTest, register_test
from flowforge.quality.scope import Scope


@register_test("row_count")
class RowCount(TableTest):
    """The table has at least ``min`` and at most ``max`` rows after the commit, and (with
    ``max_change_pct``) differs from its row count before the commit by at most that percentage:
    a gold table that suddenly halves stops the job.

    ```yaml
    tests:
      - row_count: {min: 1}
      - row_count: {max_change_pct: 20, severity: warn}
    ```
    """

    test: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)
    max_change_pct: float | None = Field(None, ge=0)

    shorthand: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _something(self) -> RowCount:
        if self.min is None and self.max is None and self.max_change_pct is None:
            raise ValueError("give 'min', 'max' or 'max_change_pct'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is above 'max'")
        return self

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        if self.max_change_pct is not None:
            parts.append(f"±{self.max_change_pct:g}%")
        return ", ".join(parts)

    def evaluate(self, scope: Scope) -> Observation:
        where = f" WHERE {scope.where(self)}" if self.where else ""
        rows = int(scope.scalar(f"SELECT count(*) FROM {scope.table}{where}", self.title()))
        problems = []
        if self.min is not None and rows < self.min:
            problems.append(f"{rows:,} rows, fewer than {self.min:,}")
        if self.max is not None and rows > self.max:
            problems.append(f"{rows:,} rows, more than {self.max:,}")
        observed: dict[str, object] = {"rows": rows}
        previous = scope.previous_rows
        if self.max_change_pct is not None and previous is not None:
            change = 0.0 if previous == rows else (abs(rows - previous) / previous * 100 if previous else 100.0)
            observed.update(previous=previous, change_pct=round(change, 4))
            if change > self.max_change_pct:
                problems.append(f"{rows:,} rows against {previous:,} before: a change of {change:.1f}%, "
                                f"more than {self.max_change_pct:g}%")
        message = "; ".join(problems) or f"{rows:,} rows"
        return Observation(not problems, observed, message)

"""``freshness``: the newest value of a timestamp column is recent enough."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from flowforge.quality.base import Observation, TableTest, duration_seconds, register_test
from flowforge.quality.scope import Scope


@register_test("freshness")
class Freshness(TableTest):
    """The newest ``column`` value (a date or timestamp) is no older than ``max_age`` ("30m",
    "6h", "1d", "2w") when the job runs. Timestamps without a time zone are taken as UTC.

    ```yaml
    tests:
      - freshness: {column: transaction_date, max_age: 2d, severity: warn}
    ```
    """

    test: Literal["freshness"]
    column: str = Field(min_length=1)
    max_age: str

    shorthand: ClassVar[str | None] = None

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    def describe(self) -> str:
        return f"{self.column} within {self.max_age}"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def evaluate(self, scope: Scope) -> Observation:
        c = scope.q(self.column)
        where = f" WHERE {scope.where(self)}" if self.where else ""
        got = scope.row(f"SELECT CAST(max({c}) AS VARCHAR) AS newest, "
                        f"epoch(current_timestamp) - epoch(max({c})) AS age FROM {scope.table}{where}", self.title())
        limit = duration_seconds(self.max_age)
        if got.get("newest") is None:
            return Observation(False, {"newest": None}, f"no value in {self.column}")
        age = float(got["age"])
        observed = {"newest": got["newest"], "age_seconds": round(age, 3)}
        return Observation(age <= limit, observed, f"newest {self.column} is {got['newest']} "
                                                   f"({_human(age)} old; at most {self.max_age})")


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"

"""``range``: the column's values lie between bounds."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope

Bound = int | float | str


@register_test("range")
class Range(RowTest):
    """Every non-null value of ``column`` is at least ``min`` and at most ``max`` (either may be
    left out; ``strict_min``/``strict_max`` exclude the bound). Bounds may be numbers, or dates
    and timestamps written as text ('2024-01-01').

    ```yaml
    tests:
      - range: {column: unit_price, min: 0, strict_min: true, severity: quarantine}
      - range: {column: order_date, min: '2024-01-01', max: '2024-12-31'}
    ```
    """

    test: Literal["range"]
    column: str = Field(min_length=1)
    min: Bound | None = None
    max: Bound | None = None
    strict_min: bool = False
    strict_max: bool = False

    shorthand: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _a_bound(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        numbers = isinstance(self.min, int | float) and isinstance(self.max, int | float)
        if numbers and self.min > self.max:  # type: ignore[operator]
            raise ValueError(f"'min' ({self.min}) is above 'max' ({self.max}): no value could pass")
        return self

    def describe(self) -> str:
        low = "" if self.min is None else f"{self.min} {'<' if self.strict_min else '<='} "
        high = "" if self.max is None else f" {'<' if self.strict_max else '<='} {self.max}"
        return f"{low}{self.column}{high}"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        c = scope.q(self.column)
        checks = []
        if self.min is not None:
            checks.append(f"{c} {'>' if self.strict_min else '>='} {_bound(scope, self.column, self.min)}")
        if self.max is not None:
            checks.append(f"{c} {'<' if self.strict_max else '<='} {_bound(scope, self.column, self.max)}")
        return f"NOT ({' AND '.join(checks)})"


def _bound(scope: Scope, column: str, value: Bound) -> str:
    kind = scope.types.get(column, "")
    if isinstance(value, str) and kind and not kind.upper().startswith(("VARCHAR", "TEXT")):
        return f"CAST({scope.lit(value)} AS {kind})"
    return scope.lit(value)

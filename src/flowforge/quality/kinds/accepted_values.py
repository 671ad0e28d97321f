"""``accepted_values``: the column only holds values from a list."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope

_TEXT = ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "UUID", "ENUM")


@register_test("accepted_values")
class AcceptedValues(RowTest):
    """Every non-null value of ``column`` is one of ``values`` (an empty list accepts nothing).

    Values keep their YAML type; against a text column they compare as text, against a typed
    column (number, date) a text value is converted to the column's type first.

    ```yaml
    tests:
      - accepted_values:
          column: status
          values: [placed, shipped, completed, return_pending, returned]
          severity: warn
    ```
    """

    test: Literal["accepted_values"]
    column: str = Field(min_length=1)
    values: tuple[str | bool | int | float, ...]

    shorthand: ClassVar[str | None] = None

    def describe(self) -> str:
        shown = ", ".join(str(v) for v in self.values[:5]) + (", ..." if len(self.values) > 5 else "")
        return f"{self.column} in [{shown}]"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        c = scope.q(self.column)
        if not self.values:
            return f"{c} IS NOT NULL"
        # coalesce: a value that does not convert to the column's type is NULL, and x IN (..., NULL) is never false
        values = ", ".join(value_literals(scope, self.column, self.values))
        return f"{c} IS NOT NULL AND NOT coalesce({c} IN ({values}), false)"


def value_literals(scope: Scope, column: str, values: tuple[object, ...]) -> list[str]:
    """Literals comparable with ``column``: text for a text column, the column's type otherwise."""
    kind = scope.types.get(column, "VARCHAR").upper()
    if kind.startswith(_TEXT):
        return [scope.lit(str(v).lower() if isinstance(v, bool) else str(v)) for v in values]
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(f"TRY_CAST({scope.lit(v)} AS {kind})")
        else:
            out.append(scope.lit(v))
    return out

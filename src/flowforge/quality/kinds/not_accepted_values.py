"""``not_accepted_values``: the column never holds a value from a list."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.kinds.accepted_values import value_literals
from flowforge.quality.scope import Scope


@register_test("not_accepted_values")
class NotAcceptedValues(RowTest):
    """No value of ``column`` is one of ``values`` (dbt_utils' ``not_accepted_values``; Great
    Expectations' ``expect_column_values_to_not_be_in_set``). Nulls pass.

    ```yaml
    tests:
      - not_accepted_values: {column: country, values: [XX, "N/A"], severity: quarantine}
    ```
    """

    test: Literal["not_accepted_values"]
    column: str = Field(min_length=1)
    values: tuple[str | bool | int | float | None, ...]

    shorthand: ClassVar[str | None] = None

    def describe(self) -> str:
        shown = ", ".join(str(v) for v in self.values[:5]) + (", ..." if len(self.values) > 5 else "")
        return f"{self.column} not in [{shown}]"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        values = [v for v in self.values if v is not None]  # a null is never equal to a value
        if not values:
            return "FALSE"
        c = scope.q(self.column)
        return f"coalesce({c} IN ({', '.join(value_literals(scope, self.column, tuple(values)))}), false)"

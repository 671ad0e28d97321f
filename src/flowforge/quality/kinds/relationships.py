"""``relationships``: every value of the column exists in a column of another lakehouse table."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope
from flowforge.spec.base import Identifier


@register_test("relationships")
class Relationships(RowTest):
    """Every non-null ``column`` value is a ``field`` value of the lakehouse table ``to`` (its
    newest committed version): no orphan foreign keys.

    ```yaml
    tests:
      - relationships: {column: customer_id, to: silver_customers, field: customer_id}
    ```
    """

    test: Literal["relationships"]
    column: str = Field(min_length=1)
    to: Identifier
    field: str = Field(min_length=1)

    shorthand: ClassVar[str | None] = None

    def references(self) -> tuple[str, ...]:
        return (self.to,)

    def describe(self) -> str:
        return f"{self.column} → {self.to}.{self.field}"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        c, f = scope.q(self.column), scope.q(self.field)
        keys = scope.define(f"SELECT DISTINCT {f} AS v FROM {scope.lakehouse(self.to)} WHERE {f} IS NOT NULL")
        return f"NOT ({c} IN (SELECT v FROM {keys}))"

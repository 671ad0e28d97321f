"""``expression``: a SQL condition every row must satisfy."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope
from flowforge.quality.sqlsafe import row_expression


@register_test("expression")
class Expression(RowTest):
    """Every row satisfies the SQL condition ``sql`` (DuckDB dialect, columns by name; dbt_utils'
    ``expression_is_true``). A row where it is NULL passes, as in a SQL CHECK constraint. One
    expression, no subqueries: it runs in the same sandbox as gold SQL.

    ```yaml
    tests:
      - expression: {sql: "amount > 0", severity: drop}
      - expression: {sql: "closed_at IS NULL OR closed_at >= opened_at", name: closed_after_opened}
    ```
    """

    test: Literal["expression"]
    sql: str = Field(min_length=1)

    shorthand: ClassVar[str | None] = "sql"

    @field_validator("sql")
    @classmethod
    def _parses(cls, value: str) -> str:
        row_expression(value, "sql")
        return value

    def describe(self) -> str:
        return self.sql if len(self.sql) <= 60 else self.sql[:57] + "..."

    def failing(self, scope: Scope) -> str:
        return f"NOT ({scope.expr(self.sql, 'sql')})"

    def counted(self) -> tuple[str, ...] | None:
        return ()

    def applies(self, scope: Scope) -> str | None:
        return None

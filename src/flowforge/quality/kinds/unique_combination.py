"""``unique_combination``: no combination of the columns' values appears twice."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import OUTER, Scope


@register_test("unique_combination")
class UniqueCombination(RowTest):
    """No two rows share the same values in all of ``columns`` (dbt_utils'
    ``unique_combination_of_columns``, Great Expectations' ``expect_compound_columns_to_be_unique``).
    Nulls compare equal, as in GROUP BY; a row whose columns are all null is not checked.

    ```yaml
    tests:
      - unique_combination: [account_id, statement_month]
    ```
    """

    test: Literal["unique_combination"]
    columns: tuple[str, ...] = Field(min_length=1)

    table_scope: ClassVar[bool] = True
    shorthand: ClassVar[str | None] = "columns"

    def describe(self) -> str:
        return ", ".join(self.columns)

    def column_names(self) -> tuple[str, ...]:
        return self.columns

    count_if_any: ClassVar[bool] = True

    def counted(self) -> tuple[str, ...] | None:
        return self.columns

    def applies(self, scope: Scope) -> str | None:
        return "(" + " OR ".join(f"{scope.q(c)} IS NOT NULL" for c in self.columns) + ")"

    def failing(self, scope: Scope) -> str:
        cols = ", ".join(scope.q(c) for c in self.columns)
        dups = scope.define(f"SELECT {cols} FROM ({scope.rows_of(self, self.columns)}) "
                            f"GROUP BY ALL HAVING count(*) > 1")
        same = " AND ".join(f"d.{scope.q(c)} IS NOT DISTINCT FROM {OUTER}.{scope.q(c)}" for c in self.columns)
        return f"{self.applies(scope)} AND EXISTS (SELECT 1 FROM {dups} d WHERE {same})"

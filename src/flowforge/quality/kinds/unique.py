"""``unique``: no value of the column appears twice in the table."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope


@register_test("unique")
class Unique(RowTest):
    """No non-null value of ``column`` appears in two rows of the table after the commit.

    The new rows are compared with each other and with the rows that stay in the table (all of
    them for an append, those with other keys for a merge, none for a rebuild); every new row
    carrying a repeated value fails, so ``drop`` and ``quarantine`` keep the table unique.

    ```yaml
    tests:
      - unique: customer_id
      - unique: {column: email, severity: quarantine}
    ```
    """

    test: Literal["unique"]
    column: str = Field(min_length=1)

    table_scope: ClassVar[bool] = True
    shorthand: ClassVar[str | None] = "column"

    def describe(self) -> str:
        return self.column

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        c = scope.q(self.column)
        # nulls group together here, but a null never matches IN: null rows pass, as they should
        dups = scope.define(f"SELECT {c} AS v FROM ({scope.rows_of(self, self.column_names())}) "
                            f"GROUP BY 1 HAVING count(*) > 1")
        return f"{c} IN (SELECT v FROM {dups})"

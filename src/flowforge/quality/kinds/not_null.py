"""``not_null``: the column has a value in every row."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope


@register_test("not_null")
class NotNull(RowTest):
    """Every row has a value in ``column``.

    ```yaml
    tests:
      - not_null: customer_id
      - not_null: {column: email, severity: quarantine}
    ```
    """

    test: Literal["not_null"]
    column: str = Field(min_length=1)

    shorthand: ClassVar[str | None] = "column"

    def describe(self) -> str:
        return self.column

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        return f"{scope.q(self.column)} IS NULL"

    def counted(self) -> tuple[str, ...] | None:
        return ()

    def applies(self, scope: Scope) -> str | None:
        return None  # a null is the failure itself, so every row counts

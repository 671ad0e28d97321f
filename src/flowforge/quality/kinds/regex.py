"""``regex``: the column's values match (or do not match) a regular expression."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from flowforge.quality.base import RowTest, register_test
from flowforge.quality.scope import Scope


@register_test("regex")
class Regex(RowTest):
    """Every non-null value of ``column`` contains a match of ``pattern`` (RE2 syntax, as DuckDB's
    ``regexp_matches``; anchor it with ``^...$`` to match the whole value). ``negate: true``
    inverts it: no value may match.

    ```yaml
    tests:
      - regex: {column: email, pattern: '^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$', severity: quarantine}
      - regex: {column: phone, pattern: '[A-Za-z]', negate: true}
    ```
    """

    test: Literal["regex"]
    column: str = Field(min_length=1)
    pattern: str  # an empty pattern matches every value
    negate: bool = False

    shorthand: ClassVar[str | None] = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        return value

    def describe(self) -> str:
        return f"{self.column} {'!~' if self.negate else '~'} {self.pattern}"

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)

    def failing(self, scope: Scope) -> str:
        c = scope.q(self.column)
        text = c if scope.types.get(self.column, "").upper() == "VARCHAR" else f"CAST({c} AS VARCHAR)"
        match = f"regexp_matches({text}, {scope.lit(self.pattern)})"
        return match if self.negate else f"NOT {match}"

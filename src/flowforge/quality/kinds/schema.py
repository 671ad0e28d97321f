"""``schema``: the table has the expected columns (and types)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import field_validator

from flowforge.quality.base import Observation, TableTest, register_test
from flowforge.quality.scope import Scope

# columns FlowForge adds itself; 'exact' and 'ordered' look past them
SYSTEM_COLUMNS = frozenset({"_batch_id", "_ingestion_time", "_source_system", "_source_file", "_file_modified_time",
                            "_silver_updated_at", "_op", "_position", "_source_ts", "_event_id", "_is_deleted",
                            "_valid_to_position"})


@register_test("schema")
class Schema(TableTest):
    """The table has ``columns``: a list of names, or names with SQL types (``BIGINT``,
    ``DECIMAL(12,2)``, ``VARCHAR``; aliases such as INT or TEXT compare equal; a type left empty
    is not checked). ``exact: true``: no other columns (FlowForge's own ``_`` columns aside);
    ``ordered: true``: in this order.

    ```yaml
    tests:
      - schema:
          columns: {customer_id: BIGINT, email: VARCHAR, balance: "DECIMAL(15,2)"}
          exact: true
    ```
    """

    test: Literal["schema"]
    columns: dict[str, str | None]
    exact: bool = False
    ordered: bool = False

    shorthand: ClassVar[str | None] = "columns"
    accepts_where: ClassVar[bool] = False

    @field_validator("columns", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return dict.fromkeys((str(v) for v in value), None)
        return value

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name, kind in value.items():
            if kind:
                sql_type(kind, name)
        return value

    def describe(self) -> str:
        shown = ", ".join(list(self.columns)[:4]) + (", ..." if len(self.columns) > 4 else "")
        return shown + (", exact" if self.exact else "") + (", ordered" if self.ordered else "")

    def evaluate(self, scope: Scope) -> Observation:
        actual = dict(scope.types)
        user = [c for c in actual if c not in SYSTEM_COLUMNS]
        problems = []
        missing = [c for c in self.columns if c not in actual]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        for name, kind in self.columns.items():
            if kind and name in actual and sql_type(kind, name) != sql_type(actual[name], name):
                problems.append(f"{name} is {actual[name]}, expected {kind}")
        if self.exact:
            extra = [c for c in user if c not in self.columns]
            if extra:
                problems.append(f"unexpected column(s) {', '.join(extra)}")
        if self.ordered and not missing and [c for c in user if c in self.columns] != list(self.columns):
            problems.append(f"columns in the order {', '.join(c for c in user if c in self.columns)}")
        observed = {"columns": [{"name": c, "type": t} for c, t in actual.items()]}
        return Observation(not problems, observed, "; ".join(problems) or f"{len(self.columns)} column(s) as expected")


def sql_type(text: str, column: str) -> str:
    """A type name in one canonical spelling (INT → INT, INTEGER → INT, TEXT → VARCHAR...)."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        return exp.DataType.build(text, dialect="duckdb").sql("duckdb").upper()
    except (ParseError, ValueError):
        raise ValueError(f"column {column}: '{text}' is not a SQL type") from None

"""``reconcile``: an aggregate of this table equals an aggregate of another table."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from flowforge.quality.base import Observation, TableTest, register_test
from flowforge.quality.scope import Scope
from flowforge.quality.sqlsafe import aggregate_expression, row_expression
from flowforge.spec.base import Identifier


@register_test("reconcile")
class Reconcile(TableTest):
    """``expression`` (an aggregate over this table after the commit) equals ``against_expression``
    over the lakehouse table ``against`` (the same expression when left out), within ``tolerance``
    (absolute) or ``tolerance_pct`` (relative). ``where``/``against_where`` filter each side.

    ```yaml
    tests:
      - reconcile:
          expression: sum(total_amount)
          against: silver_order_items
          against_expression: sum(line_total)
          tolerance: 0.01
    ```
    """

    test: Literal["reconcile"]
    expression: str = Field(min_length=1)
    against: Identifier
    against_expression: str | None = None
    against_where: str | None = None
    tolerance: float = Field(0, ge=0)
    tolerance_pct: float | None = Field(None, ge=0)

    shorthand: ClassVar[str | None] = None

    @field_validator("expression", "against_expression")
    @classmethod
    def _aggregate(cls, value: str | None) -> str | None:
        if value is not None:
            aggregate_expression(value, "expression")
        return value

    @field_validator("against_where")
    @classmethod
    def _row(cls, value: str | None) -> str | None:
        if value is not None:
            row_expression(value, "against_where")
        return value

    @model_validator(mode="after")
    def _one_tolerance(self) -> Reconcile:
        if self.tolerance and self.tolerance_pct is not None:
            raise ValueError("give 'tolerance' or 'tolerance_pct', not both")
        return self

    def references(self) -> tuple[str, ...]:
        return (self.against,)

    def describe(self) -> str:
        return f"{self.expression} = {self.against}.{self.against_expression or self.expression}"

    def evaluate(self, scope: Scope) -> Observation:
        mine = scope.agg(self.expression, "expression")
        theirs = scope.agg(self.against_expression or self.expression, "against_expression")
        where = f" WHERE {scope.where(self)}" if self.where else ""
        other_where = f" WHERE ({scope.expr(self.against_where, 'against_where')})" if self.against_where else ""
        got = scope.row(f"SELECT (SELECT {mine} FROM {scope.table}{where}) AS this, "
                        f"(SELECT {theirs} FROM {scope.lakehouse(self.against)}{other_where}) AS other", self.title())
        this, other = got.get("this"), got.get("other")
        observed = {"this": _json(this), "other": _json(other)}
        if this is None or other is None:
            same = this is None and other is None
            return Observation(same, observed, f"{_show(this)} against {_show(other)}")
        diff = abs(Decimal(str(this)) - Decimal(str(other)))
        allowed = (Decimal(str(self.tolerance_pct)) / 100 * abs(Decimal(str(other)))
                   if self.tolerance_pct is not None else Decimal(str(self.tolerance)))
        observed["difference"] = _json(diff)
        return Observation(diff <= allowed, observed,
                           f"{_show(this)} against {_show(other)} in {self.against} (difference {diff}, "
                           f"allowed {allowed})")


def _json(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


def _show(value: object) -> str:
    return "NULL" if value is None else str(value)

"""Data tests: the spec every test kind shares, the registry of kinds, and the SQL scope they use.

A test kind is one module in ``flowforge.quality.kinds`` holding one model registered with
``@register_test("<name>")``; the ``tests:`` list of a table is a union built from the registry.
A *row* test says which rows fail (a SQL predicate, ``NULL`` counts as passing, as in a SQL CHECK
constraint); a *table* test computes one observation over the table as it will be after the
commit (row count, freshness, schema, a reconciled aggregate).

In YAML a test is a one-key mapping, the kind's name, with its arguments or a shorthand:

```yaml
tests:
  - not_null: customer_id
  - unique: {column: email, severity: quarantine}
  - accepted_values: {column: status, values: [placed, shipped, completed], severity: warn}
  - expression: {sql: "amount >= 0", severity: drop, mostly: 0.99}
  - row_count: {min: 1}
```

``severity``: ``warn`` records and goes on; ``drop`` removes failing rows before the commit;
``quarantine`` moves them to ``<table>__quarantine``; ``fail`` (the default, as in dbt) stops the
job before its commit. ``mostly: 0.99`` (Great Expectations' threshold) lets up to 1 % of the
checked rows fail: a ``warn``/``fail`` test then passes, a ``drop``/``quarantine`` test still
removes the failing rows but stops the job when more than that fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from flowforge.spec.base import SpecModel

if TYPE_CHECKING:
    from flowforge.quality.scope import Scope

Severity = Literal["warn", "drop", "quarantine", "fail"]
ROW_SEVERITIES: tuple[str, ...] = ("drop", "quarantine")

TEST_KINDS: dict[str, type[TestSpec]] = {}
T = TypeVar("T", bound="type[TestSpec]")


def register_test(kind: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        TEST_KINDS[kind] = cls
        return cls

    return deco


class TestSpec(SpecModel):
    """What every test has: its kind, an optional name, a severity, and where it applies."""

    __test__ = False  # not a pytest test class

    test: str
    name: str | None = Field(None, min_length=1, max_length=200)
    severity: Severity = "fail"
    where: str | None = None

    row_level: ClassVar[bool] = True
    table_scope: ClassVar[bool] = False  # looks at the rows already in the table too
    shorthand: ClassVar[str | None] = None  # the field a scalar or list argument fills

    @field_validator("where")
    @classmethod
    def _where_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from flowforge.quality.sqlsafe import row_expression

            row_expression(value, "where")
        return value

    def title(self) -> str:
        """The test's name in reports: ``name`` when given, else ``kind(arguments)``."""
        return self.name or f"{self.test}({self.describe()})"

    def describe(self) -> str:
        return ""

    def column_names(self) -> tuple[str, ...]:
        """Columns of the tested table the test reads (checked to exist before it runs)."""
        return ()

    def references(self) -> tuple[str, ...]:
        """Other lakehouse tables the test reads."""
        return ()


class RowTest(TestSpec):
    """A test of each row: ``failing`` is true for a row that breaks it."""

    mostly: float | None = Field(None, gt=0, le=1)

    def failing(self, scope: Scope) -> str:
        raise NotImplementedError  # every registered row kind overrides it

    def applies(self, scope: Scope) -> str | None:
        """Rows counted in the denominator of ``mostly`` (Great Expectations counts non-null values)."""
        cols = self.column_names()
        return " AND ".join(f"{scope.q(c)} IS NOT NULL" for c in cols) if cols else None

    count_if_any: ClassVar[bool] = False  # counted(): a value in any of the columns is enough

    def counted(self) -> tuple[str, ...] | None:
        """The columns whose values must all (or, with ``count_if_any``, any) be present for a row to
        count: what ``applies`` says, so a batch's null counts answer it; None when only SQL can."""
        return self.column_names()


class TableTest(TestSpec):
    """A test of the whole table as it will be after the commit."""

    row_level: ClassVar[bool] = False
    table_scope: ClassVar[bool] = True

    @model_validator(mode="after")
    def _table_severity(self) -> TableTest:
        if self.severity in ROW_SEVERITIES:
            raise ValueError(f"'{self.test}' tests the whole table, so severity '{self.severity}' (which acts on "
                             f"failing rows) does not apply; use 'warn' or 'fail'")
        if self.where is not None and not self.accepts_where:
            raise ValueError(f"'{self.test}' does not take 'where'")
        return self

    accepts_where: ClassVar[bool] = True

    def evaluate(self, scope: Scope) -> Observation:
        raise NotImplementedError  # every registered table kind overrides it


class Observation:
    """What a table test saw: success, the observed value (JSON-safe) and a sentence about it."""

    __slots__ = ("message", "observed", "success")

    def __init__(self, success: bool, observed: Any, message: str) -> None:
        self.success = success
        self.observed = observed
        self.message = message


def normalize(value: Any) -> Any:
    """``{not_null: id}`` / ``{not_null: {column: id}}`` / ``{test: not_null, column: id}`` → the last form."""
    if isinstance(value, dict) and "test" not in value and len(value) == 1:
        kind, args = next(iter(value.items()))
        cls = TEST_KINDS.get(str(kind))
        if args is None:
            return {"test": kind}
        if isinstance(args, dict):
            return {"test": kind, **args}
        if cls is not None and cls.shorthand is not None:
            return {"test": kind, cls.shorthand: args}
        if cls is not None:
            raise ValueError(f"'{kind}' takes its arguments as a mapping, such as {{{kind}: {{severity: warn, ...}}}}")
        return {"test": kind}
    if isinstance(value, str):
        return {"test": value}
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(value: str) -> float:
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"'{value}' is not a duration like '30m', '6h', '1d' or '2w'")
    return float(m.group(1)) * _UNITS[m.group(2)]

"""What a test sees while it is evaluated: the rows under test, the rows that stay in the table,
the table as it will be after the commit, other lakehouse tables, and SQL helpers.

All of it lives in one ``DuckDBEngine`` (the engine every piece of user SQL goes through);
tests only build SQL text from quoted identifiers, sqlglot literals and checked expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.quality.sqlsafe import aggregate_expression, literal, row_expression

if TYPE_CHECKING:
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.quality.base import TestSpec

DATA = "__ff_rows"  # the rows under test
KEPT = "__ff_kept"  # rows already in the table that stay after the commit
TABLE = "__ff_table"  # the table as it will be after the commit (table tests)
ROW = "__ff_row"  # a row's position in the batch
OUTER = "__ff_r"  # the alias of the rows under test in the evaluation query (for correlated subqueries)


class Scope:
    def __init__(self, engine: DuckDBEngine, *, table_name: str, types: dict[str, str],
                 kept_columns: list[str] | None, lakehouse: Callable[[str], str], label: str) -> None:
        self.engine = engine
        self.table_name = table_name
        self.data = DATA
        self.kept: str | None = KEPT if kept_columns is not None else None
        self.kept_columns = set(kept_columns or ())
        self.table = TABLE
        self.names = list(types)
        self.types = types  # column → DuckDB type of the rows under test
        self.label = label  # "silver table silver_orders", for error messages
        self._lakehouse = lakehouse
        self.ctes: dict[str, str] = {}
        self.previous_rows: int | None = None  # the table's rows before this commit (row_count)

    # -- SQL text ----------------------------------------------------------------------------
    @staticmethod
    def q(name: str) -> str:
        return quote(name)

    @staticmethod
    def lit(value: Any) -> str:
        return literal(value)

    @staticmethod
    def expr(sql: str, what: str) -> str:
        return row_expression(sql, what)

    @staticmethod
    def agg(sql: str, what: str) -> str:
        return aggregate_expression(sql, what)

    def define(self, sql: str) -> str:
        """A named common table expression of the evaluation query; returns its name."""
        name = f"__ff_d{len(self.ctes)}"
        self.ctes[name] = sql
        return name

    def where(self, test: TestSpec) -> str:
        return f"({self.expr(test.where, 'where')})" if test.where else "TRUE"

    def rows_of(self, test: TestSpec, columns: tuple[str, ...]) -> str:
        """``columns`` of the rows under test that ``test`` looks at, plus the kept rows: the rows
        a table-wide property (uniqueness) must hold over after the commit."""
        cols = ", ".join(self.q(c) for c in columns)
        new = f"SELECT {cols} FROM {self.data}" + (f" WHERE {self.where(test)}" if test.where else "")
        if self.kept is None:
            return new
        # a column new in this batch is null in the rows already there
        old = ", ".join(self.q(c) if c in self.kept_columns else f"NULL AS {self.q(c)}" for c in columns)
        return f"{new} UNION ALL SELECT {old} FROM {self.kept} WHERE {self.where(test)}"

    # -- other tables and queries ----------------------------------------------------------------
    def lakehouse(self, table: str) -> str:
        """The view of another lakehouse table (its newest committed version)."""
        return self._lakehouse(table)

    def scalar(self, sql: str, what: str) -> Any:
        result = self.engine.query(sql, f"{self.label}, test {what}")
        return result.column(0)[0].as_py() if result.num_rows else None

    def row(self, sql: str, what: str) -> dict[str, Any]:
        result = self.engine.query(sql, f"{self.label}, test {what}").to_pylist()
        return result[0] if result else {}

    def with_ctes(self, body: str) -> str:
        if not self.ctes:
            return body
        return "WITH " + ", ".join(f"{n} AS ({s})" for n, s in self.ctes.items()) + " " + body

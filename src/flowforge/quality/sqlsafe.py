"""User SQL inside tests, made safe to embed: parsed by sqlglot, checked, and re-rendered.

A test's ``expression``, ``where`` or aggregate is one SQL *expression*, never a statement: no
subquery, no table, no table function, no second statement. What reaches DuckDB is sqlglot's
rendering of the parsed tree, so a value can never close a parenthesis or a quote it did not
open. User values (accepted values, patterns, bounds) become literals built by sqlglot.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# functions that reach outside the data (files, environment) have no place in a check
_REFUSED_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_ndjson", "read_text", "read_blob", "glob", "getenv", "current_setting", "query", "query_table",
    "delta_scan", "iceberg_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "read_xlsx",
})


def row_expression(sql: str, what: str) -> str:
    """``sql`` as one safe scalar expression, in DuckDB's dialect; ValueError says why not."""
    return _expression(sql, what, aggregate=False)


def aggregate_expression(sql: str, what: str) -> str:
    """An expression over the table's rows that may use aggregates (``sum(amount)``)."""
    return _expression(sql, what, aggregate=True)


@lru_cache(maxsize=1024)
def _expression(sql: str, what: str, *, aggregate: bool) -> str:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    if not sql or not sql.strip():
        raise ValueError(f"{what}: the SQL expression is empty")
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except ParseError as exc:
        from flowforge.engine.sandbox import parse_error_detail

        raise ValueError(f"{what}: SQL does not parse: {parse_error_detail(exc)}") from None
    if len(trees) != 1:
        raise ValueError(f"{what}: give one SQL expression, not {len(trees)} statements")
    tree = trees[0]
    if isinstance(tree, exp.Query | exp.Command | exp.DDL | exp.DML | exp.Alias):
        raise ValueError(f"{what}: give a SQL expression (like \"amount >= 0\"), not a statement or a query")
    for node in tree.walk():
        if isinstance(node, exp.Query | exp.Subquery | exp.Table):
            raise ValueError(f"{what}: subqueries and tables are not allowed in a test expression; use a "
                             f"'relationships' or 'reconcile' test to look at another table")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _REFUSED_FUNCTIONS:
                raise ValueError(f"{what}: the function {name}() is not allowed in a test expression")
        if not aggregate and isinstance(node, exp.AggFunc | exp.Window):
            raise ValueError(f"{what}: aggregates and window functions are not allowed in a row expression")
    rendered: str = tree.sql(dialect="duckdb")
    from flowforge.engine.sandbox import UnsafeSQL, check_expression

    try:  # and the sandbox every user expression passes (function names refused there too)
        check_expression(rendered, what)
    except UnsafeSQL as exc:
        raise ValueError(str(exc)) from None
    return rendered


def literal(value: Any) -> str:
    """A SQL literal for a YAML value (string, number, boolean, null), rendered by sqlglot."""
    from sqlglot import exp

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value).sql("duckdb")
    return exp.Literal.string(str(value)).sql("duckdb")

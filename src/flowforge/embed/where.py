"""User filters (``--where "category_id = 3"``): one SQL boolean expression, checked with sqlglot
and put into queries as a parsed tree, never as the user's text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

# nodes a row filter never needs: statements, subqueries, table references, parameters, stars
_REFUSED = ("Query", "Subquery", "Table", "Command", "DDL", "DML", "Placeholder", "Parameter", "Star", "Lambda",
            "Create", "Drop", "Insert", "Update", "Delete", "Merge", "Copy", "Set", "Pragma", "Attach", "Detach",
            "Use", "Into", "Window")
_NOT_BOOLEAN = ("Literal", "Null", "Add", "Sub", "Mul", "Div", "Mod", "DPipe", "Neg", "Array", "Struct",
                "Tuple", "Interval")


def boolean_expression(text: str) -> Any:
    """The parsed expression, or ValueError saying why ``text`` is not one boolean expression."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if not text or not text.strip():
        raise ValueError("the filter is empty")
    try:
        parsed = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except (ParseError, TokenError) as exc:
        from flowforge.engine.sandbox import parse_error_detail

        raise ValueError(f"the filter does not parse: {parse_error_detail(exc)}") from None
    if len(parsed) != 1:
        raise ValueError("the filter must be one expression, not several statements")
    tree = parsed[0]
    from flowforge.engine.sandbox import UnsafeSQL, check_expression

    try:
        check_expression(text, "the filter")  # the same sandbox as every other user expression
    except UnsafeSQL as exc:
        raise ValueError(str(exc).removeprefix("the filter: ")) from None
    refused = tuple(getattr(exp, n) for n in _REFUSED if hasattr(exp, n))
    for node in tree.walk():
        if isinstance(node, refused):
            raise ValueError(f"the filter may only compare columns and values; it contains "
                             f"{type(node).__name__.lower()} '{node.sql(dialect='duckdb')[:60]}'")
        if isinstance(node, exp.Column) and node.table:
            raise ValueError(f"refer to columns by name alone, not '{node.sql(dialect='duckdb')}'")
    if isinstance(tree, tuple(getattr(exp, n) for n in _NOT_BOOLEAN)):
        raise ValueError(f"the filter must be true or false for a row (a comparison such as 'price < 20'), "
                         f"not the value '{tree.sql(dialect='duckdb')[:60]}'")
    return tree


def check_columns(tree: exp.Expression, columns: Iterable[str], where: str) -> None:
    """ValueError when the filter names a column the table does not have."""
    from sqlglot import exp

    known = {c.lower() for c in columns}
    for col in tree.find_all(exp.Column):
        if col.name.lower() not in known:
            raise ValueError(f"{where} has no column '{col.name}' (columns: {', '.join(sorted(columns))})")

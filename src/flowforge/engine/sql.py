"""SQL helpers built on sqlglot: table references, quoting, expression checks."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=256)
def referenced_tables(sql: str, dialect: str = "duckdb") -> tuple[str, ...]:
    """Names of the tables a query reads, CTE names excluded, in order of appearance."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        detail = first.get("description", str(exc).splitlines()[0])
        line = first.get("line")
        raise ValueError(f"SQL does not parse: {detail}" + (f" (SQL line {line})" if line else "")) from None
    if not isinstance(tree, exp.Query):
        raise ValueError("only a SELECT query can define a table")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = [t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes]
    return tuple(dict.fromkeys(names))


def quote(name: str, dialect: str = "duckdb") -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


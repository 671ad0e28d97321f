"""SQL helpers built on sqlglot: quoting (user SQL is checked in ``flowforge.engine.sandbox``)."""

from __future__ import annotations


def quote(name: str, dialect: str = "duckdb") -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


"""Table names and quoted identifiers come out exactly as sqlglot makes them (the fast paths that
spare an ingest the parser's import must not change a single character)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from flowforge.connectors.sql.common import quote_ident, split_table

DIALECTS = ("sqlite", "postgres", "duckdb", "mysql", "tsql")
NAMES = ["t", "Orders", "order", "select", "a\"b", "a`b", "a]b", "[x]", "ünï", "my table", "", "a.b", "x\"\"y"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", NAMES)
def test_quote_ident_matches_sqlglot(name: str, dialect: str) -> None:
    assert quote_ident(name, dialect) == exp.to_identifier(name, quoted=True).sql(dialect)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.sampled_from(DIALECTS))
def test_quote_ident_matches_sqlglot_on_any_text(name: str, dialect: str) -> None:
    assert quote_ident(name, dialect) == exp.to_identifier(name, quoted=True).sql(dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", ["t", "main.t", "dbo.T1", "Orders", "select", "_a.b_2", "a.b.c", '"my t"',
                                  "s.\"x y\"", "1abc", "a$b"])
def test_split_table_matches_sqlglot(name: str, dialect: str) -> None:
    table = exp.to_table(name, dialect=dialect)
    assert split_table(name, dialect) == ((table.db or None), table.name)

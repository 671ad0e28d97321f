"""The sandbox for every SQL a user writes: gold SQL, silver ``derived`` expressions and
``casts``, queries (``flowforge query``, the API, the UI) and data-quality rules.

Two layers. At run time, ``DuckDBEngine.seal()`` turns DuckDB's file system, network and
extension access off once the lakehouse tables are registered (only their Parquet files stay
readable) and locks the configuration. Before that, and already at ``validate``, the SQL is
parsed with sqlglot and refused when it names a construct that could reach outside the
registered tables, with the construct named in the message:

* anything but one SELECT (``ATTACH``, ``COPY``, ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``,
  ``CREATE``, ``EXPORT``... and a second statement after ``;``);
* table functions (``read_csv``, ``read_text``, ``glob``, ``query``, ``sqlite_scan``...) except
  ``range``/``generate_series`` and ``unnest``;
* file-reading or SQL-running scalar functions (``read_blob``, ``getenv``, ``query``...);
* a quoted path or a qualified name where a lakehouse table name belongs.

Example::

    check_query("SELECT * FROM silver_accounts")          # ('silver_accounts',)
    check_query("SELECT * FROM read_text('/etc/passwd')")  # UnsafeSQL: table function read_text...
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# table-valued functions that make rows from their arguments only
_SAFE_TABLE_FUNCTIONS = {"range", "generate_series", "unnest", "explode"}
# scalar functions that read files, the environment or run SQL text
_DENIED_FUNCTIONS = {"getenv", "query", "query_table", "glob", "sniff_csv", "json_execute_serialized_sql",
                     "parquet_scan", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
                     "parquet_kv_metadata", "parquet_bloom_probe", "sqlite_scan", "sqlite_attach",
                     "postgres_scan", "postgres_attach", "postgres_query", "mysql_scan", "mysql_query",
                     "delta_scan", "iceberg_scan", "iceberg_metadata", "iceberg_snapshots", "load_extension",
                     "current_setting", "duckdb_settings", "duckdb_secrets", "which_secret", "set_variable",
                     "getvariable"}
_STATEMENTS = {"Pragma": "PRAGMA", "Set": "SET", "Attach": "ATTACH", "Detach": "DETACH", "Copy": "COPY",
               "Install": "INSTALL", "Create": "CREATE", "Insert": "INSERT", "Update": "UPDATE",
               "Delete": "DELETE", "Drop": "DROP", "Use": "USE", "Merge": "MERGE", "Alter": "ALTER",
               "Transaction": "BEGIN", "Commit": "COMMIT", "Rollback": "ROLLBACK", "Describe": "DESCRIBE",
               "Export": "EXPORT", "Summarize": "SUMMARIZE", "LoadData": "LOAD"}


class UnsafeSQL(ValueError):
    """User SQL that names something the sandbox does not allow (the message names it)."""


def check_query(sql: str, where: str = "SQL") -> tuple[str, ...]:
    """The lakehouse tables a user query reads, after refusing anything outside the sandbox."""
    return _check_query(sql, where)


@lru_cache(maxsize=512)
def _check_query(sql: str, where: str) -> tuple[str, ...]:
    from sqlglot import exp

    tree = _parse_one(sql, where)
    if not isinstance(tree, exp.Query):
        raise UnsafeSQL(f"{where}: only a SELECT query is allowed here, not {_statement(tree)}")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    _check_tree(tree, where)
    names = [t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes]
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=1024)
def check_expression(text: str, where: str = "expression") -> str:
    """A single SQL expression (a derived column, a row condition), refused when it is anything
    else or reaches outside the sandbox; returns it unchanged."""
    from sqlglot import exp

    tree = _parse_one(f"SELECT {text}", where)
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1 or any(
            tree.args.get(k) for k in ("from_", "from", "joins", "where", "group", "having", "order", "limit",
                                       "qualify", "windows", "distinct", "with_", "with")):
        raise UnsafeSQL(f"{where}: {text!r} is not a single SQL expression")
    _check_tree(tree, where)
    return text


@lru_cache(maxsize=1024)
def check_type(text: str, where: str = "type") -> str:
    """A DuckDB column type (``decimal(12,2)``, ``date``, ``varchar[]``), normalized; anything else is refused."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if not text or len(text) > 200 or ";" in text or "--" in text or "/*" in text:
        raise UnsafeSQL(f"{where}: {text!r} is not a SQL type")
    try:
        built = exp.DataType.build(text, dialect="duckdb")
    except (SqlglotError, ValueError):
        raise UnsafeSQL(f"{where}: {text!r} is not a SQL type (for example INTEGER, DECIMAL(12,2), DATE, "
                        "TIMESTAMP, VARCHAR)") from None
    if built.find(exp.Query, exp.Func, exp.Table) is not None:
        raise UnsafeSQL(f"{where}: {text!r} is not a SQL type")
    return built.sql(dialect="duckdb")


def _parse_one(sql: str, where: str) -> Any:
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb", error_level=ErrorLevel.RAISE) if s is not None]
    except ParseError as exc:
        raise UnsafeSQL(f"{where}: the SQL does not parse: {parse_error_detail(exc)}") from None
    except SqlglotError as exc:
        raise UnsafeSQL(f"{where}: the SQL does not parse: {str(exc).splitlines()[0][:200]}") from None
    if len(statements) != 1:
        raise UnsafeSQL(f"{where}: give exactly one statement (found {len(statements)})")
    return statements[0]


_TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, "
                    r"comments: \[.*?\]>")


def parse_error_detail(exc: Exception) -> str:
    """A sqlglot error in a user's words: what, at which line and column, and the text around it
    (``Invalid expression / Unexpected token at line 2, column 18, near 'AS FROM >>bronze_orders<<'``)."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return _TOKEN.sub(lambda m: f"'{m.group(1)}'", str(exc).splitlines()[0])[:200]
    first = errors[0]
    text = _TOKEN.sub(lambda m: f"'{m.group(1)}'", " ".join(str(first.get("description", "syntax error")).split()))
    where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
    before = " ".join(str(first.get("start_context") or "").split())[-24:]
    near = " ".join(str(first.get("highlight") or "").split())[:40]
    after = " ".join(str(first.get("end_context") or "").split())[:16]
    shown = f"{before} >>{near}<< {after}".strip() if near else ""
    return f"{text}{where}" + (f", near '{shown}'" if shown else "")


def _statement(tree: exp.Expression) -> str:
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        return str(tree.this).upper().split()[0] if tree.this else "a command"
    return _STATEMENTS.get(type(tree).__name__, type(tree).__name__.upper())


def _check_tree(tree: Any, where: str) -> None:
    from sqlglot import exp

    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Copy | exp.Attach | exp.Install | exp.Create
                      | exp.Insert | exp.Update | exp.Delete | exp.Drop):
            raise UnsafeSQL(f"{where}: {_statement(node)} is not allowed in user SQL")
        if isinstance(node, exp.Table):
            _check_table(node, where)
        elif isinstance(node, exp.Func):
            name = _func_name(node)
            if name in _DENIED_FUNCTIONS or name.startswith("read_"):
                raise UnsafeSQL(f"{where}: function {name} is not allowed in user SQL (it reads files, settings "
                                "or SQL text); read lakehouse tables by name")


def _check_table(node: exp.Table, where: str) -> None:
    from sqlglot import exp

    target = node.this
    if isinstance(target, exp.Func):
        name = _func_name(target)
        if name not in _SAFE_TABLE_FUNCTIONS:
            raise UnsafeSQL(f"{where}: table function {name} is not allowed in user SQL; read lakehouse "
                            "tables by name")
        return
    if isinstance(target, exp.Identifier | exp.Var) or target is None:
        if node.args.get("catalog") or (node.args.get("db") and node.db.lower() not in ("main", "temp")):
            raise UnsafeSQL(f"{where}: {node.sql(dialect='duckdb')} names another database; read lakehouse "
                            "tables by their name alone")
        if node.name and not _TABLE_NAME.match(node.name):
            raise UnsafeSQL(f"{where}: {node.name!r} is not a table name (files and paths cannot be read here)")
        return
    if not isinstance(target, exp.Query | exp.Subquery):
        raise UnsafeSQL(f"{where}: {node.sql(dialect='duckdb')[:60]} is not a lakehouse table")


def _func_name(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()

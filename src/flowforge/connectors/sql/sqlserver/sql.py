"""The T-SQL the SQL Server connector sends, as pure functions (snapshot-tested).

Identifiers are bracket-quoted and string literals N-quoted by sqlglot, never by hand. A user's
query is wrapped as a derived table like in the other SQL connectors, with two T-SQL rules
handled: a derived table may not hold a CTE (the ``WITH`` moves in front of the outer SELECT)
nor an ``ORDER BY`` without ``TOP``/``OFFSET`` (``OFFSET 0 ROWS`` is added, changing nothing).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flowforge.connectors.sql import common
from flowforge.errors import SourceSchemaError

DIALECT = "tsql"
# Functions that reach other servers: OPENQUERY passes its text to a linked server verbatim,
# where it may write, so no parse of ours could vouch for it.
_REMOTE = {"OPENQUERY", "OPENROWSET", "OPENDATASOURCE"}
_PARAM = re.compile(r"^@?([A-Za-z_][A-Za-z0-9_#$]*)$")
# FreeTDS starts sessions with the old DB-Library defaults: the ANSI options must be on (indexed
# views and computed-column indexes need them) and TEXTSIZE at its maximum, or (n)varchar(max)
# and text values would be cut at the driver's limit.
SESSION = ("SET ANSI_NULLS ON; SET ANSI_NULL_DFLT_ON ON; SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; "
           "SET ARITHABORT ON; SET CONCAT_NULL_YIELDS_NULL ON; SET QUOTED_IDENTIFIER ON; SET NOCOUNT ON; "
           "SET XACT_ABORT ON; SET TEXTSIZE 2147483647; SET TRANSACTION ISOLATION LEVEL READ COMMITTED;")
VERSION = "SELECT @@VERSION"


@dataclass(frozen=True)
class Relation:
    """What follows FROM, and a ``WITH …`` that must precede the whole statement."""

    source: str
    prefix: str = ""


def table_relation(schema: str, table: str) -> Relation:
    return Relation(common.quote_table(schema, table, DIALECT))


def query_relation(query: str, where: str) -> Relation:
    """A read-only query as a derived table ``(…) AS [_ff_q]``."""
    import sqlglot
    from sqlglot import exp

    body = common.ensure_read_only(query, DIALECT, where)
    root = sqlglot.parse_one(body, read=DIALECT)
    remote = sorted({n.name.upper() for n in root.find_all(exp.Anonymous) if n.name.upper() in _REMOTE})
    if remote:
        raise SourceSchemaError(
            f"{where}: {', '.join(remote)} runs its text on another server, where it may write; "
            f"{common.READ_ONLY_MESSAGE}.",
            hint="Read the linked server through its own connection, or through a view on this server.")
    alias = common.quote_ident(common.QUERY_ALIAS, DIALECT)
    ordered = root.args.get("order") is not None and not (root.args.get("limit") or root.args.get("offset"))
    with_key = "with_" if "with_" in root.arg_types else "with"  # renamed in sqlglot 28
    cte = root.args.get(with_key)
    if cte is not None:
        inner = root.copy()
        inner.set(with_key, None)
        if ordered:
            inner.set("order", None)  # order inside a derived table means nothing
        return Relation(f"(\n{inner.sql(DIALECT)}\n) AS {alias}", prefix=cte.sql(DIALECT))
    # Newlines keep a trailing ``-- comment`` in the user's text from eating what follows.
    return Relation(f"(\n{body}{chr(10) + 'OFFSET 0 ROWS' if ordered else ''}\n) AS {alias}")


def select(relation: Relation, select_list: Iterable[str], predicate: str | None = None,
           top: int | None = None) -> str:
    head = f"TOP ({int(top)}) " if top is not None else ""
    sql = common.select_sql(relation.source, list(select_list), predicate).replace("SELECT ", f"SELECT {head}", 1)
    return f"{relation.prefix}\n{sql}" if relation.prefix else sql


def count(relation: Relation, predicate: str | None = None) -> str:
    return select(relation, ["COUNT_BIG(*)"], predicate)


def conjunction(predicates: Sequence[str | None]) -> str | None:
    parts = [p for p in predicates if p]
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({p})" for p in parts) or None


def range_predicate(key: str, index: int, boundaries: Sequence[str]) -> str:
    """Partition ``index`` of ``len(boundaries) + 1``: ``key >= b[i-1] AND key < b[i]``. The outer
    ranges are open-ended, so a row beyond the min/max seen at planning is still read once."""
    parts = ([f"{key} >= {boundaries[index - 1]}"] if index > 0 else []) + (
        [f"{key} < {boundaries[index]}"] if index < len(boundaries) else [])
    return " AND ".join(parts) or "1 = 1"


def procedure_call(procedure: str, names: Sequence[str], placeholder: str, where: str) -> str:
    """``EXEC [schema].[proc] @p1 = ?, @p2 = ?``: values are bound by the driver, not inlined."""
    schema, name = common.split_table(procedure, DIALECT)
    target = common.quote_table(schema or "dbo", name, DIALECT)
    args = ", ".join(f"@{param_name(n, where)} = {placeholder}" for n in names)
    return f"EXEC {target} {args}".rstrip()


def param_name(name: str, where: str) -> str:
    match = _PARAM.match(name)
    if not match:
        raise SourceSchemaError(f"{where}: {name!r} is not a valid procedure parameter name.",
                                hint="Use the parameter's name as declared, e.g. as_of_date or @as_of_date.")
    return match.group(1)


def param_literal(value: Any) -> str:
    """A parameter value as a T-SQL literal, for describing a call without running it."""
    from sqlglot import exp

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dt.date | dt.datetime | dt.time):
        value = value.isoformat()
    return exp.National(this=str(value)).sql(DIALECT)


def describe_first_result_set(tsql: str) -> str:
    """SQL Server's own description of what ``tsql`` returns (exact types), without running it."""
    from sqlglot import exp

    return (f"EXEC sp_describe_first_result_set @tsql = {exp.National(this=tsql).sql(DIALECT)}, "
            "@params = NULL, @browse_information_mode = 0")


def object_literal(schema: str, table: str) -> str:
    """``N'[schema].[table]'`` for OBJECT_ID(): the quoted name, as a literal."""
    from sqlglot import exp

    return exp.National(this=common.quote_table(schema, table, DIALECT)).sql(DIALECT)


# -- catalog -------------------------------------------------------------------------------------

# sys.partitions (rows of the heap or clustered index) needs no VIEW DATABASE STATE permission,
# unlike sys.dm_db_partition_stats; its counts are estimates, which is what this listing shows.
LIST_TABLES = """SELECT s.name AS schema_name, o.name AS table_name, o.type AS object_type,
       (SELECT SUM(p.rows) FROM sys.partitions p
         WHERE p.object_id = o.object_id AND p.index_id IN (0, 1)) AS row_estimate
  FROM sys.objects o
  JOIN sys.schemas s ON s.schema_id = o.schema_id
 WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0
   AND HAS_PERMS_BY_NAME(QUOTENAME(s.name) + '.' + QUOTENAME(o.name), 'OBJECT', 'SELECT') = 1
 ORDER BY s.name, o.name"""


def table_columns(schema: str, table: str) -> str:
    """Every column with its exact declared type. max_length is in bytes (nvarchar(50) → 100);
    alias types (``dbo.Name``) resolve to their system type, CLR types keep their own name."""
    obj = f"OBJECT_ID({object_literal(schema, table)})"
    return f"""SELECT c.name AS column_name, t.name AS type_name,
       CASE WHEN t.is_assembly_type = 1 THEN t.name ELSE TYPE_NAME(t.system_type_id) END AS base_type,
       c.max_length, c.precision, c.scale, c.is_nullable,
       CAST(CASE WHEN pk.column_id IS NULL THEN 0 ELSE 1 END AS bit) AS is_primary_key,
       OBJECT_DEFINITION(c.default_object_id) AS default_sql, t.is_user_defined
  FROM sys.columns c
  JOIN sys.types t ON t.user_type_id = c.user_type_id
  LEFT JOIN (SELECT ic.column_id
               FROM sys.indexes i
               JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
              WHERE i.object_id = {obj} AND i.is_primary_key = 1) pk ON pk.column_id = c.column_id
 WHERE c.object_id = {obj}
 ORDER BY c.column_id"""

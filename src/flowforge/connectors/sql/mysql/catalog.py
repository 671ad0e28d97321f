"""MySQL / MariaDB discovery with PyMySQL: tables, columns of a table, a query or a procedure's
result, and the parameters of a procedure."""

from __future__ import annotations

import re
from typing import Any

from flowforge.connectors.sql import common
from flowforge.connectors.sql.mysql import driver, typemap
from flowforge.connectors.sql.mysql.typemap import DIALECT, MyColumn
from flowforge.errors import SourceNotFound, SourceSchemaError

_JSON_CHECK = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)
_DUPLICATE = re.compile(r"Duplicate column name '(.*)'")
START_READ_ONLY = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"


def execute(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def list_tables(conn: Any) -> list[tuple[str, str, int | None]]:
    """(database, table, estimated rows) of the connection's database; views have no estimate."""
    rows = execute(conn, """SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS
                              FROM information_schema.TABLES
                             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME""")
    return [(schema, name, int(estimate) if estimate is not None and kind != "VIEW" else None)
            for schema, name, kind, estimate in rows]


def table_columns(conn: Any, schema: str | None, table: str, where: str,
                  fallback: str | None) -> list[MyColumn] | None:
    """Columns of a table or view, or None if it does not exist (or is not visible)."""
    rows = execute(conn, """SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT
                              FROM information_schema.COLUMNS
                             WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s
                             ORDER BY ORDINAL_POSITION""", (schema, table))
    if not rows:
        return None
    # MariaDB's JSON is LONGTEXT with a json_valid() CHECK; name it as MySQL does.
    checks = execute(conn, """SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
                               WHERE CONSTRAINT_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s""",
                     (schema, table))
    json = {m.group(1).replace("``", "`") for (clause,) in checks if (m := _JSON_CHECK.search(clause or ""))}
    out = []
    for name, data_type, column_type, nullable, key, default in rows:
        declared = "json" if name in json and data_type == "longtext" else column_type
        out.append(typemap.column(
            name, "json" if declared == "json" else data_type, declared, where, fallback=fallback,
            nullable=nullable == "YES", primary_key=key == "PRI",
            default=None if default is None or default == "NULL" else str(default)))
    return out


def fields_columns(fields: list[Any], where: str, fallback: str | None, *, wrapped: bool) -> list[MyColumn]:
    """Columns from the result metadata of a query (``wrapped``) or a procedure."""
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise duplicate_names(where, duplicates)
    out = []
    for f in fields:
        base, declared = typemap.field_column_type(f.type_code, f.length, f.scale, f.flags, f.charsetnr)
        out.append(typemap.column(f.name, base, declared, where, fallback=fallback, wrapped=wrapped,
                                  nullable=not f.flags & typemap.NOT_NULL_FLAG))
    return out


def duplicate_names(where: str, names: list[str]) -> SourceSchemaError:
    return SourceSchemaError(f"{where}: the result has duplicate column names {names}.",
                             hint="Give every selected column a distinct alias.")


def query_columns(conn: Any, relation: str, where: str, fallback: str | None) -> list[MyColumn]:
    """Columns of a wrapped query, described by the server without reading rows (LIMIT 0)."""
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(f"SELECT * FROM {relation} LIMIT 0")
        except pymysql.err.MySQLError as exc:
            match = _DUPLICATE.search(str(exc))
            if exc.args and exc.args[0] == 1060 and match:  # the derived table refuses repeated names
                raise duplicate_names(where, [match.group(1)]) from exc
            raise
        # PyMySQL keeps each column's charset and flags (unsigned, enum, not null) only on its
        # field packets; cursor.description drops them.
        fields = list(cursor._result.fields)
    return fields_columns(fields, where, fallback, wrapped=True)


def procedure_call(conn: Any, name: str, params: tuple[tuple[str, Any], ...],
                   where: str) -> tuple[str, tuple[Any, ...]]:
    """``CALL db.proc(%s, ...)`` and its arguments in declared order, matched by name."""
    schema, proc = common.split_table(name, DIALECT)
    found = execute(conn, """SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'PROCEDURE'
                               AND ROUTINE_SCHEMA = COALESCE(%s, DATABASE()) AND ROUTINE_NAME = %s""",
                    (schema, proc))
    if not found:
        raise SourceNotFound(f"{where}: procedure {name!r} does not exist or is not visible to this user.",
                             hint="Check the name (and the database, as db.procedure) and the EXECUTE grant.")
    declared = execute(conn, """SELECT PARAMETER_NAME, PARAMETER_MODE FROM information_schema.PARAMETERS
                                 WHERE SPECIFIC_SCHEMA = COALESCE(%s, DATABASE()) AND SPECIFIC_NAME = %s
                                   AND ROUTINE_TYPE = 'PROCEDURE' AND ORDINAL_POSITION > 0
                                 ORDER BY ORDINAL_POSITION""", (schema, proc))
    given = {k.lower(): v for k, v in params}
    expected = [str(n) for n, _ in declared]
    not_in = [n for n, mode in declared if mode != "IN"]
    if not_in:
        raise SourceSchemaError(f"{where}: parameters {not_in} of procedure {name!r} are OUT or INOUT; "
                                "only IN parameters can be bound.",
                                hint="Wrap it in a procedure whose parameters are all IN.")
    unknown = sorted(set(given) - {n.lower() for n in expected})
    missing = [n for n in expected if n.lower() not in given]
    if unknown or missing:
        raise SourceSchemaError(
            f"{where}: procedure {name!r} takes parameters {expected}"
            + (f"; unknown {unknown}" if unknown else "") + (f"; missing {missing}" if missing else "") + ".",
            hint="Give params by the procedure's parameter names.")
    target = common.quote_table(schema, proc, DIALECT).replace("%", "%%")
    return f"CALL {target}({', '.join(['%s'] * len(expected))})", tuple(given[n.lower()] for n in expected)


def procedure_columns(conn: Any, call: str, args: tuple[Any, ...], where: str,
                      fallback: str | None) -> list[MyColumn]:
    """Columns of the first result set of a procedure. The server only describes a result by
    producing it, so the procedure runs once here (in a READ ONLY transaction; the connection is
    closed after the column descriptions, before rows are read)."""
    import pymysql.cursors

    execute(conn, START_READ_ONLY)
    cursor = conn.cursor(pymysql.cursors.SSCursor)
    cursor.execute(call, args)
    fields = list(getattr(cursor._result, "fields", None) or [])
    driver.detach(cursor)  # the caller closes the connection: the rows are never read
    if not fields:
        raise SourceSchemaError(f"{where}: the procedure returned no result set.",
                                hint="Read a procedure that ends with a SELECT.")
    return fields_columns(fields, where, fallback, wrapped=False)

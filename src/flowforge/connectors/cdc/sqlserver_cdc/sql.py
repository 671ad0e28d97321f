"""The T-SQL the SQL Server CDC source sends, as pure functions (snapshot-tested).

Identifiers are bracket-quoted by sqlglot; a capture instance name is checked as an identifier
and becomes part of a function name (``cdc.fn_cdc_get_all_changes_<instance>``). LSNs travel as
driver parameters (``binary(10)``), never as text spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowforge.connectors.sql import common

DIALECT = "tsql"
MAX_LSN = "SELECT sys.fn_cdc_get_max_lsn() AS max_lsn"
# Captured columns, the key (index_column_list) and the instance's first LSN, in one query.
HELP = """SELECT ct.capture_instance, ct.start_lsn, sys.fn_cdc_get_min_lsn(ct.capture_instance) AS min_lsn,
       cc.column_name, cc.column_type, cc.column_ordinal, ic.column_name AS key_column
FROM cdc.change_tables AS ct
JOIN cdc.captured_columns AS cc ON cc.object_id = ct.object_id
LEFT JOIN cdc.index_columns AS ic ON ic.object_id = ct.object_id AND ic.column_name = cc.column_name
WHERE ct.capture_instance = {p}
ORDER BY cc.column_ordinal"""


def help_capture_instance(placeholder: str) -> str:
    return HELP.format(p=placeholder)


def all_changes(capture_instance: str, columns: Sequence[str], placeholder: str) -> str:
    """Every change between two LSNs (inclusive), update pairs as before (3) then after (4) rows.

    ``sys.fn_cdc_map_lsn_to_time`` gives the commit time; order is the log's."""
    function = f"cdc.{common.quote_ident('fn_cdc_get_all_changes_' + capture_instance, DIALECT)}"
    cols = ", ".join(f"c.{common.quote_ident(c, DIALECT)}" for c in columns)
    return (f"SELECT c.[__$start_lsn], c.[__$seqval], c.[__$operation], "
            f"sys.fn_cdc_map_lsn_to_time(c.[__$start_lsn]) AS [__ff_commit_time], {cols}\n"
            f"FROM {function}({placeholder}, {placeholder}, N'all update old') AS c\n"
            "ORDER BY c.[__$start_lsn], c.[__$seqval], c.[__$operation]")


def snapshot_select(schema: str, table: str, columns: Sequence[str]) -> str:
    cols = ", ".join(common.quote_ident(c, DIALECT) for c in columns)
    return f"SELECT {cols} FROM {common.quote_table(schema, table, DIALECT)}"


# Snapshot isolation makes the table read one point in time; CDC capture is asynchronous, so
# ``fn_cdc_get_max_lsn()`` may lag the rows read, and a few changes may be read both in the
# snapshot and from the change table (replayed, idempotent), never lost.
BEGIN_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION"
END_SNAPSHOT = "COMMIT TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED"

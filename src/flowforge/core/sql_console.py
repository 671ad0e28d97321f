"""The SQL console: one read-only query over the lakehouse, run exactly as ``POST
/api/v1/catalog/query`` runs it (``Context.query``: checked by ``engine/sandbox.py``, then a sealed
DuckDB engine), with a row limit, CSV export and a per-user history in the metadata store.

The history is kept server-side rather than in the browser session: it follows the user to
another browser or machine, survives signing out, and never holds more than that user's own
queries (each user sees only their own; 200 are kept).

Example::

    result = ctx.console.run("SELECT count(*) AS n FROM silver_accounts", limit=1000)
    result.rows, result.truncated, ctx.console.history()[0].sql
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from flowforge.errors import ConfigError, FlowForgeError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.core.context import Context
    from flowforge.metadata.console import ConsoleStore, HistoryRecord

MAX_LIMIT: Final = 10_000
MAX_SQL: Final = 20_000


@dataclass(frozen=True)
class ConsoleResult:
    columns: tuple[tuple[str, str], ...]  # (name, SQL type)
    rows: tuple[dict[str, Any], ...]
    truncated: bool  # more rows than the limit

    def csv(self) -> str:
        """The rows as CSV (a header line first); cells that a spreadsheet would run as a formula are
        prefixed with a quote."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([name for name, _ in self.columns])
        for row in self.rows:
            writer.writerow([_cell(row.get(name)) for name, _ in self.columns])
        return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(value):
        return "'" + value
    return "" if value is None else value


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SchemaTable:
    name: str
    layer: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type)


class ConsoleService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def _store(self) -> ConsoleStore:
        from flowforge.metadata.console import ConsoleStore

        return ConsoleStore(self.ctx.metadata)

    def run(self, sql: str, limit: int = 1000) -> ConsoleResult:
        """Run ``sql`` (one SELECT over lakehouse tables by name); at most ``limit`` rows come back.
        The query goes into the user's history, failed or not."""
        from flowforge.core.catalog import sample_rows
        from flowforge.core.catalog_docs import sql_type

        user = self.ctx.require("viewer")
        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise ConfigError("Write a query first.", hint="For example: SELECT * FROM silver_accounts")
        if len(sql) > MAX_SQL:
            raise ConfigError(f"The query is longer than {MAX_SQL} characters.")
        if not 1 <= limit <= MAX_LIMIT:
            raise ConfigError(f"The row limit must be between 1 and {MAX_LIMIT}.")
        try:
            table = self.ctx.query(sql, limit=limit + 1)
        except FlowForgeError as exc:
            self._store.add_history(user.username, sql, None, exc.message[:500])
            raise
        rows = sample_rows(table.slice(0, limit))
        self._store.add_history(user.username, sql, len(rows), None)
        return ConsoleResult(tuple((f.name, sql_type(f.type)) for f in table.schema), tuple(rows),
                             table.num_rows > limit)

    def history(self, limit: int = 50) -> list[HistoryRecord]:
        """The acting user's own queries, newest first."""
        user = self.ctx.require("viewer")
        return self._store.history(user.username, limit)

    def clear_history(self) -> int:
        user = self.ctx.require("viewer")
        return self._store.clear_history(user.username)

    def schema(self) -> list[SchemaTable]:
        """Tables and columns a query can read (the schema browser)."""
        return [SchemaTable(t.name, t.layer, tuple((c.name, c.type) for c in t.columns))
                for t in self.ctx.catalog.tables()]


def lakehouse_query(ctx: Context, sql: str, limit: int | None = None) -> pa.Table:
    """``sql`` checked by the sandbox, then run in a sealed DuckDB engine over the lakehouse tables it names."""
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.engine.sandbox import UnsafeSQL, check_query
    from flowforge.errors import UserCodeError

    try:
        names = check_query(sql, "query")
    except UnsafeSQL as exc:
        raise UserCodeError(str(exc), hint="Queries read lakehouse tables by name, one SELECT at a time.") from None
    engine = DuckDBEngine()
    try:
        for name in names:
            found = ctx.store.find(name)
            if found is None:
                known = ", ".join(t for _, t in ctx.store.tables()) or "none"
                raise ConfigError(f"Table '{name}' is not in the lakehouse (tables: {known}).")
            engine.register_delta(name, found[1])
        if limit is not None:
            return engine.query(limited(sql, limit), "query")
        return engine.query(sql, "query")
    finally:
        engine.close()


def limited(sql: str, limit: int) -> str:
    """``sql`` wrapped to return at most ``limit`` rows (rebuilt by sqlglot: comments cannot cut it)."""
    import sqlglot
    from sqlglot import exp

    inner = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(inner, exp.Query)
    return exp.select("*").from_(inner.subquery("q")).limit(int(limit)).sql(dialect="duckdb")

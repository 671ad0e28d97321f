"""``flowforge connections ...``: store, test and explore source connections."""


import sys
from typing import Annotated, Any

import typer

from flowforge.cli.common import _context

connections_app = typer.Typer(help="Source connections (secrets are stored encrypted).", no_args_is_help=True)

TableArg = Annotated[str, typer.Argument(help="Table name (schema.table allowed), or a file of a files connection.")]
NameArg = Annotated[str, typer.Argument(help="Connection name.")]


@connections_app.command("add")
def add(name: NameArg,
        type_: Annotated[str, typer.Option("--type", help="postgres, sqlite, mysql, sqlserver, files")],
        url: Annotated[str | None, typer.Option(help="Connection URL (stored encrypted).")] = None,
        host: Annotated[str | None, typer.Option()] = None,
        port: Annotated[int | None, typer.Option()] = None,
        database: Annotated[str | None, typer.Option()] = None,
        user: Annotated[str | None, typer.Option()] = None,
        password: Annotated[bool, typer.Option("--password", help="Prompt for the password.")] = False,
        password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
        path: Annotated[str | None, typer.Option(help="File or folder (sqlite, files).")] = None,
        option: Annotated[list[str] | None, typer.Option("--set", help="Any other field, key=value.")] = None,
        test: Annotated[bool, typer.Option("--test/--no-test", help="Test before saving.")] = True) -> None:
    """Store a connection; its password and URL are encrypted with the project's key."""
    from flowforge.cli import output

    data: dict[str, Any] = {"type": type_}
    for key, value in (("url", url), ("host", host), ("port", port), ("database", database), ("user", user),
                       ("path", path)):
        if value is not None:
            data[key] = value
    for item in option or []:
        key, _, value = item.partition("=")
        data[key.strip()] = value
    if password_stdin:
        data["password"] = sys.stdin.readline().rstrip("\n")
    elif password:
        data["password"] = typer.prompt("Password", hide_input=True)
    with _context() as ctx:
        config = ctx.connections.parse(name, data, "new connection")
        if test:
            from flowforge.connectors import open_connector

            with open_connector(name, config) as conn:
                result = conn.test()
            output.info(f"[green]OK[/] {config.describe()}: {result.server_version} ({result.latency_ms:.0f} ms)")
        ctx.connections.save(name, data)
        output.info(f"saved connection '{name}' ({config.describe()})")


@connections_app.command("list")
def list_() -> None:
    """Connections with kind and where they point (never credentials)."""
    from flowforge.cli import output

    with _context() as ctx:
        rows = [{"name": c.name, "kind": c.kind, "where": c.where, "defined in": c.source}
                for c in ctx.connections.summaries()]
        output.records(rows, ["name", "kind", "where", "defined in"], title="Connections")


@connections_app.command("test")
def test_(name: NameArg) -> None:
    """Connect and report the server version and latency, or why it failed."""
    from flowforge.cli import output

    with _context() as ctx, ctx.connector(name) as conn:
        result = conn.test()
        output.info(f"[green]OK[/] {conn.describe()}: {result.server_version} ({result.latency_ms:.0f} ms)")


@connections_app.command("tables")
def tables(name: NameArg) -> None:
    """Schemas and tables the connection can read, with row estimates (for files: every file)."""
    from flowforge.cli import output

    with _context() as ctx:
        rows = [{"schema": t.schema or "", "table": t.name,
                 "rows (estimate)": "" if t.row_estimate is None else f"{t.row_estimate:,}"}
                for t in ctx.connections.tables(name)]
        output.records(rows, ["schema", "table", "rows (estimate)"], title=f"Tables of '{name}'")


@connections_app.command("schema")
def schema(name: NameArg, table: TableArg) -> None:
    """Columns of a table or file: source type, Arrow type, nullable, primary key, default."""
    from flowforge.cli import output

    with _context() as ctx:
        _dialect(ctx, name, table)  # first: it explains a file refused for its delimiter
        rows = [{"column": c.name, "source type": c.source_type, "arrow type": str(c.arrow_type),
                 "nullable": "yes" if c.nullable else "no", "key": "PK" if c.primary_key else "",
                 "default": "" if c.default is None else c.default}
                for c in ctx.connections.schema(name, table)]
        output.records(rows, ["column", "source type", "arrow type", "nullable", "key", "default"], title=table)


@connections_app.command("preview")
def preview(name: NameArg, table: TableArg,
            limit: Annotated[int, typer.Option(help="Rows to show.")] = 10,
            count: Annotated[bool, typer.Option(help="Also count rows exactly.")] = False) -> None:
    """The first rows of a table or file (and its exact row count with --count)."""
    from flowforge.cli import output

    with _context() as ctx:
        _dialect(ctx, name, table)
        output.arrow_table(ctx.connections.preview_table(name, table, limit), limit)
        if count:
            output.info(f"{ctx.connections.row_count(name, table):,} rows")


def _dialect(ctx: Any, name: str, table: str) -> None:
    """A text file's sniffed dialect beside the options FlowForge reads it with."""
    from rich.markup import escape

    from flowforge.cli import output

    found = ctx.connections.dialect(name, table)
    if not found:
        return
    sniffed, configured = found["sniffed"], found["configured"]
    rows = [{"option": key, "sniffed": _show(sniffed[key]), "read with": _show(configured[key]),
             "note": "" if sniffed[key] == configured[key] or key == "null_values" else "differs"}
            for key in sniffed]
    output.records(rows, ["option", "sniffed", "read with", "note"], title=f"Dialect of {escape(found['file'])}")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(repr(v) for v in value)
    return str(value)


@connections_app.command("remove")
def remove(name: NameArg) -> None:
    """Delete a stored connection (and its encrypted secret)."""
    from flowforge.cli import output

    with _context() as ctx:
        ctx.connections.remove(name)
        output.info(f"removed connection '{name}'")


@connections_app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret with a new key and retire the old one."""
    from flowforge.cli import output

    with _context() as ctx:
        count = ctx.connections.rotate_key()
        output.info(f"re-encrypted {count} connection(s) with a new key")

"""Everything the CLI prints goes through here (dbt-style run lines, tables, errors).

Data (cell values, error messages) is printed as plain ``Text``, never as Rich markup: a type
like ``timestamp[us]`` or a T-SQL name like ``[dbo].[Orders]`` would otherwise vanish."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from flowforge.core.context import TableEntry
    from flowforge.runner.executor import JobEvent, RunSummary

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

_WIDTH = 68


def _now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def _line(left: str, right: str) -> str:
    """dbt-style: the left part padded with dots to a fixed column, then the bracketed status."""
    plain = Text.from_markup(left).plain
    return f"{left} {'.' * max(3, _WIDTH - len(plain))} {right}"


def job_event(event: JobEvent) -> None:
    prefix = f"{_now()}  {event.index} of {event.total}"
    if event.status == "start":
        console.print(_line(f"{prefix} START {event.kind} {event.job}", "[RUN]"))
    elif event.status == "success" and event.result is not None:
        r = event.result
        detail = f"{r.rows_read:,} read, {r.rows_written:,} written in {event.seconds:.2f}s"
        console.print(_line(f"{prefix} [green]OK[/] {event.kind} {event.job}", f"[[green]{detail}[/]]"))
        for t in r.tables:
            if t.note == "up to date":
                console.print(f"           {t.layer:<6} {t.table}: up to date")
            else:
                extra = f", {t.rows_updated:,} updated" if t.rows_updated else ""
                where = f" (v{t.version})" if t.version is not None else f" ({t.note})" if t.note else ""
                console.print(Text(f"           {t.layer:<6} {t.table}: {t.rows_written:,} rows{extra}{where}"))
    elif event.status == "failed":
        console.print(_line(f"{prefix} [red]ERROR[/] {event.kind} {event.job}",
                            f"[[red]FAIL in {event.seconds:.2f}s[/]]"))
        console.print(Text(f"           {event.error}", style="red"), soft_wrap=True)
    elif event.status == "cancelled":
        console.print(_line(f"{prefix} [yellow]CANCELLED[/] {event.kind} {event.job}",
                            f"[[yellow]STOPPED in {event.seconds:.2f}s[/]]"))
        console.print(Text(f"           {event.error}"))
    else:
        console.print(_line(f"{prefix} [yellow]SKIP[/] {event.kind} {event.job}", "[[yellow]SKIP[/]]"))
        console.print(Text(f"           {event.error}"))


def run_summary(summary: RunSummary) -> None:
    counts = {s: sum(e.status == s for e in summary.events) for s in ("success", "failed", "skipped", "cancelled")}
    console.print()
    console.print(f"Finished run {summary.run_id} of '{summary.workflow}': {len(summary.events)} jobs "
                  f"in {summary.seconds:.2f}s.")
    colour = "green" if summary.status == "success" else "red"
    console.print(f"[{colour}]{summary.status.upper()}[/]  PASS={counts['success']} ERROR={counts['failed']} "
                  f"SKIP={counts['skipped']}" + (f" CANCELLED={counts['cancelled']}" if counts["cancelled"] else ""))


def tables(entries: list[TableEntry], title: str = "Lakehouse tables") -> None:
    table = Table(title=title, title_justify="left")
    for col in ("layer", "table", "rows", "version", "location"):
        table.add_column(col, justify="right" if col in ("rows", "version") else "left",
                         no_wrap=col != "location", overflow="fold")
    for e in entries:
        table.add_row(*(Text(v) for v in (e.layer, e.name, f"{e.rows:,}", str(e.version), e.location)))
    console.print(table)


def arrow_table(data: Any, limit: int = 50) -> None:
    table = Table(show_lines=False)
    for name in data.column_names:
        table.add_column(name)
    for row in data.slice(0, limit).to_pylist():
        table.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
    console.print(table)
    if data.num_rows > limit:
        console.print(f"... {data.num_rows - limit:,} more rows")


def records(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(Text("" if r.get(c) is None else str(r.get(c))) for c in columns))
    console.print(table)


def error(message: str) -> None:
    err_console.print(Text.assemble(("Error:", "red"), " ", message), soft_wrap=True)


def info(message: str) -> None:
    console.print(message, soft_wrap=True)


def plain(text: str) -> None:
    """Data printed as is (a log may hold brackets that Rich would take for markup)."""
    console.print(Text(text), soft_wrap=True)

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
    from flowforge.quality.evaluate import TestResult
    from flowforge.quality.service import TestReport
    from flowforge.runner.executor import JobEvent, RunSummary

console: Console
err_console: Console


def open_consoles() -> None:
    """Make the consoles again for this process's streams and environment (terminal or not, width,
    NO_COLOR): a command forked by ``flowforge daemon`` did not start with the daemon's."""
    global console, err_console
    console = Console(highlight=False, soft_wrap=True)
    err_console = Console(stderr=True, highlight=False)


open_consoles()

_WIDTH = 68


def _now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def _line(left: str, right: str) -> str:
    """dbt-style: the left part padded with dots to a fixed column, then the bracketed status."""
    plain = Text.from_markup(left).plain
    return f"{left} {'.' * max(3, _WIDTH - len(plain))} {right}"


_bars: dict[str, Any] = {}


def _job_progress(event: JobEvent) -> None:
    """A progress bar for a long job, on a terminal only (logs and pipes get the job's log lines)."""
    if event.progress is None or not console.is_terminal:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done, total = event.progress
    if event.job not in _bars:
        bar = Progress(TextColumn(f"           {event.job}"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=console, transient=True)
        bar.start()
        _bars[event.job] = (bar, bar.add_task(event.job, total=total))
    bar, task = _bars[event.job]
    bar.update(task, completed=done, total=total)


def job_event(event: JobEvent) -> None:
    prefix = f"{_now()}  {event.index} of {event.total}"
    if event.status == "progress":
        _job_progress(event)
        return
    if event.job in _bars:
        _bars.pop(event.job)[0].stop()
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
            test_lines([x for x in event.tests if x.table == t.table])
    elif event.status == "failed":
        console.print(_line(f"{prefix} [red]ERROR[/] {event.kind} {event.job}",
                            f"[[red]FAIL in {event.seconds:.2f}s[/]]"))
        console.print(Text(f"           {event.error}", style="red"), soft_wrap=True)
        test_lines(list(event.tests))
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
    tests = [t for e in summary.events for t in e.tests]
    if tests:
        console.print(f"Tests: {test_counts(tests)}")


_TEST_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red", "skip": "yellow"}


def test_lines(results: list[Any], indent: str = "             ") -> None:
    """One line per test result: status, test name, and what it found when it did not pass."""
    for r in results:
        line = Text(indent)
        line.append(f"{r.status.upper():<5}", style=_TEST_STYLE.get(r.status, ""))
        line.append(f" {r.test}")
        if r.status != "pass":
            line.append(f": {r.message}")
        console.print(line, soft_wrap=True)


def test_counts(results: list[Any]) -> str:
    """dbt's summary: PASS=n WARN=n ERROR=n (a failed test counts as an error, as in dbt)."""
    n = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail", "error")}
    return f"PASS={n['pass']} WARN={n['warn']} ERROR={n['fail'] + n['error']}"


def test_result(n: int, table: str, r: TestResult, seconds: float) -> None:
    """dbt-style: ``12:00:01  3 PASS unique(order_id) on silver_orders ..... [PASS in 0.02s]``."""
    word, style = r.status.upper(), _TEST_STYLE.get(r.status, "")
    count = f" {r.failing_rows:,}" if r.status in ("warn", "fail") and r.failing_rows else ""
    left = Text(f"{_now()}  {n} ")
    left.append(word, style=style)
    left.append(f" {r.test} on {table}")
    right = Text("[")
    right.append(f"{word}{count}", style=style)
    right.append(f" in {seconds:.2f}s]")
    console.print(Text.assemble(left, " " + "." * max(3, _WIDTH - len(left.plain)) + " ", right), soft_wrap=True)
    if r.status not in ("pass", "skip"):
        console.print(Text(f"           {r.message}"), soft_wrap=True)
        for row in r.sample[:3]:
            console.print(Text(f"           e.g. {row}"), soft_wrap=True)


def tests_done(report: TestReport) -> None:
    c = report.counts
    console.print(f"\nFinished running {len(report.results)} test(s) in {report.seconds:.2f}s.")
    console.print(f"Done. PASS={c['pass']} WARN={c['warn']} ERROR={c['error']} SKIP={c['skip']} "
                  f"TOTAL={len(report.results)}")


def plain(text: str) -> None:
    """Text exactly as given (YAML, SQL): never read as markup."""
    console.print(Text(text), soft_wrap=True)


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




def warn(message: str) -> None:
    err_console.print(Text.assemble(("Warning:", "yellow"), " ", message), soft_wrap=True)

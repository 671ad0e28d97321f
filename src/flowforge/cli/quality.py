"""``flowforge test``, ``flowforge quarantine list|show|replay`` and ``flowforge import dbt-tests``."""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowforge.cli.common import _context

if TYPE_CHECKING:
    from flowforge.quality.evaluate import TestResult
    from flowforge.quality.tables import TestedTable

quarantine_app = typer.Typer(help="Rows held back by tests with severity 'quarantine'.", no_args_is_help=True)
import_app = typer.Typer(help="Bring definitions over from other tools.", no_args_is_help=True)

def test_command(workflow: Annotated[str | None, typer.Argument(help="Workflow name or YAML path (default: every "
                                                                     "workflow of the project).")] = None,
                 select: Annotated[list[str] | None, typer.Option("--select", "-s", help="Only this table (repeat "
                                                                  "it for more).")] = None) -> None:
    """Run the tests declared on the tables, against their committed data, without writing any table."""
    from flowforge.cli import output

    counter = {"n": 0}

    def show(target: "TestedTable", results: "list[TestResult]", seconds: float) -> None:
        for r in results:
            counter["n"] += 1
            output.test_result(counter["n"], target.table, r, seconds)

    with _context() as ctx:
        report = ctx.quality.test(workflow, select or (), on_table=show)
    output.tests_done(report)
    if not report.ok:
        raise typer.Exit(1)


@quarantine_app.command("list")
def quarantine_list() -> None:
    """Every quarantine table: rows pending, replayed and superseded, and the tests that caught them."""
    from flowforge.cli import output

    with _context() as ctx:
        found = ctx.quality.quarantines()
    rows = [{"table": s.table, "layer": s.layer, "pending": s.pending, "replayed": s.replayed,
             "superseded": s.superseded, "last": f"{s.last_at:%Y-%m-%d %H:%M:%S}" if s.last_at else "",
             "failed tests": ", ".join(f"{t} ({n})" for t, n in list(s.tests.items())[:3])} for s in found]
    if not rows:
        output.info("No quarantined rows: no table has a test with severity 'quarantine' that caught a row.")
        return
    output.records(rows, ["table", "layer", "pending", "replayed", "superseded", "last", "failed tests"],
                   title="Quarantine")


@quarantine_app.command("show")
def quarantine_show(table: Annotated[str, typer.Argument(help="The data table (or its __quarantine table).")],
                    limit: Annotated[int, typer.Option(help="Rows to print.")] = 20,
                    test: Annotated[str | None, typer.Option(help="Only rows that failed this test.")] = None,
                    all_rows: Annotated[bool, typer.Option("--all", help="Replayed and superseded rows too.")]
                    = False) -> None:
    """The quarantined rows of a table, newest first, with the tests they failed and the run that held them."""
    from flowforge.cli import output

    with _context() as ctx:
        s = ctx.quality.quarantine(table)
        rows = ctx.quality.quarantine_rows(table, limit=limit, status="all" if all_rows else "pending", test=test)
    output.info(f"{s.table} ({s.layer}): {s.pending:,} pending, {s.replayed:,} replayed, {s.superseded:,} superseded")
    if not rows:
        output.info("No rows to show.")
        return
    for n, r in enumerate(rows, start=1):
        status = f" · {r.get('_replay_status')}" if r.get("_replay_status") else ""
        output.plain(f"\n{n}. quarantined {r.get('_quarantined_at')} by run {r.get('_quarantine_run_id')}{status} · "
                     f"failed: {', '.join(r.get('_quarantine_failed_tests') or [])}")
        for key, value in r.items():
            if not key.startswith(("_quarantine", "_replay")):
                output.plain(f"   {key}: {value}")


@quarantine_app.command("replay")
def quarantine_replay(table: Annotated[str, typer.Argument(help="The data table whose quarantined rows to "
                                                           "re-check.")]) -> None:
    """Re-check quarantined rows with the table's current tests and merge the ones that pass, exactly once."""
    from flowforge.cli import output

    with _context() as ctx:
        r = ctx.quality.replay(table)
    if r.recovered:
        output.info(f"Finished an interrupted replay of {r.recovered:,} row(s).")
    output.info(f"{r.table}: re-checked {r.checked:,} quarantined row(s): {r.replayed:,} replayed"
                + (f" into version {r.version}" if r.version is not None else "")
                + f", {r.still_failing:,} still failing, {r.superseded:,} superseded by newer data.")
    for res in r.results:
        if res.status != "pass":
            output.info(f"  {res.test}: {res.message}")


@import_app.command("dbt-tests")
def import_dbt_tests(schema: Annotated[Path, typer.Argument(help="A dbt schema file, e.g. models/schema.yml.")],
                     into: Annotated[str | None, typer.Option("--into", help="Write the tests into this workflow's "
                                                              "file, next to its tables.")] = None,
                     table: Annotated[list[str] | None, typer.Option("--table", help="model=table: the FlowForge "
                                                                     "table of a dbt model (repeat it).")] = None
                     ) -> None:
    """Translate dbt tests (not_null, unique, accepted_values, relationships, dbt_utils...) into FlowForge tests."""
    from flowforge.cli import output

    bad = [t for t in table or [] if "=" not in t]
    if bad:
        output.error(f"--table takes model=table, got '{bad[0]}'")
        raise typer.Exit(2)
    mapping = dict(t.split("=", 1) for t in table or [])
    with _context() as ctx:
        result = ctx.quality.import_dbt(schema, workflow=into, tables=mapping)
    if result.written:
        output.info(f"Added {result.added} test(s) to {result.written} (the file is rewritten: comments are not "
                    f"kept). Check them with: flowforge test {into}")
    else:
        output.plain(result.yaml())
        output.info(f"{result.count} test(s) translated; paste each block under its table, or use --into WORKFLOW.")
    for s in result.skipped:
        where = f"{s.model}.{s.column}" if s.column else s.model
        output.info(f"not translated: {s.test} on {where}: {s.reason}")

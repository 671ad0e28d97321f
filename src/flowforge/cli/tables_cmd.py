"""``flowforge cdc reset``, ``flowforge optimize`` and ``flowforge vacuum``: CDC positions and table
maintenance, each a few lines over the Context's ``cdc`` and ``maintenance`` services."""


from typing import Annotated

import typer

from flowforge.cli.common import _context

cdc_app = typer.Typer(help="Change data capture jobs.", no_args_is_help=True)
tables_app = typer.Typer(help="The lakehouse catalog: tables by layer with rows, Delta version and location "
                              "('tables show <name>' for one table).", invoke_without_command=True)


@tables_app.command("show")
def table_show(name: Annotated[str, typer.Argument(help="Table name.")],
               sample: Annotated[int, typer.Option(help="Sample rows to show.")] = 5) -> None:
    """One table: columns (marking those the source dropped), schema changes, history, sample rows."""
    from flowforge.cli import output

    with _context() as ctx:
        d = ctx.table_detail(name, sample)
    output.info(f"[bold]{d.layer}.{d.name}[/]  {d.rows} rows, version {d.version}, {d.location}")
    output.records([{"column": c["name"], "type": c["type"], "nullable": c["nullable"],
                     "status": (f"dropped since {c.get('dropped_at')}" + (f" (renamed to {c['renamed_to']}?)"
                                                                          if c.get("renamed_to") else ""))
                     if c.get("dropped") else ""} for c in d.columns],
                   ["column", "type", "nullable", "status"], title="Columns")
    if d.schema_changes:
        output.records([{k: e.get(k) for k in ("at", "run_id", "column", "change", "old", "new")}
                        for e in d.schema_changes[-10:]], ["at", "run_id", "column", "change", "old", "new"],
                       title="Schema changes")
    output.records([{"version": h.version, "at": h.timestamp, "operation": h.operation, "rows": h.rows_added}
                    for h in d.history[:10]], ["version", "at", "operation", "rows"], title="History")
    if d.sample:
        output.records([dict(r) for r in d.sample], list(d.sample[0]), title="Sample")


@cdc_app.command("reset")
def cdc_reset(workflow: Annotated[str, typer.Argument(help="Workflow name.")],
              job: Annotated[str, typer.Argument(help="The cdc job of that workflow.")]) -> None:
    """Forget a CDC job's source position: the next run takes a new snapshot (a new replication
    slot on PostgreSQL) that replaces what silver holds. The way out when the slot is gone or the
    binlog was purged."""
    from flowforge.cli import output

    with _context() as ctx:
        output.info(ctx.cdc.reset(workflow, job).message)


def optimize(tables: Annotated[list[str] | None, typer.Argument(help="Tables (default: every table).")] = None
             ) -> None:
    """Compact small files into large ones (Delta OPTIMIZE) and write a checkpoint."""
    from flowforge.cli import output

    with _context() as ctx:
        done = ctx.maintenance.optimize(tables or None)
    output.records([{"table": d.table, "layer": d.layer, "result": d.detail} for d in done],
                   ["table", "layer", "result"], title="Optimize")


def vacuum(tables: Annotated[list[str] | None, typer.Argument(help="Tables (default: every table).")] = None,
           retention: Annotated[str | None, typer.Option(help="Only files older than this (36h, 7d, 2w; default "
                                                                "the project's maintenance.vacuum_retention).")]
           = None,
           retention_hours: Annotated[float | None, typer.Option("--retention-hours", help="The retention in "
                                                                 "hours (at least 1), instead of --retention.")]
           = None,
           versions: Annotated[bool, typer.Option("--versions", help="Also delete the files of versions older "
                                                                      "than the retention (time travel to them "
                                                                      "ends).")] = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go, delete nothing.")] = False
           ) -> None:
    """Delete files no commit references (left by killed runs) and never-committed table folders;
    with --versions, old versions' files too."""
    from flowforge.cli import output

    if retention_hours is not None:
        if retention is not None:
            output.error("give --retention or --retention-hours, not both")
            raise typer.Exit(2)
        retention = f"{retention_hours:g}h"
    with _context() as ctx:
        done = ctx.maintenance.vacuum(tables or None, retention=retention, versions=versions, dry_run=dry_run)
    output.records([{"table": d.table, "layer": d.layer, "result": ("would be: " if dry_run else "") + d.detail}
                    for d in done], ["table", "layer", "result"], title="Vacuum")

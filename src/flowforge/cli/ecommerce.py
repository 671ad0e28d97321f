"""``flowforge demo ecommerce`` and ``flowforge export`` (registered on the app in ``main.py``)."""


import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flowforge.cli.common import _context, _guard, _state


def demo_ecommerce(
    directory: Annotated[Path, typer.Option("--dir", help="Demo project directory.")] = Path("flowforge-ecommerce"),
    postgres: Annotated[str | None, typer.Option(help="Load the source into schema 'ecommerce' of this PostgreSQL "
                                                 "URL (the warehouse is schema 'warehouse' there); default: SQLite "
                                                 "file <dir>/data/shop.db and no warehouse.")] = None,
    scale: Annotated[float, typer.Option(help="Data scale (1 = the seed's 644,489 rows; 0.05 for a quick look).")]
    = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data (and same changes).")] = 42,
    change: Annotated[bool, typer.Option("--change", help="Apply one day of inserts and updates to the existing "
                                         "demo source instead (segment and price changes included).")] = False,
    source_only: Annotated[bool, typer.Option("--source-only", help="Only generate the source and the project "
                                              "files; do not run the workflow.")] = False,
) -> None:
    """Seed 003's e-commerce system: 8 OLTP tables, the ecommerce_analytics workflow (bronze, silver,
    star schema with SCD2 dimensions, marts, staging snapshots, BI warehouse), run once."""
    from flowforge.cli import output

    if change:
        with _context(directory) as ctx:
            summary = ctx.change_ecommerce_source(seed)
        output.info(f"Changed the source for {summary.describe()}\n"
                    f"Load it: flowforge -p {directory} run ecommerce_analytics")
        return
    from flowforge.demo.ecommerce_project import WORKFLOW, setup_ecommerce_project

    output.info(f"Generating the e-commerce source (scale {scale:g}, seed {seed}) for {directory.resolve()} ...")
    project = _guard(lambda: setup_ecommerce_project(directory, scale=scale, seed=seed, postgres_url=postgres))
    load = project.load
    output.info(f"{load.total:,} rows in {load.seconds:.2f}s ({load.target}): "
                + ", ".join(f"{t} {n:,}" for t, n in load.rows.items()))
    if source_only:
        output.info(f"Workflow: {project.workflow}\nRun it: flowforge -p {directory} run {WORKFLOW}")
        return
    with _context(directory) as ctx:
        summary = ctx.run(WORKFLOW, on_event=output.job_event)
        output.run_summary(summary)
        gold = [{"table": t.name, "rows": f"{t.rows:,}", "version": t.version} for t in ctx.tables("gold")]
        output.records(gold, ["table", "rows", "version"], title="\nGold tables")
    warehouse = ("\nThe warehouse for Metabase/Superset/Power BI: schema 'warehouse' of the --postgres database."
                 if project.warehouse else "")
    output.info(
        f"{warehouse}\nSee the dashboards:\n  cd {directory} && FLOWFORGE_ADMIN_PASSWORD=choose-one flowforge serve"
        f"\n  then open http://127.0.0.1:8080/ui/dashboards (user admin)\n"
        f"Change the source and load incrementally:\n  flowforge demo ecommerce --dir {directory} --change && "
        f"flowforge -p {directory} run {WORKFLOW}")
    if summary.status != "success":
        raise typer.Exit(1)


def export(
    source: Annotated[str, typer.Option("--from", help="Connection name or URL, or a lakehouse layer: bronze, "
                                        "silver, gold.")],
    to: Annotated[str, typer.Option(help="Folder under a data root (relative to the project) or "
                                    "s3://bucket/prefix.")],
    tables: Annotated[str | None, typer.Option(help="Comma-separated tables (default: all of the connection's "
                                               "schema, or of the layer).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    date: Annotated[str | None, typer.Option(help="Snapshot date YYYY-MM-DD (default: today).")] = None,
    if_exists: Annotated[str | None, typer.Option(help="replace (local default), new_attempt (s3 default) or "
                                                  "fail, when the day already has a snapshot.")] = None,
    parallel: Annotated[int, typer.Option(help="Tables written at once (PostgreSQL and lakehouse sources).")] = 2,
    storage: Annotated[list[str] | None, typer.Option("--storage", help="KEY=VALUE object_store option for an "
                                                      "s3:// target (repeat it); default: the project's.")] = None,
) -> None:
    """A dated staging snapshot: <to>/snapshot_date=YYYY-MM-DD/<table>.<ext>, _metadata.json, then _SUCCESS."""
    from flowforge.cli import output
    from flowforge.errors import ConfigError
    from flowforge.export.service import ExportRequest

    def request() -> ExportRequest:
        malformed = [p for p in (storage or []) if "=" not in p]
        if malformed:
            raise ConfigError(f"--storage takes KEY=VALUE, got {malformed[0]!r}")
        if if_exists not in (None, "replace", "new_attempt", "fail"):
            raise ConfigError(f"--if-exists {if_exists!r}: use replace, new_attempt or fail.")
        try:
            day = dt.date.fromisoformat(date) if date else None
        except ValueError:
            raise ConfigError(f"--date {date!r} is not a date like 2025-12-05.") from None
        options = None
        if storage:
            from flowforge.storage.options import normalize_options

            options = normalize_options(dict(p.split("=", 1) for p in storage), "storage option")
        return ExportRequest(source=source, to=to, tables=tuple(t.strip() for t in (tables or "").split(",")
                                                                 if t.strip()),
                             format=fmt, day=day, if_exists=if_exists, parallel=max(1, parallel),  # type: ignore[arg-type]
                             storage_options=options)

    req = _guard(request)
    with _context(_state["project"]) as ctx:
        result = ctx.export(req, on_file=lambda f: output.info(f"  {f.file}: {f.rows:,} rows, {f.bytes:,} bytes"))
    output.info(f"Snapshot {result.location} ({result.consistency}, attempt {result.attempt}): "
                f"{len(result.files)} files, {result.rows:,} rows in {result.seconds:.2f}s; _SUCCESS written.")

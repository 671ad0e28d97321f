"""The ``flowforge`` command. Each command is a few lines over the Context facade; heavy
libraries load inside commands so ``flowforge --help`` stays fast.

The command modules do without ``from __future__ import annotations``: typer reads every
command's annotations at each start, and string annotations it evaluates twice (~0.03 s for the
CLI's hundred-odd commands). Names imported only for type checking are quoted where used."""


from pathlib import Path
from typing import Annotated, Any

import typer

from flowforge.cli import schedule
from flowforge.cli.alerts import alerts_app
from flowforge.cli.common import ProjectOpt, _context, _guard, _state
from flowforge.cli.connections import connections_app
from flowforge.cli.daemon_cmd import daemon_app
from flowforge.cli.ecommerce import demo_ecommerce
from flowforge.cli.ecommerce import export as export_snapshot
from flowforge.cli.quality import import_app, quarantine_app, test_command
from flowforge.cli.search import product_search_demo, search
from flowforge.cli.serve import serve
from flowforge.cli.tables_cmd import cdc_app, optimize, tables_app, vacuum
from flowforge.cli.users import users_app

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="FlowForge: lakehouse pipelines from databases and files to bronze, silver and gold.")
demo_app = typer.Typer(help="The BFSI Customer 360 demo.", invoke_without_command=True)
templates_app = typer.Typer(help="Workflow templates.", no_args_is_help=True)
workflows_app = typer.Typer(help="Workflows of this project.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(templates_app, name="templates")
app.add_typer(workflows_app, name="workflows")
app.add_typer(connections_app, name="connections")
app.add_typer(users_app, name="users")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(import_app, name="import")


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
         project: ProjectOpt = None) -> None:
    _state["debug"] = debug
    _state["project"] = project


# -- project ---------------------------------------------------------------------------

@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
         force: Annotated[bool, typer.Option(help="Overwrite scaffold files.")] = False) -> None:
    """Scaffold a project: flowforge.yml, workflows/example.yml and a sample CSV."""
    from flowforge.cli import output
    from flowforge.core.project import init_project

    result = _guard(lambda: init_project(directory, force=force))
    for path in result.created:
        output.info(f"created {path}")
    output.info(f"\nNext: cd {result.project_dir} && flowforge run example")


@app.command()
def validate(workflow: Annotated[str, typer.Argument(help="Workflow name or YAML path.")]) -> None:
    """Check a workflow file, its connections and table references without running it."""
    from flowforge.cli import output
    from flowforge.layers.discovery import describe

    with _context() as ctx:
        wf = ctx.validate(workflow)
        plans = ctx.onboarding.plan(wf)
        found = sum(1 for tables in plans.values() for f in tables if not f.listed)
        output.info(f"[green]OK[/] workflow '{wf.name}': {len(wf.jobs)} jobs, "
                    f"{sum(len(j.outputs()) for j in wf.jobs) + found} tables")
        for job, tables in plans.items():
            output.info(f"job '{job}' lands {len(tables)} table(s):")
            for line in describe(tables):
                output.plain(f"  {line}")


@app.command()
def run(workflow: Annotated[str, typer.Argument(help="Workflow name (workflows/<name>.yml) or YAML path.")],
        follow: Annotated[bool, typer.Option("--follow", help="Run the cdc jobs in micro-batches until Ctrl-C.")]
        = False,
        interval: Annotated[float | None, typer.Option(help="Seconds between micro-batches (--follow).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Run even if the workflow is paused, and recompute "
                                                           "gold tables whose inputs did not change.")] = False,
        job: Annotated[list[str] | None, typer.Option("--job", help="Run only this job (repeat it for more).")]
        = None,
        full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild the tables from their sources "
                                                   "(one overwrite commit each: history and time travel are kept).")]
        = False,
        select: Annotated[list[str] | None, typer.Option("--select", help="With --full-refresh: only these tables "
                                                         "and what depends on them (repeat it, or separate with "
                                                         "commas).")] = None,
        ) -> None:
    """Run a workflow: jobs in dependency order, incremental where configured. While another run of it is
    in progress this one waits (concurrency: queue), or is skipped or refused (skip, fail). A table whose
    settings changed since its last commit is rebuilt, or the run says what needs --full-refresh."""
    from flowforge.cli import output
    from flowforge.runner.executor import WorkflowBusy

    if follow and (full_refresh or select):
        output.error("--full-refresh and --select rebuild tables once; run them without --follow")
        raise typer.Exit(2)
    if follow:
        with _context() as ctx:
            ctx.follow(workflow, interval=interval, on_event=output.job_event, on_wait=output.info)
        return
    with _context() as ctx:
        try:
            tables = [t.strip() for item in select or () for t in item.split(",") if t.strip()] or None
            summary = ctx.run(workflow, on_event=output.job_event, force=force, select=job, on_wait=output.info,
                              full_refresh=full_refresh, tables=tables)
        except WorkflowBusy as exc:
            if not exc.skipped:
                raise
            output.info(str(exc))
            return
        output.run_summary(summary)
    if summary.status != "success":
        raise typer.Exit(1)


@app.command()
def runs(workflow: Annotated[str | None, typer.Argument(help="Only this workflow.")] = None,
         limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
         run_id: Annotated[int | None, typer.Option("--id", help="Show one run in detail.")] = None,
         status: Annotated[str | None, typer.Option(help="Only runs with this status (queued, running, "
                                                    "success, failed, partial, cancelled).")] = None,
         trigger: Annotated[str | None, typer.Option(help="Only runs started this way (manual, schedule, "
                                                     "after, files, backfill, rerun, follow, api, ui).")] = None,
         ) -> None:
    """Run history, or one run's jobs with rows, timings, errors and logs. A run whose process is gone
    shows as failed (abandoned), never as running."""
    from flowforge.cli import output

    with _context() as ctx:
        if run_id is not None:
            r = ctx.run_detail(run_id)
            extra = "".join([f", slot {r.slot:%Y-%m-%d %H:%M} UTC" if r.slot else "",
                             f", rerun of {r.parent_run_id}" if r.parent_run_id else ""])
            output.info(f"Run {r.id} of '{r.workflow_name}': {r.status_label} ({r.trigger}, by {r.actor}{extra}), "
                        f"started {r.started_at:%Y-%m-%d %H:%M:%S}")
            if r.error:
                output.info(r.error)
            rows = [{"job": j.job_name, "status": j.status, "read": j.rows_read, "written": j.rows_written,
                     "dropped": j.rows_dropped, "quarantined": j.rows_quarantined,
                     "seconds": _seconds(j.started_at, j.ended_at), "error": j.error} for j in r.job_runs]
            checked = any(j.rows_dropped or j.rows_quarantined for j in r.job_runs)
            output.records(rows, ["job", "status", "read", "written", *(["dropped", "quarantined"] * checked),
                                  "seconds", "error"])
            alerts = ctx.alerts.for_run(r.id)
            if alerts:
                output.records([{"alert": a.event, "channel": a.channel, "status": a.status, "detail": a.detail,
                                 "at": f"{a.at:%Y-%m-%d %H:%M:%S}"} for a in alerts],
                               ["alert", "channel", "status", "detail", "at"], title="Alerts")
            for j in r.job_runs:
                if j.log:
                    output.info(f"\n[bold]{j.job_name}[/]")
                    output.plain(j.log)
            return
        rows = [{"id": r.id, "workflow": r.workflow_name, "status": r.status_label, "trigger": r.trigger,
                 "started": f"{r.started_at:%Y-%m-%d %H:%M:%S}", "seconds": _seconds(r.started_at, r.ended_at),
                 "read": r.rows_read, "written": r.rows_written}
                for r in ctx.runs(workflow, limit, status=status, trigger=trigger)]
        output.records(rows, ["id", "workflow", "status", "trigger", "started", "seconds", "read", "written"],
                       title="Runs")


def _seconds(start: Any, end: Any) -> str:
    return f"{(end - start).total_seconds():.2f}" if start and end else ""


@tables_app.callback()
def tables(cli: typer.Context, layer: Annotated[str | None, typer.Option(help="bronze, silver or gold")] = None
           ) -> None:
    """The lakehouse catalog: tables by layer with rows, Delta version and location ('tables show
    <name>' for one table's columns and history)."""
    from flowforge.cli import output

    if cli.invoked_subcommand is not None:
        return
    with _context() as ctx:
        output.tables(ctx.tables(layer))


@app.command()
def query(sql: Annotated[str, typer.Argument(help="A SELECT over lakehouse tables, by name.")],
          limit: Annotated[int, typer.Option(help="Rows to print.")] = 50) -> None:
    """Query lakehouse tables with SQL (DuckDB dialect)."""
    from flowforge.cli import output

    with _context() as ctx:
        output.arrow_table(ctx.query(sql), limit)


@app.command()
def lineage(workflow: Annotated[str, typer.Argument(help="Workflow name, or TABLE.COLUMN for column lineage.")],
            indirect: Annotated[bool, typer.Option(help="Column lineage: also the key, join and filter columns "
                                                        "that shape the tables on the path.")] = False,
            as_json: Annotated[bool, typer.Option("--json", help="Column lineage as JSON.")] = False) -> None:
    """Table lineage of a workflow (source → bronze → silver → gold), or where one column comes from and
    goes to: flowforge lineage gold_customer_360.total_balance"""
    from flowforge.cli import output

    if "." in workflow:
        from flowforge.cli.lineage import column_lineage

        column_lineage(workflow, indirect=indirect, as_json=as_json)
        return
    with _context() as ctx:
        graph = ctx.lineage(workflow)
        nodes = {n["id"]: n for n in graph["nodes"]}
        for e in graph["edges"]:
            target = nodes[e["target"]]
            rows = f" ({target['rows']:,} rows)" if target.get("rows") is not None else ""
            output.info(f"{e['source']}  →  [{target['type']}] {e['target']}{rows}")


# -- workflows and templates --------------------------------------------------------------

@workflows_app.command("list")
def workflows_list() -> None:
    """Workflow files of the project and their last run."""
    from flowforge.cli import output

    with _context() as ctx:
        rows = []
        for path in ctx.workflow_files():
            last = ctx.runs(path.stem, 1)
            rows.append({"workflow": path.stem, "file": str(path),
                         "last run": f"{last[0].status} at {last[0].started_at:%Y-%m-%d %H:%M}" if last else ""})
        output.records(rows, ["workflow", "file", "last run"], title="Workflows")


@templates_app.command("list")
def templates_list(industry: Annotated[str | None, typer.Option()] = None,
                   category: Annotated[str | None, typer.Option()] = None) -> None:
    """Templates, filtered by industry or category."""
    from flowforge.cli import output
    from flowforge.templates.registry import list_templates

    rows = [{"name": t.name, "title": t.title, "industry": t.industry, "category": t.category,
             "description": t.description} for t in list_templates(industry, category)]
    output.records(rows, ["name", "title", "industry", "category", "description"], title="Templates")


@templates_app.command("use")
def templates_use(name: Annotated[str, typer.Argument(help="Template name.")],
                  param: Annotated[list[str] | None, typer.Option("--param", help="key=value")] = None,
                  tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat it); replaces the "
                                                                "template's tags.")] = None,
                  table: Annotated[list[str] | None, typer.Option("--table", help="old=new: rename a table the "
                                                                  "template writes (repeat it).")] = None) -> None:
    """Create workflows/<workflow_name>.yml from a template; warns when another workflow already writes
    one of its tables."""
    from flowforge.cli import output

    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    tables = dict(t.split("=", 1) for t in (table or []) if "=" in t)
    with _context() as ctx:
        plan = ctx.authoring.template_plan(name, params, tags=tag, tables=tables)
        path = ctx.instantiate_template(name, params, tags=tag, tables=tables or None)
        for warning in plan.warnings:
            output.warn(warning)
        output.info(f"created {path}\nNext: flowforge run {path.stem}")


# -- the demo ---------------------------------------------------------------------------------

@demo_app.callback()
def demo(typer_ctx: typer.Context,
         directory: Annotated[Path, typer.Option("--dir", help="Demo project directory.")] = Path("flowforge-demo"),
         scale: Annotated[float, typer.Option(help="Data scale factor (1 = 500 customers).")] = 1.0,
         seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 42,
         postgres: Annotated[str | None, typer.Option(help="Load the source into this PostgreSQL URL instead "
                                                      "of SQLite.")] = None,
         lakehouse: Annotated[str | None, typer.Option(help="Put the Delta tables here instead of <dir>/lakehouse: "
                                                       "a path or s3://bucket/prefix.")] = None,
         storage: Annotated[list[str] | None, typer.Option(
             "--storage", help="KEY=VALUE object_store option for an s3:// lakehouse, e.g. "
                               "aws_endpoint=http://127.0.0.1:9000 (repeat it). Credentials may instead come "
                               "from AWS_* variables.")] = None) -> None:
    """Generate the BFSI source and CRM CSV, create the Customer 360 workflow and run it."""
    if typer_ctx.invoked_subcommand is not None:
        return
    from flowforge.cli import output
    from flowforge.core.project import setup_demo_project

    malformed = [p.split("=", 1)[0] for p in (storage or []) if "=" not in p]
    if malformed:
        output.error(f"--storage takes KEY=VALUE, got '{malformed[0]}'")
        raise typer.Exit(2)
    options = dict(p.split("=", 1) for p in (storage or []))
    output.info(f"Generating BFSI demo data (scale {scale}, seed {seed}) in {directory.resolve()} ...")
    _guard(lambda: setup_demo_project(directory, scale=scale, seed=seed, postgres_url=postgres,
                                      lakehouse=lakehouse, storage_options=options))
    with _context(directory) as ctx:
        summary = ctx.run("bfsi_customer_360", on_event=output.job_event)
        output.run_summary(summary)
        output.tables(ctx.tables(), title="\nTables")
        gold = ctx.store.location("gold", "gold_customer_360")
    root = directory.resolve()
    reopen = (f"deltalake.DeltaTable('{gold}')" if "://" not in gold else
              f"deltalake.DeltaTable('{gold}', storage_options={{...}})")
    output.info(
        f"\nQuery them:\n  cd {root}\n"
        f"  flowforge query \"SELECT customer_segment, count(*), sum(total_balance) FROM gold_customer_360 "
        f"GROUP BY 1\"\n"
        f"  python -c \"import deltalake; print({reopen}.to_pyarrow_table().num_rows)\"\n"
        f"Change the source and load incrementally:\n  flowforge demo change --dir {directory} && "
        f"flowforge -p {directory} run bfsi_customer_360")
    if summary.status != "success":
        raise typer.Exit(1)


@demo_app.command("change")
def demo_change(directory: Annotated[Path, typer.Option("--dir", help="Demo project directory.")]
                = Path("flowforge-demo"),
                seed: Annotated[int, typer.Option(help="Seed of this round of changes.")] = 7) -> None:
    """Insert and update rows in the demo source so the next run loads them incrementally."""
    from flowforge.cli import output

    with _context(directory) as ctx:
        s = ctx.change_demo_source(seed)
        output.info(f"Changed the source: customers {s.customers_inserted} inserted, {s.customers_updated} "
                    f"updated; accounts {s.accounts_inserted} inserted, {s.accounts_updated} updated; "
                    f"transactions {s.transactions_inserted} inserted.\n"
                    f"Load them: flowforge -p {directory} run bfsi_customer_360")


@app.command()
def ingest(source: Annotated[str, typer.Option("--from", help="Connection name or URL (postgresql://, sqlite:///...).")],
           table: Annotated[str | None, typer.Option(help="Table to land.")] = None,
           query: Annotated[str | None, typer.Option(help="Read-only query to land instead of a table.")] = None,
           files: Annotated[str | None, typer.Option(help="File name or glob of a files connection "
                                                           "('orders*.csv').")] = None,
           target: Annotated[str | None, typer.Option(help="Bronze table name (default bronze_<table>).")] = None,
           into: Annotated[str | None, typer.Option(help="Lakehouse root (default: the project's).")] = None,
           all_tables: Annotated[bool, typer.Option("--all", help="Land every table of the source, each in "
                                                    "bronze_<table>, incremental where an update column is found.")]
           = False,
           include: Annotated[list[str] | None, typer.Option(help="With --all: only tables matching this glob "
                                                             "(repeat it for more).")] = None,
           exclude: Annotated[list[str] | None, typer.Option(help="With --all: leave out tables matching this glob "
                                                             "(repeat it for more).")] = None,
           target_template: Annotated[str, typer.Option(help="With --all: the bronze name of each table "
                                                        "({table}, {schema}).")] = "bronze_{table}") -> None:
    """Land one table, query or file pattern in bronze — or, with --all, every table of the source —
    outside any workflow (onboarding, scripting, benchmarking)."""
    from flowforge.cli import output
    from flowforge.settings import Settings

    many = all_tables or bool(include) or bool(exclude)
    if many and (table or query or files or target):
        output.error("--all, --include and --exclude land every matching table; leave out --table, --query, "
                     "--files and --target")
        raise typer.Exit(2)
    if not many and sum(x is not None for x in (table, query, files)) != 1:
        output.error("give exactly one of --table, --query or --files, or --all")
        raise typer.Exit(2)
    settings = _guard(lambda: Settings.load(_state["project"]))
    if into:
        settings = settings.model_copy(update={"lakehouse": into})
    with _context(settings=settings) as ctx:
        if many:
            summary = ctx.onboarding.ingest_all(source, include=include or (), exclude=exclude or (),
                                                target_template=target_template, on_event=output.job_event)
            for job in ctx.run_detail(summary.run_id).job_runs:  # what was found, and how each table went
                if job.log:
                    output.plain(job.log)
        else:
            summary = ctx.ingest(source, table=table, query=query, files=files, target=target,
                                 on_event=output.job_event)
    output.run_summary(summary)
    if summary.status != "success":
        raise typer.Exit(1)


demo_app.command("product-search")(product_search_demo)  # defined in cli/search.py
app.command()(search)
demo_app.command("ecommerce")(demo_ecommerce)  # defined in cli/ecommerce.py
app.command("export")(export_snapshot)
app.command("test")(test_command)  # defined in cli/quality.py, with quarantine and import
app.command()(schedule.schedules)  # cli/schedule.py: triggers, the scheduler, workers and run control
app.command()(schedule.scheduler)
app.command()(schedule.worker)
app.command()(schedule.cancel)
app.command()(schedule.rerun)
app.command()(schedule.backfill)
app.add_typer(alerts_app, name="alerts")
app.add_typer(cdc_app, name="cdc")
app.add_typer(tables_app, name="tables")
app.add_typer(daemon_app, name="daemon")
app.command()(optimize)
app.command()(vacuum)
app.command()(serve)  # defined in cli/serve.py; registered last so it lists after the data commands


if __name__ == "__main__":  # python -m flowforge.cli.main, as well as python -m flowforge
    app(prog_name="flowforge")

"""Commands for runs that run themselves and their control: ``schedules``, ``scheduler``, ``worker``,
``cancel``, ``rerun`` and ``backfill``. Each is a few lines over the Context facade."""


import datetime as dt
from typing import Annotated

import typer

from flowforge.cli.common import _context


def schedules(workflow: Annotated[str | None, typer.Argument(help="Only this workflow.")] = None,
              count: Annotated[int, typer.Option(help="How many next fire times.")] = 5) -> None:
    """Triggers of every workflow with their next fire times (UTC and the trigger's time zone)."""
    from flowforge.cli import output

    with _context() as ctx:
        items = ctx.schedules.overview(workflow, count)
    if not items:
        output.info("No workflow has a trigger. Add 'triggers:' (cron, every, after, files, continuous) to one.")
        return
    rows = []
    for t in items:
        zone = _zone(t.timezone)
        upcoming = [f"{_stamp(n)} UTC" + (f" ({n.astimezone(zone):%H:%M %Z})" if zone else "") for n in t.next_fires]
        rows.append({"workflow": t.workflow, "#": t.index, "trigger": t.description, "catchup": t.catchup or "",
                     "status": t.status, "next fires": "\n".join(upcoming) or ("(paused)" if t.status == "paused"
                                                                             else "(on events)"),
                     "last fire": f"{t.last_fire:%Y-%m-%d %H:%M} {t.last_status}" if t.last_fire else ""})
    output.records(rows, ["workflow", "#", "trigger", "catchup", "status", "next fires", "last fire"],
                   title="Schedules")


def _stamp(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment.second else f"{moment:%Y-%m-%d %H:%M}"


def _zone(name: str | None) -> dt.tzinfo | None:
    from flowforge.runner.cron import zone

    return zone(name) if name and name.upper() != "UTC" else None


def scheduler(threads: Annotated[int | None, typer.Option(help="Runs started at once (default: "
                                                           "scheduler.threads, 4).")] = None) -> None:
    """Run the scheduler alone (without the web server) until Ctrl-C or SIGTERM.

    Several may run at once against one metadata store: each slot still fires once."""
    import logging
    import signal
    import threading

    from flowforge.cli import output
    from flowforge.runner.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with _context() as ctx:
        output.info(f"Scheduler for {ctx.settings.project_dir} (metadata {ctx.metadata.url_display}); Ctrl-C stops.")
        Scheduler(ctx, threads=threads).run(stop)


def worker(concurrency: Annotated[int, typer.Option(help="Jobs this worker runs at once.")] = 1,
           name: Annotated[str | None, typer.Option(help="Worker name (default: flowforge@host-pid).")] = None) -> None:
    """Run jobs handed out by the project's executor (executor: celery in flowforge.yml) until stopped."""
    from flowforge.cli import output
    from flowforge.errors import ConfigError

    with _context() as ctx:
        if ctx.settings.executor == "local":
            output.error(str(ConfigError("This project runs jobs in-process (executor: local).",
                                         hint="Set 'executor: celery' and executor_options.broker_url in "
                                              "flowforge.yml to hand jobs to workers.")))
            raise typer.Exit(1)
        from flowforge.runner.celery_executor import start_worker

        start_worker(ctx, concurrency=concurrency, name=name)


def cancel(run_id: Annotated[int, typer.Argument(help="The run to cancel.")]) -> None:
    """Stop a queued or running run at its next safe point; nothing it was writing is committed."""
    from flowforge.cli import output

    with _context() as ctx:
        info = ctx.run_service.cancel(run_id)
    output.info(f"Asked run {info.id} of '{info.workflow}' to stop; it ends 'cancelled' at its next safe point "
                f"(check with 'flowforge runs --id {info.id}').")


def rerun(run_id: Annotated[int, typer.Argument(help="The run to run again.")],
          from_failure: Annotated[bool, typer.Option("--from-failure", help="Only its failed, cancelled and skipped "
                                                     "jobs and what depends on them.")] = False) -> None:
    """Run the jobs of an ended run again, in this process."""
    from flowforge.cli import output

    with _context() as ctx:
        name, select = ctx.run_service.rerun_plan(run_id, from_failure)
        summary = ctx.run(name, trigger="rerun", select=select, parent_run_id=run_id, on_event=output.job_event,
                          on_wait=output.info)
        output.run_summary(summary)
    if summary.status != "success":
        raise typer.Exit(1)


def backfill(workflow: Annotated[str, typer.Argument(help="Workflow name.")],
             start: Annotated[dt.datetime, typer.Option("--start", help="First slot (UTC unless an offset is given).")],
             end: Annotated[dt.datetime, typer.Option("--end", help="Last slot.")],
             trigger: Annotated[int | None, typer.Option(help="Which trigger (its # in 'flowforge schedules') when "
                                                          "the workflow has several cron/every triggers.")] = None,
             queue: Annotated[bool, typer.Option("--queue", help="Leave the runs to the scheduler instead of "
                                                 "running them here.")] = False) -> None:
    """Run a workflow once for each slot of its schedule in a past range (slots that fired are skipped)."""
    from flowforge.cli import output

    with _context() as ctx:
        result = ctx.schedules.backfill(workflow, start, end, trigger=trigger)
        if result.already:
            output.info(f"{len(result.already)} slot(s) fired before and are not run again.")
        output.info(f"{len(result.queued)} slot(s) of '{result.workflow}' queued.")
        if queue:
            output.info("The scheduler (flowforge serve, or flowforge scheduler) runs them one after another.")
            return
        failed = 0
        for fire in result.queued:
            output.info(f"\nSlot {fire.slot:%Y-%m-%d %H:%M} UTC")
            info = ctx.schedules.run_fire(fire.id, on_event=output.job_event)
            if info is None:
                output.info("  (taken by a scheduler)")
            elif info.status != "success":
                failed += 1
        output.info(f"\nBackfill of '{result.workflow}': {len(result.queued) - failed} slot(s) ran, {failed} failed.")
    if failed:
        raise typer.Exit(1)

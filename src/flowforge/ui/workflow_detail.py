"""One workflow: jobs (edit, clone, delete), last runs, status and triggers, actions, its details
(name, description, team, environment, tags), its YAML with validation, and its lineage tab."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.core.workflows import WorkflowDetail
from flowforge.ui import services, workflow_services
from flowforge.ui.layout import (
    empty_state,
    error_message,
    frame,
    go,
    load,
    login_redirect,
    notify_error,
    page,
    page_user,
    status_badge,
    table,
)
from flowforge.ui.lineage import jobs_of, lineage_view
from flowforge.ui.refresh import ask_full_refresh
from flowforge.ui.schedule_editor import schedule_tab
from flowforge.ui.workflows import ask_clone, confirm_delete, details_fields, start_run, toggle_pause


def _job_rows(detail: WorkflowDetail) -> list[dict[str, Any]]:
    return [{"job": j.name, "kind": j.kind, "layer": j.layer, "connection": j.spec.get("connection", ""),
             "reads": ", ".join(i.removeprefix("source:") for i in j.inputs), "writes": ", ".join(j.outputs),
             "description": j.description} for j in detail.jobs]


def _run_rows(detail: WorkflowDetail) -> list[dict[str, Any]]:
    return [{"run": r.id, "status": r.status, "trigger": r.trigger, "by": r.actor,
             "started": f"{r.started_at:%Y-%m-%d %H:%M:%S}",
             "seconds": round((r.ended_at - r.started_at).total_seconds(), 1) if r.ended_at else "running",
             "rows read": r.rows_read, "rows written": r.rows_written} for r in detail.runs]


def run_one_job(name: str, jobs: list[str], user: services.UiUser) -> None:
    choice = {"job": jobs[0] if jobs else None}
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Run one job of '{name}' (its inputs are read as they are now).")
        ui.select(jobs, label="Job").bind_value(choice, "job").classes("w-72").props("data-testid=one-job")

        async def start() -> None:
            if not choice["job"]:
                return
            try:
                run_id = await run.io_bound(services.run_job, user, name, str(choice["job"]))
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            go(f"/runs/{run_id}")

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Run", icon="play_arrow", on_click=start).props("data-testid=one-job-go")
    dialog.open()


def confirm_cdc_reset(user: services.UiUser, name: str, job: str) -> None:
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Reset CDC job '{job}'? Its source position is forgotten: the next run takes a new snapshot "
                 "(a new replication slot on PostgreSQL) that replaces what its silver tables hold.")
        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")

            async def do_reset() -> None:
                try:
                    message = await load(services.reset_cdc, user, name, job)
                except Exception as exc:
                    notify_error(exc)
                else:
                    ui.notify(message, type="positive", multi_line=True)
                dialog.close()

            ui.button("Reset", color="negative", on_click=do_reset).props(f"data-testid=confirm-cdc-reset-{job}")
    dialog.open()


def edit_details(user: services.UiUser, detail: WorkflowDetail) -> None:
    values = {"name": detail.name, "description": detail.description, "team": detail.team or "",
              "environment": detail.environment, "tags": ", ".join(detail.tags)}
    with ui.dialog() as dialog, ui.card().classes("w-[560px] max-w-full"):
        ui.label(f"Edit {detail.name}").classes("text-xl font-semibold")
        details_fields(values)
        ui.label("A new name keeps the run history; the file's comments stay as they are.").classes(
            "text-xs text-gray-500")

        async def save() -> None:
            try:
                name = await load(
                    workflow_services.set_details, user, detail.name, new_name=values["name"].strip(),
                    description=values["description"],
                    team=values["team"], environment=values["environment"],
                    tags=workflow_services.split_tags(values["tags"]))
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            ui.notify("Saved.", type="positive")
            go(f"/workflows/{name}")

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Save", icon="save", on_click=save).props("data-testid=save-details")
    dialog.open()


def clone_job(user: services.UiUser, workflow: str, job: str) -> None:
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Clone job '{job}'. The copy writes its own tables (named with _copy) so each table keeps one "
                 "writer.").classes("max-w-md")
        new_name = ui.input("Name of the copy", value=f"{job}_copy").props("data-testid=clone-job-name")

        async def do_clone() -> None:
            try:
                made = await load(workflow_services.clone_job, user, workflow, job, new_name.value.strip())
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            ui.notify(f"Cloned to '{made}'.", type="positive")
            ui.navigate.reload()

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Clone", on_click=do_clone).props("data-testid=confirm-clone-job")
    dialog.open()


def delete_job(user: services.UiUser, workflow: str, job: str) -> None:
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Delete job '{job}' from '{workflow}'? Its tables and their data stay in the lakehouse.")

        async def do_delete() -> None:
            try:
                await load(workflow_services.delete_job, user, workflow, job)
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            ui.notify(f"Deleted job '{job}'.", type="positive")
            ui.navigate.reload()

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Delete", color="negative", on_click=do_delete).props("data-testid=confirm-delete-job")
    dialog.open()


def jobs_panel(user: services.UiUser, detail: WorkflowDetail) -> None:
    name = detail.name
    if not detail.jobs:
        with empty_state("This workflow has no jobs yet. Add a job that lands a source table or file in bronze; "
                         "silver and gold jobs build on it." if user.can_edit else
                         "This workflow has no jobs yet.", "jobs-empty"):
            if user.can_edit:
                ui.button("Add the first job", icon="add", on_click=lambda: go(f"/workflows/{name}/jobs/new"))
        return
    jobs = table(_job_rows(detail), row_key="job")
    if not user.can_edit:
        return
    jobs.on("rowClick", lambda e: go(f"/workflows/{name}/jobs/{e.args[1]['job']}"))
    ui.label("Click a job to edit it.").classes("text-gray-500 text-sm")
    choice: dict[str, str | None] = {"job": None}

    def on_chosen(act: Callable[[services.UiUser, str, str], None]) -> None:
        if not choice["job"]:
            ui.notify("Choose the job first.", type="warning")
            return
        act(user, name, choice["job"])

    with ui.row().classes("gap-2 items-center"):
        ui.select([j.name for j in detail.jobs], label="Job to clone or delete").bind_value(choice, "job").classes(
            "w-72").props("data-testid=job-action-pick")
        ui.button("Clone job", icon="content_copy", on_click=lambda: on_chosen(clone_job)).props(
            "outline data-testid=clone-job")
        ui.button("Delete job", icon="delete", color="negative", on_click=lambda: on_chosen(delete_job)).props(
            "outline data-testid=delete-job")
    cdc = [j.name for j in detail.jobs if j.kind == "cdc"]
    with ui.row().classes("gap-2"):
        for job_name in cdc:
            ui.button(f"Reset CDC: {job_name}", icon="restart_alt",
                      on_click=lambda _, j=job_name: confirm_cdc_reset(user, name, j)).props(
                f"outline color=negative data-testid=cdc-reset-{job_name}")


def yaml_panel(user: services.UiUser, detail: WorkflowDetail) -> None:
    """The whole workflow as YAML: edit, validate (problems with their lines), save; nothing is saved
    while it has a problem."""
    text = ui.textarea("Workflow YAML", value=detail.yaml).classes("w-full font-mono text-sm").props(
        f"autogrow spellcheck=false data-testid=workflow-yaml {'' if user.can_edit else 'readonly'}")
    messages = ui.column().props("data-testid=yaml-messages")

    async def validate() -> bool:
        messages.clear()
        try:
            found = await load(workflow_services.check_workflow_yaml, user, text.value)
        except Exception as exc:
            notify_error(exc)
            return False
        with messages:
            for issue in found:
                where = f"line {issue.line}: " if issue.line else ""
                ui.label(f"⚠ {where}{issue.field}: {issue.message}").classes("text-negative")
            if not found:
                ui.label("✔ The workflow is valid.").classes("text-positive")
        return not found

    async def save() -> None:
        if not await validate():
            ui.notify("Nothing was saved: fix the problems shown first.", type="warning")
            return
        try:
            await load(workflow_services.save_workflow_yaml, user, detail.name, text.value)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Saved.", type="positive")
        ui.navigate.reload()

    with ui.row():
        ui.button("Validate", icon="rule", on_click=validate).props("outline data-testid=validate-workflow-yaml")
        if user.can_edit:
            ui.button("Save", icon="save", on_click=save).props("data-testid=save-workflow-yaml")


def register() -> None:
    @page("/workflows/{name}")
    async def workflow_page(request: Request, name: str) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Workflow · {name}", user):
            try:
                detail = await load(services.workflow, user, name)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            with ui.row().classes("items-center gap-4"):
                status_badge(detail.status)
                ui.label(detail.description).classes("text-gray-700")
                ui.label(f"team: {detail.team or '-'} · environment: {detail.environment} · "
                         f"tags: {', '.join(detail.tags) or '-'}").classes("text-gray-500 text-sm")
            with ui.row().classes("items-center gap-2 text-sm").props("data-testid=triggers"):
                ui.label("Triggers:")
                for text in detail.triggers or ("manual only",):
                    ui.badge(text, color="blue-grey").props("outline")
            if user.can_edit:
                with ui.row().classes("gap-2"):
                    ui.button("Run now", icon="play_arrow", on_click=lambda: start_run(name, user)).props(
                        "data-testid=run-workflow")
                    paused = detail.status == "paused"
                    ui.button("Resume" if paused else "Pause", icon="play_circle" if paused else "pause",
                              on_click=lambda: toggle_pause(user, name, not paused, ui.navigate.reload)).props(
                        "outline data-testid=pause-workflow")
                    ui.button("Edit details", icon="edit", on_click=lambda: edit_details(user, detail)).props(
                        "outline data-testid=edit-details")
                    ui.button("Clone", icon="content_copy", on_click=lambda: ask_clone(
                        user, name, lambda new: go(f"/workflows/{new}"))).props("outline")
                    ui.button("Add job", icon="add", on_click=lambda: ui.navigate.to(
                        f"/workflows/{name}/jobs/new")).props("outline data-testid=add-job")
                    ui.button("Run one job", icon="play_circle_outline", on_click=lambda: run_one_job(
                        name, [j.name for j in detail.jobs], user)).props("outline data-testid=run-one-job")
                    ui.button("Full refresh", icon="restart_alt", on_click=lambda: ask_full_refresh(
                        name, [t for j in detail.jobs for t in j.outputs], user)).props(
                        "outline data-testid=full-refresh")
                    ui.button("Delete", icon="delete", color="negative", on_click=lambda: confirm_delete(
                        user, name, lambda: go("/workflows"))).props("outline")
            with ui.tabs().classes("w-full") as tabs:
                jobs_tab = ui.tab("Jobs")
                runs_tab = ui.tab("Runs")
                schedule_tab_ = ui.tab("Schedule").props("data-testid=schedule-tab")
                lineage_tab = ui.tab("Lineage").props("data-testid=lineage-tab")
                yaml_tab = ui.tab("YAML").props("data-testid=yaml-tab")
            with ui.tab_panels(tabs, value=jobs_tab).classes("w-full").props("keep-alive"):
                with ui.tab_panel(jobs_tab):
                    jobs_panel(user, detail)
                with ui.tab_panel(runs_tab):
                    if detail.runs:
                        runs = table(_run_rows(detail), row_key="run")
                        runs.on("rowClick", lambda e: go(f"/runs/{e.args[1]['run']}"))
                    else:
                        empty_state("No runs yet. Press 'Run now' to run every job, or 'Run one job'; a trigger "
                                    "on the Schedule tab runs it by itself.", "runs-empty")
                with ui.tab_panel(schedule_tab_):
                    await schedule_tab(name, user, detail.concurrency)
                with ui.tab_panel(lineage_tab):
                    try:
                        lineage_view(name, await load(services.lineage, user, name), jobs_of(detail))
                    except Exception as exc:
                        notify_error(exc)
                with ui.tab_panel(yaml_tab):
                    yaml_panel(user, detail)
        return None

"""Job editor: source (database or file), connection form and table picker, incremental
settings, bronze, silver and gold settings, inline validation, save."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.ui import services
from flowforge.ui.connection_form import ConnectionForm, read_only_summary
from flowforge.ui.layout import current_user, error_message, frame, go, login_redirect, notify_error, table


def _slug(text: str) -> str:
    return re.sub(r"\W+", "_", text.split(".")[-1]).strip("_").lower()


class JobDraft:
    """The editor's values and the job specs they make."""

    def __init__(self, existing: dict[str, Any] | None) -> None:
        first = (existing or {}).get("tables", [{}])[0]
        self.v: dict[str, Any] = {
            "name": (existing or {}).get("name", ""), "source": "file" if first.get("files") else "database",
            "files_connection": (existing or {}).get("connection", ""), "files": first.get("files", ""),
            "target": first.get("target", ""), "incremental": bool(first.get("incremental")),
            "delta_column": (first.get("incremental") or {}).get("column") if isinstance(
                first.get("incremental"), dict) else first.get("incremental"),
            "lookback": "", "silver": False, "silver_target": "", "keys": [], "order_by": None,
            "strategy": "merge", "gold": False, "gold_target": "", "gold_sql": ""}

    def jobs(self, form: ConnectionForm) -> list[dict[str, Any]]:
        v = self.v
        table = form.values.get("table") or ""
        name = v["name"] or f"ingest_{_slug(table or v['files'] or 'source')}"
        target = v["target"] or f"bronze_{_slug(table or v['files'] or 'source')}"
        spec: dict[str, Any] = {"target": target}
        if v["source"] == "database":
            spec["table"] = table or None
            connection = form.connection_name()
        else:
            spec["files"] = v["files"] or None
            connection = v["files_connection"]
        if v["incremental"] and v["delta_column"]:
            spec["incremental"] = {"column": v["delta_column"]}
            if v["lookback"]:
                spec["incremental"]["lookback"] = v["lookback"]
        jobs: list[dict[str, Any]] = [{"name": name, "kind": "ingest", "connection": connection,
                                       "tables": [{k: x for k, x in spec.items() if x is not None}]}]
        if v["silver"]:
            silver_target = v["silver_target"] or target.replace("bronze_", "silver_", 1)
            jobs.append({"name": f"build_{silver_target}", "kind": "silver", "tables": [{
                "target": silver_target, "source": target, "strategy": v["strategy"], "keys": list(v["keys"]),
                **({"order_by": v["order_by"]} if v["order_by"] else {})}]})
        if v["gold"]:
            jobs.append({"name": f"build_{v['gold_target'] or 'gold'}", "kind": "gold",
                         "tables": [{"target": v["gold_target"], "sql": v["gold_sql"]}]})
        return jobs


def editor(user: services.UiUser, workflow: str, existing: dict[str, Any] | None) -> None:
    draft = JobDraft(existing)
    v = draft.v
    column_pickers: list[ui.select] = []

    def columns_known(cols: list[str]) -> None:
        for picker in column_pickers:
            picker.set_options(cols)

    first = ((existing or {}).get("tables") or [{}])[0]
    form = ConnectionForm(user, on_columns=columns_known, connection=str((existing or {}).get("connection", "")),
                          table=first.get("table"))
    with ui.card().classes("w-full"):
        ui.label("Source").classes("text-lg font-medium")
        with ui.row().classes("gap-4 items-center"):
            ui.input("Job name", placeholder="ingest_customers").bind_value(v, "name").props("data-testid=job-name")
            ui.toggle({"database": "Database", "file": "File"}).bind_value(v, "source").props(
                "data-testid=source-type")
        with ui.column().bind_visibility_from(v, "source", value="database").classes("w-full"):
            form.render()
        with ui.row().bind_visibility_from(v, "source", value="file").classes("gap-4"):
            files = [c.name for c in services.connection_summaries(user) if c.kind == "files"]
            ui.select(files, label="Folder connection").bind_value(v, "files_connection").classes("w-64")
            ui.input("File name or pattern", placeholder="customers*.csv").bind_value(v, "files")
    with ui.card().classes("w-full"):
        ui.label("Incremental loading").classes("text-lg font-medium")
        with ui.row().classes("gap-4 items-center"):
            ui.switch("Only new and changed rows").bind_value(v, "incremental").props("data-testid=incremental")
            column_pickers.append(ui.select([], label="Delta column (e.g. modified_date)").bind_value(
                v, "delta_column").bind_visibility_from(v, "incremental").classes("w-72").props(
                "data-testid=delta-column"))
            ui.input("Lookback", placeholder="15m").bind_value(v, "lookback").bind_visibility_from(v, "incremental")
    with ui.card().classes("w-full"):
        ui.label("Bronze").classes("text-lg font-medium")
        ui.input("Bronze table", placeholder="bronze_customers").bind_value(v, "target").props(
            "data-testid=bronze-target")
        ui.label("Silver").classes("text-lg font-medium")
        ui.switch("Build a silver table").bind_value(v, "silver")
        with ui.row().bind_visibility_from(v, "silver").classes("gap-4"):
            ui.input("Silver table").bind_value(v, "silver_target")
            ui.select({"merge": "Merge (upsert on keys)", "append": "Append"}, label="Strategy").bind_value(
                v, "strategy").classes("w-56")
            column_pickers.append(ui.select([], label="Business keys", multiple=True).bind_value(v, "keys").classes(
                "w-64"))
            column_pickers.append(ui.select([], label="Latest row by").bind_value(v, "order_by").classes("w-56"))
        ui.label("Gold").classes("text-lg font-medium")
        ui.switch("Build a gold table").bind_value(v, "gold")
        with ui.column().bind_visibility_from(v, "gold").classes("w-full"):
            ui.input("Gold table").bind_value(v, "gold_target")
            ui.textarea("SQL over silver tables").bind_value(v, "gold_sql").classes("w-full font-mono")
    messages = ui.column().props("data-testid=validation")

    def validate() -> bool:
        messages.clear()
        found = [f"{i.field}: {i.message}" for job in draft.jobs(form)
                 for i in services.validate_job(user, workflow, job)]
        if v["source"] == "database" and form.values["mode"] == "new" and not form.tested:
            found.insert(0, "Test the connection before saving.")
        with messages:
            for text in found:
                ui.label(f"⚠ {text}").classes("text-negative")
            if not found:
                ui.label("✔ The job is valid.").classes("text-positive")
        return not found

    def save() -> None:
        if not validate():
            return
        try:
            if v["source"] == "database" and form.values["mode"] == "new":
                services.save_connection(user, form.values["name"], form.source())  # type: ignore[arg-type]
            for job in draft.jobs(form):
                replace = (existing or {}).get("name") if job["kind"] == "ingest" else None
                services.save_job(user, workflow, job, replace)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Saved.", type="positive")
        go(f"/workflows/{workflow}")

    with ui.row():
        ui.button("Validate", icon="rule", on_click=validate).props("outline data-testid=validate-job")
        ui.button("Save job", icon="save", on_click=save).props("data-testid=save-job")


def yaml_editor(user: services.UiUser, workflow: str, existing: dict[str, Any]) -> None:
    """Silver and gold jobs are edited as their YAML, validated inline with line numbers."""
    text = ui.textarea("Job YAML", value=services.job_yaml(existing)).classes("w-full font-mono").props(
        "autogrow data-testid=job-yaml")
    messages = ui.column()

    def validate() -> bool:
        messages.clear()
        found = services.validate_job(user, workflow, text.value)
        with messages:
            for issue in found:
                where = f"line {issue.line}, " if issue.line else ""
                ui.label(f"⚠ {where}{issue.field}: {issue.message}").classes("text-negative")
            if not found:
                ui.label("✔ The job is valid.").classes("text-positive")
        return not found

    def save() -> None:
        if not validate():
            return
        try:
            services.save_job(user, workflow, text.value, str(existing["name"]))
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Saved.", type="positive")
        go(f"/workflows/{workflow}")

    with ui.row():
        ui.button("Validate", icon="rule", on_click=validate).props("outline")
        ui.button("Save job", icon="save", on_click=save)


def register() -> None:
    @ui.page("/workflows/{workflow}/jobs/{job}")
    def job_page(request: Request, workflow: str, job: str) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"{'New job' if job == 'new' else 'Job ' + job} · {workflow}", user):
            try:
                detail = services.workflow(user, workflow)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            existing = next((dict(j.spec) for j in detail.jobs if j.name == job), None)
            ui.link(f"← {workflow}", f"/workflows/{workflow}")
            if not user.can_edit:
                if existing and existing.get("connection"):
                    read_only_summary(user, str(existing["connection"]))
                if existing:
                    table([{k: v if isinstance(v, str | int | float) else str(v) for k, v in t.items()}
                           if isinstance(t, dict) else {"table": str(t)}  # an export job lists names
                           for t in existing.get("tables", [])])
                ui.label("You have read-only access; ask an editor to change this job.").classes("text-gray-600")
                return None
            if existing and existing.get("kind") != "ingest":
                yaml_editor(user, workflow, existing)
            else:
                editor(user, workflow, existing)
        return None

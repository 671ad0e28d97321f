"""Job editor: source (database or file), connection form and table picker, every table of the
job (pick one to edit, add or remove tables), incremental settings, bronze, silver and gold
settings for a new job, inline validation, save. The job's YAML (with its comments) is a tab away.

What the form does not show is kept: the draft starts from the job as its file says it
(``ui/job_draft.py``) and the file is edited in place (``core/spec_edit.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.ui import services, workflow_services
from flowforge.ui.connection_form import ConnectionForm, read_only_summary
from flowforge.ui.job_draft import JobDraft
from flowforge.ui.layout import error_message, frame, go, load, login_redirect, notify_error, page, page_user, table


async def editor(user: services.UiUser, workflow: str, existing: dict[str, Any] | None) -> None:
    draft = JobDraft(existing)
    files = [c.name for c in await load(services.connection_summaries, user) if c.kind == "files"]
    v = draft.v
    column_pickers: list[ui.select] = []

    def columns_known(cols: list[str]) -> None:
        if form.values.get("table"):
            v["table"] = form.values["table"]  # the table picked in the connection form is this table's source
        for picker in column_pickers:
            picker.set_options(cols, value=picker.value if picker.value in cols or not picker.value else None)

    form = ConnectionForm(user, on_columns=columns_known, connection=str((existing or {}).get("connection", "")),
                          table=v["table"])
    with ui.card().classes("w-full"):
        ui.label("Source").classes("text-lg font-medium")
        with ui.row().classes("gap-4 items-center w-full"):
            ui.input("Job name", placeholder="ingest_customers").bind_value(v, "name").props("data-testid=job-name")
            ui.toggle({"database": "Database", "file": "File"}).bind_value(v, "source").props(
                "data-testid=source-type")
            ui.input("Description", placeholder="What this job lands, for the people who read it").bind_value(
                v, "description").classes("grow").props("data-testid=job-description")
        with ui.column().bind_visibility_from(v, "source", value="database").classes("w-full"):
            await form.render()
        with ui.row().bind_visibility_from(v, "source", value="file").classes("gap-4"):
            ui.select(sorted({*files, v["files_connection"]} - {""}), label="Folder connection").bind_value(
                v, "files_connection").classes("w-64")
    def change(step: Callable[[], object]) -> None:
        step()
        tables_view.refresh()
        current = v["delta_column"]  # the picker offers this table's delta column even before a test
        delta.set_options(sorted({*form.columns, *([current] if current else [])}), value=current)

    with ui.card().classes("w-full"):
        with ui.row().classes("items-center gap-4"):
            ui.label("Tables").classes("text-lg font-medium")
            ui.button("Add table", icon="add", on_click=lambda: change(draft.add_table)).props(
                "outline dense data-testid=add-table")
            ui.button("Remove this table", icon="remove", on_click=lambda: change(draft.remove_table)).props(
                "outline dense color=negative data-testid=remove-table").bind_visibility_from(
                draft, "tables", backward=lambda t: len(t) > 1)

        @ui.refreshable
        def tables_view() -> None:
            rows = draft.table_rows()
            grid = table(rows, row_key="#").props("data-testid=job-tables")
            grid.on("rowClick", lambda e: change(lambda: draft.select(int(e.args[1]["#"]) - 1)))
            ui.label(f"Editing table {draft.current + 1} of {len(rows)}"
                     + (" — click another row to edit it." if len(rows) > 1 else ".")).classes(
                "text-gray-600 text-sm").props("data-testid=editing-table")

        tables_view()
        with ui.row().classes("gap-4 items-center"):
            ui.input("Source table", placeholder="dbo.Customers").bind_value(v, "table").bind_visibility_from(
                v, "source", value="database").classes("w-72").props("data-testid=source-table")
            ui.input("File name or pattern", placeholder="customers*.csv").bind_value(v, "files").bind_visibility_from(
                v, "source", value="file").props("data-testid=source-files")
            ui.input("Bronze table", placeholder="bronze_customers").bind_value(v, "target").props(
                "data-testid=bronze-target")
        ui.label().bind_text_from(v, "other_source", lambda k: f"This table reads a {k}; edit it in the YAML tab."
                                  if k else "").classes("text-sm text-gray-600")
        ui.label("Incremental loading").classes("font-medium")
        with ui.row().classes("gap-4 items-center"):
            ui.switch("Only new and changed rows").bind_value(v, "incremental").props("data-testid=incremental")
            delta = ui.select([v["delta_column"]] if v["delta_column"] else [], with_input=True,
                              label="Delta column (e.g. modified_date)", new_value_mode="add-unique").bind_value(
                v, "delta_column")
            delta.bind_visibility_from(v, "incremental").classes("w-72").props("data-testid=delta-column")
            column_pickers.append(delta)
            ui.input("Lookback", placeholder="15m").bind_value(v, "lookback").bind_visibility_from(
                v, "incremental").props("data-testid=lookback")
    if draft.is_new:
        with ui.card().classes("w-full"):
            ui.label("Silver").classes("text-lg font-medium")
            ui.switch("Build a silver table").bind_value(v, "silver")
            with ui.row().bind_visibility_from(v, "silver").classes("gap-4"):
                ui.input("Silver table").bind_value(v, "silver_target")
                ui.select({"merge": "Merge (upsert on keys)", "append": "Append"}, label="Strategy").bind_value(
                    v, "strategy").classes("w-56")
                column_pickers.append(ui.select([], label="Business keys", multiple=True).bind_value(
                    v, "keys").classes("w-64"))
                column_pickers.append(ui.select([], label="Latest row by").bind_value(v, "order_by").classes("w-56"))
            ui.label("Gold").classes("text-lg font-medium")
            ui.switch("Build a gold table").bind_value(v, "gold")
            with ui.column().bind_visibility_from(v, "gold").classes("w-full"):
                ui.input("Gold table").bind_value(v, "gold_target")
                ui.textarea("SQL over silver tables").bind_value(v, "gold_sql").classes("w-full font-mono")
    messages = ui.column().props("data-testid=validation")

    async def validate() -> bool:
        messages.clear()
        if form.values.get("table") and not v["table"]:  # picked, though its preview failed
            v["table"] = form.values["table"]
        found = [f"{i.field}: {i.message}" for job in draft.jobs(form.connection_name())
                 for i in await load(services.validate_job, user, workflow, job)]
        if v["source"] == "database" and form.values["mode"] == "new" and not form.tested:
            found.insert(0, "Test the connection before saving.")
        with messages:
            for text in found:
                ui.label(f"⚠ {text}").classes("text-negative")
            if not found:
                ui.label("✔ The job is valid.").classes("text-positive")
        return not found

    async def save() -> None:
        if not await validate():
            return
        try:
            if v["source"] == "database" and form.values["mode"] == "new":
                await load(services.save_connection, user, form.values["name"], form.source())  # type: ignore[arg-type]
            for job in draft.jobs(form.connection_name()):
                replace = (existing or {}).get("name") if job["kind"] == "ingest" else None
                await load(services.save_job, user, workflow, job, replace)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Saved.", type="positive")
        go(f"/workflows/{workflow}")

    with ui.row():
        ui.button("Validate", icon="rule", on_click=validate).props("outline data-testid=validate-job")
        ui.button("Save job", icon="save", on_click=save).props("data-testid=save-job")


def yaml_editor(user: services.UiUser, workflow: str, name: str, yaml_text: str) -> None:
    """A job as its YAML (with its comments), validated inline with line numbers; saving keeps what is written."""
    text = ui.textarea("Job YAML", value=yaml_text).classes("w-full font-mono").props(
        "autogrow data-testid=job-yaml")
    messages = ui.column()

    async def validate() -> bool:
        messages.clear()
        found = await load(services.validate_job, user, workflow, text.value)
        with messages:
            for issue in found:
                where = f"line {issue.line}, " if issue.line else ""
                ui.label(f"⚠ {where}{issue.field}: {issue.message}").classes("text-negative")
            if not found:
                ui.label("✔ The job is valid.").classes("text-positive")
        return not found

    async def save() -> None:
        if not await validate():
            return
        try:
            await load(services.save_job, user, workflow, text.value, name)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Saved.", type="positive")
        go(f"/workflows/{workflow}")

    with ui.row():
        ui.button("Validate", icon="rule", on_click=validate).props("outline data-testid=validate-yaml")
        ui.button("Save job", icon="save", on_click=save).props("data-testid=save-yaml")


def register() -> None:
    @page("/workflows/{workflow}/jobs/{job}")
    async def job_page(request: Request, workflow: str, job: str) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"{'New job' if job == 'new' else 'Job ' + job} · {workflow}", user):
            try:
                await load(services.workflow, user, workflow)
                source = await load(workflow_services.job_source, user, workflow, job) if job != "new" else None
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            existing = source.data if source else None
            ui.link(f"← {workflow}", f"/workflows/{workflow}")
            if not user.can_edit:
                if existing and existing.get("connection"):
                    await read_only_summary(user, str(existing["connection"]))
                if existing:
                    table([{k: v if isinstance(v, str | int | float) else str(v) for k, v in t.items()}
                           if isinstance(t, dict) else {"table": str(t)}  # an export job lists names
                           for t in existing.get("tables", [])])
                ui.label("You have read-only access; ask an editor to change this job.").classes("text-gray-600")
                return None
            if source is not None and source.kind != "ingest":
                yaml_editor(user, workflow, source.name, source.text)
                return None
            with ui.tabs() as tabs:
                form_tab = ui.tab("Form").props("data-testid=form-tab")
                yaml_tab = ui.tab("YAML").props("data-testid=yaml-tab")
            with ui.tab_panels(tabs, value=form_tab).classes("w-full"):
                with ui.tab_panel(form_tab):
                    await editor(user, workflow, existing)
                with ui.tab_panel(yaml_tab):
                    if source is None:
                        ui.label("Save the job once; then its YAML can be edited here.").classes("text-gray-600")
                    else:
                        yaml_editor(user, workflow, source.name, source.text)
        return None

"""SQL console: one read-only query over the lakehouse tables, run in the same sandbox as
``POST /api/v1/catalog/query`` (a SELECT by table name; no files, settings, extensions or other
databases), with a row limit, results as a table, CSV download, the user's own query history and a
schema browser beside it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.core.sql_console import MAX_LIMIT
from flowforge.ui import admin_services as admin
from flowforge.ui.layout import error_message, frame, load, login_redirect, notify_error, page, page_user, table
from flowforge.ui.services import UiUser

EXAMPLE = "SELECT *\nFROM {table}\nLIMIT 100"


def register() -> None:
    @page("/sql")
    async def console_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("SQL console", user):
            await Console(user).render()
        return None


class Console:
    def __init__(self, user: UiUser) -> None:
        self.user = user
        self.values: dict[str, Any] = {"sql": "", "limit": 1000}
        self.last: Any = None

    async def render(self) -> None:
        with ui.row().classes("w-full no-wrap gap-4 items-start"):
            with ui.column().classes("w-72 shrink-0 gap-1").props("data-testid=schema-browser"):
                ui.label("Tables").classes("text-lg font-medium")
                await self.schema_panel()
            with ui.column().classes("grow gap-2 min-w-0"):
                ui.label("One SELECT over lakehouse tables by name (Ctrl+Enter runs it). Files, settings, extensions "
                         "and other databases are out of reach.").classes("text-gray-600")
                self.editor = ui.codemirror(language="SQL", line_wrapping=True).bind_value(
                    self.values, "sql").classes("w-full h-48 border").props("data-testid=sql-editor")
                self.editor.on("keydown.ctrl.enter", self.run)  # as in most SQL tools
                with ui.row().classes("items-center gap-4"):
                    ui.button("Run", icon="play_arrow", on_click=self.run).props("data-testid=run-sql")
                    ui.number("Row limit", min=1, max=MAX_LIMIT, format="%d").bind_value(
                        self.values, "limit").classes("w-32").props("data-testid=row-limit")
                    self.download = ui.button("Download CSV", icon="download", on_click=self.csv).props(
                        "outline data-testid=download-csv")
                    self.download.disable()
                    self.status = ui.label().props("data-testid=sql-status")
                self.results = ui.column().classes("w-full").props("data-testid=sql-results")
                with ui.expansion("My query history", icon="history", value=True).classes("w-full").props(
                        "data-testid=sql-history-panel"):
                    self.history = ui.column().classes("w-full gap-1")
        await self.show_history()

    async def schema_panel(self) -> None:
        try:
            tables = await load(admin.schema, self.user)
        except Exception as exc:
            ui.label(error_message(exc)).classes("text-negative")
            return
        if not tables:
            ui.label("No tables yet: run a workflow to fill the lakehouse.").classes("text-gray-500")
        for t in tables:
            with ui.expansion(t.name, caption=t.layer).classes("w-full").props(
                    f"dense data-testid=schema-{t.name}"):
                ui.button("Query this table", on_click=lambda n=t.name: self.use(EXAMPLE.format(table=n))).props(
                    f"flat dense size=sm data-testid=use-{t.name}")
                for name, sql_type in t.columns:
                    with ui.row().classes("w-full justify-between text-sm no-wrap gap-2"):
                        ui.label(name)
                        ui.label(sql_type).classes("text-gray-500 text-xs")

    def use(self, sql: str) -> None:
        self.values["sql"] = sql

    async def run(self) -> None:
        self.status.classes(remove="text-negative text-positive")
        self.status.text = "Running…"
        try:
            limit = int(self.values["limit"] or 1000)
            result = await run.io_bound(admin.run_query, self.user, str(self.values["sql"] or ""), limit)
        except Exception as exc:
            self.status.text = error_message(exc)
            self.status.classes("text-negative")
            self.last = None
            self.download.disable()
            await self.show_history()
            return
        assert result is not None
        self.last = result
        more = f" (more rows exist: only the first {limit} are shown)" if result.truncated else ""
        self.status.text = f"{len(result.rows):,} row{'s' if len(result.rows) != 1 else ''}{more}"
        self.results.clear()
        with self.results:
            grid = table(list(result.rows), [n for n, _ in result.columns]).props(
                "data-testid=sql-result-table virtual-scroll").classes("max-h-[480px]")
            grid.columns = [{**c, "label": f"{c['name']} · {t}"} for c, (_, t) in zip(grid.columns, result.columns,
                                                                                     strict=True)]
        self.download.enable()
        await self.show_history()

    def csv(self) -> None:
        if self.last is not None:
            ui.download.content(self.last.csv().encode("utf-8"), "query.csv", "text/csv")

    async def show_history(self) -> None:
        try:
            entries = await load(admin.query_history, self.user, 30)
        except Exception as exc:
            notify_error(exc)
            return
        self.history.clear()
        with self.history:
            if not entries:
                ui.label("Queries you run appear here.").classes("text-gray-500")
                return
            for entry in entries:
                with ui.row().classes("w-full items-start no-wrap gap-2").props("data-testid=history-entry"):
                    ui.button(icon="north_west", on_click=lambda s=entry.sql: self.use(s)).props(
                        "flat dense size=sm").tooltip("Put this query in the editor")
                    ui.label(f"{entry.ran_at:%m-%d %H:%M}").classes("text-xs text-gray-500 shrink-0")
                    outcome = f"{entry.rows} rows" if entry.error is None else "failed"
                    ui.label(outcome).classes("text-xs shrink-0 " + ("text-negative" if entry.error else ""))
                    ui.label(entry.sql).classes("font-mono text-xs whitespace-pre-wrap break-all")
            ui.button("Clear my history", on_click=self.clear).props("flat dense size=sm data-testid=clear-history")

    async def clear(self) -> None:
        try:
            await load(admin.clear_history, self.user)
        except Exception as exc:
            notify_error(exc)
            return
        await self.show_history()

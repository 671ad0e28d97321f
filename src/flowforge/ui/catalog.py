"""Catalog: lakehouse tables by layer with readable SQL types and locations relative to the
lakehouse root, a search across tables, columns, descriptions and comments; one table's
description, schema with column comments (editors change both), sample rows, Delta versions and
quality."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import admin_services as admin
from flowforge.ui import quality, services
from flowforge.ui.layout import error_message, frame, go, load, login_redirect, notify_error, page, page_user, table
from flowforge.ui.services import UiUser

LAYERS = ("bronze", "silver", "gold")


def register() -> None:
    @page("/catalog")
    async def catalog_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Catalog", user):
            search_box(user)
            try:
                entries = await load(admin.catalog_tables, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            if not entries:
                ui.label("The lakehouse has no tables yet: create a workflow from a template and run it.").classes(
                    "text-gray-600").props("data-testid=catalog-empty")
            with ui.tabs() as tabs:
                for layer in LAYERS:
                    ui.tab(layer, label=f"{layer} ({sum(e.layer == layer for e in entries)})")
            with ui.tab_panels(tabs, value=LAYERS[0]).classes("w-full"):
                for layer in LAYERS:
                    with ui.tab_panel(layer):
                        rows = [{"table": e.name, "description": e.description, "rows": e.rows, "version": e.version,
                                 "columns": len(e.columns), "location": e.location}
                                for e in entries if e.layer == layer]
                        grid = table(rows, ["table", "description", "rows", "version", "columns", "location"],
                                     row_key="table").props(f"data-testid=catalog-{layer}")
                        grid.on("rowClick", lambda e: go(f"/catalog/{e.args[1]['table']}"))
                        if not rows:
                            ui.label("No tables in this layer yet.").classes("text-gray-600")
        return None

    def search_box(user: UiUser) -> None:
        v = {"q": ""}
        row = ui.row().classes("items-center gap-2")
        found = ui.column().classes("w-full")

        async def search() -> None:
            found.clear()
            if not v["q"].strip():
                return
            try:
                hits = await load(admin.catalog_search, user, v["q"])
            except Exception as exc:
                notify_error(exc)
                return
            with found:
                if not hits:
                    ui.label(f"Nothing matches '{v['q']}' in table names, column names, descriptions or "
                             "comments.").classes("text-gray-600").props("data-testid=catalog-no-hits")
                    return
                grid = table([{"table": h.table, "layer": h.layer, "column": h.column or "", "type": h.type or "",
                               "matched": h.matched, "text": h.text} for h in hits],
                             ["table", "layer", "column", "type", "matched", "text"]).props(
                    "data-testid=catalog-hits")
                grid.on("rowClick", lambda e: go(f"/catalog/{e.args[1]['table']}"))

        with row:
            ui.input("Search tables and columns", placeholder="balance").bind_value(v, "q").classes("w-96").props(
                "clearable data-testid=catalog-search").on("keydown.enter", search)
            ui.button("Search", icon="search", on_click=search).props("data-testid=catalog-search-go")

    @page("/catalog/{name}")
    async def table_page(request: Request, name: str) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Table · {name}", user):
            try:
                detail = await load(services.table_detail, user, name)
                entry = await load(admin.catalog_table, user, name)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            updated = f"{detail.last_updated:%Y-%m-%d %H:%M:%S}" if detail.last_updated else "unknown"
            ui.label(f"{detail.layer} · {detail.rows:,} rows · version {detail.version} · last update {updated} · "
                     f"workflow {detail.workflow or '-'} · {entry.location}").classes("text-gray-600").props(
                "data-testid=table-summary")
            description(user, entry)
            with ui.tabs() as tabs:
                ui.tab("Schema")
                ui.tab("Sample rows")
                ui.tab("Versions")
                ui.tab("Quality")
                ui.tab("Lineage")
            with ui.tab_panels(tabs, value="Schema").classes("w-full"):
                with ui.tab_panel("Schema"):
                    schema_tab(user, entry, {str(c["name"]): column_status(c) for c in detail.columns})
                    if detail.schema_changes:
                        ui.label("Schema changes").classes("font-semibold mt-2")
                        table([{k: e.get(k) for k in ("at", "column", "change", "old", "new")}
                               for e in reversed(detail.schema_changes)]).props("data-testid=schema-changes")
                with ui.tab_panel("Sample rows"):
                    table(list(detail.sample))
                with ui.tab_panel("Versions"):
                    table([{"version": v.version, "when": f"{v.timestamp:%Y-%m-%d %H:%M:%S}" if v.timestamp else "",
                            "operation": v.operation, "rows added": v.rows_added} for v in detail.history])
                with ui.tab_panel("Quality"):
                    await quality.table_tab(name, user)
                with ui.tab_panel("Lineage"):  # each column, with links to its column lineage
                    from flowforge.ui.column_lineage import catalog_tab

                    await catalog_tab(user, name)
        return None


def column_status(column: dict[str, object]) -> str:
    """'dropped since …' for a column the source no longer sends (its new rows hold NULL)."""
    if not column.get("dropped"):
        return ""
    renamed = f" (renamed to {column['renamed_to']}?)" if column.get("renamed_to") else ""
    return f"dropped since {column.get('dropped_at')}{renamed}"


def description(user: UiUser, entry: Any) -> None:
    """The table's description as text; editors get a field and Save."""
    if not user.can_edit:
        ui.label(entry.description or "No description yet.").classes(
            "whitespace-pre-wrap" if entry.description else "text-gray-500").props("data-testid=table-description")
        return
    v = {"text": entry.description}
    with ui.row().classes("w-full items-start gap-2"):
        ui.textarea("Description", placeholder="What this table holds, its grain, who to ask").bind_value(
            v, "text").classes("grow").props("autogrow data-testid=description-input")

        async def save() -> None:
            try:
                await run.io_bound(admin.describe_table, user, entry.name, v["text"], {})
            except Exception as exc:
                notify_error(exc)
                return
            ui.notify("Description saved.", type="positive")

        ui.button("Save description", icon="save", on_click=save).props("data-testid=save-description")


def schema_tab(user: UiUser, entry: Any, status: dict[str, str] | None = None) -> None:
    """Columns with SQL types and comments; editors edit the comments in place and save them at once.
    ``status`` says of a column the source dropped since when (see ``column_status``)."""
    status = status or {}
    if not user.can_edit:
        table([{"column": c.name, "type": c.type, "nullable": "yes" if c.nullable else "no", "comment": c.comment,
                "status": status.get(c.name, "")} for c in entry.columns],
              ["column", "type", "nullable", "comment", "status"]).props("data-testid=schema-table")
        return
    comments = {c.name: c.comment for c in entry.columns}
    with ui.column().classes("w-full gap-0").props("data-testid=schema-table"):
        for c in entry.columns:
            with ui.row().classes("w-full items-center gap-4 no-wrap border-b py-1"):
                ui.label(c.name).classes("w-56 font-medium break-all")
                ui.label(c.type).classes("w-48 text-gray-700").props(f"data-testid=type-{c.name}")
                ui.label("nullable" if c.nullable else "not null").classes("w-20 text-xs text-gray-500")
                if status.get(c.name):
                    ui.label(status[c.name]).classes("text-xs text-negative").props(f"data-testid=status-{c.name}")
                ui.input(placeholder="comment").bind_value(comments, c.name).classes("grow").props(
                    f"dense data-testid=comment-{c.name}")

    async def save() -> None:
        changed = {k: v or "" for k, v in comments.items() if (v or "") != next(
            (c.comment for c in entry.columns if c.name == k), "")}
        try:
            await run.io_bound(admin.describe_table, user, entry.name, None, changed)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"Saved {len(changed)} comment{'s' if len(changed) != 1 else ''}.", type="positive")

    ui.button("Save comments", icon="save", on_click=save).props("data-testid=save-comments")

"""Catalog: lakehouse tables by layer; one table's schema, sample rows and Delta versions."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.ui import quality, services
from flowforge.ui.layout import current_user, error_message, frame, go, login_redirect, table

LAYERS = ("bronze", "silver", "gold")


def register() -> None:
    @ui.page("/catalog")
    def catalog_page(request: Request) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Catalog", user):
            entries = services.tables(user)
            with ui.tabs() as tabs:
                for layer in LAYERS:
                    ui.tab(layer, label=f"{layer} ({sum(e.layer == layer for e in entries)})")
            with ui.tab_panels(tabs, value=LAYERS[0]).classes("w-full"):
                for layer in LAYERS:
                    with ui.tab_panel(layer):
                        rows = [{"table": e.name, "rows": e.rows, "version": e.version, "columns": len(e.columns),
                                 "location": e.location} for e in entries if e.layer == layer]
                        grid = table(rows, ["table", "rows", "version", "columns", "location"], row_key="table")
                        grid.on("rowClick", lambda e: go(f"/catalog/{e.args[1]['table']}"))
                        if not rows:
                            ui.label("No tables in this layer yet.").classes("text-gray-600")
        return None

    @ui.page("/catalog/{name}")
    def table_page(request: Request, name: str) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Table · {name}", user):
            try:
                detail = services.table_detail(user, name)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            updated = f"{detail.last_updated:%Y-%m-%d %H:%M:%S}" if detail.last_updated else "unknown"
            ui.label(f"{detail.layer} · {detail.rows:,} rows · version {detail.version} · last update {updated} · "
                     f"workflow {detail.workflow or '-'} · {detail.location}").classes("text-gray-600").props(
                "data-testid=table-summary")
            with ui.tabs() as tabs:
                ui.tab("Schema")
                ui.tab("Sample rows")
                ui.tab("Versions")
                ui.tab("Quality")
                ui.tab("Lineage")
            with ui.tab_panels(tabs, value="Schema").classes("w-full"):
                with ui.tab_panel("Schema"):
                    table([dict(c) for c in detail.columns], ["name", "type", "nullable"])
                with ui.tab_panel("Sample rows"):
                    table(list(detail.sample))
                with ui.tab_panel("Versions"):
                    table([{"version": v.version, "when": f"{v.timestamp:%Y-%m-%d %H:%M:%S}" if v.timestamp else "",
                            "operation": v.operation, "rows added": v.rows_added} for v in detail.history])
                with ui.tab_panel("Quality"):
                    quality.table_tab(name, user)
                with ui.tab_panel("Lineage"):  # each column, with links to its column lineage
                    from flowforge.ui.column_lineage import catalog_tab

                    catalog_tab(user, name)
        return None

"""Search: pick an embedded table, type what you look for, read the ranked rows with their
source version, lineage and data-quality status. Every value is shown as text (labels and
table cells escape HTML)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.ui import services
from flowforge.ui.layout import error_message, frame, load, login_redirect, page, page_user, table


def register() -> None:
    @page("/search")
    async def search_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Search", user):
            try:
                tables = await load(services.searchable_tables, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            if not tables:
                ui.label("No table has embeddings yet. Add an embed job to a workflow and run it "
                         "(the product_search template has one).").classes("text-gray-600").props(
                    "data-testid=search-empty")
                return None
            options = {t.table: f"{t.source} ({t.rows:,} rows, {t.model})" for t in tables}
            with ui.row().classes("items-end gap-4 w-full"):
                picker = ui.select(options, value=tables[0].table, label="Table").classes("w-80").props(
                    "data-testid=search-table")
                query = ui.input("Search for", placeholder="e.g. waterproof hiking boots").classes(
                    "grow").props("data-testid=search-query clearable")
                where = ui.input("Filter (SQL condition)", placeholder="e.g. category_id = 3").classes(
                    "w-72").props("data-testid=search-where clearable")
                k = ui.number("Hits", value=10, min=1, max=100, step=1, format="%d").classes("w-24").props(
                    "data-testid=search-k")
                go_button = ui.button("Search", icon="search").props("data-testid=search-run")
            results = ui.column().classes("w-full gap-2")

            async def run() -> None:
                results.clear()
                with results:
                    if not (query.value or "").strip():
                        ui.label("Type what you are looking for.").classes("text-gray-600")
                        return
                    try:
                        result = await load(services.search, user, str(picker.value), str(query.value),
                                            k=int(k.value or 10), where=(where.value or "").strip() or None)
                    except Exception as exc:
                        ui.label(error_message(exc)).classes("text-negative").props("data-testid=search-error")
                        return
                    _results(result)

            go_button.on_click(run)
            query.on("keydown.enter", run)
        return None


def _results(result: Any) -> None:
    first = result.hits[0] if result.hits else None
    lineage = " → ".join([*first.lineage, result.table]) if first else result.table
    ui.label(f"{len(result.hits)} hits in {result.source_table} · {result.method} search, "
             f"{result.seconds * 1000:.0f} ms · {result.model} · table now at version "
             f"{result.source_current_version}").classes("text-gray-600").props("data-testid=search-summary")
    ui.label(f"Lineage: {lineage}").classes("text-sm").props("data-testid=search-lineage")
    rows = [{"rank": h.rank, "score": f"{h.score:.4f}", "key": ", ".join(f"{c}={v}" for c, v in h.key.items()),
             "text": h.text, "version": h.source_version, "quality": h.quality,
             "now": "deleted since" if h.row is None else "current"} for h in result.hits]
    table(rows, ["rank", "score", "key", "text", "version", "quality", "now"]).props("data-testid=search-hits")
    for h in result.hits:
        title = f"#{h.rank} · {', '.join(f'{c}={v}' for c, v in h.key.items())} · source row"
        with ui.expansion(title).classes("w-full border rounded"):
            if h.row is None:
                ui.label("The row was deleted from the source after it was embedded.")
            else:
                table([{"column": c, "value": "" if v is None else str(v)} for c, v in h.row.items()],
                      ["column", "value"])

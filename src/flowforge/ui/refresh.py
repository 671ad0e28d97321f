"""The "Full refresh" dialog of a workflow page: rebuild some tables (and what depends on them) or
all of them from their sources, as ``flowforge run <wf> --full-refresh [--select ...]`` does."""

from __future__ import annotations

from nicegui import run, ui

from flowforge.ui import services
from flowforge.ui.layout import go, notify_error


def ask_full_refresh(name: str, tables: list[str], user: services.UiUser) -> None:
    chosen: dict[str, list[str]] = {"tables": []}
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Rebuild tables of '{name}' from their sources. Each is replaced in one commit; its history "
                 "stays readable by time travel. Tables that depend on them are rebuilt too.")
        ui.select(tables, multiple=True, label="Tables (none: all of them)").bind_value(chosen, "tables").classes(
            "w-96").props("use-chips data-testid=refresh-tables")

        async def start() -> None:
            try:
                run_id = await run.io_bound(services.full_refresh, user, name, list(chosen["tables"]) or None)
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            go(f"/runs/{run_id}")

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Rebuild", icon="restart_alt", color="warning", on_click=start).props(
                "data-testid=refresh-go")
    dialog.open()

"""The workflow page's Schedule tab: its triggers (cron with a time zone, every, after, files,
continuous) with cron help and the next five fire times of each, the concurrency policy, a backfill of
past slots, and the recent fires. Saving rewrites the workflow file through the service layer, which
validates it like any edit."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from nicegui import run, ui

from flowforge.ui import services
from flowforge.ui.layout import error_message, load, notify_error, table

KINDS = {"cron": "Cron (wall clock, time zone)", "every": "Every (interval)", "after": "After other workflows",
         "files": "On new files", "continuous": "Continuous (CDC)"}
ZONES = ["UTC", "Europe/Berlin", "Europe/London", "Europe/Paris", "Europe/Zurich", "America/New_York",
         "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore",
         "Asia/Tokyo", "Australia/Sydney"]
CRON_HELP = [
    ("minute hour day-of-month month day-of-week", "five fields, in the trigger's time zone"),
    ("*  any value   ,  a list   -  a range   /n  every n-th", "e.g. 1-5 = Monday to Friday, */15 = every 15"),
    ("0 6 * * 1-5", "06:00 on weekdays"),
    ("*/15 * * * *", "every 15 minutes"),
    ("30 2 1 * *", "02:30 on the first of each month"),
    ("@hourly  @daily  @weekly  @monthly", "shorthands"),
    ("Daylight saving", "a fixed time in the skipped hour fires at the hour's end; in the repeated hour "
                        "it fires once. */n-hour schedules follow the real clock."),
]


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    """The trigger as the workflow file writes it: empty fields left out."""
    kind = item["kind"]
    keep = {"cron": ("cron", "timezone", "catchup"), "every": ("every", "catchup"),
            "after": ("after", "on_failure", "catchup"), "files": ("files", "pattern", "quiet", "debounce", "poll",
                                                                    "catchup"),
            "continuous": ("continuous", "interval")}[kind]
    out = {k: item.get(k) for k in keep if item.get(k) not in (None, "", [])}
    if kind == "continuous":
        out["continuous"] = True
    if kind == "after" and not out.get("on_failure"):
        out.pop("on_failure", None)
    return out


def _draft(spec: dict[str, Any]) -> dict[str, Any]:
    kind = next(k for k in KINDS if k in spec)
    return {"kind": kind, **spec, **({"after": list(spec["after"])} if kind == "after" else {})}


async def schedule_tab(name: str, user: services.UiUser, concurrency: str) -> None:
    try:
        triggers = [_draft(t.spec) for t in await load(services.schedule_overview, user, name)]
        others = [w for w in await load(services.workflow_names, user) if w != name]
        folders = await load(services.files_connections, user)
    except Exception as exc:
        ui.label(error_message(exc)).classes("text-negative")
        return
    state = {"concurrency": concurrency}
    first = {id(t): await _preview(user, t) for t in triggers}  # the saved triggers' previews come with the page

    @ui.refreshable
    def editor() -> None:
        if not triggers:
            ui.label("No triggers: the workflow runs only when started by hand.").classes("text-gray-600")
        for index, item in enumerate(triggers):
            trigger_card(index, item)

    def trigger_card(index: int, item: dict[str, Any]) -> None:
        with ui.card().classes("w-full").props(f"data-testid=trigger-{index}"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label(KINDS[item["kind"]]).classes("font-medium")
                if user.can_edit:
                    ui.button(icon="delete", on_click=lambda: (triggers.pop(index), editor.refresh())).props(
                        f"flat round dense data-testid=remove-trigger-{index}").tooltip("Remove")
            preview = ui.column().classes("gap-0 text-sm").props(f"data-testid=next-fires-{index}")
            asked = [0]  # previews asked for: a slower earlier one never replaces a later one

            def show(found: tuple[str, list[Any]] | Exception) -> None:
                preview.clear()
                with preview:
                    if isinstance(found, Exception):
                        ui.label(error_message(found)).classes("text-negative")
                        return
                    description, fires = found
                    ui.label(description).classes("text-gray-700")
                    zone = item.get("timezone") if item["kind"] == "cron" else None
                    for moment in fires:
                        ui.label(_when(moment, zone))

            async def refresh_preview() -> None:
                asked[0] += 1
                mine = asked[0]
                found = await _preview(user, item)
                if mine == asked[0]:
                    show(found)

            with ui.row().classes("gap-4 items-center"):
                fields(index, item, refresh_preview)
            if id(item) in first:
                show(first.pop(id(item)))
            else:  # a trigger just added: read once the card is on the page
                ui.timer(0, refresh_preview, once=True)

    def fields(index: int, item: dict[str, Any], changed: Any) -> None:
        kind = item["kind"]
        catchup = {"latest": "latest: only the newest missed", "all": "all missed, one by one",
                   "none": "none: skip missed"}
        if kind == "cron":
            item.setdefault("timezone", "UTC")
            ui.input("Cron expression", placeholder="0 6 * * 1-5", on_change=changed).bind_value(item, "cron").props(
                f"data-testid=cron-{index}").classes("w-48")
            zone = ui.select(ZONES if item["timezone"] in ZONES else [*ZONES, item["timezone"]], label="Time zone",
                             new_value_mode="add-unique", on_change=changed).bind_value(item, "timezone").classes(
                "w-56").props(f"data-testid=timezone-{index}")
            # a zone picked from the list leaves the field focused with its filter open: the next click
            # elsewhere (Save) would only close it, so the field lets go once a zone is chosen
            zone.on("update:model-value", lambda: zone.run_method("blur"))
        elif kind == "every":
            ui.input("Every", placeholder="15m", on_change=changed).bind_value(item, "every").props(
                f"data-testid=every-{index}").classes("w-32")
        elif kind == "after":
            ui.select(others, label="After workflows", multiple=True, on_change=changed).bind_value(
                item, "after").classes("w-72")
            ui.switch("also when they fail").bind_value(item, "on_failure")
        elif kind == "files":
            ui.select(folders, label="Files connection", on_change=changed).bind_value(item, "files").classes("w-56")
            ui.input("Pattern", placeholder="*.csv").bind_value(item, "pattern").classes("w-32")
            ui.input("Quiet", placeholder="10s").bind_value(item, "quiet").classes("w-24")
            ui.input("Debounce", placeholder="0s").bind_value(item, "debounce").classes("w-24")
            ui.input("Poll", placeholder="30s").bind_value(item, "poll").classes("w-24")
        else:
            ui.input("Interval (s)", placeholder="from the cdc jobs").bind_value(item, "interval").classes("w-40")
        if kind != "continuous":
            item.setdefault("catchup", "latest")
            ui.select(catchup, label="Missed fires").bind_value(item, "catchup").classes("w-56")

    with ui.expansion("Cron help", icon="help_outline").classes("w-full border rounded"):
        table([{"write": a, "means": b} for a, b in CRON_HELP])
    editor()
    if not user.can_edit:
        return
    with ui.row().classes("gap-2 items-center"):
        def add(kind: str) -> None:
            triggers.append({"kind": kind, **({"continuous": True} if kind == "continuous" else {})})
            editor.refresh()

        for kind, label in KINDS.items():
            ui.button(f"+ {label.split(' (')[0]}", on_click=lambda k=kind: add(k)).props(
                f"outline dense data-testid=add-{kind}")
    with ui.row().classes("gap-4 items-center"):
        ui.select({"queue": "queue: wait for the running one", "skip": "skip: do not start",
                   "fail": "fail: refuse with an error"}, label="When a run is already in progress").bind_value(
            state, "concurrency").classes("w-72").props("data-testid=concurrency")

        async def save() -> None:
            try:
                await run.io_bound(services.save_triggers, user, name, [_clean(t) for t in triggers],
                                   state["concurrency"])
            except Exception as exc:
                notify_error(exc)
                return
            ui.notify("Triggers saved.", type="positive")

        ui.button("Save triggers", icon="save", on_click=save).props("data-testid=save-triggers")
        ui.button("Backfill…", icon="history", on_click=lambda: backfill_dialog(name, user)).props(
            "outline data-testid=backfill")


async def _preview(user: services.UiUser, item: dict[str, Any]) -> tuple[str, list[Any]] | Exception:
    """(description, next fire times) of a trigger as edited, or what is wrong with it."""
    try:
        return await load(services.trigger_preview, user, _clean(item))
    except Exception as exc:
        return exc


def backfill_dialog(name: str, user: services.UiUser) -> None:
    today = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {"start": f"{today - dt.timedelta(days=1):%Y-%m-%d} 00:00",
                              "end": f"{today:%Y-%m-%d} 00:00", "trigger": None}
    with ui.dialog() as dialog, ui.card():
        ui.label("Run the workflow once for each schedule slot in a past range (UTC); slots that already fired "
                 "are not run again. The scheduler runs them one after another.").classes("max-w-md")
        ui.input("From (UTC)").bind_value(values, "start").props("data-testid=backfill-start")
        ui.input("To (UTC)").bind_value(values, "end").props("data-testid=backfill-end")
        ui.number("Trigger # (when several)", format="%d").bind_value(values, "trigger")

        async def go() -> None:
            try:
                start = dt.datetime.fromisoformat(values["start"]).replace(tzinfo=dt.UTC)
                end = dt.datetime.fromisoformat(values["end"]).replace(tzinfo=dt.UTC)
                trigger = int(values["trigger"]) if values["trigger"] is not None else None
                result: Any = await run.io_bound(services.backfill, user, name, start, end, trigger)
            except ValueError:
                ui.notify("Write the times as YYYY-MM-DD HH:MM.", type="negative")
                return
            except Exception as exc:
                notify_error(exc)
                return
            ui.notify(f"{len(result.queued)} slot(s) queued; {len(result.already)} had fired already.",
                      type="positive")
            dialog.close()

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Queue backfill", on_click=go).props("data-testid=backfill-go")
    dialog.open()


def _when(moment: dt.datetime, zone: str | None) -> str:
    from flowforge.runner.cron import zone as tz

    text = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    if zone and zone.upper() != "UTC":
        with contextlib.suppress(ValueError):
            text += f"  ({moment.astimezone(tz(zone)):%Y-%m-%d %H:%M %Z})"
    return text

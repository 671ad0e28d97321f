"""Run history and run detail: per-job timeline, live progress while running, and logs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.core.runs import RunDetail
from flowforge.errors import AccessDenied
from flowforge.ui import quality, services
from flowforge.ui.layout import (
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

POLL_SECONDS = 1.0
LIVE = ("queued", "running")


def _duration(start: dt.datetime, end: dt.datetime | None) -> str:
    if end is None:
        return "running"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


STATUSES = ["queued", "running", "success", "failed", "partial", "cancelled"]
TRIGGERS = ["manual", "ui", "api", "schedule", "after", "files", "backfill", "rerun", "follow", "cli"]
SINCE = {"": "any time", "1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}


async def history_rows(user: services.UiUser, limit: int = 100,
                       filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    f = filters or {}
    since = None
    if f.get("since"):
        hours = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}[f["since"]]
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    found = await load(services.runs_filtered, user, f.get("workflow"), f.get("status"), f.get("trigger"), since,
                       limit)
    return [{"run": r.id, "workflow": r.workflow, "status": r.status_label or r.status, "trigger": r.trigger,
             "by": r.actor, "started": f"{r.started_at:%Y-%m-%d %H:%M:%S}",
             "slot": f"{r.slot:%Y-%m-%d %H:%M}" if r.slot else "", "duration": _duration(r.started_at, r.ended_at),
             "rows read": r.rows_read, "rows written": r.rows_written} for r in found]


async def act(user: services.UiUser, run_id: int, what: str) -> None:
    """cancel | rerun | rerun_failed on a run, then open the run it concerns."""
    try:
        if what == "cancel":
            await run.io_bound(services.cancel_run, user, run_id)
            ui.notify(f"Run {run_id} will stop at its next safe point.", type="positive")
            target: int | None = run_id
        else:
            target = await run.io_bound(services.rerun, user, run_id, what == "rerun_failed")
    except Exception as exc:
        notify_error(exc)
        return
    if target is not None:
        go(f"/runs/{target}")


def action_buttons(user: services.UiUser, selected: dict[str, Any]) -> None:
    """Cancel, rerun and rerun-from-failure for the chosen run (``selected['run']``)."""
    def chosen() -> int | None:
        if selected.get("run") is None:
            ui.notify("Choose a run first (click its row's checkbox).", type="warning")
        return selected.get("run")

    async def do(what: str) -> None:
        run_id = chosen()
        if run_id is not None:
            await act(user, run_id, what)

    with ui.row().classes("gap-2"):
        ui.button("Cancel", icon="stop", color="negative", on_click=lambda: do("cancel")).props(
            "outline data-testid=cancel-run")
        ui.button("Rerun", icon="replay", on_click=lambda: do("rerun")).props("outline data-testid=rerun")
        ui.button("Rerun from failure", icon="restart_alt", on_click=lambda: do("rerun_failed")).props(
            "outline data-testid=rerun-failed")


def timeline_options(detail: RunDetail) -> dict[str, Any]:
    """Horizontal bars from each job's start to its end (now, while it runs)."""
    run = detail.run
    now = dt.datetime.now(run.started_at.tzinfo)
    jobs = list(detail.jobs)
    colors = {"success": "#16a34a", "failed": "#dc2626", "running": "#2563eb", "skipped": "#9ca3af"}
    base = run.started_at
    data = [{"value": round(((j.ended_at or now) - j.started_at).total_seconds(), 2),
             "itemStyle": {"color": colors.get(j.status, "#6b7280")}} for j in jobs]
    offsets = [round((j.started_at - base).total_seconds(), 2) for j in jobs]
    return {
        "grid": {"left": 200, "right": 30, "top": 10, "bottom": 30},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value", "name": "seconds", "nameLocation": "middle", "nameGap": 22},
        "yAxis": {"type": "category", "data": [j.job for j in jobs], "inverse": True},
        "series": [
            {"type": "bar", "stack": "t", "data": offsets, "itemStyle": {"color": "transparent"}, "silent": True},
            {"type": "bar", "stack": "t", "data": data, "name": "duration", "label": {"show": True,
             "position": "right", "formatter": "{c} s"}},
        ],
    }


def register() -> None:
    @page("/runs")
    async def runs_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Runs", user):
            filters: dict[str, Any] = {"workflow": None, "status": None, "trigger": None, "since": ""}
            selected: dict[str, Any] = {"run": None}
            grid: Any = None  # the filters' bindings call refresh() once while they are being made
            asked = [0]  # refreshes started: only the latest one's rows are shown

            async def refresh() -> None:
                if grid is None:
                    return
                asked[0] += 1
                mine = asked[0]
                try:
                    rows = await history_rows(user, 200, filters)
                except Exception as exc:
                    notify_error(exc)
                    return
                if mine != asked[0]:
                    return
                grid.rows = rows
                grid.selected = []
                selected["run"] = None
                grid.update()
                show_empty()

            def show_empty() -> None:
                filtered = any(filters.values())
                empty.set_visibility(not grid.rows)
                empty.text = ("No run matches these filters; clear them to see every run." if filtered else
                              "No runs yet. Open a workflow and press 'Run now', or give it a trigger on its "
                              "Schedule tab; its runs appear here.")

            try:
                names = await load(services.workflow_names, user)
                first = await history_rows(user, 200, filters)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            with ui.row().classes("gap-4 items-center"):
                ui.select(names, label="Workflow", clearable=True,
                          on_change=refresh).bind_value(filters, "workflow").classes("w-56").props(
                    "data-testid=filter-workflow")
                ui.select(STATUSES, label="Status", clearable=True, on_change=refresh).bind_value(
                    filters, "status").classes("w-40").props("data-testid=filter-status")
                ui.select(TRIGGERS, label="Trigger", clearable=True, on_change=refresh).bind_value(
                    filters, "trigger").classes("w-40").props("data-testid=filter-trigger")
                ui.select(SINCE, label="Started", on_change=refresh).bind_value(filters, "since").classes(
                    "w-40").props("data-testid=filter-since")
            if user.can_edit:
                action_buttons(user, selected)
            grid = table(first, row_key="run", pagination=25, selection="single",
                         on_select=lambda e: selected.update(run=e.selection[0]["run"] if e.selection else None))
            grid.props("data-testid=runs-table")
            empty = ui.label().classes("w-full p-6 border border-dashed rounded text-gray-700").props(
                "data-testid=runs-empty")
            show_empty()
            grid.on("rowClick", lambda e: go(f"/runs/{e.args[1]['run']}"))
            ui.label("Click a run to see its jobs and logs; tick it to cancel or rerun it.").classes(
                "text-gray-500 text-sm")
            ui.timer(5.0, refresh)
        return None

    @page("/runs/{run_id}")
    async def run_page(request: Request, run_id: int) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Run {run_id}", user):
            try:
                shown = await load(snapshot, user, run_id)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            first = shown[0]
            ui.link(f"← {first.run.workflow}", f"/workflows/{first.run.workflow}")
            if user.can_edit:
                with ui.row().classes("gap-2"):
                    ui.button("Cancel", icon="stop", color="negative", on_click=lambda: act(user, run_id, "cancel")
                              ).props("outline data-testid=cancel-run")
                    ui.button("Rerun", icon="replay", on_click=lambda: act(user, run_id, "rerun")).props(
                        "outline data-testid=rerun")
                    ui.button("Rerun from failure", icon="restart_alt", on_click=lambda: act(
                        user, run_id, "rerun_failed")).props("outline data-testid=rerun-failed")
            body(user, run_id, shown)
            if first.run.status in LIVE:
                timer = ui.timer(POLL_SECONDS, lambda: _poll(user, run_id, timer))
        return None

    async def _poll(user: services.UiUser, run_id: int, timer: ui.timer) -> None:
        try:
            shown = await load(snapshot, user, run_id)
        except AccessDenied:  # signed out meanwhile: stop polling
            timer.deactivate()
            return
        body.refresh(user, run_id, shown)  # read first, so the page never shows a half-cleared run
        if shown[0].run.status not in LIVE:
            timer.deactivate()

    def snapshot(user: services.UiUser, run_id: int) -> tuple[RunDetail, dict[str, str], Any]:
        """What the run page shows: the run, its logs so far (of a job still running, too) and, once it
        has ended, its tests (or why they could not be read)."""
        detail = services.run_detail(user, run_id)
        logs = services.run_logs(user, run_id)
        tests: Any = None
        if detail.run.status not in LIVE:
            try:
                tests = services.run_quality(user, run_id)
            except Exception as exc:  # shown where the tests would be; the rest of the run still shows
                tests = exc
        return detail, logs, tests

    @ui.refreshable
    def body(user: services.UiUser, run_id: int, shown: tuple[RunDetail, dict[str, str], Any]) -> None:
        detail, logs, tests = shown
        run_ = detail.run
        total = len(detail.jobs)
        done = sum(j.status not in LIVE for j in detail.jobs)
        with ui.row().classes("items-center gap-4"):
            ui.label("Status:")
            with ui.element("span").props("data-testid=run-status"):
                status_badge(run_.status)
            if run_.reason:
                ui.label(f"({run_.reason})").props("data-testid=run-reason")
            extra = f" · slot {run_.slot:%Y-%m-%d %H:%M} UTC" if run_.slot else ""
            extra += f" · rerun of {run_.parent_run_id}" if run_.parent_run_id else ""
            took = "waiting" if run_.status == "queued" else _duration(run_.started_at, run_.ended_at)
            ui.label(f"trigger {run_.trigger} by {run_.actor} · started {run_.started_at:%Y-%m-%d %H:%M:%S} · "
                     f"{took} · rows read {run_.rows_read:,} · "
                     f"written {run_.rows_written:,}{extra}").classes("text-gray-600")
        if run_.status in LIVE:
            ui.linear_progress(value=done / total if total else 0, show_value=False).props("data-testid=progress")
            waiting = " · waiting for the running one to finish" if run_.status == "queued" else ""
            stopping = " · cancel requested" if run_.cancel_requested else ""
            ui.label(f"{done} job(s) finished; refreshing every {POLL_SECONDS:.0f} s{waiting}{stopping}").classes(
                "text-sm")
        if run_.error:
            ui.label(run_.error).classes("text-negative")
        if detail.jobs:
            ui.echart(timeline_options(detail)).classes("w-full").style(f"height: {60 + 40 * total}px")
        if run_.status not in LIVE:
            quality.run_tests(tests)
        for job in detail.jobs:
            where = f" · on {job.worker}" if job.worker else ""
            title = f"{job.job} — {job.status} · {_duration(job.started_at, job.ended_at)} · " \
                    f"read {job.rows_read:,} · written {job.rows_written:,}{where}"
            with ui.expansion(title, icon="article", value=job.status == "running").classes(
                    "w-full border rounded").props(f"data-testid=job-{job.job}"):
                if job.error:
                    ui.label(job.error).classes("text-negative")
                ui.code(logs.get(job.job) or ("(no lines yet)" if job.status in LIVE else "(no lines)"),
                        language="text").classes("w-full text-xs ff-log").props(f"data-testid=log-{job.job}")
        if detail.alerts:
            ui.label("Alerts").classes("text-lg font-medium")
            table([{"alert": a.event, "channel": a.channel, "status": a.status, "detail": a.detail or "",
                    "at": f"{a.at:%Y-%m-%d %H:%M:%S}"} for a in detail.alerts]).props("data-testid=run-alerts")

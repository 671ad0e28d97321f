"""Run history and run detail: per-job timeline, live progress while running, and logs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.core.runs import RunDetail
from flowforge.errors import AccessDenied
from flowforge.ui import quality, services
from flowforge.ui.layout import current_user, frame, go, login_redirect, status_badge, table

POLL_SECONDS = 1.0


def _duration(start: dt.datetime, end: dt.datetime | None) -> str:
    if end is None:
        return "running"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def history_rows(user: services.UiUser, limit: int = 100) -> list[dict[str, Any]]:
    return [{"run": r.id, "workflow": r.workflow, "status": r.status, "trigger": r.trigger, "by": r.actor,
             "started": f"{r.started_at:%Y-%m-%d %H:%M:%S}", "duration": _duration(r.started_at, r.ended_at),
             "rows read": r.rows_read, "rows written": r.rows_written} for r in services.runs(user, None, limit)]


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
    @ui.page("/runs")
    def runs_page(request: Request) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Runs", user):
            grid = table(history_rows(user), row_key="run", pagination=25)
            grid.on("rowClick", lambda e: go(f"/runs/{e.args[1]['run']}"))
            ui.label("Click a run to see its jobs and logs.").classes("text-gray-500 text-sm")
        return None

    @ui.page("/runs/{run_id}")
    def run_page(request: Request, run_id: int) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Run {run_id}", user):
            try:
                first = services.run_detail(user, run_id)
            except Exception as exc:
                ui.label(str(exc)).classes("text-negative")
                return None
            ui.link(f"← {first.run.workflow}", f"/workflows/{first.run.workflow}")
            body(user, run_id)
            if first.run.status == "running":
                timer = ui.timer(POLL_SECONDS, lambda: _poll(user, run_id, timer))
        return None

    def _poll(user: services.UiUser, run_id: int, timer: ui.timer) -> None:
        try:
            body.refresh()
            running = services.run_detail(user, run_id).run.status == "running"
        except AccessDenied:  # signed out meanwhile: stop polling
            running = False
        if not running:
            timer.deactivate()

    @ui.refreshable
    def body(user: services.UiUser, run_id: int) -> None:
        detail = services.run_detail(user, run_id)
        run = detail.run
        logs = services.run_logs(user, run_id) if run.status != "running" else {}
        total = len(detail.jobs)
        done = sum(j.status != "running" for j in detail.jobs)
        with ui.row().classes("items-center gap-4"):
            ui.label("Status:")
            with ui.element("span").props("data-testid=run-status"):
                status_badge(run.status)
            ui.label(f"trigger {run.trigger} by {run.actor} · started {run.started_at:%Y-%m-%d %H:%M:%S} · "
                     f"{_duration(run.started_at, run.ended_at)} · rows read {run.rows_read:,} · "
                     f"written {run.rows_written:,}").classes("text-gray-600")
        if run.status == "running":
            ui.linear_progress(value=done / total if total else 0, show_value=False).props("data-testid=progress")
            ui.label(f"{done} job(s) finished; refreshing every {POLL_SECONDS:.0f} s").classes("text-sm")
        if run.error:
            ui.label(run.error).classes("text-negative")
        if detail.jobs:
            ui.echart(timeline_options(detail)).classes("w-full").style(f"height: {60 + 40 * total}px")
        if run.status != "running":
            quality.run_tests(user, run_id)
        for job in detail.jobs:
            title = f"{job.job} — {job.status} · {_duration(job.started_at, job.ended_at)} · " \
                    f"read {job.rows_read:,} · written {job.rows_written:,}"
            with ui.expansion(title, icon="article").classes("w-full border rounded"):
                if job.error:
                    ui.label(job.error).classes("text-negative")
                ui.code(logs.get(job.job) or ("(the log appears when the run ends)" if not logs else "(no lines)"),
                        language="text").classes("w-full text-xs")

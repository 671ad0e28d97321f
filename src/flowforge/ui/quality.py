"""Data quality in the UI: a run's tests (on the run page) and a table's quality tab (catalog).

Every value shown is data (test names, messages, sample rows): it goes into labels and table
cells, which render text, never HTML.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from flowforge.ui import services
from flowforge.ui.layout import error_message, load, notify_error, table

TEST_COLORS = {"pass": "positive", "warn": "warning", "fail": "negative", "error": "negative"}


def _badge(status: str) -> None:
    ui.badge(status.upper(), color=TEST_COLORS.get(status, "grey")).props(f"data-testid=test-{status}")


def _sample(rows: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> None:
    if rows:
        ui.label(f"{len(rows)} failing row(s):").classes("text-sm text-gray-600")
        table([{k: "" if v is None else str(v) for k, v in r.items()} for r in rows])


def run_tests(found: Any) -> None:
    """The tests a run evaluated (``services.run_quality``, or why they could not be read), per table,
    with row accounting and failing samples."""
    if isinstance(found, Exception):
        ui.label(error_message(found)).classes("text-negative")
        return
    if not found.results and not found.accounting:
        return
    counts = {s: sum(r.status == s for r in found.results) for s in ("pass", "warn", "fail", "error")}
    with ui.column().classes("w-full gap-2").props("data-testid=run-tests"):
        ui.label(f"Tests: PASS={counts['pass']} WARN={counts['warn']} "
                 f"ERROR={counts['fail'] + counts['error']}").classes("text-lg font-semibold")
        if found.accounting:
            table([{"table": a.table_name, "rows in": a.rows_in, "committed": a.rows_committed,
                    "dropped": a.rows_dropped, "quarantined": a.rows_quarantined,
                    "version": a.delta_version} for a in found.accounting])
        for r in found.results:
            title = f"{r.table_name} · {r.test_name} · {r.status}" + (
                f" · {r.failing_rows:,} failing" if r.failing_rows else "")
            with ui.expansion(title, icon="rule").classes("w-full border rounded"):
                with ui.row().classes("items-center gap-2"):
                    _badge(r.status)
                    ui.label(f"{r.test_kind} · severity {r.severity} · {r.message}")
                _sample(r.sample)


async def table_tab(name: str, user: services.UiUser) -> None:
    """The catalog's Quality tab: each test's latest status, the history, and the quarantine."""

    @ui.refreshable
    async def body() -> None:
        try:
            history, accounting, held = await load(services.table_quality, user, name)
        except Exception as exc:
            ui.label(error_message(exc)).classes("text-negative")
            return
        if not history and held is None:
            ui.label("No tests have run on this table. Declare them under 'tests:' next to the table in its "
                     "workflow file.").classes("text-gray-600")
            return
        latest: dict[str, Any] = {}
        for r in history:  # newest first
            latest.setdefault(r.test_name, r)
        ui.label("Latest result of each test").classes("font-semibold")
        table([{"test": r.test_name, "status": r.status, "failing rows": r.failing_rows, "severity": r.severity,
                "when": f"{r.at:%Y-%m-%d %H:%M:%S}", "by": f"run {r.run_id}" if r.run_id else "flowforge test",
                "message": r.message} for r in latest.values()]).props("data-testid=quality-latest")
        if len(history) > len(latest):
            ui.echart(_trend(history)).classes("w-full").style("height: 260px")
        if accounting:
            ui.label("Rows per checked batch").classes("font-semibold")
            table([{"run": a.run_id, "rows in": a.rows_in, "committed": a.rows_committed,
                    "dropped": a.rows_dropped, "quarantined": a.rows_quarantined, "version": a.delta_version}
                   for a in accounting])
        if held is not None:
            await _quarantine(name, held, user, body.refresh)
        ui.label("History").classes("font-semibold")
        table([{"when": f"{r.at:%Y-%m-%d %H:%M:%S}", "by": f"run {r.run_id}" if r.run_id else "flowforge test",
                "test": r.test_name, "status": r.status, "failing rows": r.failing_rows, "message": r.message}
               for r in history], pagination=20)

    await body()


def _trend(history: list[Any]) -> dict[str, Any]:
    """Failing rows per test over time (oldest left)."""
    by_test: dict[str, list[list[Any]]] = {}
    for r in reversed(history):
        by_test.setdefault(r.test_name, []).append([r.at.isoformat(), r.failing_rows])
    return {"tooltip": {"trigger": "axis"}, "legend": {"type": "scroll"},
            "xAxis": {"type": "time"}, "yAxis": {"type": "value", "name": "failing rows"},
            "series": [{"type": "line", "name": t, "data": points, "showSymbol": True}
                       for t, points in by_test.items()]}


async def _quarantine(name: str, held: Any, user: services.UiUser, refresh: Any) -> None:
    ui.label(f"Quarantine: {held.pending:,} pending, {held.replayed:,} replayed, {held.superseded:,} superseded"
             ).classes("font-semibold").props("data-testid=quarantine-summary")
    if held.tests:
        ui.label("Caught by: " + ", ".join(f"{t} ({n})" for t, n in held.tests.items())).classes("text-sm")

    async def replay() -> None:
        try:
            r = await load(services.replay_quarantine, user, name)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"Replayed {r.replayed} row(s); {r.still_failing} still failing, {r.superseded} superseded.",
                  type="positive")
        refresh()

    if user.can_edit and held.pending:
        ui.button("Replay rows that now pass", on_click=replay, icon="replay").props("data-testid=replay")
    rows = await load(services.quarantine_rows, user, name, 20) if held.pending else []
    if rows:
        table([{k: ", ".join(v) if isinstance(v, list) else ("" if v is None else str(v)) for k, v in r.items()
                if not k.startswith("_replay")} for r in rows])

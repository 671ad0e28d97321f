"""``/metrics`` in the Prometheus text format (version 0.0.4).

Runs by workflow and status, job durations, rows written, scheduler lag (slot → first job start,
over the newest 1,000 scheduled fires), lease takeovers, fires and alerts. Everything is read from
the metadata store at scrape time, so one scrape of any FlowForge server sees the runs of every
scheduler and worker. Labels are workflow and job names only: no connection, host, URL or secret.
Who may read it: any signed-in user or API token (a viewer token for Prometheus'
``authorization: {credentials: ...}``), or anyone when ``metrics_public: true`` is set.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowforge.core.context import Context

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINISHED = ("success", "failed", "partial", "cancelled")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}" if pairs else ""


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: str) -> None:
        number = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{_labels(**labels)} {number}")


def render(ctx: Context) -> str:
    from flowforge.metadata.observability import metric_rows

    ctx.reap()  # a dead run is counted failed, not running
    rows = metric_rows(ctx.metadata)
    out = _Out()
    out.family("flowforge_runs_total", "counter", "Runs that ended, by workflow and status.")
    for workflow, status, count in rows.runs:
        if status in FINISHED:
            out.sample("flowforge_runs_total", count, workflow=workflow, status=status)
    out.family("flowforge_runs_active", "gauge", "Runs queued or running now, by workflow and status.")
    for workflow, status, count in rows.runs:
        if status not in FINISHED:
            out.sample("flowforge_runs_active", count, workflow=workflow, status=status)
    out.family("flowforge_job_duration_seconds", "summary", "Durations of successful job runs.")
    for workflow, job, count, seconds in rows.jobs:
        out.sample("flowforge_job_duration_seconds_sum", round(seconds, 3), workflow=workflow, job=job)
        out.sample("flowforge_job_duration_seconds_count", count, workflow=workflow, job=job)
    out.family("flowforge_rows_written_total", "counter", "Rows written (inserted or updated) by runs, by workflow.")
    for workflow, count in rows.rows_written:
        out.sample("flowforge_rows_written_total", count, workflow=workflow)
    lags = sorted(ctx.metadata.fires.lags(1000))
    out.family("flowforge_scheduler_lag_seconds", "summary",
               "Seconds from a scheduled slot to its first job's start (newest 1,000 scheduled fires).")
    if lags:
        for q in (0.5, 0.9, 0.99):
            out.sample("flowforge_scheduler_lag_seconds", round(_quantile(lags, q), 4), quantile=str(q))
    out.sample("flowforge_scheduler_lag_seconds_sum", round(sum(lags), 4))
    out.sample("flowforge_scheduler_lag_seconds_count", len(lags))
    out.family("flowforge_lease_takeovers_total", "counter",
               "Leases taken over from a holder that stopped renewing them (a dead run or worker).")
    out.sample("flowforge_lease_takeovers_total", ctx.metadata.leases.takeovers())
    out.family("flowforge_fires_total", "counter", "Trigger fires, by kind and status.")
    for kind, status, count in rows.fires:
        out.sample("flowforge_fires_total", count, kind=kind, status=status)
    out.family("flowforge_alerts_total", "counter", "Alerts, by delivery status.")
    for status, count in rows.alerts:
        out.sample("flowforge_alerts_total", count, status=status)
    return "\n".join(out.lines) + "\n"


def _quantile(ordered: list[float], q: float) -> float:
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[min(998, max(0, round(q * 1000) - 1))]

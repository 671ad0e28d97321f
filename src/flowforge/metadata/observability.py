"""Aggregates for ``/metrics``: counted in the metadata store, so every process (servers, schedulers,
workers) is seen, not only the one answering the scrape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from flowforge.metadata.tables import fires, job_runs, run_alerts, runs, workflows

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore


@dataclass(frozen=True)
class MetricRows:
    runs: list[tuple[str, str, int]]  # workflow, status, count
    jobs: list[tuple[str, str, int, float]]  # workflow, job, finished job runs, seconds in all
    rows_written: list[tuple[str, int]]  # workflow, rows
    fires: list[tuple[str, str, int]]  # kind, status, count
    alerts: list[tuple[str, int]]  # status, count


def _seconds(conn: Any, start: Any, end: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def metric_rows(store: MetadataStore) -> MetricRows:
    with store._begin() as conn:
        run_counts = conn.execute(select(workflows.c.name, runs.c.status, func.count())
                                  .join(runs, runs.c.workflow_id == workflows.c.id)
                                  .group_by(workflows.c.name, runs.c.status)).all()
        took = _seconds(conn, job_runs.c.started_at, job_runs.c.ended_at)
        job_rows = conn.execute(select(workflows.c.name, job_runs.c.job_name, func.count(), func.sum(took))
                                .select_from(job_runs).join(runs, runs.c.id == job_runs.c.run_id)
                                .join(workflows, workflows.c.id == runs.c.workflow_id)
                                .where(job_runs.c.ended_at.is_not(None), job_runs.c.status == "success")
                                .group_by(workflows.c.name, job_runs.c.job_name)).all()
        written = conn.execute(select(workflows.c.name, func.coalesce(func.sum(runs.c.rows_written), 0))
                               .join(runs, runs.c.workflow_id == workflows.c.id).group_by(workflows.c.name)).all()
        fire_counts = conn.execute(select(fires.c.kind, fires.c.status, func.count())
                                   .group_by(fires.c.kind, fires.c.status)).all()
        alert_counts = conn.execute(select(run_alerts.c.status, func.count()).group_by(run_alerts.c.status)).all()
    return MetricRows([(str(w), str(s), int(n)) for w, s, n in run_counts],
                      [(str(w), str(j), int(n), float(t or 0.0)) for w, j, n, t in job_rows],
                      [(str(w), int(n)) for w, n in written],
                      [(str(k), str(s), int(n)) for k, s, n in fire_counts],
                      [(str(s), int(n)) for s, n in alert_counts])

"""The one place UI pages reach the service layer (``ctx.workflows``, ``ctx.run_service``,
``ctx.users``, ``ctx.connections`` and the Context's own methods).

Every function takes the signed-in ``UiUser`` and acts as that user: the session is checked
again on every call (so signing out, a password change or a disabled account stops an open page
at once), and the services check the user's role themselves, exactly as for the API. Pages
never touch the metadata store or a connector themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.core.users import SESSION_COOKIE

if TYPE_CHECKING:
    from flowforge.core.catalog import TableDetail
    from flowforge.core.connections import ConnectionSummary
    from flowforge.core.context import Context, TableEntry
    from flowforge.core.runs import RunDetail, RunInfo
    from flowforge.core.spec_text import ValidationIssue
    from flowforge.core.users import User
    from flowforge.core.workflows import WorkflowDetail, WorkflowSummary
    from flowforge.embed.search import SearchableTable, SearchResult
    from flowforge.metadata import AuditRecord
    from flowforge.settings import Settings
    from flowforge.templates.dashboards import Dashboard, DashboardData
    from flowforge.templates.registry import Template

__all__ = ["SESSION_COOKIE", "UiUser"]
_state: dict[str, Context] = {}


@dataclass(frozen=True)
class UiUser:
    """The signed-in user of a page, with the session cookie it signed in with."""

    name: str
    role: str  # admin | editor | viewer
    record: User
    session: str

    @property
    def can_edit(self) -> bool:
        return self.record.can("editor")

    @property
    def is_admin(self) -> bool:
        return self.record.can("admin")


def configure(settings: Settings) -> None:
    from flowforge.core.context import Context

    _state["ctx"] = Context(settings, principal=None)


def settings() -> Settings:
    return _state["ctx"].settings


@contextmanager
def acting(user: UiUser) -> Iterator[Context]:
    """The Context acting as ``user`` after checking the session again. NotSignedIn when the session has
    ended. Calls of different pages run side by side (the Context is shared the way the API's is), so a
    long SQL console query or run start does not hold up everybody else's pages."""
    from flowforge.errors import NotSignedIn

    base = _state["ctx"]
    fresh = base.users.verify_session(user.session)
    if fresh is None:
        raise NotSignedIn("Your session has ended; sign in again.")
    yield base.as_user(fresh)


# -- users and sessions ---------------------------------------------------------------------
def login(username: str, password: str, client: str | None) -> str:
    """A session cookie value for valid credentials; NotSignedIn or TooManyAttempts otherwise."""
    base = _state["ctx"]
    return base.users.issue_session(base.users.authenticate(username, password, client))


def logout(token: str | None) -> None:
    if token:
        _state["ctx"].users.end_session(token)


def session_user(token: str | None, touch: bool = True) -> UiUser | None:
    if not token:
        return None
    user = _state["ctx"].users.verify_session(token, touch)
    return None if user is None else UiUser(user.username, user.role, user, token)


# -- workflows --------------------------------------------------------------------------------
def workflow_summaries(user: UiUser) -> list[WorkflowSummary]:
    with acting(user) as c:
        return c.workflows.list()


def workflow(user: UiUser, name: str) -> WorkflowDetail:
    with acting(user) as c:
        return c.workflows.get(name)


def set_paused(user: UiUser, name: str, paused: bool) -> None:
    with acting(user) as c:
        (c.workflows.pause if paused else c.workflows.resume)(name)


def clone_workflow(user: UiUser, name: str, new_name: str) -> str:
    with acting(user) as c:
        return c.workflows.clone(name, new_name).name


def delete_workflow(user: UiUser, name: str) -> None:
    with acting(user) as c:
        c.workflows.delete(name)


def reset_cdc(user: UiUser, workflow_name: str, job: str) -> str:
    """Forget a cdc job's source position (its next run takes a new snapshot); the message to show."""
    with acting(user) as c:
        return str(c.cdc.reset(workflow_name, job).message)


def save_job(user: UiUser, workflow_name: str, job: dict[str, Any] | str, replace: str | None) -> None:
    with acting(user) as c:
        if replace:
            c.workflows.update_job(workflow_name, replace, job)
        else:
            c.workflows.add_job(workflow_name, job)


def validate_job(user: UiUser, workflow_name: str, job: dict[str, Any] | str) -> list[ValidationIssue]:
    with acting(user) as c:
        return c.workflows.validate_job(workflow_name, job)


# -- runs -----------------------------------------------------------------------------------
def trigger_run(user: UiUser, name: str) -> int:
    with acting(user) as c:
        return c.run_service.trigger(name, trigger="ui")


def runs(user: UiUser, workflow_name: str | None = None, limit: int = 50) -> list[RunInfo]:
    with acting(user) as c:
        return c.run_service.history(workflow_name, limit=limit)


def run_detail(user: UiUser, run_id: int) -> RunDetail:
    with acting(user) as c:
        return c.run_service.detail(run_id)


def run_logs(user: UiUser, run_id: int) -> dict[str, str]:
    with acting(user) as c:
        return {log.job: log.log for log in c.run_service.logs(run_id)}


# -- templates --------------------------------------------------------------------------------
def templates(industry: str | None = None, category: str | None = None) -> list[Template]:
    from flowforge.templates.registry import list_templates

    return list_templates(industry or None, category or None)


def template_preview(name: str) -> dict[str, Any]:
    """Jobs and the table graph of a template rendered with its defaults (built-in, public content)."""
    from flowforge.lineage.graph import table_edges
    from flowforge.spec import parse_workflow
    from flowforge.templates.registry import get_template

    wf = parse_workflow(get_template(name).render(), f"template {name}")
    jobs = [{"name": j.name, "kind": j.kind, "description": j.description, "outputs": list(j.outputs())}
            for j in wf.jobs]
    edges = [{"source": e.source, "target": e.target} for e in table_edges(wf)]
    names = list(dict.fromkeys([e["source"] for e in edges] + [e["target"] for e in edges]))
    layer = {t: str(j.layer) for j in wf.jobs for t in j.outputs()}
    nodes = [{"id": n, "label": n.removeprefix("source:"), "type": layer.get(n, "source"),
              "rows": None, "last_updated": None} for n in names]
    return {"jobs": jobs, "graph": {"nodes": nodes, "edges": edges}}


def create_from_template(user: UiUser, name: str, params: dict[str, str]) -> str:
    with acting(user) as c:
        path = c.instantiate_template(name, params)
        c.workflows.list()  # registers the new file
    return path.stem


# -- lineage, catalog, audit, connections ----------------------------------------------------
def lineage(user: UiUser, workflow_name: str) -> dict[str, Any]:
    with acting(user) as c:
        c.workflows.get(workflow_name)  # registers a workflow file not seen before
        return c.lineage(workflow_name)


def tables(user: UiUser, layer: str | None = None) -> list[TableEntry]:
    with acting(user) as c:
        return c.tables(layer)


def table_detail(user: UiUser, name: str) -> TableDetail:
    with acting(user) as c:
        return c.table_detail(name, 10)


def audit(user: UiUser, limit: int = 200) -> list[AuditRecord]:
    with acting(user) as c:
        return c.audit_log(limit)


def connection_summaries(user: UiUser) -> list[ConnectionSummary]:
    with acting(user) as c:
        return c.connections.summaries()


def connection_kinds() -> list[str]:
    from flowforge.connectors.config import config_models

    return sorted(config_models())


@contextmanager
def _connector(c: Context, data: dict[str, Any] | str) -> Iterator[Any]:
    """The connector of a saved connection (by name) or of the form's values, for an editor."""
    from flowforge.connectors import open_connector

    c.require("editor")
    if isinstance(data, str):
        with c.connector(data) as conn:
            yield conn
        return
    with open_connector("form", c.connections.parse("form", data, "connection form")) as conn:
        yield conn


def test_connection(user: UiUser, data: dict[str, Any] | str) -> str:
    """A one-line success message; raises a FlowForgeError that says what failed."""
    with acting(user) as c, _connector(c, data) as conn:
        result = conn.test()
        return f"Connected to {conn.config.describe()} ({result.server_version}, {result.latency_ms:.0f} ms)"


def source_tables(user: UiUser, data: dict[str, Any] | str) -> list[str]:
    with acting(user) as c, _connector(c, data) as conn:
        return [f"{t.schema}.{t.name}" if t.schema else t.name for t in conn.list_tables()]


def table_preview(user: UiUser, data: dict[str, Any] | str,
                  table: str) -> tuple[list[tuple[str, str, bool, str | None]], list[dict[str, Any]]]:
    """(columns as name, source type, primary key, default) and up to 10 sample rows."""
    from flowforge.connectors.base import ReadRequest
    from flowforge.core.catalog import sample_rows
    from flowforge.core.connections import check_source_name

    with acting(user) as c, _connector(c, data) as conn:
        request = ReadRequest(table=check_source_name(table))
        cols = [(col.name, col.source_type, col.primary_key, col.default) for col in conn.columns(request)]
        return cols, sample_rows(conn.preview(request, 10))


def save_connection(user: UiUser, name: str, data: dict[str, Any]) -> None:
    with acting(user) as c:
        c.connections.save(name, data)


# -- search -----------------------------------------------------------------------------------
def searchable_tables(user: UiUser) -> list[SearchableTable]:
    with acting(user) as c:
        return c.search.tables()


def search(user: UiUser, table: str, query: str, *, k: int = 10, where: str | None = None) -> SearchResult:
    with acting(user) as c:
        return c.search.search(table, query, k=k, where=where)


# -- dashboards -------------------------------------------------------------------------------
def dashboards(user: UiUser) -> list[Dashboard]:
    with acting(user) as c:
        return c.dashboards()


def dashboard_data(user: UiUser, template: str, name: str) -> DashboardData:
    with acting(user) as c:
        return c.dashboard_data(template, name)


# -- data quality -------------------------------------------------------------------------------
def run_quality(user: UiUser, run_id: int) -> Any:
    """The run's test results and row accounting (``RunQuality``)."""
    with acting(user) as c:
        return c.quality.run_results(run_id)


def table_quality(user: UiUser, name: str) -> tuple[list[Any], list[Any], Any]:
    """(test results newest first, accounting newest first, the quarantine summary or None)."""
    from flowforge.errors import NotFoundError

    with acting(user) as c:
        try:
            held = c.quality.quarantine(name)
        except NotFoundError:
            held = None
        return c.quality.history(name, 500), c.quality.accounting(name, 100), held


def quarantine_rows(user: UiUser, name: str, limit: int = 50) -> list[dict[str, Any]]:
    with acting(user) as c:
        return c.quality.quarantine_rows(name, limit=limit)


def replay_quarantine(user: UiUser, name: str) -> Any:
    with acting(user) as c:
        return c.quality.replay(name)


# -- schedules, run control, alerts ------------------------------------------------------------
def workflow_names(user: UiUser) -> list[str]:
    with acting(user) as c:
        return sorted(w.name for w in c.workflows.list() if w.id is not None)


def schedule_overview(user: UiUser, workflow_name: str) -> list[Any]:
    with acting(user) as c:
        return c.schedules.overview(workflow_name)


def trigger_preview(user: UiUser, trigger: dict[str, Any]) -> tuple[str, list[Any]]:
    """(description, next five fire times in UTC) of a trigger being edited; raises saying what is wrong."""
    with acting(user) as c:
        parsed = c.schedules.parse(trigger)
        return parsed.describe(), c.schedules.preview(trigger)


def save_triggers(user: UiUser, workflow_name: str, triggers: list[dict[str, Any]], concurrency: str) -> None:
    with acting(user) as c:
        c.schedules.set_triggers(workflow_name, triggers, concurrency=concurrency)


def backfill(user: UiUser, workflow_name: str, start: Any, end: Any, trigger: int | None) -> Any:
    with acting(user) as c:
        return c.schedules.backfill(workflow_name, start, end, trigger=trigger)


def files_connections(user: UiUser) -> list[str]:
    with acting(user) as c:
        return [s.name for s in c.connections.summaries() if s.kind == "files"]


def runs_filtered(user: UiUser, workflow_name: str | None, status: str | None, trigger: str | None, since: Any,
                  limit: int = 200) -> list[RunInfo]:
    with acting(user) as c:
        return c.run_service.history(workflow_name or None, status or None, since, limit, trigger=trigger or None)


def full_refresh(user: UiUser, workflow_name: str, tables: list[str] | None) -> int:
    with acting(user) as c:
        return c.run_service.trigger(workflow_name, trigger="ui", full_refresh=True, tables=tables)


def run_job(user: UiUser, workflow_name: str, job: str) -> int:
    with acting(user) as c:
        return c.run_service.trigger(workflow_name, job=job, trigger="ui")


def cancel_run(user: UiUser, run_id: int) -> None:
    with acting(user) as c:
        c.run_service.cancel(run_id)


def rerun(user: UiUser, run_id: int, from_failure: bool) -> int:
    with acting(user) as c:
        return c.run_service.rerun(run_id, from_failure=from_failure)


def alert_channels(user: UiUser) -> list[Any]:
    with acting(user) as c:
        return c.alerts.summaries()


def alert_rules(user: UiUser) -> list[Any]:
    with acting(user) as c:
        return c.alerts.rules()


def save_alert_channel(user: UiUser, name: str, data: dict[str, Any]) -> None:
    with acting(user) as c:
        c.alerts.save_channel(name, data)


def delete_alert_channel(user: UiUser, name: str) -> None:
    with acting(user) as c:
        c.alerts.remove_channel(name)


def test_alert_channel(user: UiUser, name: str) -> str:
    """Sends outside the shared lock: a slow webhook must not hold up other pages."""
    from flowforge.core.alerts import send_test

    with acting(user) as c:
        config = c.alerts.channel(name)
    return send_test(name, config)

"""The one place UI pages reach the service layer (``ctx.workflows``, ``ctx.run_service``,
``ctx.users``, ``ctx.connections`` and the Context's own methods).

Each function is a thin call; mutating ones take the signed-in user, check the role with the
users service and act under that user's name. Pages never touch the metadata store or a
connector themselves.
"""

from __future__ import annotations

import threading
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
    from flowforge.metadata import AuditRecord
    from flowforge.settings import Settings
    from flowforge.templates.registry import Template

__all__ = ["SESSION_COOKIE", "UiUser"]
_state: dict[str, Context] = {}
_lock = threading.RLock()


@dataclass(frozen=True)
class UiUser:
    name: str
    role: str  # admin | editor | viewer
    record: User

    @property
    def can_edit(self) -> bool:
        return self.record.can("editor")


def configure(settings: Settings) -> None:
    from flowforge.core.context import Context

    _state["ctx"] = Context(settings)


def ctx() -> Context:
    return _state["ctx"]


@contextmanager
def locked() -> Iterator[Context]:
    """One Context (one metadata connection pool) serves every page; calls take turns."""
    with _lock:
        yield ctx()


def _editor(user: UiUser) -> str:
    with locked() as c:
        c.users.require(user.record, "editor")
    return user.name


# -- users and sessions ---------------------------------------------------------------------
def login(username: str, password: str) -> str | None:
    """A session cookie value for valid credentials, else None."""
    with locked() as c:
        user = c.users.authenticate(username, password)
        return None if user is None else c.users.issue_session(user)


def session_user(token: str | None) -> UiUser | None:
    if not token:
        return None
    with locked() as c:
        user = c.users.verify_session(token)
    return None if user is None else UiUser(user.username, user.role, user)


# -- workflows --------------------------------------------------------------------------------
def workflow_summaries() -> list[WorkflowSummary]:
    with locked() as c:
        return c.workflows.list()


def workflow(name: str) -> WorkflowDetail:
    with locked() as c:
        return c.workflows.get(name)


def set_paused(user: UiUser, name: str, paused: bool) -> None:
    actor = _editor(user)
    with locked() as c:
        (c.workflows.pause if paused else c.workflows.resume)(name, actor=actor)


def clone_workflow(user: UiUser, name: str, new_name: str) -> str:
    actor = _editor(user)
    with locked() as c:
        return c.workflows.clone(name, new_name, actor=actor).name


def delete_workflow(user: UiUser, name: str) -> None:
    actor = _editor(user)
    with locked() as c:
        c.workflows.delete(name, actor=actor)


def reset_cdc(user: UiUser, workflow_name: str, job: str) -> str:
    """Forget a cdc job's source position (its next run takes a new snapshot); the message to show."""
    actor = _editor(user)
    with locked() as c:
        return c.cdc.reset(workflow_name, job, actor=actor).message


def save_job(user: UiUser, workflow_name: str, job: dict[str, Any] | str, replace: str | None) -> None:
    actor = _editor(user)
    with locked() as c:
        if replace:
            c.workflows.update_job(workflow_name, replace, job, actor=actor)
        else:
            c.workflows.add_job(workflow_name, job, actor=actor)


def validate_job(workflow_name: str, job: dict[str, Any] | str) -> list[ValidationIssue]:
    with locked() as c:
        return c.workflows.validate_job(workflow_name, job)


def job_yaml(spec: dict[str, Any]) -> str:
    from flowforge.core.spec_text import dump_yaml

    return dump_yaml(spec)


# -- runs -----------------------------------------------------------------------------------
def trigger_run(user: UiUser, name: str) -> int:
    actor = _editor(user)
    with locked() as c:
        return c.run_service.trigger(name, trigger="ui", actor=actor)


def runs(workflow_name: str | None = None, limit: int = 50) -> list[RunInfo]:
    with locked() as c:
        return c.run_service.history(workflow_name, limit=limit)


def run_detail(run_id: int) -> RunDetail:
    with locked() as c:
        return c.run_service.detail(run_id)


def run_logs(run_id: int) -> dict[str, str]:
    with locked() as c:
        return {log.job: log.log for log in c.run_service.logs(run_id)}


# -- templates --------------------------------------------------------------------------------
def templates(industry: str | None = None, category: str | None = None) -> list[Template]:
    from flowforge.templates.registry import list_templates

    return list_templates(industry or None, category or None)


def template_preview(name: str) -> dict[str, Any]:
    """Jobs and the table graph of a template rendered with its defaults."""
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
    actor = _editor(user)
    with locked() as c:
        c.settings.actor, before = actor, c.settings.actor
        try:
            path = c.instantiate_template(name, params)
            c.workflows.list()  # registers the new file
        finally:
            c.settings.actor = before
    return path.stem


# -- lineage, catalog, audit, connections ----------------------------------------------------
def lineage(workflow_name: str) -> dict[str, Any]:
    with locked() as c:
        c.workflows.get(workflow_name)  # registers a workflow file not seen before
        return c.lineage(workflow_name)


def tables(layer: str | None = None) -> list[TableEntry]:
    with locked() as c:
        return c.tables(layer)


def table_detail(name: str) -> TableDetail:
    from flowforge.core.catalog import table_detail as detail

    with locked() as c:
        return detail(c, name, 10)


def audit(limit: int = 200) -> list[AuditRecord]:
    with locked() as c:
        return c.metadata.list_audit(limit)


def connection_summaries() -> list[ConnectionSummary]:
    with locked() as c:
        return c.connections.summaries()


def connection_kinds() -> list[str]:
    from flowforge.connectors.config import config_models

    return sorted(config_models())


def _connector(c: Context, data: dict[str, Any] | str) -> Any:
    from flowforge.connectors import open_connector

    if isinstance(data, str):
        return c.connector(data)
    return open_connector("form", c.connections.parse("form", data, "connection form"))


def test_connection(data: dict[str, Any] | str) -> str:
    """A one-line success message; raises a FlowForgeError that says what failed."""
    with locked() as c, _connector(c, data) as conn:
        result = conn.test()
        return f"Connected to {conn.config.describe()} ({result.server_version}, {result.latency_ms:.0f} ms)"


def source_tables(data: dict[str, Any] | str) -> list[str]:
    with locked() as c, _connector(c, data) as conn:
        return [f"{t.schema}.{t.name}" if t.schema else t.name for t in conn.list_tables()]


def table_preview(data: dict[str, Any] | str,
                  table: str) -> tuple[list[tuple[str, str, bool, str | None]], list[dict[str, Any]]]:
    """(columns as name, source type, primary key, default) and up to 10 sample rows."""
    from flowforge.connectors.base import ReadRequest
    from flowforge.core.catalog import sample_rows

    with locked() as c, _connector(c, data) as conn:
        request = ReadRequest(table=table)
        cols = [(col.name, col.source_type, col.primary_key, col.default) for col in conn.columns(request)]
        return cols, sample_rows(conn.preview(request, 10))


def save_connection(user: UiUser, name: str, data: dict[str, Any]) -> None:
    actor = _editor(user)
    with locked() as c:
        c.settings.actor, before = actor, c.settings.actor
        try:
            c.connections.save(name, data)
        finally:
            c.settings.actor = before

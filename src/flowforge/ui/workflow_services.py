"""UI calls for writing workflows (blank workflows, names and ownership, jobs as written, YAML
views, one writer per table, template plans), in the style of ``ui/services.py``: each takes the
signed-in user first and acts as that user, and the services check the role themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowforge.ui.services import UiUser, acting

if TYPE_CHECKING:
    from flowforge.core.authoring import JobSource, TemplatePlan
    from flowforge.core.spec_text import ValidationIssue
    from flowforge.core.workflows import WorkflowPage


def job_source(user: UiUser, workflow: str, job: str) -> JobSource:
    with acting(user) as c:
        return c.authoring.job_source(workflow, job)


def workflow_page(user: UiUser, search: str | None = None, team: str | None = None,
                  environment: str | None = None, status: str | None = None, tag: str | None = None) -> WorkflowPage:
    with acting(user) as c:
        return c.workflows.page(team=team or None, environment=environment or None, status=status or None,
                                tag=tag or None, search=search or None)


def workflow_facets(user: UiUser) -> dict[str, list[str]]:
    """The teams, environments and tags in use, for the list's filters."""
    with acting(user) as c:
        found = [w for w in c.workflows.list() if w.id is not None]
    return {"team": sorted({w.team for w in found if w.team}),
            "environment": sorted({w.environment for w in found if w.environment}),
            "tag": sorted({t for w in found for t in w.tags})}


def create_blank(user: UiUser, name: str, description: str, team: str, environment: str,
                 tags: Sequence[str]) -> str:
    with acting(user) as c:
        return c.authoring.create_blank(name, description=description, team=team or None,
                                        environment=environment, tags=tags).name


def set_details(user: UiUser, name: str, *, new_name: str, description: str, team: str, environment: str,
                tags: Sequence[str]) -> str:
    with acting(user) as c:
        return c.authoring.set_details(name, new_name=new_name, description=description, team=team,
                                       environment=environment, tags=tags).name


def check_workflow_yaml(user: UiUser, text: str) -> list[ValidationIssue]:
    with acting(user) as c:
        return c.workflows.check(text)


def save_workflow_yaml(user: UiUser, name: str, text: str) -> None:
    with acting(user) as c:
        c.workflows.update(name, text)


def delete_job(user: UiUser, workflow: str, job: str) -> None:
    with acting(user) as c:
        c.workflows.delete_job(workflow, job)


def clone_job(user: UiUser, workflow: str, job: str, new_name: str) -> str:
    with acting(user) as c:
        return c.workflows.clone_job(workflow, job, new_name).name


def template_tables(name: str) -> list[str]:
    from flowforge.core.authoring import template_tables

    return template_tables(name)


def template_plan(user: UiUser, name: str, params: Mapping[str, str], tags: Sequence[str] | None,
                  tables: Mapping[str, str]) -> TemplatePlan:
    with acting(user) as c:
        return c.authoring.template_plan(name, params, tags=tags, tables=tables)


def create_from_template(user: UiUser, name: str, params: Mapping[str, str], tags: Sequence[str] | None,
                         tables: Mapping[str, str]) -> str:
    with acting(user) as c:
        path = c.instantiate_template(name, dict(params), tags=tags,
                                      tables={k: v for k, v in tables.items() if v and v != k} or None)
        c.workflows.list()  # registers the new file
    return path.stem


def split_tags(text: str | Any) -> list[str]:
    return [t.strip() for t in str(text or "").split(",") if t.strip()]

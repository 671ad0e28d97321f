"""Writing workflows by hand: blank workflows, their name and ownership, one job as it is written
(with its comments, for the editor), which workflow writes which table, and what a template
would create before it does.

A table has one writer: ``conflicts`` and ``template_plan`` name the tables a new or changed
workflow would write that another workflow already writes, so the UI, API and CLI can warn
before a second writer appears. Reading needs the viewer role, changing the editor role.

Example::

    ctx.authoring.create_blank("daily_orders", team="sales", tags=["orders"])
    plan = ctx.authoring.template_plan("bfsi_customer_360", {"workflow_name": "bfsi_pilot"})
    [f"{c.table} is written by {c.workflow}.{c.job}" for c in plan.conflicts]
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.core.spec_edit import job_text, load, merge_text, plain
from flowforge.errors import ConflictError, NotFoundError, SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.core.workflows import WorkflowDetail

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_READERS = ("publish", "export")  # their 'tables' name tables they read


@dataclass(frozen=True)
class JobSource:
    """One job as its workflow file says it: the data as written (shorthands kept) and its YAML with comments."""

    workflow: str
    name: str
    kind: str
    data: dict[str, Any]
    text: str


@dataclass(frozen=True)
class TableWriter:
    """``table`` is written by job ``job`` of workflow ``workflow``."""

    table: str
    workflow: str
    job: str


@dataclass(frozen=True)
class TemplatePlan:
    """What creating a workflow from a template would do: its name, YAML, the tables it writes, and the
    tables among them another workflow already writes."""

    template: str
    workflow: str
    yaml: str
    writes: tuple[str, ...]
    conflicts: tuple[TableWriter, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(conflict_message(c) for c in self.conflicts)


def conflict_message(c: TableWriter) -> str:
    return (f"Table '{c.table}' is already written by job '{c.job}' of workflow '{c.workflow}'; "
            "rename it here so each table keeps one writer.")


class AuthoringService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- jobs as written ----------------------------------------------------------------------
    def job_source(self, workflow: str, job: str) -> JobSource:
        """The job as its file says it (every table and field, shorthands and comments kept)."""
        self.ctx.require("viewer")
        name = self.ctx.workflows.resolve(workflow)
        path = self.ctx.workflows._file(name)
        if path is None:  # registered without a file: its stored spec
            info = self.ctx.workflows.get_job(name, job)
            from flowforge.core.spec_text import dump_yaml

            return JobSource(name, info.name, info.kind, dict(info.spec), dump_yaml(info.spec))
        text = path.read_text(encoding="utf-8")
        doc = load(text, str(path))
        jobs = doc.get("jobs") if hasattr(doc, "get") else None
        for index, node in enumerate(jobs or []):
            if hasattr(node, "get") and node.get("name") == job:
                return JobSource(name, job, str(node.get("kind", "")), plain(node), job_text(text, index))
        raise NotFoundError(f"Workflow '{name}' has no job '{job}'.",
                            hint=f"Jobs: {', '.join(str(j.get('name')) for j in jobs or [])}.")

    # -- workflows --------------------------------------------------------------------------------
    def create_blank(self, name: str, *, description: str = "", team: str | None = None,
                     environment: str = "dev", tags: Sequence[str] = ()) -> WorkflowDetail:
        """A workflow with no jobs yet, to add jobs to."""
        self.ctx.require("editor")
        spec: dict[str, Any] = {"name": name, "description": description}
        if team:
            spec["team"] = team
        spec.update(environment=environment or "dev", tags=_tags(tags), jobs=[])
        return self.ctx.workflows.create(spec)

    def set_details(self, name: str, *, new_name: str | None = None, description: str | None = None,
                    team: str | None = None, environment: str | None = None,
                    tags: Sequence[str] | None = None) -> WorkflowDetail:
        """Change a workflow's name, description, team, environment or tags (None leaves one as it is;
        an empty team clears it). The file is edited in place, so its comments stay; a new name keeps
        the run history and renames the file."""
        self.ctx.require("editor")
        workflows = self.ctx.workflows
        name = workflows.resolve(name)
        spec = workflows._spec_dict(name)
        if description is not None:
            spec["description"] = description
        if team is not None:
            if team.strip():
                spec["team"] = team.strip()
            else:
                spec.pop("team", None)
        if environment is not None:
            spec["environment"] = environment.strip() or "dev"
        if tags is not None:
            spec["tags"] = _tags(tags)
        target = new_name.strip() if new_name else name
        if target != name:
            self._check_new_name(target)
        spec["name"] = target
        path = workflows._file(name)
        if target == name:
            return workflows.update(name, merge_text(path.read_text(encoding="utf-8"), spec) if path else spec)
        if path is None:
            raise SpecError(f"workflow '{name}' has no file to rename", hint="Save it once, then rename it.")
        from flowforge.core.workflows import _parse

        text = merge_text(path.read_text(encoding="utf-8"), spec, str(path))
        wf = _parse(text, str(path))
        self.ctx.metadata.rename_workflow(name, target, self.ctx.actor)
        new_path = self.ctx.settings.workflows_path / f"{target}.yml"
        workflows._write(new_path, text, wf)
        path.unlink()
        return workflows.get(target)

    def _check_new_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise SpecError(f"name: '{name}' is not a workflow name",
                            hint="Use letters, digits and underscores, starting with a letter.")
        if self.ctx.metadata.get_workflow(name) is not None or self.ctx.workflows._file(name) is not None:
            raise ConflictError(f"A workflow named '{name}' already exists.", hint="Pick another name.")

    # -- one writer per table -------------------------------------------------------------------
    def writers(self) -> builtins.list[TableWriter]:
        """Every table written by a registered workflow, with its job (sorted by table)."""
        self.ctx.require("viewer")
        self.ctx.workflows.list()  # registers workflow files not seen yet
        out = [TableWriter(t, w.name, j.name) for w in self.ctx.metadata.list_workflows() for j in w.jobs
               if j.kind not in _READERS for t in j.outputs]
        return sorted(out, key=lambda x: (x.table, x.workflow, x.job))

    def conflicts(self, spec: Mapping[str, Any] | str, *,
                  ignore: str | None = None) -> builtins.list[TableWriter]:
        """Tables the workflow ``spec`` writes that a workflow other than itself (or ``ignore``) writes."""
        from flowforge.core.spec_text import dump_yaml
        from flowforge.core.workflows import _parse

        self.ctx.require("viewer")
        wf = _parse(spec if isinstance(spec, str) else dump_yaml(spec), "workflow")
        mine = {t for j in wf.jobs if j.kind not in _READERS for t in j.outputs()}
        skip = {wf.name, ignore}
        return [w for w in self.writers() if w.table in mine and w.workflow not in skip]

    def template_plan(self, template: str, params: Mapping[str, str] | None = None, *,
                      tags: Sequence[str] | None = None, tables: Mapping[str, str] | None = None) -> TemplatePlan:
        """What ``instantiate_template`` would write, with the tables another workflow already writes."""
        from flowforge.core.workflows import _parse
        from flowforge.templates.overrides import customise
        from flowforge.templates.registry import get_template

        self.ctx.require("viewer")
        text = customise(get_template(template).render(dict(params or {})), tags=tags,
                         tables={k: v for k, v in (tables or {}).items() if v and v != k})
        wf = _parse(text, f"template {template}")
        writes = tuple(t for j in wf.jobs if j.kind not in _READERS for t in j.outputs())
        return TemplatePlan(template, wf.name, text, writes, tuple(self.conflicts(text)))


def template_tables(template: str) -> builtins.list[str]:
    """The tables a template writes with its defaults, in job order (for a wizard's rename fields)."""
    from flowforge.core.workflows import _parse
    from flowforge.templates.registry import get_template

    wf = _parse(get_template(template).render(), f"template {template}")
    return [t for j in wf.jobs if j.kind not in _READERS for t in j.outputs()]


def _tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags if t and t.strip()))

"""Workflows and their jobs as the API and UI edit them: YAML files in ``workflows/`` plus
their registration (status, history, lineage) in the metadata store.

Every change is validated with the spec models first (errors carry file:line), written to
``workflows/<name>.yml``, registered, and audited under the acting user's name. Reading needs
the viewer role and changing the editor role; the service checks it itself.

Example::

    detail = ctx.workflows.create(yaml_text)          # ctx acting as an editor
    ctx.workflows.pause(detail.name)
    [w.name for w in ctx.workflows.list(status="paused")]
"""

from __future__ import annotations

import builtins
import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import TypeAdapter, ValidationError

from flowforge.core.spec_cache import spec_cache
from flowforge.core.spec_edit import merge_text, replace_job
from flowforge.core.spec_text import ValidationIssue, dump_yaml, validation_issues
from flowforge.errors import ConflictError, FlowForgeError, NotFoundError, SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata import RunRecord, WorkflowRecord
    from flowforge.metadata.records import WorkflowBrief
    from flowforge.spec.workflow import Workflow

Source = str | Mapping[str, Any]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class RunBrief:
    id: int
    status: str
    trigger: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    rows_read: int
    rows_written: int
    error: str | None


@dataclass(frozen=True)
class JobInfo:
    name: str
    kind: str
    layer: str
    description: str
    depends_on: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    spec: dict[str, Any]


@dataclass(frozen=True)
class WorkflowSummary:
    id: int | None  # None for a file that does not parse (status 'invalid')
    name: str
    description: str
    team: str | None
    environment: str
    tags: tuple[str, ...]
    status: str  # active | paused | invalid
    schedule: str | None
    jobs: int
    source_path: str | None
    updated_at: datetime | None
    last_run: RunBrief | None
    error: str | None = None
    triggers: tuple[str, ...] = ()  # each trigger described: "cron 0 6 * * * (Europe/Berlin)", "every 15m"


@dataclass(frozen=True)
class WorkflowPage:
    items: tuple[WorkflowSummary, ...]
    total: int  # registered workflows matching the filters, over all pages
    invalid: tuple[WorkflowSummary, ...]  # workflow files that do not parse (status 'invalid')


@dataclass(frozen=True)
class WorkflowDetail:
    id: int
    name: str
    description: str
    team: str | None
    environment: str
    tags: tuple[str, ...]
    status: str
    schedule: str | None
    source_path: str | None
    updated_at: datetime
    spec: dict[str, Any]
    yaml: str
    jobs: tuple[JobInfo, ...]
    runs: tuple[RunBrief, ...]  # the last 10, newest first
    triggers: tuple[str, ...] = ()  # each trigger described
    concurrency: str = "queue"


class WorkflowService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- reading ---------------------------------------------------------------------------
    def list(self, team: str | None = None, environment: str | None = None, status: str | None = None,
             tag: str | None = None, search: str | None = None) -> builtins.list[WorkflowSummary]:
        """Every matching workflow by name; workflow files that do not parse come last, as status 'invalid'."""
        self.ctx.require("viewer")
        page = self.page(team=team, environment=environment, status=status, tag=tag, search=search)
        return [*page.items, *page.invalid]

    def page(self, team: str | None = None, environment: str | None = None, status: str | None = None,
             tag: str | None = None, search: str | None = None, offset: int = 0,
             limit: int | None = None) -> WorkflowPage:
        """One page of matching workflows (filtered and paged in the metadata store), the number matching,
        and the workflow files that do not parse. A file not yet registered is registered first."""
        self.ctx.require("viewer")
        files = self.ctx.workflow_files()
        known = self.ctx.metadata.workflow_names([p.stem for p in files]) if files else set()
        invalid, _ = self._register_new_files(known, files)
        briefs, total = self.ctx.metadata.workflow_briefs(team=team, environment=environment, status=status,
                                                          tag=tag, search=search, offset=offset, limit=limit)
        last = self.ctx.metadata.latest_runs([b.id for b in briefs]) if briefs else {}
        needle = (search or "").lower()
        shown = [w for w in invalid if status in (None, "invalid") and team is None and environment is None
                 and tag is None and needle in w.name.lower()]
        items = tuple(_brief_summary(b, last.get(b.name)) for b in briefs) if status != "invalid" else ()
        return WorkflowPage(items, total if status != "invalid" else 0, tuple(shown))

    def resolve(self, name_or_id: str | int) -> str:
        """The workflow's name from its name or numeric id."""
        self.ctx.require("viewer")
        text = str(name_or_id)
        key: str | int = int(text) if re.fullmatch(r"[0-9]{1,18}", text) else text
        found = self.ctx.metadata.workflow_name(key)
        if found is not None:
            return found
        if isinstance(key, str) and self._file(key) is not None:
            return key
        raise NotFoundError(f"No workflow '{name_or_id}'.", hint="List workflows with GET /api/v1/workflows.")

    def get(self, name: str) -> WorkflowDetail:
        """A workflow by name or numeric id, with its newest 10 runs (one read of the store)."""
        self.ctx.require("viewer")
        found = self.ctx.metadata.pages.workflow(name, 10)
        if found is None:  # a file not registered yet is registered now; NotFoundError when there is none
            found = self.ctx.metadata.pages.workflow(self._record(self.resolve(name)).name, 10)
            assert found is not None
        record, runs = found
        path = self._file(record.name)
        text = path.read_text(encoding="utf-8") if path else _yaml_of(record.spec)
        jobs, triggers, concurrency = spec_cache(self.ctx).registered_view(record.spec, _spec_parts)
        return WorkflowDetail(
            id=record.id, name=record.name, description=record.description, team=record.team,
            environment=record.environment, tags=record.tags, status=record.status,
            schedule=record.spec.get("schedule"), source_path=record.source_path, updated_at=record.updated_at,
            spec=record.spec, yaml=text, jobs=jobs, runs=tuple(_brief(r) for r in runs), triggers=triggers,
            concurrency=concurrency)

    # -- changing workflows -------------------------------------------------------------------
    def create(self, source: Source) -> WorkflowDetail:
        self.ctx.require("editor")
        text = _text(source)
        wf = _parse(text, "new workflow")
        if self.ctx.metadata.get_workflow(wf.name) is not None or self._file(wf.name) is not None:
            raise ConflictError(f"A workflow named '{wf.name}' already exists.",
                                hint="Pick another name, or edit the existing workflow.")
        self._write(self.ctx.settings.workflows_path / f"{wf.name}.yml", text, wf)
        return self.get(wf.name)

    def update(self, name: str, source: Source) -> WorkflowDetail:
        self.ctx.require("editor")
        self._record(name)
        path = self._file(name)
        # a spec given as data (triggers from the schedule editor, say) is laid over the file: comments stay
        text = merge_text(path.read_text(encoding="utf-8"), source) if path and not isinstance(source, str) \
            else _text(source)
        wf = _parse(text, f"workflow '{name}'")
        if wf.name != name:
            raise SpecError(f"name: the workflow is '{name}'; a new name would be a new workflow",
                            hint="Clone it to get a copy under another name.")
        self._write(self._file(name) or self.ctx.settings.workflows_path / f"{name}.yml", text, wf)
        return self.get(name)

    def delete(self, name: str) -> None:
        """Remove the file and the registration (with run history); lakehouse tables stay."""
        self.ctx.require("editor")
        path = self._file(name)
        record = self.ctx.metadata.get_workflow(name)
        if path is None and record is None:
            raise NotFoundError(f"No workflow '{name}'.")
        if path is not None:
            path.unlink()
        if record is not None:
            self.ctx.metadata.delete_workflow(name, self.ctx.actor)
        else:
            self.ctx.metadata.audit(self.ctx.actor, "workflow.delete", "workflow", name, {"file": str(path)})

    def clone(self, name: str, new_name: str) -> WorkflowDetail:
        """A copy under ``new_name`` (comments kept); it writes the same tables, so rename them in the copy."""
        self.ctx.require("editor")
        spec = self._spec_dict(name)
        spec["name"] = new_name
        path = self._file(name)
        return self.create(merge_text(path.read_text(encoding="utf-8"), spec) if path else spec)

    def pause(self, name: str) -> WorkflowSummary:
        self.ctx.require("editor")
        return self._set_status(name, "paused")

    def resume(self, name: str) -> WorkflowSummary:
        self.ctx.require("editor")
        return self._set_status(name, "active")

    def check(self, source: Source) -> builtins.list[ValidationIssue]:
        """Every problem of a whole workflow's YAML, with lines (empty when it is valid)."""
        self.ctx.require("viewer")
        from flowforge.spec.loader import load_yaml_text
        from flowforge.spec.workflow import Workflow

        try:
            loaded = load_yaml_text(_text(source), "workflow")
        except SpecError as exc:
            return [ValidationIssue("(yaml)", exc.line, exc.message)]
        if not isinstance(loaded.data, dict):
            return [ValidationIssue("(top level)", 1, "a workflow must be a mapping with 'name' and 'jobs'")]
        try:
            Workflow.model_validate(loaded.data)
        except ValidationError as exc:
            return validation_issues(exc, loaded, ())
        return []

    # -- jobs ---------------------------------------------------------------------------------
    def get_job(self, workflow: str, job: str) -> JobInfo:
        self.ctx.require("viewer")
        spec = spec_cache(self.ctx).registered(self._record(workflow).spec)
        for j in spec.jobs:
            if j.name == job:
                return _job_info(j)
        raise NotFoundError(f"Workflow '{workflow}' has no job '{job}'.",
                            hint=f"Jobs: {', '.join(j.name for j in spec.jobs)}.")

    def add_job(self, workflow: str, job: Source) -> JobInfo:
        self.ctx.require("editor")
        spec = self._spec_dict(workflow)
        new = _mapping(job)
        if any(j.get("name") == new.get("name") for j in spec["jobs"]):
            raise ConflictError(f"Workflow '{workflow}' already has a job '{new.get('name')}'.")
        spec["jobs"].append(new)
        self._save(workflow, spec, "job.create", str(new.get("name")), (None, job) if isinstance(job, str) else None)
        return self.get_job(workflow, str(new["name"]))

    def update_job(self, workflow: str, job: str, new: Source) -> JobInfo:
        self.ctx.require("editor")
        spec = self._spec_dict(workflow)
        data = _mapping(new)
        index = _job_index(spec, workflow, job)
        spec["jobs"][index] = data
        self._save(workflow, spec, "job.update", job, (index, new) if isinstance(new, str) else None)
        return self.get_job(workflow, str(data.get("name", job)))

    def delete_job(self, workflow: str, job: str) -> None:
        self.ctx.require("editor")
        spec = self._spec_dict(workflow)
        del spec["jobs"][_job_index(spec, workflow, job)]
        self._save(workflow, spec, "job.delete", job)

    def clone_job(self, workflow: str, job: str, new_name: str) -> JobInfo:
        """A copy of ``job`` named ``new_name``; its target tables get a ``_copy`` suffix (a table has one writer)."""
        self.ctx.require("editor")
        spec = self._spec_dict(workflow)
        data = copy.deepcopy(spec["jobs"][_job_index(spec, workflow, job)])
        data["name"] = new_name
        taken = {t.get("target") for j in spec["jobs"] for t in j.get("tables", [])}
        for table in data.get("tables", []):
            base, n = f"{table['target']}_copy", 1
            table["target"] = base
            while table["target"] in taken:
                n += 1
                table["target"] = f"{base}{n}"
            taken.add(table["target"])
        return self.add_job(workflow, data)

    def validate_job(self, workflow: str, job: Source) -> builtins.list[ValidationIssue]:
        """Problems of one job (new or edited, matched by name) inside its workflow; lines refer to
        the job's own YAML when text is given. Empty when the job is valid."""
        self.ctx.require("viewer")
        from flowforge.spec.loader import line_for, load_yaml_text
        from flowforge.spec.workflow import Workflow

        try:
            loaded = load_yaml_text(_text(job), "job")
        except SpecError as exc:
            return [ValidationIssue("(yaml)", exc.line, exc.message)]
        if not isinstance(loaded.data, dict):
            return [ValidationIssue("(job)", 1, "a job must be a mapping with 'name' and 'kind'")]
        spec = self._spec_dict(workflow)
        names = [j.get("name") for j in spec["jobs"]]
        index = names.index(loaded.data.get("name")) if loaded.data.get("name") in names else len(names)
        spec["jobs"][index:index + 1] = [loaded.data]
        try:
            Workflow.model_validate(spec)
        except ValidationError as exc:
            return validation_issues(exc, loaded, ("jobs", index))
        connection = loaded.data.get("connection")
        if loaded.data.get("kind") == "ingest" and connection not in self.ctx.connection_names():
            return [ValidationIssue("connection", line_for(loaded, ("connection",)),
                                    f"unknown connection '{connection}'")]
        return []

    # -- plumbing ---------------------------------------------------------------------------------
    def _file(self, name: str) -> Path | None:
        if not _NAME.match(name):  # a name, never a path: '../x' finds nothing
            return None
        for suffix in (".yml", ".yaml"):
            path = self.ctx.settings.workflows_path / f"{name}{suffix}"
            if path.exists():
                return path
        return None

    def _record(self, name: str) -> WorkflowRecord:
        record = self.ctx.metadata.get_workflow(name)
        if record is None:
            path = self._file(name)
            if path is None:
                raise NotFoundError(f"No workflow '{name}'.", hint="List workflows with GET /api/v1/workflows.")
            self.ctx.register_workflow(_parse(path.read_text(encoding="utf-8"), str(path)), path)
            record = self.ctx.metadata.get_workflow(name)
            assert record is not None
        return record

    def _spec_dict(self, name: str) -> dict[str, Any]:
        path = self._file(name)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path else copy.deepcopy(self._record(name).spec)
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
            raise SpecError("the workflow file has no list of jobs", file=str(path))
        return data

    def _save(self, name: str, spec: dict[str, Any], action: str, job: str,
              job_text: tuple[int | None, str] | None = None) -> None:
        """Write ``spec`` over the file in place (its comments stay); a job given as text (``job_text``:
        its index, None for a new one, and its YAML) goes in as written, with its own comments."""
        path = self._file(name) or self.ctx.settings.workflows_path / f"{name}.yml"
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if not old:
            text = dump_yaml(spec)
        elif job_text is not None:
            text = replace_job(old, job_text[0], job_text[1])
        else:
            text = merge_text(old, spec, str(path))
        self._write(path, text, _parse(text, str(path)))
        self.ctx.metadata.audit(self.ctx.actor, action, "job", f"{name}.{job}")

    def _write(self, path: Path, text: str, wf: Workflow) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self.ctx.register_workflow(wf, path)

    def _set_status(self, name: str, status: str) -> WorkflowSummary:
        self._record(name)
        record = self.ctx.metadata.set_workflow_status(name, "paused" if status == "paused" else "active",
                                                       self.ctx.actor)
        return _summary(record, self.ctx.metadata.latest_runs().get(name))

    def _register_new_files(self, known: set[str], files: builtins.list[Path] | None = None,
                            ) -> tuple[builtins.list[WorkflowSummary], int]:
        """Register workflow files not in ``known``; (summaries of files that do not parse, count registered)."""
        invalid, registered = [], 0
        for path in self.ctx.workflow_files() if files is None else files:
            if path.stem in known:
                continue
            try:
                wf = _parse(path.read_text(encoding="utf-8"), str(path))
                if wf.name != path.stem:
                    raise SpecError(f"name: '{wf.name}' differs from the file name", file=str(path))
                self.ctx.register_workflow(wf, path)
                registered += 1
            except FlowForgeError as exc:
                invalid.append(WorkflowSummary(None, path.stem, "", None, "", (), "invalid", None, 0, str(path),
                                               None, None, exc.message))
        return invalid, registered


# -- helpers -----------------------------------------------------------------------------------

def _text(source: Source) -> str:
    return source if isinstance(source, str) else dump_yaml(source)


def _mapping(source: Source) -> dict[str, Any]:
    if isinstance(source, str):
        from flowforge.spec.loader import load_yaml_text

        data = load_yaml_text(source, "job").data
        if not isinstance(data, dict):
            raise SpecError("a job must be a mapping with 'name' and 'kind'", file="job", line=1)
        return data
    return copy.deepcopy(dict(source))


def _parse(text: str, file: str) -> Workflow:
    from flowforge.spec import parse_workflow

    wf: Workflow = parse_workflow(text, file)
    return wf


def _job_index(spec: dict[str, Any], workflow: str, job: str) -> int:
    for i, j in enumerate(spec["jobs"]):
        if j.get("name") == job:
            return i
    raise NotFoundError(f"Workflow '{workflow}' has no job '{job}'.")


def _spec_parts(wf: Workflow) -> tuple[tuple[JobInfo, ...], tuple[str, ...], str]:
    """What a workflow's detail page shows of its spec: jobs, triggers described, concurrency."""
    return tuple(_job_info(j) for j in wf.jobs), tuple(t.describe() for t in wf.all_triggers()), wf.concurrency


def _job_info(job: Any) -> JobInfo:
    return JobInfo(name=job.name, kind=job.kind, layer=str(job.layer), description=job.description,
                   depends_on=tuple(job.depends_on), inputs=job.inputs(), outputs=job.outputs(),
                   spec=job.model_dump(mode="json", exclude_defaults=True))


def _brief(run: RunRecord) -> RunBrief:
    return RunBrief(run.id, run.status, run.trigger, run.actor, run.started_at, run.ended_at, run.rows_read,
                    run.rows_written, run.error)


@functools.lru_cache(maxsize=1024)
def _yaml_text(spec_json: str) -> str:
    return dump_yaml(json.loads(spec_json))


def _yaml_of(spec: dict[str, Any]) -> str:
    """The YAML of a registered spec (one with no file): made once per content (the key keeps key order)."""
    return _yaml_text(json.dumps(spec, ensure_ascii=False, default=str))


def _brief_summary(b: WorkflowBrief, last: RunRecord | None) -> WorkflowSummary:
    return WorkflowSummary(id=b.id, name=b.name, description=b.description, team=b.team, environment=b.environment,
                           tags=b.tags, status=b.status, schedule=b.schedule, jobs=b.jobs, source_path=b.source_path,
                           updated_at=b.updated_at, last_run=_brief(last) if last else None,
                           triggers=describe_triggers(b.schedule, b.triggers))


@functools.cache
def _trigger_adapter() -> TypeAdapter[Any]:
    """Built once: building a TypeAdapter of the trigger union costs about half a millisecond."""
    from flowforge.spec.triggers import AnyTrigger

    return TypeAdapter(AnyTrigger)


def describe_triggers(schedule: str | None, triggers: Any) -> tuple[str, ...]:
    """One line per trigger of a registered spec (the older ``schedule:`` first)."""
    from flowforge.spec.triggers import legacy_schedule

    out = []
    if schedule:
        try:
            out.append(legacy_schedule(schedule).describe())
        except ValidationError:
            out.append(f"schedule {schedule} (invalid)")
    adapter = _trigger_adapter()
    for raw in triggers if isinstance(triggers, list) else ():
        try:
            out.append(adapter.validate_python(raw).describe())
        except ValidationError:
            out.append("(invalid trigger)")
    return tuple(out)


def _summary(record: WorkflowRecord, last: RunRecord | None) -> WorkflowSummary:
    return WorkflowSummary(
        id=record.id, name=record.name, description=record.description, team=record.team,
        environment=record.environment, tags=record.tags, status=record.status,
        schedule=record.spec.get("schedule"), jobs=len(record.jobs), source_path=record.source_path,
        updated_at=record.updated_at, last_run=_brief(last) if last else None,
        triggers=describe_triggers(record.spec.get("schedule"), record.spec.get("triggers")))

"""The Context facade: the one service layer the CLI, API, UI and scheduler call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, SpecError
from flowforge.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.connectors.config import ConnectionConfig
    from flowforge.core.alerts import AlertService
    from flowforge.core.authoring import AuthoringService
    from flowforge.core.catalog import TableDetail
    from flowforge.core.catalog_docs import CatalogService
    from flowforge.core.cdc import CdcService
    from flowforge.core.connections import ConnectionService
    from flowforge.core.maintenance import MaintenanceService
    from flowforge.core.onboarding import OnboardingService
    from flowforge.core.runs import RunService
    from flowforge.core.schedules import ScheduleService
    from flowforge.core.sql_console import ConsoleService
    from flowforge.core.users import User, UserService
    from flowforge.core.workflows import WorkflowService
    from flowforge.embed.search import SearchService
    from flowforge.export.service import ExportedFile, ExportRequest, ExportResult
    from flowforge.lineage.service import LineageService
    from flowforge.metadata import AuditRecord, MetadataStore, RunRecord
    from flowforge.metadata.users import Role
    from flowforge.quality.service import QualityService
    from flowforge.runner.executor import Dispatch, JobEvent, Runner, RunSummary
    from flowforge.runner.leases import LeaseKeeper
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore
    from flowforge.templates.dashboards import Dashboard, DashboardData


@dataclass(frozen=True)
class TableEntry:
    """A lakehouse table as the catalog shows it."""

    name: str
    layer: str
    location: str
    rows: int
    version: int
    columns: tuple[tuple[str, str], ...]


class _Shared:
    """What every view of one project shares: settings, metadata store, lakehouse, connectors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.adhoc: dict[str, ConnectionConfig] = {}
        self.connectors: dict[str, Connector] = {}  # shareable connectors (their pools), by name
        self.lock = threading.Lock()
        self.metadata: MetadataStore | None = None
        self.store: LakehouseStore | None = None
        self.caches: dict[str, Any] = {}  # what services keep between calls (loaded search indexes...)


_LOCAL: Any = object()


class Context:
    """Everything a FlowForge project can do, for one project directory, acting as one user.

    ``principal`` is who acts: by default the person at the command line (the project's owner,
    with admin rights); a server builds its Context with ``principal=None`` (nobody) and serves
    each request through ``ctx.as_user(user)``. Every service checks the principal's role itself,
    so the CLI, the API, the UI and the scheduler cannot disagree about who may do what.
    """

    def __init__(self, settings: Settings, principal: User | None = _LOCAL) -> None:
        from flowforge.core.users import local_user

        self._shared = _Shared(settings)
        self._owner = True
        self.principal: User | None = local_user(settings.actor) if principal is _LOCAL else principal

    @classmethod
    def open(cls, project_dir: Path | str | None = None) -> Context:
        return cls(Settings.load(project_dir))

    def as_user(self, user: User | None) -> Context:
        """A view of this project acting as ``user`` (None: nobody), sharing its stores and connectors."""
        view = Context.__new__(Context)
        view._shared = self._shared
        view._owner = False
        view.principal = user
        return view

    def require(self, role: Role = "viewer") -> User:
        """The acting user when their role includes ``role``; else AccessDenied (NotSignedIn for nobody)."""
        from flowforge.errors import AccessDenied, NotSignedIn

        user = self.principal
        if user is None:
            raise NotSignedIn("Sign in or send an API token.")
        if not user.can(role):
            raise AccessDenied(f"User '{user.username}' ({user.role}) may not do this; it needs the {role} role.")
        return user

    @property
    def actor(self) -> str:
        """The acting user's name, as the audit log records it."""
        return self.principal.username if self.principal is not None else "anonymous"

    @property
    def settings(self) -> Settings:
        return self._shared.settings

    def shared_cache(self, name: str, make: Callable[[], Any]) -> Any:
        """A cache every view of this project shares (each request of a server is a new view)."""
        with self._shared.lock:
            if name not in self._shared.caches:
                self._shared.caches[name] = make()
            return self._shared.caches[name]

    def close(self) -> None:
        if not self._owner:
            return
        shared = self._shared
        with shared.lock:
            kept, shared.connectors = list(shared.connectors.values()), {}
        for connector in kept:
            connector.close()
        if shared.metadata is not None:
            shared.metadata.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building blocks (created on first use, shared by every view) ------------------------
    @property
    def metadata(self) -> MetadataStore:
        shared = self._shared
        if shared.metadata is None:
            with shared.lock:
                if shared.metadata is None:
                    from flowforge.core.files import private_state_dir
                    from flowforge.metadata import MetadataStore

                    private_state_dir(self.settings)
                    store = MetadataStore(self.settings.metadata_database_url)
                    store.migrate()
                    shared.metadata = store
        return shared.metadata

    @property
    def store(self) -> LakehouseStore:
        shared = self._shared
        if shared.store is None:
            from flowforge.storage import LakehouseStore

            shared.store = LakehouseStore(self.settings.lakehouse_root, self.settings.storage_options,
                                          single_writer=self.settings.single_writer,
                                          locations=self.settings.lakehouse_locations)
        return shared.store

    def health(self) -> str:
        """'ok' when the metadata store answers, else why not (no secrets)."""
        from flowforge.errors import FlowForgeError

        try:
            self.metadata.list_audit(1)
        except FlowForgeError as exc:
            return exc.message
        return "ok"

    # -- connections ---------------------------------------------------------------------
    @cached_property
    def connections(self) -> ConnectionService:
        from flowforge.core.connections import ConnectionService

        return ConnectionService(self)

    @cached_property
    def workflows(self) -> WorkflowService:
        from flowforge.core.workflows import WorkflowService

        return WorkflowService(self)

    @cached_property
    def authoring(self) -> AuthoringService:
        from flowforge.core.authoring import AuthoringService

        return AuthoringService(self)

    @cached_property
    def run_service(self) -> RunService:
        from flowforge.core.runs import RunService

        return RunService(self)

    @cached_property
    def cdc(self) -> CdcService:
        from flowforge.core.cdc import CdcService

        return CdcService(self)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        from flowforge.core.maintenance import MaintenanceService

        return MaintenanceService(self)

    @cached_property
    def onboarding(self) -> OnboardingService:
        from flowforge.core.onboarding import OnboardingService

        return OnboardingService(self)

    @cached_property
    def users(self) -> UserService:
        from flowforge.core.users import UserService

        return UserService(self)

    @cached_property
    def search(self) -> SearchService:
        """Semantic search over embeddings tables (``flowforge.embed.search``)."""
        from flowforge.embed.search import SearchService

        return SearchService(self)

    @cached_property
    def column_lineage(self) -> LineageService:
        """Column lineage across workflows (``flowforge.lineage.service``)."""
        from flowforge.lineage.service import LineageService

        return LineageService(self)

    @cached_property
    def quality(self) -> QualityService:
        """Data tests, their results, quarantine and replay, dbt import."""
        from flowforge.quality.service import QualityService

        return QualityService(self)

    @cached_property
    def schedules(self) -> ScheduleService:
        from flowforge.core.schedules import ScheduleService

        return ScheduleService(self)

    @cached_property
    def alerts(self) -> AlertService:
        from flowforge.core.alerts import AlertService

        return AlertService(self)

    @cached_property
    def catalog(self) -> CatalogService:
        """Readable types, relative locations, descriptions and comments, catalog search."""
        from flowforge.core.catalog_docs import CatalogService

        return CatalogService(self)

    @cached_property
    def console(self) -> ConsoleService:
        """The SQL console: sandboxed queries with a per-user history."""
        from flowforge.core.sql_console import ConsoleService

        return ConsoleService(self)

    def connection_names(self) -> list[str]:
        return [c.name for c in self.connections.summaries()]

    def connection_config(self, name: str) -> ConnectionConfig:
        """A connection from flowforge.yml, else from the store (secrets decrypted), else a URL."""
        if name in self._shared.adhoc:
            return self._shared.adhoc[name]
        raw = self.settings.connections.get(name)
        if raw is not None:
            return self.connections.parse(name, dict(raw), "flowforge.yml")
        stored = self.connections.stored(name)
        if stored is not None:
            return stored
        from flowforge.errors import NotFoundError

        known = ", ".join(self.connection_names()) or "none"
        raise NotFoundError(f"Connection '{name}' is not defined (defined: {known}).",
                          hint="Add it with 'flowforge connections add' or under 'connections:' in flowforge.yml.")

    def use_url(self, url: str) -> str:
        """Register a one-off connection given as a URL; returns the name to refer to it by."""
        from flowforge.core.connections import config_from_url

        self.require("editor")
        name = "cli_source"
        self._shared.adhoc[name] = self.connections.parse(name, config_from_url(url), "command line")
        return name

    def connector(self, name: str) -> Connector:
        """The connector of connection ``name``. A shareable kind (the pooled SQL connectors) is
        kept, one per name, so its pool serves every caller until the connection's config changes
        or the Context closes; ``with ctx.connector(name) as c:`` leaves it open. Other kinds are
        new on every call and closed by ``with``."""
        from flowforge.connectors import connector_class, open_connector

        config = self.connection_config(name)
        if not connector_class(config.type).shareable:
            return open_connector(name, config)
        shared = self._shared
        with shared.lock:
            old = shared.connectors.get(name)
            if old is not None and old.config == config:
                return old
            new = shared.connectors[name] = open_connector(name, config)  # connects on first use only
            new.shared = True
        if old is not None:
            old.close()  # its config changed (saved anew, or edited by another process)
        return new

    def forget_connector(self, name: str) -> None:
        """Close the kept connector of ``name`` (its config was changed or removed)."""
        with self._shared.lock:
            old = self._shared.connectors.pop(name, None)
        if old is not None:
            old.close()

    # -- workflows -------------------------------------------------------------------------
    def workflow_path(self, name_or_path: str) -> Path:
        """The file of a workflow given by name (``workflows/<name>.yml``), or, only for the person at the
        command line, by path: an argument is a path when it ends in .yml/.yaml or holds a separator."""
        if _is_path(name_or_path):
            if self.principal is None or not self.principal.local:
                raise SpecError(f"'{name_or_path}' is not a workflow name.",
                                hint="Give the workflow's name; paths are for the command line only.")
            candidate = Path(name_or_path)
            return candidate if candidate.is_absolute() else (Path.cwd() / candidate)
        for suffix in (".yml", ".yaml"):
            path = self.settings.workflows_path / f"{name_or_path}{suffix}"
            if path.is_file():
                return path
        known = ", ".join(p.stem for p in self.workflow_files()) or "none"
        raise SpecError(f"No workflow named '{name_or_path}' in {self.settings.workflows_path} (found: {known}).",
                        hint="Give the workflow's name or the path of its YAML file.")

    def workflow_files(self) -> list[Path]:
        folder = self.settings.workflows_path
        return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []

    def load_workflow(self, name_or_path: str) -> Workflow:
        """The parsed file (parsed again only when its bytes change: core/spec_cache.py)."""
        from flowforge.core.spec_cache import spec_cache

        return spec_cache(self).file(self.workflow_path(name_or_path))

    def validate(self, name_or_path: str) -> Workflow:
        """Parse the file and check every reference that can be checked without running."""
        from flowforge.core.validation import validate_workflow

        return validate_workflow(self, name_or_path)

    def register_workflow(self, wf: Workflow, source_path: Path | None = None) -> None:
        from flowforge.lineage.graph import table_edges
        from flowforge.metadata import JobIn, WorkflowIn

        jobs = tuple(JobIn(name=j.name, kind=j.kind, spec=j.model_dump(mode="json", exclude_defaults=True),
                           inputs=j.inputs(), outputs=j.outputs()) for j in wf.jobs)
        self.metadata.upsert_workflow(WorkflowIn(
            name=wf.name, description=wf.description, team=wf.team, environment=wf.environment,
            tags=wf.tags, spec=wf.to_dict(), source_path=str(source_path) if source_path else None, jobs=jobs,
        ), actor=self.actor)
        self.metadata.replace_lineage(wf.name, table_edges(wf, self.connection_label))

    def connection_label(self, name: str) -> str:
        try:
            return f"{name} ({self.connection_config(name).describe()})"
        except ConfigError:
            return name

    # -- runs -------------------------------------------------------------------------------
    def run(self, name_or_path: str, *, trigger: str = "manual",
            on_event: Callable[[JobEvent], None] | None = None, select: Sequence[str] | None = None,
            force: bool = False, on_start: Callable[[int], None] | None = None, slot: datetime | None = None,
            parent_run_id: int | None = None, on_wait: Callable[[str], None] | None = None,
            full_refresh: bool = False, tables: Sequence[str] | None = None) -> RunSummary:
        """Run a workflow (only the jobs in ``select`` when given); a paused one only with ``force``,
        which also recomputes gold tables whose inputs did not change. ``full_refresh`` rebuilds the
        workflow's tables (or ``tables`` and what depends on them) from their sources.
        One run of a workflow at a time: see runner/executor.py for what ``concurrency`` does."""
        from flowforge.runner.refresh import plan_refresh

        wf = self.prepare_run(name_or_path, force=force)
        refresh, select = plan_refresh(wf, full_refresh=full_refresh, tables=tables, jobs=select, force=force)
        return self.runner().run(wf, trigger=trigger, actor=self.actor, on_event=on_event, select=select,
                                 on_start=on_start, slot=slot, parent_run_id=parent_run_id, on_wait=on_wait,
                                 refresh=refresh)

    def runner(self, keeper: LeaseKeeper | None = None) -> Runner:
        """A Runner for this project: its lease timeout, executor, alerts and table maintenance."""
        from flowforge.runner.executor import Runner

        return Runner(self.metadata, self.store, self.connector, lease_timeout=self.settings.scheduler.lease_timeout,
                      keeper=keeper, dispatch=self._dispatch, after_run=self.alerts.after_run,
                      settings=self.settings, maintenance=self.settings.maintenance)

    @cached_property
    def _dispatch(self) -> Dispatch | None:
        from flowforge.runner.dispatchers import dispatch_for

        return dispatch_for(self)

    def reap(self) -> list[int]:
        """Mark runs whose process is gone ``failed (abandoned)`` (and alert on them); their ids."""
        from flowforge.runner.owner import is_dead

        ids = self.metadata.leases.reap(is_dead)
        for run_id in ids:
            self.alerts.after_run(run_id)
        return ids

    def follow(self, name_or_path: str, *, interval: float | None = None, max_cycles: int | None = None,
               idle_timeout: float | None = None, on_event: Callable[[JobEvent], None] | None = None,
               on_cycle: Callable[[RunSummary], None] | None = None, stop: Any = None,
               on_wait: Callable[[str], None] | None = None) -> int:
        """Run the workflow's cdc jobs in micro-batches until ``stop`` is set or Ctrl-C; the loop holds
        the workflow's lease (``on_wait`` hears when it first waits for another run)."""
        from dataclasses import replace

        from flowforge.runner.follow import FollowOptions, follow

        wf = self.prepare_run(name_or_path)
        return follow(wf, replace(self.runner(), notice=on_wait), actor=self.actor,
                      options=FollowOptions(interval, max_cycles, idle_timeout), on_event=on_event,
                      on_cycle=on_cycle, stop=stop)

    def prepare_run(self, name_or_path: str, *, force: bool = False) -> Workflow:
        """Validate and register a workflow before a run; refuses a paused workflow unless forced."""
        wf = self.validate(name_or_path)
        if not wf.jobs:
            raise ConfigError(f"Workflow '{wf.name}' has no jobs yet, so there is nothing to run.",
                              hint="Add a job to it first (the workflow page's 'Add job', or its YAML).")
        record = self.metadata.get_workflow(wf.name)
        if record is not None and record.status == "paused" and not force:
            raise ConfigError(f"Workflow '{wf.name}' is paused; it does not run until resumed.",
                              hint=f"Resume it (POST /api/v1/workflows/{wf.name}/resume or the UI), "
                                   "or force this one run.")
        self.register_workflow(wf, self.workflow_path(name_or_path))
        return wf

    def ingest(self, source: str, *, table: str | None = None, query: str | None = None,
               files: str | None = None, target: str | None = None,
               on_event: Callable[[JobEvent], None] | None = None) -> RunSummary:
        """Land one table, query or file pattern in bronze, outside any workflow file (scripting,
        benchmarks). A file pattern lands as ``bronze_<name>``: 'orders*.csv' → bronze_orders."""
        import re

        from flowforge.spec.workflow import Workflow

        self.require("editor")
        connection = self.use_url(source) if "://" in source else source
        if files:
            stem = files.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
            label = re.sub(r"[*?\[\]]+.*$", "", stem) or "files"
        else:
            label = table or "query"
        target = target or "bronze_" + re.sub(r"\W+", "_", label.split(".")[-1]).strip("_").lower()
        spec = {"table": table} if table else {"files": files} if files else {"query": query}
        wf = Workflow.model_validate({"name": f"ingest_{target}", "jobs": [{
            "name": "ingest", "kind": "ingest", "connection": connection, "tables": [{**spec, "target": target}]}]})
        self.register_workflow(wf)
        return self.runner().run(wf, trigger="cli", actor=self.actor, on_event=on_event)

    def runs(self, workflow: str | None = None, limit: int = 20, *, status: str | None = None,
             trigger: str | None = None) -> list[RunRecord]:
        """Newest first; a run whose process is gone is never shown as running (see :meth:`reap`)."""
        self.require("viewer")
        self.reap()
        return self.metadata.list_runs(workflow, limit, status=status, trigger=trigger)

    def run_detail(self, run_id: int) -> RunRecord:
        self.require("viewer")
        self.reap()
        run = self.metadata.get_run(run_id) if 0 < run_id < 2**63 else None
        if run is None:
            raise ConfigError(f"Run {run_id} does not exist.", hint="List runs with 'flowforge runs'.")
        return run

    # -- templates and the demo --------------------------------------------------------------
    def instantiate_template(self, name: str, params: dict[str, str] | None = None,
                             overwrite: bool = False, *,
                             tags: Sequence[str] | None = None, tables: dict[str, str] | None = None) -> Path:
        """Write ``workflows/<workflow_name>.yml`` from a template, validated before writing;
        ``tags`` replace the template's, ``tables`` renames tables (old name → new name)."""
        from flowforge.spec import parse_workflow
        from flowforge.templates.overrides import customise
        from flowforge.templates.registry import get_template

        self.require("editor")
        text = customise(get_template(name).render(params), tags=tags, tables=tables)
        wf = parse_workflow(text, f"template {name}")
        path = self.settings.workflows_path / f"{wf.name}.yml"
        if path.exists() and not overwrite:
            raise ConfigError(f"{path.name} already exists.", hint="Pick another workflow_name parameter.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.metadata.audit(self.actor, "template.instantiate", "workflow", wf.name,
                            after={"template": name, "params": params or {}, "tags": list(tags or []),
                                   "tables": tables or {}})
        return path

    def change_demo_source(self, seed: int) -> Any:
        from flowforge.core.project import change_demo_source

        self.require("editor")
        return change_demo_source(self.connection_config("core_banking"), seed)

    # -- catalog and queries ------------------------------------------------------------------
    def tables(self, layer: str | None = None) -> list[TableEntry]:
        from flowforge.storage.summaries import table_summaries

        self.require("viewer")
        return [TableEntry(name, lay, self.store.location(lay, name), s.rows, s.version,
                           tuple((f.name, str(f.type)) for f in s.schema))
                for lay, name, s in table_summaries(self.store, layer)]

    def query(self, sql: str, limit: int | None = None) -> pa.Table:
        """Run read-only SQL over every lakehouse table (DuckDB, tables by name), in the sandbox that
        every user query runs in: no files, no network, no extensions, no settings."""
        from flowforge.core.sql_console import lakehouse_query

        self.require("viewer")
        return lakehouse_query(self, sql, limit)

    def table_detail(self, name: str, sample: int = 10) -> TableDetail:
        """Schema, rows, last update, Delta version history and the first ``sample`` rows (JSON-safe)."""
        from flowforge.core.catalog import table_detail

        self.require("viewer")
        return table_detail(self, name, sample)

    def audit_log(self, limit: int = 100, *, actor: str | None = None, action: str | None = None,
                  object_type: str | None = None) -> list[AuditRecord]:
        """Who did what and when, newest first (editors and admins: entries hold connection options)."""
        self.require("editor")
        return self.metadata.list_audit(limit, actor=actor, action=action, object_type=object_type)

    def lineage(self, workflow: str) -> dict[str, Any]:
        from flowforge.lineage.graph import lineage_graph

        self.require("viewer")
        return lineage_graph(self, workflow)

    def lineage_of(self, workflow: str) -> tuple[str, dict[str, Any]]:
        """The name of a workflow given by name or numeric id, and its lineage graph (``lineage``)."""
        from flowforge.errors import ConfigError
        from flowforge.lineage.graph import named_lineage_graph

        self.require("viewer")
        try:
            return named_lineage_graph(self, workflow)
        except ConfigError:
            self.workflows.resolve(workflow)  # no such workflow at all: NotFoundError, as its other pages say
            raise

    # -- staging snapshots, the e-commerce demo, dashboards ---------------------------------------
    def export(self, request: ExportRequest, *,
               on_file: Callable[[ExportedFile], None] | None = None) -> ExportResult:
        """A dated snapshot of a connection (name or URL) or a lakehouse layer (see ``flowforge.export``)."""
        from dataclasses import replace

        from flowforge.export.service import result_summary, run_export

        self.require("editor")
        if "://" in request.source and not request.source.startswith("s3://"):
            request = replace(request, source=self.use_url(request.source))
        result = run_export(request, settings=self.settings, store=self.store, connector=self.connector,
                            on_file=on_file)
        self.metadata.audit(self.actor, "export.snapshot", "snapshot", result.location,
                            after=result_summary(result))
        return result

    def change_ecommerce_source(self, seed: int) -> Any:
        """One day of inserts and updates in the e-commerce demo's source (connection ``shop_db``)."""
        from flowforge.demo.ecommerce_project import SOURCE, change_ecommerce_source

        self.require("editor")
        return change_ecommerce_source(self.connection_config(SOURCE), seed)

    def dashboards(self) -> list[Dashboard]:
        """Dashboards defined by the templates (``dashboards:`` in their template.yml)."""
        from flowforge.templates.dashboards import list_dashboards

        self.require("viewer")
        return list_dashboards()

    def dashboard_data(self, template: str, name: str | None = None) -> DashboardData:
        """Every chart of one dashboard, each query run (sandboxed, like ``query``) over the gold tables."""
        from flowforge.templates.dashboards import dashboard_data

        self.require("viewer")
        return dashboard_data(self, template, name)


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith((".yml", ".yaml")) or "/" in name_or_path or "\\" in name_or_path

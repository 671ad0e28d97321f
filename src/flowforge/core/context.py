"""The Context facade: the one service layer the CLI, API, UI and scheduler call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, SpecError
from flowforge.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.connectors.config import ConnectionConfig
    from flowforge.core.catalog import TableDetail
    from flowforge.core.cdc import CdcService
    from flowforge.core.connections import ConnectionService
    from flowforge.core.maintenance import MaintenanceService
    from flowforge.core.runs import RunService
    from flowforge.core.users import UserService
    from flowforge.core.workflows import WorkflowService
    from flowforge.metadata import AuditRecord, MetadataStore, RunRecord
    from flowforge.runner.executor import JobEvent, Runner, RunSummary
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore


@dataclass(frozen=True)
class TableEntry:
    """A lakehouse table as the catalog shows it."""

    name: str
    layer: str
    location: str
    rows: int
    version: int
    columns: tuple[tuple[str, str], ...]


class Context:
    """Everything a FlowForge project can do, for one project directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._adhoc: dict[str, ConnectionConfig] = {}
        self._connectors: dict[str, Connector] = {}  # shareable connectors (their pools), by name
        self._connectors_lock = threading.Lock()

    @classmethod
    def open(cls, project_dir: Path | str | None = None) -> Context:
        return cls(Settings.load(project_dir))

    def close(self) -> None:
        with self._connectors_lock:
            kept, self._connectors = list(self._connectors.values()), {}
        for connector in kept:
            connector.close()
        if "metadata" in self.__dict__:
            self.metadata.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building blocks (created on first use) ---------------------------------------
    @cached_property
    def metadata(self) -> MetadataStore:
        from flowforge.metadata import MetadataStore

        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        store = MetadataStore(self.settings.metadata_database_url)
        store.migrate()
        return store

    @cached_property
    def store(self) -> LakehouseStore:
        from flowforge.storage import LakehouseStore

        # plain options for now; the encrypted connection store can supply them later
        return LakehouseStore(self.settings.lakehouse_root, self.settings.storage_options,
                              single_writer=self.settings.single_writer,
                              locations=self.settings.lakehouse_locations)

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
    def users(self) -> UserService:
        from flowforge.core.users import UserService

        return UserService(self)

    def connection_names(self) -> list[str]:
        return [c.name for c in self.connections.summaries()]

    def connection_config(self, name: str) -> ConnectionConfig:
        """A connection from flowforge.yml, else from the store (secrets decrypted), else a URL."""
        if name in self._adhoc:
            return self._adhoc[name]
        raw = self.settings.connections.get(name)
        if raw is not None:
            return self.connections.parse(name, dict(raw), "flowforge.yml")
        stored = self.connections.stored(name)
        if stored is not None:
            return stored
        known = ", ".join(self.connection_names()) or "none"
        raise ConfigError(f"Connection '{name}' is not defined (defined: {known}).",
                          hint="Add it with 'flowforge connections add' or under 'connections:' in flowforge.yml.")

    def use_url(self, url: str) -> str:
        """Register a one-off connection given as a URL; returns the name to refer to it by."""
        from flowforge.core.connections import config_from_url

        name = "cli_source"
        self._adhoc[name] = self.connections.parse(name, config_from_url(url), "command line")
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
        with self._connectors_lock:
            old = self._connectors.get(name)
            if old is not None and old.config == config:
                return old
            new = self._connectors[name] = open_connector(name, config)  # connects on first use only
            new.shared = True
        if old is not None:
            old.close()  # its config changed (saved anew, or edited by another process)
        return new

    def forget_connector(self, name: str) -> None:
        """Close the kept connector of ``name`` (its config was changed or removed)."""
        with self._connectors_lock:
            old = self._connectors.pop(name, None)
        if old is not None:
            old.close()

    # -- workflows -------------------------------------------------------------------------
    def workflow_path(self, name_or_path: str) -> Path:
        candidate = Path(name_or_path)
        if candidate.suffix in (".yml", ".yaml") or candidate.exists():
            return candidate if candidate.is_absolute() else (Path.cwd() / candidate)
        for suffix in (".yml", ".yaml"):
            path = self.settings.workflows_path / f"{name_or_path}{suffix}"
            if path.exists():
                return path
        known = ", ".join(p.stem for p in self.workflow_files()) or "none"
        raise SpecError(f"No workflow named '{name_or_path}' in {self.settings.workflows_path} (found: {known}).",
                        hint="Give the workflow's name or the path of its YAML file.")

    def workflow_files(self) -> list[Path]:
        folder = self.settings.workflows_path
        return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []

    def load_workflow(self, name_or_path: str) -> Workflow:
        from flowforge.spec import load_workflow_file

        wf: Workflow = load_workflow_file(self.workflow_path(name_or_path))
        return wf

    def validate(self, name_or_path: str) -> Workflow:
        """Parse the file and check every reference that can be checked without running."""
        wf = self.load_workflow(name_or_path)
        from flowforge.layers.bronze import check_capabilities
        from flowforge.spec.jobs import IngestJob

        produced = set(wf.producers())
        existing = {t for _, t in self.store.tables()}
        for job in wf.jobs:
            if isinstance(job, IngestJob):
                connector = self.connector(job.connection)
                for spec in job.tables:
                    check_capabilities(connector, spec)
            for table in job.inputs():
                if table not in produced and table not in existing:
                    raise SpecError(
                        f"job '{job.name}' reads table '{table}', which no job writes and the lakehouse "
                        f"does not have", file=str(self.workflow_path(name_or_path)),
                        hint=f"Tables written here: {', '.join(sorted(produced))}.")
        return wf

    def register_workflow(self, wf: Workflow, source_path: Path | None = None, actor: str | None = None) -> None:
        from flowforge.lineage.graph import table_edges
        from flowforge.metadata import JobIn, WorkflowIn

        jobs = tuple(JobIn(name=j.name, kind=j.kind, spec=j.model_dump(mode="json", exclude_defaults=True),
                           inputs=j.inputs(), outputs=j.outputs()) for j in wf.jobs)
        self.metadata.upsert_workflow(WorkflowIn(
            name=wf.name, description=wf.description, team=wf.team, environment=wf.environment,
            tags=wf.tags, spec=wf.to_dict(), source_path=str(source_path) if source_path else None, jobs=jobs,
        ), actor=actor or self.settings.actor)
        self.metadata.replace_lineage(wf.name, table_edges(wf, self.connection_label))

    def connection_label(self, name: str) -> str:
        try:
            return f"{name} ({self.connection_config(name).describe()})"
        except ConfigError:
            return name

    # -- runs -------------------------------------------------------------------------------
    def run(self, name_or_path: str, *, trigger: str = "manual",
            on_event: Callable[[JobEvent], None] | None = None, select: Sequence[str] | None = None,
            force: bool = False, on_start: Callable[[int], None] | None = None) -> RunSummary:
        """Run a workflow (only the jobs in ``select`` when given); a paused one only with ``force``."""
        wf = self.prepare_run(name_or_path, force=force)
        runner = self._runner()
        return runner.run(wf, trigger=trigger, actor=self.settings.actor, on_event=on_event, select=select,
                          on_start=on_start)

    def _runner(self) -> Runner:
        from flowforge.runner.executor import Runner

        return Runner(self.metadata, self.store, self.connector, maintenance=self.settings.maintenance)

    def follow(self, name_or_path: str, *, interval: float | None = None, max_cycles: int | None = None,
               idle_timeout: float | None = None, on_event: Callable[[JobEvent], None] | None = None,
               on_cycle: Callable[[RunSummary], None] | None = None, stop: Any = None) -> int:
        """Run the workflow's cdc jobs in micro-batches until ``stop`` is set or Ctrl-C."""
        from flowforge.runner.follow import FollowOptions, follow

        wf = self.prepare_run(name_or_path)
        return follow(wf, self._runner(), actor=self.settings.actor,
                      options=FollowOptions(interval, max_cycles, idle_timeout), on_event=on_event,
                      on_cycle=on_cycle, stop=stop)

    def prepare_run(self, name_or_path: str, *, force: bool = False) -> Workflow:
        """Validate and register a workflow before a run; refuses a paused workflow unless forced."""
        wf = self.validate(name_or_path)
        record = self.metadata.get_workflow(wf.name)
        if record is not None and record.status == "paused" and not force:
            raise ConfigError(f"Workflow '{wf.name}' is paused; it does not run until resumed.",
                              hint=f"Resume it (POST /api/v1/workflows/{wf.name}/resume or the UI), "
                                   "or force this one run.")
        self.register_workflow(wf, self.workflow_path(name_or_path))
        return wf

    def ingest(self, source: str, *, table: str | None = None, query: str | None = None,
               target: str | None = None, on_event: Callable[[JobEvent], None] | None = None) -> RunSummary:
        """Land one table or query in bronze, outside any workflow file (scripting, benchmarks)."""
        import re

        from flowforge.spec.workflow import Workflow

        connection = self.use_url(source) if "://" in source else source
        label = table or "query"
        target = target or "bronze_" + re.sub(r"\W+", "_", label.split(".")[-1]).strip("_").lower()
        spec = {"table": table} if table else {"query": query}
        wf = Workflow.model_validate({"name": f"ingest_{target}", "jobs": [{
            "name": "ingest", "kind": "ingest", "connection": connection, "tables": [{**spec, "target": target}]}]})
        self.register_workflow(wf)
        runner = self._runner()
        return runner.run(wf, trigger="cli", actor=self.settings.actor, on_event=on_event)

    def runs(self, workflow: str | None = None, limit: int = 20) -> list[RunRecord]:
        return self.metadata.list_runs(workflow, limit)

    def run_detail(self, run_id: int) -> RunRecord:
        run = self.metadata.get_run(run_id)
        if run is None:
            raise ConfigError(f"Run {run_id} does not exist.", hint="List runs with 'flowforge runs'.")
        return run

    # -- templates and the demo --------------------------------------------------------------
    def instantiate_template(self, name: str, params: dict[str, str] | None = None,
                             overwrite: bool = False, actor: str | None = None, *,
                             tags: Sequence[str] | None = None, tables: dict[str, str] | None = None) -> Path:
        """Write ``workflows/<workflow_name>.yml`` from a template, validated before writing;
        ``tags`` replace the template's, ``tables`` renames tables (old name → new name)."""
        from flowforge.spec import parse_workflow
        from flowforge.templates.overrides import customise
        from flowforge.templates.registry import get_template

        text = customise(get_template(name).render(params), tags=tags, tables=tables)
        wf = parse_workflow(text, f"template {name}")
        path = self.settings.workflows_path / f"{wf.name}.yml"
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} already exists.", hint="Pick another workflow_name parameter.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.metadata.audit(actor or self.settings.actor, "template.instantiate", "workflow", wf.name,
                            after={"template": name, "params": params or {}, "tags": list(tags or []),
                                   "tables": tables or {}})
        return path

    def change_demo_source(self, seed: int) -> Any:
        from flowforge.core.project import change_demo_source

        return change_demo_source(self.connection_config("core_banking"), seed)

    # -- catalog and queries ------------------------------------------------------------------
    def tables(self, layer: str | None = None) -> list[TableEntry]:
        from flowforge.storage.delta import row_count

        out = []
        for lay, name in self.store.tables():
            if layer and lay != layer:
                continue
            dt = self.store.open(lay, name)
            if dt is None:
                continue
            cols = tuple((f.name, str(f.type)) for f in dt.schema().to_arrow())  # type: ignore[attr-defined]
            out.append(TableEntry(name, lay, self.store.location(lay, name), row_count(dt), dt.version(), cols))
        return out

    def query(self, sql: str) -> pa.Table:
        """Run read-only SQL over every lakehouse table (DuckDB, tables by name)."""
        from flowforge.engine.duckdb_engine import DuckDBEngine
        from flowforge.engine.sql import referenced_tables

        try:
            names = referenced_tables(sql)
        except ValueError as exc:
            raise SpecError(str(exc), hint="Only SELECT queries can be run here.") from None
        engine = DuckDBEngine()
        try:
            for name in names:
                found = self.store.find(name)
                if found is None:
                    known = ", ".join(t for _, t in self.store.tables()) or "none"
                    raise ConfigError(f"Table '{name}' is not in the lakehouse (tables: {known}).")
                engine.register_delta(name, found[1])
            return engine.query(sql, "query")
        finally:
            engine.close()

    def table_detail(self, name: str, sample: int = 10) -> TableDetail:
        """Schema, rows, last update, Delta version history and the first ``sample`` rows (JSON-safe)."""
        from flowforge.core.catalog import table_detail

        return table_detail(self, name, sample)

    def audit_log(self, limit: int = 100, *, actor: str | None = None, action: str | None = None,
                  object_type: str | None = None) -> list[AuditRecord]:
        """Who did what and when, newest first."""
        return self.metadata.list_audit(limit, actor=actor, action=action, object_type=object_type)

    def lineage(self, workflow: str) -> dict[str, Any]:
        from flowforge.lineage.graph import lineage_graph

        return lineage_graph(self, workflow)

"""OpenLineage run events (START, then COMPLETE, FAIL or ABORT) for every job run.

Each event names the job (``<workflow>.<job>`` in the configured namespace), its run (a UUID derived
from the job run, with the workflow run as its ``parent``), and the datasets it read and wrote, named
as OpenLineage's naming spec says: ``postgres://host:port`` + ``db.schema.table``, ``mysql://host:port``
+ ``db.table``, ``sqlserver://host:port`` + ``db.schema.table``, ``kafka://host:port`` + topic,
``s3://bucket`` + key, ``file`` + path (Delta tables by their lakehouse location; SQLite databases as
``sqlite`` + ``path.table``). Outputs carry the ``schema``, ``columnLineage``, ``dataSource`` and
``dataQualityAssertions`` facets and their row counts; a FAIL carries the ``errorMessage``.

Events are plain dicts built here (not with ``openlineage-python``: see the README's lineage section)
and checked against the spec's JSON schemas in the tests. Sending never fails or slows a run: the run's
thread only reads what the event needs from the catalog (milliseconds); one background thread per
process builds the events (column lineage included) and sends them in order, HTTP with a short
timeout; errors are logged without secrets, a full outbox drops events with a warning, and a process
that ends waits a bounded time for its last events.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from flowforge.lineage.columns import ColumnEdge
    from flowforge.lineage.config import OpenLineageSettings
    from flowforge.runner.jobs import JobEnv, JobEvent
    from flowforge.spec.jobs import JobSpec
    from flowforge.spec.workflow import Workflow

log = logging.getLogger("flowforge.lineage")

PRODUCER = "https://github.com/flowforge/flowforge"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets/"
SCHEMAS = {
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "dataSource": "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
    "outputStatistics": "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
    "errorMessage": "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "parent": "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "processing_engine": "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sql": "1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "documentation": "1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
}
_ENDED = {"success": "COMPLETE", "failed": "FAIL", "cancelled": "ABORT", "skipped": "ABORT"}
_RUN_NAMESPACE = uuid.UUID("5b1f4d0e-6a51-4c5e-9a0e-6f1a2b3c4d5e")


def facet(kind: str, /, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACETS + SCHEMAS[kind], **fields}


def run_uuid(project: str, run_id: int, job: str | None = None) -> str:
    """The same job run always has the same run id (START and its end pair up across processes)."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{project}/{run_id}/{job or ''}"))


# -- dataset names --------------------------------------------------------------------------------
def location_dataset(location: str) -> tuple[str, str]:
    """(namespace, name) of a lakehouse table or a file location."""
    if "://" in location:
        parts = urlsplit(location)
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    return "file", str(Path(location))


def connection_dataset(config: Any, what: str, resolve: Callable[[str], str]) -> tuple[str, str]:
    """(namespace, name) of ``what`` (a table, file pattern or topic) read through a connection."""
    kind = str(getattr(config, "type", ""))
    try:
        described = str(config.describe()).split(" ")[0]
    except Exception:  # a config that cannot describe itself still names its events
        described = ""
    if kind in ("files", "debezium") or not described.count("://"):
        path = getattr(config, "path", None)
        if isinstance(path, str):
            base = path if "://" in path else resolve(path)
            namespace, name = location_dataset(base.rstrip("/") + "/" + what)
            return namespace, name
        return f"flowforge://{kind or 'connection'}", what
    parts = urlsplit(described)
    scheme = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql",
              "sqlserver": "sqlserver", "mssql": "sqlserver", "kafka": "kafka", "sqlite": "sqlite"}.get(
                  parts.scheme, parts.scheme)
    database = parts.path.strip("/")
    if scheme == "sqlite":
        return "sqlite", f"{resolve(str(getattr(config, 'path', database)))}.{what}"
    if scheme == "kafka":
        return f"kafka://{parts.netloc}", what if what != "events" else database
    namespace = f"{scheme}://{parts.netloc}"
    if scheme == "postgres" and what.count(".") == 0:
        what = f"public.{what}"
    if scheme == "sqlserver" and what.count(".") == 0:
        what = f"dbo.{what}"
    return namespace, f"{database}.{what}" if database and not database.startswith("(") else what


# -- one job run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    time: dt.datetime
    assets: dict[str, Any]
    types: dict[str, list[dict[str, Any]]]
    checks: dict[str, dict[str, Any]]
    configs: dict[str, Any]


class JobLineage:
    """Builds and sends the events of one job run; every method swallows its own errors."""

    def __init__(self, env: JobEnv, workflow: Workflow, job: JobSpec, run_id: int, settings: OpenLineageSettings,
                 sender: Callable[[dict[str, Any]], None]) -> None:
        self.env = env
        self.workflow = workflow
        self.job = job
        self.run_id = run_id
        self.settings = settings
        self.send = sender
        project = str(env.settings.project_dir) if env.settings else ""
        self.run_uuid = run_uuid(project, run_id, job.name)
        self.parent_uuid = run_uuid(project, run_id)

    def start(self) -> None:
        self._emit("START", None)

    def finish(self, event: JobEvent) -> None:
        self._emit(_ENDED.get(event.status, "OTHER"), event)

    def interrupted(self, exc: BaseException) -> None:
        self._emit("ABORT", None, error=f"interrupted ({type(exc).__name__})")

    def _emit(self, kind: str, event: JobEvent | None, error: str | None = None) -> None:
        try:
            snap = self.snapshot(ended=kind != "START")  # catalog reads, in the run's thread: milliseconds
        except Exception as exc:  # lineage never changes a run's outcome
            self._lost(kind, exc)
            return

        def deliver() -> None:
            try:
                self.send(self.build(kind, event, error, snap))
            except Exception as exc:
                self._lost(kind, exc)

        OUTBOX.submit(deliver, f"{kind} event of {self.workflow.name}.{self.job.name}")

    def _lost(self, kind: str, exc: BaseException) -> None:
        from flowforge.errors import redact

        log.warning("OpenLineage %s event of %s.%s not sent: %s", kind, self.workflow.name, self.job.name,
                    redact(f"{type(exc).__name__}: {exc}")[:300])

    def snapshot(self, *, ended: bool) -> Snapshot:
        """What the event needs from the metadata store and the connections, read now; the rest is built
        in the background."""
        from flowforge.quality.results import assertions_facets

        assets = {a.table_name: a for a in self.env.metadata.list_assets()}
        names = [n.removeprefix("source:") for n in self._inputs() if n.startswith("source:")]
        if self.job.kind != "export":
            names += [n.removeprefix("sink:") for n in self._sinks()]
        return Snapshot(time=dt.datetime.now(dt.UTC), assets=assets,
                        types={name: list(a.schema) for name, a in assets.items()},
                        checks=assertions_facets(self.env.metadata, self.run_id) if ended else {},
                        configs={c: self._config(c) for c in {n.split(".", 1)[0] for n in names}})

    # -- building ---------------------------------------------------------------------------------
    def build(self, kind: str, event: JobEvent | None, error: str | None = None,
              snap: Snapshot | None = None) -> dict[str, Any]:
        from flowforge.lineage.columns import cached_job_column_edges

        self._snap = snap or self.snapshot(ended=kind != "START")
        schemas = {name: [str(c["name"]) for c in cols] for name, cols in self._snap.types.items()}
        ended = kind != "START"
        edges = cached_job_column_edges(self.job, schemas.get) if ended else []
        run_facets: dict[str, Any] = {
            "parent": facet("parent", run={"runId": self.parent_uuid},
                            job={"namespace": self.settings.namespace, "name": self.workflow.name}),
            "processing_engine": facet("processing_engine", version=_version(), name="FlowForge",
                                       openlineageAdapterVersion=_version()),
        }
        message = error or (event.error if event is not None and kind != "COMPLETE" else None)
        if message and kind in ("FAIL", "ABORT"):
            run_facets["errorMessage"] = facet("errorMessage", message=message, programmingLanguage="python")
        outputs = self._outputs(schemas, edges, event if ended else None)
        return {
            "eventType": kind,
            "eventTime": self._snap.time.isoformat().replace("+00:00", "Z"),
            "producer": PRODUCER,
            "schemaURL": SPEC,
            "run": {"runId": self.run_uuid, "facets": run_facets},
            "job": {"namespace": self.settings.namespace, "name": f"{self.workflow.name}.{self.job.name}",
                    "facets": self._job_facets()},
            "inputs": [self._dataset(node, schemas) for node in self._inputs()],
            "outputs": outputs,
        }

    def _job_facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = {"jobType": facet("jobType", processingType="BATCH", integration="FLOWFORGE",
                                                   jobType=self.job.kind.upper())}
        sql = [t.sql for t in getattr(self.job, "tables", ()) if isinstance(getattr(t, "sql", None), str)]
        if sql:
            facets["sql"] = facet("sql", query=";\n".join(sql), dialect="duckdb")
        if self.job.description:
            facets["documentation"] = facet("documentation", description=self.job.description)
        return facets

    def _inputs(self) -> list[str]:
        from flowforge.lineage.columns import ingest_source, query_tables, source_node
        from flowforge.spec.export import LAYER_NAMES

        job: Any = self.job
        if job.kind == "ingest":  # a source query reads the tables it names
            return list(dict.fromkeys(n for t in job.tables for n in (
                [source_node(job.connection, q) for q in query_tables(t.query)] if t.query else []
            ) or [ingest_source(job, t)]))
        if job.kind == "cdc":
            return [source_node(job.connection, job.files or "events")]
        if job.kind == "export" and job.source not in LAYER_NAMES:
            return [source_node(job.source, t) for t in job.tables]
        return list(self.job.inputs())

    def _sinks(self) -> list[str]:
        job: Any = self.job
        if job.kind == "publish":
            return [f"sink:{job.connection}.{job.target_schema}.{t.name}" for t in job.tables]
        if job.kind == "export":
            return [f"sink:{job.to.rstrip('/')}/{t}" for t in job.tables]
        if job.kind == "embed" and job.serve and job.serve.pgvector:
            return [f"sink:{job.serve.pgvector.connection}.{job.serve.pgvector.table}"]
        return []

    def _outputs(self, schemas: dict[str, list[str]], edges: Sequence[ColumnEdge],
                 event: JobEvent | None) -> list[dict[str, Any]]:
        written = {t.table: t for t in (event.result.tables if event and event.result else ())}
        checks = self._snap.checks
        outputs = []
        for node in [*self.job.outputs(), *self._sinks()]:
            data = self._dataset(node, schemas, edges)
            mine = [e for e in edges if e.target.table == node]
            if mine:
                data["facets"]["columnLineage"] = self._column_facet(mine, schemas)
            if node in checks:
                data["facets"]["dataQualityAssertions"] = checks[node]
            if node in written:
                done = written[node]
                data["outputFacets"] = {"outputStatistics": facet(
                    "outputStatistics", rowCount=done.rows_written + done.rows_updated, size=done.bytes_written)}
            outputs.append(data)
        return outputs

    def _column_facet(self, edges: Sequence[ColumnEdge], schemas: dict[str, list[str]]) -> dict[str, Any]:
        fields: dict[str, dict[str, Any]] = {}
        dataset: list[dict[str, Any]] = []
        for e in edges:
            namespace, name = self._name(e.source.table)
            transformation: dict[str, Any] = {"type": e.type, "subtype": e.subtype, "masking": e.masking}
            if e.description:
                transformation["description"] = e.description
            item = {"namespace": namespace, "name": name, "field": e.source.column,
                    "transformations": [transformation]}
            if e.type == "INDIRECT":
                dataset.append(item)
            else:
                fields.setdefault(e.target.column, {"inputFields": []})["inputFields"].append(item)
        return facet("columnLineage", fields=fields, dataset=dataset)

    def _dataset(self, node: str, schemas: dict[str, list[str]],
                 edges: Sequence[ColumnEdge] = ()) -> dict[str, Any]:
        namespace, name = self._name(node)
        facets: dict[str, Any] = {"dataSource": facet("dataSource", name=namespace, uri=_uri(namespace, name))}
        fields = self._fields(node, edges)
        if fields:
            facets["schema"] = facet("schema", fields=fields)
        return {"namespace": namespace, "name": name, "facets": facets}

    def _fields(self, node: str, edges: Sequence[ColumnEdge] = ()) -> list[dict[str, Any]]:
        from flowforge.spec.jobs import AUDIT_COLUMNS

        if node.startswith("source:"):
            job: Any = self.job
            target = next((t.target for t in job.tables if node.endswith("." + str(t.table or t.files or "query"))),
                          None) if job.kind == "ingest" else None
            return [{"name": c["name"], "type": str(c["type"])} for c in self._snap.types.get(target or "", ())
                    if c["name"] not in AUDIT_COLUMNS]
        if node.startswith("sink:"):  # what the job copies there: the columns of its lineage edges
            types = {(t, str(c["name"])): str(c["type"]) for t, cols in self._snap.types.items() for c in cols}
            names = dict.fromkeys((e.target.column, types.get((e.source.table, e.source.column)))
                                  for e in edges if e.target.table == node)
            return [{"name": n, **({"type": t} if t else {})} for n, t in names]
        return [{"name": c["name"], "type": str(c["type"]), "ordinal_position": i}
                for i, c in enumerate(self._snap.types.get(node, ()), start=1)]

    def _name(self, node: str) -> tuple[str, str]:
        resolve = self.env.settings.resolve_path if self.env.settings else str
        if node.startswith("source:"):
            connection, what = node.removeprefix("source:").split(".", 1)
            return connection_dataset(self._snap.configs.get(connection), what, resolve)
        if node.startswith("sink:"):
            return self._sink_name(node.removeprefix("sink:"), resolve)
        asset = self._snap.assets.get(node)
        if asset is not None:
            return location_dataset(asset.location)
        layer = "silver" if self.job.kind == "cdc" and node != getattr(self.job, "target", None) else (
            self.workflow.layer_of(node) or "silver")
        return location_dataset(self.env.store.location(layer, node))

    def _sink_name(self, sink: str, resolve: Callable[[str], str]) -> tuple[str, str]:
        job: Any = self.job
        if job.kind == "export":
            return location_dataset(resolve(sink))
        connection, rest = sink.split(".", 1)
        return connection_dataset(self._snap.configs.get(connection), rest, resolve)

    def _config(self, connection: str) -> Any:
        try:
            return self.env.connector(connection).config
        except Exception:  # an unknown or broken connection still gets a name
            return None


def _uri(namespace: str, name: str) -> str:
    if namespace == "file":
        return Path(name).as_uri() if name.startswith("/") else f"file:{name}"
    if namespace == "sqlite":
        return f"sqlite:///{name.rsplit('.', 1)[0].lstrip('/')}" if name.startswith("/") else "sqlite:"
    return namespace


_VERSION: list[str] = []


def _version() -> str:
    if not _VERSION:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _VERSION.append(version("flowforge"))
        except PackageNotFoundError:
            _VERSION.append("0")
    return _VERSION[0]


# -- transports -----------------------------------------------------------------------------------
class _Null:
    def start(self) -> None:
        pass

    def finish(self, event: JobEvent) -> None:
        pass

    def interrupted(self, exc: BaseException) -> None:
        pass


NULL = _Null()


def job_lineage(env: JobEnv, workflow: Workflow, job: JobSpec, run_id: int) -> JobLineage | _Null:
    """The events of one job run, or a no-op when ``openlineage.transport`` is ``none`` (the default)."""
    settings = env.settings.openlineage if env.settings is not None else None
    if settings is None or not settings.enabled:
        return NULL
    try:
        return JobLineage(env, workflow, job, run_id, settings, sender_for(settings, env.settings))
    except Exception as exc:
        log.warning("OpenLineage events of %s.%s are off: %s", workflow.name, job.name, type(exc).__name__)
        return NULL


def sender_for(settings: OpenLineageSettings, project: Any) -> Callable[[dict[str, Any]], None]:
    if settings.transport == "file":
        path = Path(project.resolve_path(settings.path) if project is not None else settings.path)
        return FileTransport(path).send
    return HttpTransport(settings).send


class FileTransport:
    """One JSON event per line, appended (the file is created with its folder)."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)


class HttpTransport:
    """POSTs an event to ``<url>/<endpoint>`` (Marquez's ``/api/v1/lineage``), from the outbox's thread."""

    def __init__(self, settings: OpenLineageSettings) -> None:
        self.settings = settings

    def send(self, event: dict[str, Any]) -> None:
        import urllib.request

        headers = {"Content-Type": "application/json", "User-Agent": f"FlowForge/{_version()}"}
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        request = urllib.request.Request(self.settings.target, data=json.dumps(event, default=str).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                response.read()
        except Exception as exc:
            from flowforge.errors import redact

            log.warning("OpenLineage: could not send a %s event to %s: %s", event.get("eventType"),
                        self.settings.target, redact(f"{type(exc).__name__}: {exc}")[:300])


class Outbox:
    """One background thread per process builds and sends events in the order they happened; a run never
    waits for it. A full outbox drops events with a warning."""

    def __init__(self, capacity: int = 1000) -> None:
        self.queue: queue.Queue[tuple[Callable[[], None], str]] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], None], what: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="openlineage", daemon=True)
                self._thread.start()
        try:
            self.queue.put_nowait((work, what))
        except queue.Full:
            log.warning("OpenLineage: %d events wait to be sent; dropping the %s", self.queue.qsize(), what)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event so far was sent or given up (at most ``timeout`` seconds)."""
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _loop(self) -> None:
        while True:
            work, _ = self.queue.get()
            try:
                work()
            except Exception:  # work logs its own failures; the thread must go on
                log.exception("OpenLineage outbox")
            finally:
                self.queue.task_done()


OUTBOX = Outbox()


def flush(timeout: float = 10.0) -> bool:
    """Wait for this process's events to be sent (tests; the end of a CLI run)."""
    return OUTBOX.flush(timeout)


@atexit.register
def _drain() -> None:  # a CLI run's last events still go out, waiting a bounded time for them
    OUTBOX.flush(10.0)

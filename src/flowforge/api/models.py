"""Request (``*Create``/``*Update``) and response (``*Public``) models of the API.

Public models are built from the service layer's records and never carry a secret: no
password, no password hash, no token hash, no connection URL or key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Role = Literal["admin", "editor", "viewer"]


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SpecSource(BaseModel):
    """A workflow or job given either as YAML text or as a JSON object."""

    yaml: str | None = Field(None, description="The YAML text (comments are kept).")
    spec: dict[str, Any] | None = Field(None, description="The same as a JSON object.")

    @model_validator(mode="after")
    def _one(self) -> SpecSource:
        if (self.yaml is None) == (self.spec is None):
            raise ValueError("give exactly one of 'yaml' or 'spec'")
        return self

    def source(self) -> str | dict[str, Any]:
        return self.yaml if self.yaml is not None else dict(self.spec or {})


# -- auth and users ----------------------------------------------------------------------

class LoginRequest(BaseModel):
    username: str = Field(max_length=256)
    password: SecretStr = Field(max_length=1024)
    issue_token: bool = Field(False, description="Also return a new API token (shown once).")


class PasswordChange(BaseModel):
    current_password: SecretStr = Field(max_length=1024)
    new_password: SecretStr = Field(min_length=8, max_length=1024)


class UserPublic(Public):
    id: int
    username: str
    role: Role
    created_at: datetime
    disabled: bool


class LoginResponse(BaseModel):
    user: UserPublic
    token: str | None = None


class UserCreate(BaseModel):
    username: str = Field(max_length=64)
    password: SecretStr = Field(max_length=1024)
    role: Role = "viewer"


class UserUpdate(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: SecretStr | None = Field(None, max_length=1024)


class TokenCreate(BaseModel):
    name: str = Field("api", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")


class TokenPublic(Public):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class TokenCreated(BaseModel):
    name: str
    token: str = Field(description="Shown once; only its hash is stored.")


# -- workflows and jobs --------------------------------------------------------------------

class RunBriefPublic(Public):
    id: int
    status: str
    trigger: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    rows_read: int
    rows_written: int
    error: str | None


class WorkflowPublic(Public):
    id: int | None
    name: str
    description: str
    team: str | None
    environment: str
    tags: list[str]
    status: str
    schedule: str | None
    triggers: list[str] = Field(default_factory=list, description="Its triggers, described (cron, every, ...).")
    jobs: int
    updated_at: datetime | None
    last_run: RunBriefPublic | None
    error: str | None = None


class WorkflowsPublic(BaseModel):
    data: list[WorkflowPublic]
    count: int
    invalid: list[WorkflowPublic] = Field(default_factory=list, description="Workflow files that do not parse.")


class JobPublic(Public):
    name: str
    kind: str
    layer: str
    description: str
    depends_on: list[str]
    inputs: list[str]
    outputs: list[str]
    spec: dict[str, Any]


class WorkflowDetailPublic(Public):
    id: int
    name: str
    description: str
    team: str | None
    environment: str
    tags: list[str]
    status: str
    schedule: str | None
    updated_at: datetime
    spec: dict[str, Any]
    yaml: str
    jobs: list[JobPublic]
    runs: list[RunBriefPublic]
    triggers: list[str] = Field(default_factory=list, description="Its triggers, described.")
    concurrency: str = Field("queue", description="queue | skip | fail: a run while another is in progress.")


class WorkflowCreate(SpecSource):
    pass


class WorkflowUpdate(SpecSource):
    pass


class JobCreate(SpecSource):
    pass


class JobUpdate(SpecSource):
    pass


class CloneRequest(BaseModel):
    new_name: str = Field(max_length=128)


class ValidationIssuePublic(Public):
    field: str
    line: int | None
    message: str


class ValidationResult(BaseModel):
    valid: bool
    issues: list[ValidationIssuePublic]


# -- connections ---------------------------------------------------------------------------

class ConnectionCreate(BaseModel):
    """A new stored connection. ``password``, ``url`` and ``secrets`` are encrypted at rest and
    never returned by any endpoint."""

    name: str
    type: str = Field(description="postgres, sqlite, mysql, sqlserver, files ...")
    options: dict[str, Any] = Field(default_factory=dict, description="Non-secret fields: host, port, database, "
                                    "user, schema, path ...")
    password: SecretStr | None = None
    url: SecretStr | None = None
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="Other secret fields by name.")
    test: bool = Field(False, description="Connect before saving; refuse to save when it fails.")

    def data(self) -> dict[str, Any]:
        out = {**self.options, "type": self.type}
        for key, value in (("password", self.password), ("url", self.url), *self.secrets.items()):
            if value is not None:
                out[key] = value.get_secret_value()
        return out


class ConnectionViewerPublic(Public):
    """What a viewer sees: the kind and where it points."""

    name: str
    kind: str
    host: str | None
    database: str | None
    path: str | None


class ConnectionPublic(ConnectionViewerPublic):
    port: int | None
    source: str
    where: str
    options: dict[str, Any]


class ConnectionTestPublic(Public):
    ok: bool
    server_version: str
    latency_ms: float


class SourceTablePublic(Public):
    name: str
    schema_: str | None = Field(None, alias="schema", serialization_alias="schema")
    row_estimate: int | None


class SourceColumnPublic(BaseModel):
    name: str
    source_type: str
    arrow_type: str
    nullable: bool
    primary_key: bool
    default: str | None = Field(None, description="The declared default as SQL text; null when there is none.")


class DialectPublic(BaseModel):
    """A text file's dialect as sniffed from its head, beside the options FlowForge reads it with."""

    file: str
    columns: int = Field(description="Columns the sniffed delimiter gives.")
    sniffed: dict[str, Any]
    configured: dict[str, Any] = Field(description="delimiter, quote, header, encoding and null_values in use.")


class QueryRequest(BaseModel):
    sql: str = Field(max_length=100_000, description="One SELECT over lakehouse tables by name (sandboxed).")
    limit: int = Field(1000, ge=1, le=10_000, description="At most this many rows come back.")


class QueryResultPublic(BaseModel):
    columns: list[dict[str, str]] = Field(description="name and SQL type (BIGINT, DECIMAL(15,2)...) of each column")
    rows: list[dict[str, Any]]
    count: int
    truncated: bool = Field(description="True when the query had more rows than 'limit'.")


class RowsPublic(BaseModel):
    rows: list[dict[str, Any]]
    count: int


# -- runs ------------------------------------------------------------------------------------

class RunCreate(BaseModel):
    workflow: str = Field(description="Workflow name or numeric id.")
    job: str | None = Field(None, description="Run only this job.")
    force: bool = Field(False, description="Run even when the workflow is paused; recompute gold tables whose "
                                           "inputs did not change.")
    full_refresh: bool = Field(False, description="Rebuild the tables from their sources (overwrite commits: "
                                                  "history and time travel are kept).")
    select: list[str] | None = Field(None, description="With full_refresh: only these tables and what depends on "
                                                       "them.")


class RunPublic(Public):
    id: int
    workflow: str
    status: str
    trigger: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows_read: int
    rows_written: int
    error: str | None
    status_label: str = Field("", description="'failed (abandoned)' when the process running it died.")
    reason: str | None = None
    slot: datetime | None = Field(None, description="The schedule slot it ran for.")
    parent_run_id: int | None = Field(None, description="The run it re-runs.")
    cancel_requested: bool = False
    last_seen: datetime | None = Field(None, description="Last heartbeat of the process running it.")
    jobs_selected: list[str] | None = Field(None, description="The jobs it ran, when not all.")


class JobRunPublic(Public):
    job: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows_read: int
    rows_written: int
    bytes_written: int
    error: str | None
    worker: str | None = None


class RunAlertPublic(Public):
    channel: str
    event: str
    status: str
    detail: str | None
    at: datetime


class RunDetailPublic(Public):
    run: RunPublic
    jobs: list[JobRunPublic]
    alerts: list[RunAlertPublic] = Field(default_factory=list, description="Alerts sent for this run.")


class JobLogPublic(Public):
    job: str
    status: str
    log: str


# -- catalog, lineage, templates, audit ---------------------------------------------------------

class TableSummaryPublic(BaseModel):
    name: str
    layer: str
    location: str
    rows: int
    version: int
    columns: list[dict[str, str]]


class TableVersionPublic(Public):
    version: int
    timestamp: datetime | None
    operation: str
    rows_added: int | None


class TableDetailPublic(Public):
    name: str
    layer: str
    location: str
    rows: int
    version: int
    last_updated: datetime | None
    workflow: str | None
    columns: list[dict[str, Any]]
    history: list[TableVersionPublic]
    sample: list[dict[str, Any]]
    schema_changes: list[dict[str, Any]] = []


class LineageNode(BaseModel):
    id: str
    type: str = Field(description="source, bronze, silver, gold (or table when not yet built)")
    label: str
    layer: str | None
    rows: int | None
    last_updated: str | None


class LineageEdge(BaseModel):
    source: str
    target: str


class LineagePublic(BaseModel):
    workflow: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class ColumnHop(BaseModel):
    """A column reached from the asked one, ``depth`` edges away, and the edge that reached it."""

    table: str
    node: str = Field(description="the lineage node: a table, 'source:<connection>.<table>' or 'sink:<where>'")
    kind: str = Field(description="table, source or sink")
    column: str
    depth: int
    job: str
    workflow: str
    subtype: str = Field(description="IDENTITY, TRANSFORMATION or AGGREGATION")
    description: str
    via: dict[str, str]


class ColumnEdgePublic(BaseModel):
    source: dict[str, str]
    target: dict[str, str]
    job: str
    workflow: str
    type: str = Field(description="DIRECT, or INDIRECT (keys, joins, filters: target column '*')")
    subtype: str
    description: str
    masking: bool


class ColumnLineagePublic(BaseModel):
    table: str
    node: str
    kind: str
    workflow: str | None
    columns: list[str]
    column: str | None
    upstream: list[ColumnHop] = []
    downstream: list[ColumnHop] = []
    edges: list[ColumnEdgePublic] = []
    indirect: list[ColumnEdgePublic] = []


class ColumnTable(BaseModel):
    node: str
    table: str
    kind: str
    columns: list[str]


class ColumnGraphPublic(BaseModel):
    workflow: str
    tables: list[ColumnTable]
    edges: list[ColumnEdgePublic]


class TemplatePublic(BaseModel):
    name: str
    title: str
    category: str
    industry: str
    description: str
    parameters: dict[str, dict[str, Any]]


class TemplateDetailPublic(TemplatePublic):
    readme: str
    workflow_yaml: str


class TemplateInstantiate(BaseModel):
    params: dict[str, str] = Field(default_factory=dict, description="workflow_name, connections, file names, "
                                   "team, environment, ... (see the template's parameters)")
    tags: list[str] | None = Field(None, description="Replace the template's tags.")
    tables: dict[str, str] = Field(default_factory=dict, description="Rename tables: old name → new name.")
    overwrite: bool = False


class AuditPublic(Public):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class HealthPublic(BaseModel):
    status: str
    version: str
    metadata: str


class SearchHitPublic(Public):
    rank: int
    score: float
    key: dict[str, Any]
    text: str
    row: dict[str, Any] | None
    source_table: str
    source_version: int
    lineage: list[str]
    quality: str


class SearchPublic(Public):
    table: str
    source_table: str
    source_current_version: int
    embeddings_version: int
    query: str
    method: str
    k: int
    where: str | None
    model: str
    seconds: float
    hits: list[SearchHitPublic]


class SearchTablePublic(Public):
    table: str
    source: str
    rows: int
    version: int
    model: str
    text: str
    pgvector: str | None


# -- schedules, run control, alerts ------------------------------------------------------------

class RerunRequest(BaseModel):
    from_failure: bool = Field(False, description="Only the failed, cancelled and skipped jobs and what depends "
                                                  "on them.")


class TriggerPublic(Public):
    workflow: str
    status: str
    index: int
    kind: str
    description: str
    catchup: str | None
    timezone: str | None
    next_fires: list[datetime]
    last_fire: datetime | None
    last_status: str | None
    spec: dict[str, Any]


class TriggerPreview(BaseModel):
    trigger: dict[str, Any] = Field(description='A trigger as in the workflow file, e.g. {"cron": "0 6 * * *", '
                                                '"timezone": "Europe/Berlin"}.')
    count: int = Field(5, ge=1, le=50)


class TriggerPreviewPublic(BaseModel):
    description: str
    next_fires: list[datetime]


class TriggersUpdate(BaseModel):
    triggers: list[dict[str, Any]]
    concurrency: Literal["queue", "skip", "fail"] | None = None


class BackfillRequest(BaseModel):
    start: datetime
    end: datetime
    trigger: int | None = Field(None, description="Which trigger (its index) when the workflow has several "
                                                  "cron/every triggers.")


class FirePublic(Public):
    id: int
    workflow: str
    kind: str
    slot_key: str
    slot: datetime | None
    status: str
    claimed_at: datetime
    run_id: int | None
    detail: str | None


class BackfillPublic(Public):
    workflow: str
    queued: list[FirePublic]
    already: list[datetime]


class AlertChannelPublic(Public):
    """A channel without its secrets (webhook URL, header values, SMTP password are write-only)."""

    name: str
    kind: str
    where: str
    events: list[str]
    slow_factor: float
    source: str
    options: dict[str, Any]


class AlertChannelUpdate(BaseModel):
    type: Literal["webhook", "email"]
    url: SecretStr | None = Field(None, description="Webhook URL (write-only; left out keeps the stored one).")
    format: Literal["json", "slack", "teams"] | None = None
    headers: dict[str, SecretStr] | None = None
    host: str | None = None
    port: int | None = None
    security: Literal["starttls", "ssl", "none"] | None = None
    username: str | None = None
    password: SecretStr | None = Field(None, description="SMTP password (write-only; left out keeps the stored one).")
    sender: str | None = None
    to: list[str] | None = None
    events: list[Literal["failure", "recovery", "slow"]] = Field(default_factory=list)
    slow_factor: float | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            raw = getattr(self, key)
            if isinstance(raw, SecretStr):
                out[key] = raw.get_secret_value()
            elif isinstance(raw, dict):
                out[key] = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in raw.items()}
            else:
                out[key] = value
        return out


class AlertTestPublic(BaseModel):
    channel: str
    result: str


class IngestPlanRowPublic(Public):
    """One table an ingest job with ``tables: "*"``/``include`` would land, and how."""

    job: str
    source: str
    target: str
    keys: list[str]
    delta_column: str | None
    load: str
    listed: bool


# -- writing workflows: names and ownership, jobs as written, template plans ---------------------
class WorkflowDetails(BaseModel):
    """Fields to change; those left out stay as they are. An empty ``team`` clears it."""

    new_name: str | None = Field(None, max_length=128, description="Rename the workflow (runs stay with it).")
    description: str | None = Field(None, max_length=2000)
    team: str | None = Field(None, max_length=128)
    environment: str | None = Field(None, max_length=64)
    tags: list[str] | None = Field(None, max_length=50)


class JobSourcePublic(Public):
    workflow: str
    name: str
    kind: str
    data: dict[str, Any] = Field(description="The job as its file writes it (shorthands kept).")
    text: str = Field(description="The job's YAML with its comments.")


class TableWriterPublic(Public):
    table: str
    workflow: str
    job: str


class TemplatePlanPublic(Public):
    template: str
    workflow: str
    yaml: str
    writes: list[str]
    conflicts: list[TableWriterPublic] = Field(description="Tables another workflow already writes.")
    warnings: list[str]

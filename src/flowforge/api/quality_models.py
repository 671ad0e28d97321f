"""Request and response models of the data-quality API (``/api/v1/quality``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flowforge.api.models import Public


class CheckResultPublic(Public):
    """One test's result in one run (``origin: run``) or one ``flowforge test`` (``origin: test``)."""

    id: int
    run_id: int | None
    origin: str
    workflow_name: str | None
    job_name: str | None
    table_name: str
    layer: str
    test_name: str
    test_kind: str
    columns: list[str]
    severity: str
    status: str = Field(description="pass | warn | fail | error")
    failing_rows: int
    rows_checked: int | None
    observed: Any
    message: str
    sample: list[dict[str, Any]] = Field(description="Up to 20 failing rows.")
    at: datetime


class AccountingPublic(Public):
    """Where a checked batch's rows went: rows_in = rows_committed + rows_dropped + rows_quarantined."""

    run_id: int
    job_name: str
    table_name: str
    layer: str
    batch_id: str
    rows_in: int
    rows_committed: int
    rows_dropped: int
    rows_quarantined: int
    delta_version: int | None
    quarantine_version: int | None
    at: datetime


class RunQualityPublic(Public):
    run_id: int
    results: list[CheckResultPublic]
    accounting: list[AccountingPublic]


class TableQualityPublic(BaseModel):
    table: str
    results: list[CheckResultPublic] = Field(description="Newest first.")
    accounting: list[AccountingPublic] = Field(description="Newest first.")


class TestRunCreate(BaseModel):
    workflow: str | None = Field(None, description="A workflow name; every workflow of the project when left out.")
    select: list[str] = Field(default_factory=list, description="Only these tables.")


class TestResultPublic(Public):
    table: str
    test: str
    kind: str
    columns: list[str]
    severity: str
    status: str = Field(description="pass | warn | fail | error | skip")
    failing_rows: int
    rows_checked: int | None
    observed: Any
    message: str
    sample: list[dict[str, Any]]


class TestReportPublic(BaseModel):
    results: list[TestResultPublic]
    counts: dict[str, int]
    ok: bool
    seconds: float


class QuarantinePublic(Public):
    table: str
    layer: str
    pending: int
    replayed: int
    superseded: int
    first_at: datetime | None
    last_at: datetime | None
    tests: dict[str, int] = Field(description="Failed test → pending rows.")


class QuarantineRowsPublic(BaseModel):
    quarantine: QuarantinePublic
    rows: list[dict[str, Any]]


class ReplayPublic(Public):
    table: str
    layer: str
    checked: int
    replayed: int
    superseded: int
    still_failing: int
    recovered: int
    version: int | None


class DbtImportCreate(BaseModel):
    schema_yaml: str = Field(description="The text of a dbt schema.yml.")
    workflow: str | None = Field(None, description="Write the tests into this workflow, next to its tables.")
    tables: dict[str, str] = Field(default_factory=dict, description="dbt model → FlowForge table.")


class DbtSkippedPublic(Public):
    model: str
    column: str | None
    test: str
    reason: str


class DbtImportPublic(BaseModel):
    tables: dict[str, list[dict[str, Any]]]
    skipped: list[DbtSkippedPublic]
    yaml: str
    written: str | None
    added: int

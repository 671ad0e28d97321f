from typing import Any

from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.quality_models import (
    AccountingPublic,
    CheckResultPublic,
    DbtImportCreate,
    DbtImportPublic,
    DbtSkippedPublic,
    QuarantinePublic,
    QuarantineRowsPublic,
    ReplayPublic,
    RunQualityPublic,
    TableQualityPublic,
    TestReportPublic,
    TestResultPublic,
    TestRunCreate,
)

router = APIRouter(prefix="/quality", tags=["quality"])


@router.get("/runs/{run_id}", response_model=RunQualityPublic)
def run_quality(run_id: int, _: CurrentUser, ctx: Ctx) -> RunQualityPublic:
    """Every test a run evaluated (status, failing rows, samples) and where each checked batch's rows went."""
    return RunQualityPublic.model_validate(ctx.quality.run_results(run_id))


@router.get("/runs/{run_id}/openlineage", response_model=dict[str, dict[str, Any]])
def run_assertions(run_id: int, _: CurrentUser, ctx: Ctx) -> dict[str, dict[str, Any]]:
    """The run's tests as OpenLineage ``dataQualityAssertions`` dataset facets, by table."""
    ctx.quality.run_results(run_id)  # 404 for an unknown run
    return ctx.quality.assertions_facets(run_id)


@router.get("/tables/{name}", response_model=TableQualityPublic)
def table_quality(name: str, _: CurrentUser, ctx: Ctx, limit: int = Query(200, ge=1, le=5000)) -> TableQualityPublic:
    """The table's test results over time, newest first, and its accounting per checked batch."""
    return TableQualityPublic(table=name,
                              results=[CheckResultPublic.model_validate(r) for r in ctx.quality.history(name, limit)],
                              accounting=[AccountingPublic.model_validate(a)
                                          for a in ctx.quality.accounting(name, limit)])


@router.post("/test", response_model=TestReportPublic)
def run_tests(body: TestRunCreate, _: EditorUser, ctx: Ctx) -> TestReportPublic:
    """Run the declared tests against the committed tables without writing them (``flowforge test``)."""
    report = ctx.quality.test(body.workflow, body.select)
    return TestReportPublic(results=[TestResultPublic.model_validate(r) for r in report.results],
                            counts=report.counts, ok=report.ok, seconds=report.seconds)


@router.get("/quarantine", response_model=list[QuarantinePublic])
def quarantines(_: CurrentUser, ctx: Ctx) -> list[QuarantinePublic]:
    return [QuarantinePublic.model_validate(q) for q in ctx.quality.quarantines()]


@router.get("/quarantine/{table}", response_model=QuarantineRowsPublic)
def quarantine_rows(table: str, _: CurrentUser, ctx: Ctx, limit: int = Query(50, ge=1, le=5000),
                    status: str = Query("pending", pattern="^(pending|all)$"),
                    test: str | None = None) -> QuarantineRowsPublic:
    """The table's quarantined rows, newest first, with the tests they failed."""
    return QuarantineRowsPublic(quarantine=QuarantinePublic.model_validate(ctx.quality.quarantine(table)),
                                rows=ctx.quality.quarantine_rows(table, limit=limit, status=status, test=test))


@router.post("/quarantine/{table}/replay", response_model=ReplayPublic)
def replay(table: str, user: EditorUser, ctx: Ctx) -> ReplayPublic:
    """Re-check the pending rows with the table's current tests; merge the ones that pass, exactly once."""
    return ReplayPublic.model_validate(ctx.quality.replay(table))


@router.post("/import/dbt", response_model=DbtImportPublic)
def import_dbt(body: DbtImportCreate, user: EditorUser, ctx: Ctx) -> DbtImportPublic:
    """Translate a dbt schema.yml's tests; with ``workflow``, write them into that workflow's file."""
    result = ctx.quality.import_dbt(body.schema_yaml, workflow=body.workflow, tables=body.tables)
    return DbtImportPublic(tables=result.tables, skipped=[DbtSkippedPublic.model_validate(s) for s in result.skipped],
                           yaml=result.yaml(), written=result.written, added=result.added)

"""Test results in and out of the metadata store, and as OpenLineage facets.

``assertions_facets(metadata, run_id)`` is what the OpenLineage emitter calls: for each table
a run tested, a ``DataQualityAssertionsDatasetFacet`` (spec 1-1-0) listing every test with its
success, column, severity, expected and actual values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowforge.metadata.quality import CheckIn, QualityStore

if TYPE_CHECKING:
    from flowforge.metadata import MetadataStore
    from flowforge.metadata.quality import CheckRecord
    from flowforge.quality.evaluate import TestResult
    from flowforge.quality.gate import Accounting

PRODUCER = "https://github.com/flowforge/flowforge"
ASSERTIONS_SCHEMA = ("https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"
                     "#/$defs/DataQualityAssertionsDatasetFacet")
# OpenLineage names two severities: 'error' blocks the pipeline, 'warn' does not
_OL_SEVERITY = {"fail": "error", "warn": "warn", "drop": "warn", "quarantine": "warn"}


def record_results(metadata: MetadataStore, results: Sequence[TestResult], *, layer: str, run_id: int | None,
                   origin: str, workflow: str | None, job: str | None) -> None:
    rows = [CheckIn(r.table, layer, r.test, r.kind, r.columns, r.severity, r.status, r.failing_rows,
                    r.rows_checked, r.observed, r.message, r.sample) for r in results]
    QualityStore(metadata).add_results(rows, run_id=run_id, origin=origin, workflow=workflow, job=job)


def record_accounting(metadata: MetadataStore, acct: Accounting, *, run_id: int, job: str) -> None:
    QualityStore(metadata).add_accounting(
        run_id=run_id, job=job, table=acct.table, layer=acct.layer, batch_id=acct.batch_id, rows_in=acct.rows_in,
        committed=acct.committed, dropped=acct.dropped, quarantined=acct.quarantined, version=acct.version,
        quarantine_version=acct.quarantine_version)


def status_at(metadata: MetadataStore, table: str, version: int) -> str:
    """The data-quality status of ``table`` at Delta ``version``, for whoever serves its rows (search
    hits, catalog): the tests of the batch that made that version: "passed", "warned: <tests>",
    "<n> row(s) held back by <tests>", or "no checks" when no test ran on it."""
    qs = QualityStore(metadata)
    batch = qs.accounting_at(table, version)
    if batch is None:
        return "no checks"
    results = [r for r in qs.for_run(batch.run_id) if r.table_name == table]
    if not results:
        return "no checks"
    warned = [r.test_name for r in results if r.status != "pass"]
    if not warned:
        return "passed"
    held = batch.rows_dropped + batch.rows_quarantined
    return (f"{held:,} row(s) held back by " if held else "warned: ") + ", ".join(warned)


def assertions_facets(metadata: MetadataStore, run_id: int) -> dict[str, dict[str, Any]]:
    """Table name → the OpenLineage ``dataQualityAssertions`` facet of run ``run_id``'s tests of it.

    Put each under ``outputs[i].facets["dataQualityAssertions"]`` of the dataset with that name
    (or under ``inputFacets`` of an input dataset); tables the run did not test are absent.
    """
    facets: dict[str, dict[str, Any]] = {}
    for r in QualityStore(metadata).for_run(run_id):
        facet = facets.setdefault(r.table_name, {"_producer": PRODUCER, "_schemaURL": ASSERTIONS_SCHEMA,
                                                 "assertions": []})
        facet["assertions"].append(assertion(r))
    return facets


def assertion(r: CheckRecord) -> dict[str, Any]:
    item: dict[str, Any] = {"assertion": r.test_kind, "success": r.status == "pass", "name": r.test_name,
                            "severity": _OL_SEVERITY.get(r.severity, r.severity), "description": r.message}
    if len(r.columns) == 1:
        item["column"] = r.columns[0]
    if r.rows_checked is not None:
        item["expected"] = "0 failing rows"
        item["actual"] = f"{r.failing_rows} failing rows of {r.rows_checked}"
    elif r.observed is not None:
        item["actual"] = json.dumps(r.observed, sort_keys=True, default=str)
    item["params"] = {"status": r.status, "flowforge_severity": r.severity, "columns": list(r.columns)}
    return item

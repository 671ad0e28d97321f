"""Test results and row accounting in the metadata store (tables ``check_results`` and
``quality_accounting``). Results are kept per run and per test; ``flowforge test`` records
them with no run (origin ``test``).

Example::

    qs = QualityStore(ctx.metadata)
    qs.add_results([CheckIn(...)], run_id=7, origin="run", workflow="shop", job="clean")
    qs.for_run(7)                       # every test of run 7
    qs.history("silver_orders", 50)     # newest first
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from flowforge.metadata import queries as q
from flowforge.metadata.tables import check_results, quality_accounting

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore


@dataclass(frozen=True, slots=True)
class CheckIn:
    table_name: str
    layer: str
    test_name: str
    test_kind: str
    columns: tuple[str, ...]
    severity: str
    status: str
    failing_rows: int
    rows_checked: int | None
    observed: Any
    message: str
    sample: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class CheckRecord:
    id: int
    run_id: int | None
    origin: str
    workflow_name: str | None
    job_name: str | None
    table_name: str
    layer: str
    test_name: str
    test_kind: str
    columns: tuple[str, ...]
    severity: str
    status: str
    failing_rows: int
    rows_checked: int | None
    observed: Any
    message: str
    sample: tuple[dict[str, Any], ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    id: int
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


class QualityStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def add_results(self, results: Sequence[CheckIn], *, run_id: int | None, origin: str,
                    workflow: str | None, job: str | None) -> None:
        if not results:
            return
        at = q.now()
        rows = [{"run_id": run_id, "origin": origin, "workflow_name": workflow, "job_name": job,
                 "table_name": r.table_name, "layer": r.layer, "test_name": r.test_name, "test_kind": r.test_kind,
                 "columns": list(r.columns), "severity": r.severity, "status": r.status,
                 "failing_rows": r.failing_rows, "rows_checked": r.rows_checked,
                 "observed": q.jsonable(r.observed), "message": r.message, "sample": q.jsonable(list(r.sample)),
                 "at": at} for r in results]
        with self._store._begin() as conn:
            conn.execute(insert(check_results), rows)

    def add_accounting(self, *, run_id: int, job: str, table: str, layer: str, batch_id: str, rows_in: int,
                       committed: int, dropped: int, quarantined: int, version: int | None,
                       quarantine_version: int | None) -> None:
        with self._store._begin() as conn:
            conn.execute(insert(quality_accounting).values(
                run_id=run_id, job_name=job, table_name=table, layer=layer, batch_id=batch_id, rows_in=rows_in,
                rows_committed=committed, rows_dropped=dropped, rows_quarantined=quarantined,
                delta_version=version, quarantine_version=quarantine_version, at=q.now()))

    def for_run(self, run_id: int) -> list[CheckRecord]:
        query = select(check_results).where(check_results.c.run_id == run_id).order_by(check_results.c.id)
        return self._checks(query)

    def history(self, table: str, limit: int = 100) -> list[CheckRecord]:
        """The table's results, newest first."""
        query = (select(check_results).where(check_results.c.table_name == table)
                 .order_by(check_results.c.at.desc(), check_results.c.id.desc()).limit(limit))
        return self._checks(query)

    def accounting_for_run(self, run_id: int) -> list[AccountingRecord]:
        query = (select(quality_accounting).where(quality_accounting.c.run_id == run_id)
                 .order_by(quality_accounting.c.id))
        with self._store._begin() as conn:
            return [AccountingRecord(**row._mapping) for row in conn.execute(query)]

    def accounting_for_table(self, table: str, limit: int = 100) -> list[AccountingRecord]:
        query = (select(quality_accounting).where(quality_accounting.c.table_name == table)
                 .order_by(quality_accounting.c.id.desc()).limit(limit))
        with self._store._begin() as conn:
            return [AccountingRecord(**row._mapping) for row in conn.execute(query)]

    def accounting_at(self, table: str, version: int) -> AccountingRecord | None:
        """The checked batch that made ``table``'s newest version at or below ``version``."""
        query = (select(quality_accounting).where(quality_accounting.c.table_name == table,
                                                  quality_accounting.c.delta_version <= version)
                 .order_by(quality_accounting.c.delta_version.desc(), quality_accounting.c.id.desc()).limit(1))
        with self._store._begin() as conn:
            row = conn.execute(query).first()
        return AccountingRecord(**row._mapping) if row else None

    def _checks(self, query: Any) -> list[CheckRecord]:
        with self._store._begin() as conn:
            rows = conn.execute(query).all()
        return [CheckRecord(**{**row._mapping, "columns": tuple(row.columns or ()),
                               "sample": tuple(row.sample or ())}) for row in rows]

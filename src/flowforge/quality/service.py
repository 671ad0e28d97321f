"""The data-quality service on the Context (``ctx.quality``): what the CLI, the API and the UI call.

Example::

    report = ctx.quality.test("shop")                   # flowforge test shop
    report.counts                                        # {'pass': 4, 'warn': 0, 'error': 0, 'skip': 0}
    ctx.quality.run_results(run_id).results              # what a run's tests found
    ctx.quality.replay("silver_orders")   # quarantined rows that now pass go back
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata.quality import AccountingRecord, CheckRecord
    from flowforge.metadata.users import Role
    from flowforge.quality.dbt import DbtImport
    from flowforge.quality.evaluate import TestResult
    from flowforge.quality.quarantine import QuarantineSummary
    from flowforge.quality.replay import ReplayReport
    from flowforge.quality.tables import TestedTable


@dataclass(frozen=True)
class TestReport:
    """What ``flowforge test`` found: one result per test (status ``skip`` for a table not built yet)."""

    __test__ = False  # not a pytest test class

    results: tuple[TestResult, ...]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        c = {s: sum(r.status == s for r in self.results) for s in ("pass", "warn", "fail", "error", "skip")}
        return {"pass": c["pass"], "warn": c["warn"], "error": c["fail"] + c["error"], "skip": c["skip"]}

    @property
    def ok(self) -> bool:
        return not any(r.status in ("fail", "error") for r in self.results)


@dataclass(frozen=True)
class RunQuality:
    run_id: int
    results: tuple[CheckRecord, ...]
    accounting: tuple[AccountingRecord, ...]


class QualityService:
    """Reads need the viewer role; running tests, replaying and importing need an editor."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _require(self, role: Role) -> None:
        self.ctx.require(role)

    # -- running tests ------------------------------------------------------------------------
    def tested(self, workflow: str | None = None) -> list[TestedTable]:
        """Every table with tests, of one workflow or of every workflow file of the project."""
        from flowforge.quality.tables import tested_tables

        self._require("viewer")
        names = [workflow] if workflow else [p.stem for p in self.ctx.workflow_files()]
        return [t for name in names for t in tested_tables(self.ctx.load_workflow(name))]

    def test(self, workflow: str | None = None, select: Sequence[str] = (), *,
             on_table: Callable[[TestedTable, list[TestResult], float], None] | None = None) -> TestReport:
        """Run the tests of committed tables without writing any table (``flowforge test``);
        results are kept in the metadata store (origin ``test``)."""
        from flowforge.quality.check import Checker
        from flowforge.quality.evaluate import TestResult
        from flowforge.quality.results import record_results
        from flowforge.storage.delta import row_count

        self._require("editor")  # results are recorded
        start = time.perf_counter()
        targets = self.tested(workflow)
        if select:
            unknown = sorted(set(select) - {t.table for t in targets})
            if unknown:
                known = ", ".join(sorted({t.table for t in targets})) or "none"
                raise ConfigError(f"No tests are declared on {', '.join(unknown)} (tables with tests: {known}).",
                                  hint="Name a table with 'tests:' in the workflow file.")
            targets = [t for t in targets if t.table in set(select)]
        results: list[TestResult] = []
        for target in targets:
            began = time.perf_counter()
            table = self.ctx.store.open(target.layer, target.table)
            if table is None:
                found = [TestResult(target.table, t.title(), t.test, t.column_names(), t.severity, "skip",
                                    message="the table is not built yet; run the workflow first")
                         for t in target.tests]
            else:
                previous = None
                if table.version() > 0 and any(getattr(t, "max_change_pct", None) is not None for t in target.tests):
                    older = self.ctx.store.open_version(table, table.version() - 1)
                    previous = row_count(older) if older is not None else None
                with Checker(self.ctx.store, target.layer, target.table) as checker:
                    found = checker.committed(target.tests, table, previous)
                record_results(self.ctx.metadata, found, layer=target.layer, run_id=None, origin="test",
                               workflow=target.workflow, job=target.job)
            results += found
            if on_table is not None:
                on_table(target, found, time.perf_counter() - began)
        return TestReport(tuple(results), time.perf_counter() - start)

    # -- results -------------------------------------------------------------------------------
    def run_results(self, run_id: int) -> RunQuality:
        from flowforge.metadata.quality import QualityStore

        self._require("viewer")
        if self.ctx.metadata.get_run(run_id) is None:
            raise NotFoundError(f"Run {run_id} does not exist.", hint="List runs with 'flowforge runs'.")
        qs = QualityStore(self.ctx.metadata)
        return RunQuality(run_id, tuple(qs.for_run(run_id)), tuple(qs.accounting_for_run(run_id)))

    def history(self, table: str, limit: int = 200) -> list[CheckRecord]:
        """The table's test results, newest first (runs and ``flowforge test``)."""
        from flowforge.metadata.quality import QualityStore

        self._require("viewer")
        return QualityStore(self.ctx.metadata).history(table, limit)

    def accounting(self, table: str, limit: int = 100) -> list[AccountingRecord]:
        from flowforge.metadata.quality import QualityStore

        self._require("viewer")
        return QualityStore(self.ctx.metadata).accounting_for_table(table, limit)

    def assertions_facets(self, run_id: int) -> dict[str, dict[str, Any]]:
        """OpenLineage ``dataQualityAssertions`` facets of a run's tests, by table name."""
        from flowforge.quality.results import assertions_facets

        self._require("viewer")
        return assertions_facets(self.ctx.metadata, run_id)

    def status_at(self, table: str, version: int) -> str:
        """The data-quality status of ``table`` at Delta ``version`` ("passed", "warned: ...", ...)."""
        from flowforge.quality.results import status_at

        self._require("viewer")
        return status_at(self.ctx.metadata, table, version)

    # -- quarantine ----------------------------------------------------------------------------
    def quarantines(self) -> list[QuarantineSummary]:
        from flowforge.quality.quarantine import summaries

        self._require("viewer")
        return summaries(self.ctx.store)

    def quarantine(self, table: str) -> QuarantineSummary:
        from flowforge.quality.quarantine import summary

        self._require("viewer")
        return summary(self.ctx.store, table)

    def quarantine_rows(self, table: str, *, limit: int = 50, status: str = "pending",
                        test: str | None = None) -> list[dict[str, Any]]:
        from flowforge.quality.quarantine import rows

        self._require("viewer")
        if status not in ("pending", "all"):
            raise ConfigError(f"Unknown quarantine status '{status}'.", hint="Use 'pending' or 'all'.")
        return rows(self.ctx.store, table, limit=limit, status=status, test=test)

    def replay(self, table: str) -> ReplayReport:
        """Re-check the table's pending quarantined rows with its current tests; merge those that pass."""
        from flowforge.quality.replay import replay

        self._require("editor")
        table = table.removesuffix("__quarantine")
        targets = [t for t in self.tested() if t.table == table]
        if not targets:
            raise NotFoundError(f"No workflow of this project declares tests on '{table}', so there is nothing to "
                                f"re-check its quarantined rows against.",
                                hint="Replay runs the tests declared next to the table in its workflow file.")
        report = replay(self.ctx.store, targets[0])
        self.ctx.metadata.audit(self.ctx.actor, "quarantine.replay", "table", table,
                                after={"replayed": report.replayed, "superseded": report.superseded,
                                       "still_failing": report.still_failing, "recovered": report.recovered,
                                       "version": report.version})
        return report

    # -- dbt --------------------------------------------------------------------------------------
    def import_dbt(self, source: Path | str, *, workflow: str | None = None,
                   tables: dict[str, str] | None = None) -> DbtImport:
        """Translate a dbt schema.yml (a ``Path`` to read, or the file's text as ``str``); with
        ``workflow``, write the tests next to its tables."""
        from flowforge.quality.dbt import read_schema, write_into

        self._require("editor" if workflow is not None else "viewer")
        imported = read_schema(source, tables or {})
        if workflow is not None:
            imported = write_into(self.ctx, imported, workflow)
        return imported

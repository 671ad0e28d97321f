"""The one call a layer makes per table: run its tests around the table's Delta commit.

``commit_checked`` evaluates the tests on the batch, stops the job on a ``fail`` (nothing is
committed), removes ``drop`` rows, commits ``quarantine`` rows to ``<table>__quarantine``,
then commits the rest through the layer's own ``write`` with the batch's accounting in the
same commit (rows in = committed + dropped + quarantined). A table without tests costs nothing:
``write`` is called with the data as it came.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import CheckFailed
from flowforge.quality import quarantine
from flowforge.quality.check import Checker
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.layers.base import JobContext
    from flowforge.quality.base import TestSpec
    from flowforge.quality.evaluate import TestResult
    from flowforge.storage import CommitResult

ACCOUNTING = "quality"  # the commit-metadata key (flowforge.quality) of a checked batch


@dataclass(frozen=True)
class Accounting:
    """Where the rows of one checked batch went; ``rows_in == committed + dropped + quarantined``."""

    table: str
    layer: str
    batch_id: str
    rows_in: int
    committed: int
    dropped: int
    quarantined: int
    version: int | None = None  # the data table's version that holds the batch
    quarantine_version: int | None = None


def commit_checked(ctx: JobContext, tests: Sequence[TestSpec], *, layer: str, table: str,
                   data: pa.Table | pa.RecordBatchReader, progress: dict[str, Any],
                   write: Callable[[Any, dict[str, Any]], CommitResult], mode: str = "append",
                   keys: Sequence[str] = ()) -> CommitResult:
    """Check ``data`` with ``tests``, then ``write(rows, progress)`` exactly once (or raise CheckFailed).

    ``mode`` (append | merge | overwrite) and ``keys`` say how the commit changes the table, so
    uniqueness and table tests see the table as the commit will leave it.
    """
    if not tests:
        return write(data, progress)
    import pyarrow as pa

    batch = data if isinstance(data, pa.Table) else data.read_all()  # tests need the whole batch
    existing = ctx.store.open(layer, table)
    with Checker(ctx.store, layer, table) as checker:
        verdict = checker.batch(tests, batch, mode=mode, keys=keys, existing=existing)
    _report(ctx, layer, table, verdict.results)
    if verdict.stops:
        raise stopped(layer, table, verdict.stops, batch.num_rows)
    fault_point("quality.checked")
    parent = existing.version() if existing is not None else -1
    q_version = None
    if verdict.quarantine is not None:
        q_version = quarantine.write(ctx.store, layer, table, verdict.quarantine, parent_version=parent,
                                     run_id=ctx.run_id, batch_id=ctx.batch_id)
    fault_point("quality.quarantined")
    acct = Accounting(table, layer, ctx.batch_id, verdict.rows_in, verdict.data.num_rows, verdict.dropped,
                      verdict.quarantined, quarantine_version=q_version)
    meta = {k: v for k, v in asdict(acct).items() if k not in ("table", "layer", "version")}
    try:
        commit = write(verdict.data, {**progress, ACCOUNTING: {**meta, "run_id": ctx.run_id}})
    except BaseException:
        if q_version is not None:
            # best effort: if this fails too, the retry's quarantine commit replaces these rows anyway
            with contextlib.suppress(Exception):
                quarantine.forget(ctx.store, layer, table, ctx.batch_id)
        raise
    fault_point("quality.committed")
    acct = Accounting(**{**asdict(acct), "version": commit.version})
    ctx.mirror.table_accounted(job=ctx.job.name, accounting=acct)
    ctx.accounting.append(acct)
    if acct.dropped or acct.quarantined:
        ctx.note(f"{table}: {acct.rows_in:,} rows checked: {acct.committed:,} committed, {acct.dropped:,} dropped, "
                 f"{acct.quarantined:,} quarantined" + (f" (to {quarantine.quarantine_name(table)} version "
                                                         f"{q_version})" if q_version is not None else ""))
    return commit


def check_changes(ctx: JobContext, tests: Sequence[TestSpec], *, table: str, source: pa.Table,
                  keys: Sequence[str], history: bool) -> None:
    """Check the rows a CDC apply is about to write (upserts and new versions, not deletes or
    closing rows); a ``fail`` stops it before its commit. Change tables take warn and fail only."""
    if not tests:
        return
    import pyarrow.compute as pc

    rows = source
    for flag in ("__del", "__close", "__marker"):
        if flag in rows.column_names:
            rows = rows.filter(pc.invert(pc.fill_null(rows.column(flag), False)))
    rows = rows.drop_columns([c for c in rows.column_names if c.startswith("__")])
    existing = ctx.store.open("silver", table)
    with Checker(ctx.store, "silver", table) as checker:
        verdict = checker.batch(tests, rows, mode="append" if history else "merge", keys=keys, existing=existing)
    _report(ctx, "silver", table, verdict.results)
    if verdict.stops:
        raise stopped("silver", table, verdict.stops, rows.num_rows)


def stopped(layer: str, table: str, stops: list[TestResult], rows: int) -> CheckFailed:
    first = stops[0]
    others = f" and {len(stops) - 1} more test(s)" if len(stops) > 1 else ""
    if first.status == "error":
        what = f"test {first.test} could not run: {first.message}"
        hint = "Fix the test in the workflow file ('flowforge test' runs tests without writing)."
    else:
        what = f"test {first.test} failed: {first.message}"
        sample = f" First failing row: {first.sample[0]}." if first.sample else ""
        hint = (f"Fix the data or the rule, or give the test a severity of warn, drop or quarantine.{sample}")
    return CheckFailed(f"{layer.capitalize()} table {table}: {what}{others}; nothing of these {rows:,} row(s) "
                       f"was committed.", hint=hint)


def _report(ctx: JobContext, layer: str, table: str, results: list[TestResult]) -> None:
    ctx.mirror.tests_checked(job=ctx.job.name, table=table, layer=layer, results=results)
    ctx.results.extend(results)
    for r in results:
        if r.status != "pass":
            ctx.note(f"{table}: test {r.test}: {r.status.upper()} ({r.message})")

"""One evaluation of a table's tests: over a batch about to be committed, or over a committed table.

A batch is checked as the table will be after its commit: row tests see the new rows (and,
for uniqueness, the rows that stay: all of them for an append, those with other keys for a
merge, none for a rebuild); failing rows of ``drop`` and ``quarantine`` tests are taken out;
then table tests see the table as the commit will leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sql import quote
from flowforge.quality.base import ROW_SEVERITIES, RowTest, TableTest, TestSpec
from flowforge.quality.evaluate import (
    RowOutcome,
    TestResult,
    json_rows,
    row_pass,
    row_result,
    sample_by_query,
    table_test,
)
from flowforge.quality.scope import DATA, KEPT, ROW, TABLE, Scope

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.storage import LakehouseStore

EXISTING = "__ff_existing"
COMMITTED = "__ff_committed"
FAILED_TESTS = "_quarantine_failed_tests"


@dataclass
class Verdict:
    """What the tests decided about one batch."""

    results: list[TestResult]
    data: pa.Table  # the rows to commit
    quarantine: pa.Table | None  # the rows to quarantine, with the names of the tests they failed
    rows_in: int
    dropped: int = 0
    quarantined: int = 0
    stops: list[TestResult] = field(default_factory=list)  # 'fail' and 'error' results: nothing is committed


def with_positions(data: pa.Table) -> pa.Table:
    """``data`` with ``__ff_row`` = 0, 1, 2... chunked like its other columns (no copy of the data)."""
    import numpy as np
    import pyarrow as pa

    # numpy's buffer, not pyarrow.compute with a Python scalar nor pa.array(ndarray): both ask
    # pandas first (importing it costs 0.4 s per run); pyarrow imports numpy anyway.
    n = data.num_rows
    positions = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int64))])
    if data.num_columns and data.column(0).num_chunks > 1:
        chunks, at = [], 0
        for chunk in data.column(0).chunks:
            chunks.append(positions.slice(at, len(chunk)))
            at += len(chunk)
        return data.append_column(ROW, pa.chunked_array(chunks, pa.int64()))
    return data.append_column(ROW, positions)


class Checker:
    """Evaluates tests for one table in a DuckDB engine of its own (close it, or use ``with``)."""

    def __init__(self, store: LakehouseStore, layer: str, table: str) -> None:
        self.store = store
        self.layer = layer
        self.table = table
        self.label = f"{layer} table {table}"
        self.engine = DuckDBEngine()
        self._others = _Others(self.engine, store, table)

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    # -- a batch before its commit -------------------------------------------------------------
    def batch(self, tests: Sequence[TestSpec], data: pa.Table, *, mode: str, keys: Sequence[str] = (),
              existing: DeltaTable | None = None) -> Verdict:
        import pyarrow.compute as pc

        table = with_positions(data)
        self.engine.register_arrow(DATA, table)
        rows = [t for t in tests if isinstance(t, RowTest)]
        tables = [t for t in tests if isinstance(t, TableTest)]
        previous = existing
        if mode == "overwrite" or not any(t.table_scope for t in tests):
            existing = None
        kept_cols = self._existing(self.engine, existing, mode, keys) if existing is not None else None
        types = self._types(self.engine, DATA)
        scope = self._scope(self.engine, self._others, types, kept_cols)
        self._others.prepare(rows)  # every table registered before the first query (the engine seals then)
        removing = {i for i, t in enumerate(rows) if t.severity in ROW_SEVERITIES}
        outcomes = row_pass(scope, rows, batch=table)
        samples = _samples(table, [o.first for o in outcomes])
        results = [row_result(scope, o, sample) for o, sample in zip(outcomes, samples, strict=True)]

        drop_ids: list[pa.Array] = []
        quarantine_ids: list[pa.Array] = []
        for i, (o, r) in enumerate(zip(outcomes, results, strict=True)):
            if i in removing and r.status == "warn" and o.all_ids is not None:
                (drop_ids if o.test.severity == "drop" else quarantine_ids).append(o.all_ids)
        position = table.column(ROW)
        in_q = _member(position, quarantine_ids)
        in_d = _member(position, drop_ids)
        verdict = Verdict(results, data, None, data.num_rows)
        if in_q is not None or in_d is not None:
            removed = in_q if in_d is None else (in_d if in_q is None else pc.or_(in_q, in_d))
            verdict.data = table.filter(pc.invert(removed)).drop_columns([ROW])
            if in_q is not None:
                verdict.quarantine = self._quarantine_rows(table.filter(in_q), outcomes, removing)
                verdict.quarantined = verdict.quarantine.num_rows
            verdict.dropped = data.num_rows - verdict.data.num_rows - verdict.quarantined
        if tables:
            results += self._table_tests(tables, verdict.data, types, previous, mode, keys)
        verdict.stops = [r for r in results if r.status in ("fail", "error")]
        return verdict

    def _quarantine_rows(self, rows: pa.Table, outcomes: list[Any], removing: set[int]) -> pa.Table:
        """The quarantined rows with the names of the drop/quarantine tests each one failed."""
        import pyarrow as pa
        import pyarrow.compute as pc

        position = rows.column(ROW)
        flags = [(outcomes[i].test.title(), pc.is_in(position, value_set=outcomes[i].all_ids).to_pylist())
                 for i in sorted(removing) if outcomes[i].all_ids is not None]
        names = [[title for title, hit in flags if hit[n]] for n in range(rows.num_rows)]
        return rows.drop_columns([ROW]).append_column(FAILED_TESTS, pa.array(names, pa.list_(pa.string())))

    def _table_tests(self, tests: list[TableTest], committed: pa.Table, types: dict[str, str],
                     existing: DeltaTable | None, mode: str, keys: Sequence[str]) -> list[TestResult]:
        """Table tests see the table as the commit will leave it, in an engine of their own (the row
        tests' engine is sealed once it has run)."""
        from flowforge.storage.delta import row_count

        engine = DuckDBEngine()
        try:
            others = _Others(engine, self.store, self.table)
            engine.register_arrow(COMMITTED, committed)
            kept = existing if mode != "overwrite" else None
            if kept is not None:
                engine.register_delta(EXISTING, kept)
            self._table_view(engine, kept, mode, keys)
            others.prepare(tests)
            scope = self._scope(engine, others, types, None)
            scope.previous_rows = row_count(existing) if existing is not None else None
            return [table_test(scope, t) for t in tests]
        finally:
            engine.close()

    def row_outcomes(self, tests: Sequence[RowTest], data: pa.Table) -> list[RowOutcome]:
        """Row tests over ``data`` alone, with every failing row's position (conformance, samples)."""
        table = with_positions(data)
        self.engine.register_arrow(DATA, table)
        scope = self._scope(self.engine, self._others, self._types(self.engine, DATA), None)
        self._others.prepare(tests)
        return row_pass(scope, list(tests), batch=table)

    # -- a committed table (``flowforge test``) --------------------------------------------------
    def committed(self, tests: Sequence[TestSpec], dt: DeltaTable, previous_rows: int | None) -> list[TestResult]:
        self.engine.register_delta(DATA, dt)
        self.engine.rows(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS SELECT * FROM {DATA}")
        scope = self._scope(self.engine, self._others, self._types(self.engine, DATA), None)
        scope.previous_rows = previous_rows
        self._others.prepare(tests)
        rows = [t for t in tests if isinstance(t, RowTest)]
        results = []
        for o in row_pass(scope, rows):
            sample = sample_by_query(scope, o.test) if o.error is None and o.failing else []
            results.append(row_result(scope, o, sample))
        results += [table_test(scope, t) for t in tests if isinstance(t, TableTest)]
        return results

    # -- plumbing --------------------------------------------------------------------------------
    def _scope(self, engine: DuckDBEngine, others: _Others, types: dict[str, str],
               kept_cols: list[str] | None) -> Scope:
        return Scope(engine, table_name=self.table, types=types, kept_columns=kept_cols,
                     lakehouse=others.view, label=self.label)

    @staticmethod
    def _types(engine: DuckDBEngine, view: str) -> dict[str, str]:
        return {r[0]: str(r[1]) for r in engine.rows(f"DESCRIBE {quote(view)}") if r[0] != ROW}

    def _existing(self, engine: DuckDBEngine, existing: DeltaTable, mode: str, keys: Sequence[str]) -> list[str]:
        """Register the committed table and the view of its rows that stay after the commit."""
        engine.register_delta(EXISTING, existing)
        cols = list(self._types(engine, EXISTING))
        where = ""
        if mode == "merge" and keys:
            same = " AND ".join(f"r.{quote(k)} = e.{quote(k)}" for k in keys)
            where = f" WHERE NOT EXISTS (SELECT 1 FROM {DATA} r WHERE {same})"
        engine.rows(f"CREATE OR REPLACE TEMP VIEW {KEPT} AS SELECT * FROM {EXISTING} e{where}")
        return cols

    @staticmethod
    def _table_view(engine: DuckDBEngine, existing: DeltaTable | None, mode: str, keys: Sequence[str]) -> None:
        """The table as the commit will leave it: the rows that stay plus the committed rows."""
        if existing is None:
            body = f"SELECT * FROM {COMMITTED}"
        else:
            where = ""
            if mode == "merge" and keys:
                same = " AND ".join(f"c.{quote(k)} = e.{quote(k)}" for k in keys)
                where = f" WHERE NOT EXISTS (SELECT 1 FROM {COMMITTED} c WHERE {same})"
            body = f"SELECT * FROM {EXISTING} e{where} UNION ALL BY NAME SELECT * FROM {COMMITTED}"
        engine.rows(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS {body}")


class _Others:
    """The other lakehouse tables tests read (relationships, reconcile), as views of one engine.

    ``prepare`` registers them all before the engine's first query: the engine seals itself then,
    and a table that is missing becomes the error of the test that names it, not of the others.
    """

    def __init__(self, engine: DuckDBEngine, store: LakehouseStore, table: str) -> None:
        self.engine = engine
        self.store = store
        self.table = table
        self._views: dict[str, str] = {}
        self._missing: dict[str, str] = {}

    def prepare(self, tests: Sequence[TestSpec]) -> None:
        for name in dict.fromkeys(n for t in tests for n in t.references()):
            try:
                self.view(name)
            except ValueError as exc:
                self._missing[name] = str(exc)

    def view(self, name: str) -> str:
        if name in self._missing:
            raise ValueError(self._missing[name])
        if name not in self._views:
            found = self.store.find(name)
            if found is None:
                known = ", ".join(t for _, t in self.store.tables() if not t.endswith("__quarantine")) or "none"
                raise ValueError(f"table '{name}' is not in the lakehouse (tables: {known}); if this workflow "
                                 f"builds it, build it first: list it before {self.table} in the job, or make "
                                 f"this job depend on the one that writes it (depends_on)")
            view = f"__ff_t{len(self._views)}"
            self.engine.register_delta(view, found[1])
            self._views[name] = view
        return self._views[name]


def _member(position: Any, id_lists: list[Any]) -> Any:
    """A boolean mask of the rows whose position is in any of ``id_lists`` (None when there are none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not id_lists:
        return None
    ids = pa.concat_arrays([a.cast(pa.int64()) for a in id_lists])
    return pc.is_in(position, value_set=ids)


def _samples(table: pa.Table, firsts: list[list[int]]) -> list[list[dict[str, Any]]]:
    """Each test's sample rows, all fetched together by slicing the batches that hold them
    (``Table.take`` would first concatenate every chunk of every column)."""
    wanted = sorted({i for first in firsts for i in first})
    if not wanted:
        return [[] for _ in firsts]
    rows = json_rows(rows_at(table, wanted))
    at = {position: n for n, position in enumerate(wanted)}
    return [[rows[at[i]] for i in first] for first in firsts]


def rows_at(table: pa.Table, positions: list[int]) -> pa.Table:
    """The rows at sorted ``positions`` of ``table``, as one-row slices of its batches (no copy of the rest)."""
    import bisect

    import pyarrow as pa

    batches = table.to_batches()
    starts, at = [], 0
    for batch in batches:
        starts.append(at)
        at += batch.num_rows
    picked = []
    for position in positions:
        n = bisect.bisect_right(starts, position) - 1
        picked.append(batches[n].slice(position - starts[n], 1))
    return pa.Table.from_batches(picked, schema=table.schema)

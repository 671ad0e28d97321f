"""A key merge that rewrites only the files that can hold the batch's keys.

Tables merged on a key are kept clustered by it: the first build is written sorted, and every
rewrite writes its rows sorted, so each file covers a narrow key range, recorded as min/max in
its add action. A batch is planned from those statistics: a file whose [min, max] holds none of
the batch's keys cannot hold a matched row and is kept as it is. The others are grouped into runs
of overlapping ranges; each run is read, the batch's keys removed (an anti-join), the batch's
upserts of that key range added, sorted by key and written as new files of about
``FILE_ROWS`` rows. One Delta commit removes the old files and adds the new ones, with the batch's
progress in its metadata: a crash before it leaves only unreferenced files (vacuum removes them).

Recent ids changed (the usual incremental and CDC case) touch the newest file or two; random keys
touch every file, and the merge becomes a streamed rewrite, one run in memory at a time.

It works on local tables and on object stores (``s3://``), where files are read and written
through delta-rs' object store (a pyarrow filesystem over the table's storage options) and the
commit is delta-rs' as everywhere. ``applies`` says no for partitioned tables, deletion vectors or
column mapping, and a first key without usable statistics; ``merge_by_files`` returns None (having
written nothing) on an object store when the batch touches overlapping files that would have to
be sorted by DuckDB (it reads only local files). The caller then merges with delta-rs.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.storage import delta_files
from flowforge.storage.delta_files import Added, FileWriter, stats_type
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties

# a run of touched files up to this many rows is rewritten in memory (Arrow), WORKERS runs at a time
ARROW_RUN_ROWS = 1_572_864  # a file and a half
WORKERS = 2
# DuckDB's memory for sorting one larger run; a run larger than this spills to a temporary folder
SORT_MEMORY = "512MB"
# table features this writer keeps intact (others are left to delta-rs' merge)
_PLAIN_FEATURES = {"timestampNtz"}


@dataclass(frozen=True)
class MergeOutcome:
    version: int
    inserted: int
    updated: int
    deleted: int
    files_removed: int
    files_added: int
    rows_rewritten: int
    bytes_written: int


@dataclass(frozen=True)
class _File:
    path: str
    size: int
    rows: int
    lo: Any
    hi: Any


@dataclass(frozen=True)
class _Place:
    """Where a table's files are: a local folder (``fs`` None) or an object store (``fs`` a pyarrow
    filesystem rooted at the table)."""

    loc: str
    fs: Any

    @staticmethod
    def of(dt: DeltaTable, storage_options: dict[str, str] | None) -> _Place:
        from flowforge.storage.options import is_remote, local_path

        if not is_remote(dt.table_uri):
            return _Place(local_path(dt.table_uri), None)
        import pyarrow.fs as pafs
        from deltalake.fs import DeltaStorageHandler

        return _Place("", pafs.PyFileSystem(DeltaStorageHandler(dt.table_uri, dict(storage_options or {}))))

    def path(self, f: _File) -> str:
        from urllib.parse import unquote

        return os.path.join(self.loc, unquote(f.path)) if self.loc else unquote(f.path)

    def open(self, f: _File) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path(f), filesystem=self.fs) if self.fs is not None \
            else pq.ParquetFile(self.path(f))

    def writer(self, schema: pa.Schema, dictionary: list[str] | None = None) -> FileWriter:
        return FileWriter(self.loc, schema, dictionary, filesystem=self.fs)


def plain_layout(dt: DeltaTable, *, appends: bool = False) -> bool:
    """Whether FlowForge may write ``dt``'s files and commit them itself: unpartitioned, no table
    features beyond plain ones (deletion vectors, column mapping, generated columns...), no
    constraints; for rewrites (not ``appends``) also no change data feed and not append-only."""
    if dt.metadata().partition_columns:
        return False
    protocol = dt.protocol()
    if (set(protocol.reader_features or []) | set(protocol.writer_features or [])) - _PLAIN_FEATURES:
        return False
    config = dt.metadata().configuration
    flags = ("delta.columnMapping.mode",) if appends else (
        "delta.enableChangeDataFeed", "delta.appendOnly", "delta.columnMapping.mode")
    return not any(k.startswith("delta.constraints.") for k in config) and all(
        str(config.get(k, "")).lower() in ("", "false", "none") for k in flags)


def applies(dt: DeltaTable, keys: tuple[str, ...]) -> bool:
    if not keys or not plain_layout(dt):
        return False  # delta-rs' merge keeps what FlowForge's own writes would not
    schema = dt.schema().to_arrow()
    import pyarrow as pa

    names = pa.schema(schema).names
    return keys[0] in names and stats_type(pa.schema(schema).field(keys[0]).type)


def _files(dt: DeltaTable, key: str) -> list[_File]:
    import pyarrow as pa

    adds = pa.RecordBatchReader.from_stream(dt.get_add_actions(flatten=True)).read_all()  # (pa.table imports pandas)
    n = adds.num_rows
    lo = adds.column(f"min.{key}").to_pylist() if f"min.{key}" in adds.column_names else [None] * n
    hi = adds.column(f"max.{key}").to_pylist() if f"max.{key}" in adds.column_names else [None] * n
    rows = adds.column("num_records").to_pylist()
    return [_File(p, int(s or 0), int(r or 0), a, b) for p, s, r, a, b in
            zip(adds.column("path").to_pylist(), adds.column("size_bytes").to_pylist(), rows, lo, hi, strict=True)]


def _sorted_keys(column: pa.ChunkedArray) -> np.ndarray:
    import pyarrow.compute as pc

    values = pc.unique(column.drop_null())
    out: np.ndarray = values.take(pc.sort_indices(values)).to_numpy(zero_copy_only=False)
    return out


def plan_runs(files: list[_File], keys_sorted: np.ndarray) -> list[list[_File]]:
    """The touched files (those whose key range holds a batch key), grouped into runs whose key
    ranges overlap, in key order. A file without statistics may hold any key: it joins one run
    with every other touched file."""
    import numpy as np

    if len(keys_sorted) == 0:
        return []
    unknown = [f for f in files if f.lo is None or f.hi is None]
    known = [f for f in files if f.lo is not None and f.hi is not None]
    touched: list[_File] = []
    for f in known:
        first = int(np.searchsorted(keys_sorted, f.lo, side="left"))
        last = int(np.searchsorted(keys_sorted, f.hi, side="right"))
        if last > first:
            touched.append(f)
    if unknown:
        return [touched + unknown]
    touched.sort(key=lambda f: f.lo)
    runs: list[list[_File]] = []
    hi: Any = None
    for f in touched:
        if runs and f.lo <= hi:
            runs[-1].append(f)
            hi = max(hi, f.hi)
        else:
            runs.append([f])
            hi = f.hi
    return runs


def target_schema(table_schema: pa.Schema, source: pa.Schema, skip: set[str]) -> pa.Schema:
    """The table's columns (their types kept), then the source's new columns."""
    import pyarrow as pa

    fields = list(table_schema)
    have = set(table_schema.names)
    fields += [f for f in source if f.name not in have and f.name not in skip]
    return pa.schema(fields)


def merge_by_files(dt: DeltaTable, source: pa.Table, keys: tuple[str, ...], *,
                   commit_properties: CommitProperties, hooks: PostCommitHookProperties,
                   delete_flag: str | None = None,
                   storage_options: dict[str, str] | None = None) -> MergeOutcome | None:
    """Upsert ``source`` into ``dt`` on ``keys`` (call ``applies`` first), in one commit; None (nothing
    written) where an object-store table would need a DuckDB sort (see the module's docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake.transaction import AddAction, RemoveAction

    from flowforge.storage.delta import delta_compatible

    source = _last_per_key(source, keys)
    table_schema = pa.schema(dt.schema().to_arrow())
    schema = delta_compatible(target_schema(table_schema, source.schema, {delete_flag} if delete_flag else set()))
    if delete_flag is not None:
        flags = pc.fill_null(source.column(delete_flag), False)
        upserts = source.filter(pc.invert(flags)).drop_columns([delete_flag])
        n_deletes = source.num_rows - upserts.num_rows
    else:
        upserts, n_deletes = source, 0
    upserts = _conform(upserts, schema)
    upserts = upserts.take(pc.sort_indices(upserts, sort_keys=[(k, "ascending") for k in keys]))  # runs merge in order
    all_files = _files(dt, keys[0])
    runs = plan_runs(all_files, _sorted_keys(source.column(keys[0])))
    place = _Place.of(dt, storage_options)
    if place.fs is not None and any(sum(f.rows for f in run) > ARROW_RUN_ROWS for run in runs):
        return None
    _add_columns(dt, table_schema, schema)
    slots, extra = assign(all_files, runs, upserts.column(keys[0]))
    work = [(run, upserts.filter(pc.equal(slots, i))) for i, run in enumerate([*runs, *([[]] * extra)])]
    work = [(run, mine) for run, mine in work if run or mine.num_rows]
    found = _KeySet(source, keys, delete_flag, schema)
    dictionary = _dictionary(place, runs, upserts, schema)
    small = [w for w in work if sum(f.rows for f in w[0]) <= ARROW_RUN_ROWS]
    large = [w for w in work if sum(f.rows for f in w[0]) > ARROW_RUN_ROWS]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="flowforge-merge") as pool:
        done = list(pool.map(lambda w: _rewrite_in_memory(place, schema, keys, found, dictionary, *w), small))
    if large:
        # runs of overlapping files (a table written before FlowForge clustered it): sorted by DuckDB
        # within SORT_MEMORY, spilling the rest
        done += _rewrite_sorted(place.loc, schema, keys, source, upserts.schema, delete_flag, large)
    adds = [a for d in done for a in d.added]
    touched_rows = sum(d.rows_in for d in done)
    removed = touched_rows - sum(d.kept for d in done)
    matched_deletes = sum(d.deleted for d in done)
    fault_point("storage.merge_written")  # the new files are written, the commit not yet
    now = int(time.time() * 1000)
    actions: list[Any] = [AddAction(a.path, a.size, {}, now, True, a.stats) for a in adds]
    actions += [RemoveAction(f.path, True, now, f.size, {}) for run in runs for f in run]
    if actions:
        from flowforge.storage.delta_files import with_rows_added

        inserted = upserts.num_rows - (removed - matched_deletes)  # removed rows are the updated and deleted keys
        dt.create_write_transaction(actions, "append", schema,
                                    commit_properties=with_rows_added(commit_properties, inserted),
                                    post_commithook_properties=hooks)
    else:
        from deltalake import write_deltalake

        # nothing to change: still commit, so the batch's progress is recorded
        write_deltalake(dt, schema.empty_table(), mode="append", schema_mode="merge",
                        commit_properties=commit_properties, post_commithook_properties=hooks)
    dt.update_incremental()
    updated = removed - matched_deletes
    return MergeOutcome(version=dt.version(), inserted=upserts.num_rows - updated, updated=updated,
                        deleted=matched_deletes if n_deletes else 0,
                        files_removed=sum(len(r) for r in runs), files_added=len(adds),
                        rows_rewritten=touched_rows, bytes_written=sum(a.size for a in adds))


def _add_columns(dt: DeltaTable, table_schema: pa.Schema, schema: pa.Schema) -> None:
    """New source columns join the table first (nullable, in a commit of their own): a crash before
    the data commit leaves the columns, empty, and the rerun merges the batch again."""
    import pyarrow as pa
    from deltalake import Schema as DeltaSchema

    new = [f.with_nullable(True) for f in schema if f.name not in table_schema.names]
    if new:
        dt.alter.add_columns(list(DeltaSchema.from_arrow(pa.schema(new)).fields))
        dt.update_incremental()


def _last_per_key(source: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """The last row of each key, in source order (a batch may repeat a key)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(keys) == 1:
        distinct = pc.count_distinct(source.column(keys[0]), mode="all").as_py()
        if distinct == source.num_rows:
            return source
    idx = pa.array(range(source.num_rows), pa.int64())
    grouped = source.select(list(keys)).append_column("__i", idx).group_by(list(keys), use_threads=False)
    last = grouped.aggregate([("__i", "max")]).column("__i_max")
    if len(last) == source.num_rows:
        return source
    return source.take(last.take(pc.sort_indices(last)))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    from flowforge.storage.delta import cast_batch

    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    t = pa.Table.from_arrays(cols, names=schema.names)
    batches = [cast_batch(b, schema) for b in t.to_batches()]
    return pa.Table.from_batches(batches, schema=schema)


def assign(files: list[_File], runs: list[list[_File]], keys: pa.ChunkedArray) -> tuple[pa.Array, int]:
    """For each upsert, the run whose output it joins, and how many file-less runs are added.

    A key inside a run's range joins that run. A key between files joins the run of the file just
    before it, else of the file just after it; keys whose neighbours are both kept as they are
    become a new run of their own per gap (so no rewritten file spans a kept one), as do null keys.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(keys)
    if any(f.lo is None or f.hi is None for run in runs for f in run):
        return pa.array(np.zeros(n, dtype=np.int64)), 0  # one run holds every file without statistics
    slots = np.full(n, -1, dtype=np.int64)
    valid = np.asarray(pc.is_valid(keys).to_numpy(zero_copy_only=False), dtype=bool)
    values = keys.drop_null().to_numpy(zero_copy_only=False)
    where = np.nonzero(valid)[0]
    found = np.full(len(values), -1, dtype=np.int64)
    if runs and len(values):
        lo = np.array([min(f.lo for f in run) for run in runs], dtype=values.dtype)
        hi = np.array([max(f.hi for f in run) for run in runs], dtype=values.dtype)
        r = np.searchsorted(lo, values, side="right") - 1
        inside = (r >= 0) & (values <= hi[np.maximum(r, 0)])
        found[inside] = r[inside]
    gaps: dict[tuple[int, int], int] = {}
    missing = np.nonzero(found < 0)[0]
    if len(missing):
        known = [f for f in files if f.lo is not None and f.hi is not None]
        run_of = {f.path: i for i, run in enumerate(runs) for f in run}
        by_hi = sorted(known, key=lambda f: f.hi)
        by_lo = sorted(known, key=lambda f: f.lo)
        his = np.array([f.hi for f in by_hi], dtype=values.dtype)
        los = np.array([f.lo for f in by_lo], dtype=values.dtype)
        before = np.searchsorted(his, values[missing], side="left") - 1
        after = np.searchsorted(los, values[missing], side="right")
        for j, b, a in zip(missing.tolist(), before.tolist(), after.tolist(), strict=True):
            prev = run_of.get(by_hi[b].path, -1) if b >= 0 else -1
            nxt = run_of.get(by_lo[a].path, -1) if a < len(by_lo) else -1
            if prev >= 0 or nxt >= 0:
                found[j] = prev if prev >= 0 else nxt
            else:
                found[j] = len(runs) + gaps.setdefault((b, a), len(gaps))
    slots[where] = found
    if not valid.all():
        slots[~valid] = len(runs) + len(gaps)
        return pa.array(slots), len(gaps) + 1
    return pa.array(slots), len(gaps)


@dataclass(frozen=True)
class _Rewritten:
    added: list[Added]
    rows_in: int
    kept: int
    deleted: int


class _KeySet:
    """The batch's keys (and the deleted ones among them), to find matched rows in a file."""

    def __init__(self, source: pa.Table, keys: tuple[str, ...], flag: str | None, schema: pa.Schema) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.keys = list(keys)
        key_schema = pa.schema([schema.field(k) for k in keys])
        self.all = _conform(source.select(self.keys), key_schema)
        self.deletes = None
        if flag is not None:
            self.deletes = self.all.filter(pc.fill_null(source.column(flag), False))
        # the single integer or date key's values, sorted, for lookups by bisection (None: other keys)
        self.sorted_all = self._sorted(self.all)
        self.sorted_deletes = self._sorted(self.deletes) if self.deletes is not None else None

    def _sorted(self, keys: pa.Table) -> np.ndarray | None:
        col = keys.column(self.keys[0])
        return _sorted_keys(col) if len(self.keys) == 1 and _plain(col.drop_null()) else None

    def hits(self, table: pa.Table, among: pa.Table | None = None) -> pa.Array:
        """A mask of the rows of ``table`` whose key is in the batch (or in ``among``)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        keys = self.all if among is None else among
        if len(self.keys) == 1 and _plain(table.column(self.keys[0])):
            sorted_hits = _sorted_hits(table.column(self.keys[0]),
                                       self.sorted_all if among is None else self.sorted_deletes)
            if sorted_hits is not None:
                return sorted_hits
        if len(self.keys) == 1:
            k = self.keys[0]
            # a null key matches nothing (as in SQL and delta-rs' merge)
            return pc.fill_null(pc.is_in(table.column(k), value_set=keys.column(k).combine_chunks(),
                                         skip_nulls=True), False)
        rows = table.select(self.keys).append_column("__row", pa.array(np.arange(table.num_rows)))
        found = rows.join(keys, keys=self.keys, join_type="left semi").column("__row").to_numpy()
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[found] = True
        return pa.array(mask)


def _rewrite_in_memory(place: _Place, schema: pa.Schema, keys: tuple[str, ...], found: _KeySet,
                       dictionary: list[str], run: list[_File], mine: pa.Table) -> _Rewritten:
    """A run of at most ARROW_RUN_ROWS rows: read, matched rows dropped, upserts added, in key order,
    written. The run's rows and its upserts are put in order by one ``take`` of every column; the
    order comes from the key columns alone (a merge of the two sorted runs where the files are
    sorted, as FlowForge writes them; a sort of the keys otherwise)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    old = pa.concat_tables([_conform(place.open(f).read(), schema) for f in run]) if run \
        else schema.empty_table()
    rows_in = old.num_rows
    hit = np.asarray(found.hits(old), dtype=bool)
    deleted = 0
    if found.deletes is not None and hit.any():
        matched = old.select(list(keys)).filter(pa.array(hit))
        deleted = int(pc.sum(found.hits(matched, found.deletes)).as_py() or 0)
    keep = np.flatnonzero(~hit)
    order = _merged_order(old.select(list(keys)), keep, mine.select(list(keys)), keys)
    table = pa.concat_tables([old, mine]) if mine.num_rows else old
    del old
    out = table.take(pa.array(order))
    del table
    writer = place.writer(schema, dictionary)
    writer.write_run(out.to_batches(delta_files.ROW_GROUP), out.num_rows)
    return _Rewritten(writer.added, rows_in, len(keep), deleted)


def _dictionary(place: _Place, runs: list[list[_File]], upserts: pa.Table, schema: pa.Schema) -> list[str]:
    """The columns to dictionary-encode, decided once for the merge on one row group of the first
    touched file (or the upserts): counting distinct values of every column of every batch cost more
    than the encoding."""

    if runs:
        with place.open(runs[0][0]) as f:
            if f.metadata.num_row_groups:
                sample = _conform(f.read_row_group(0), schema)
                return delta_files.dictionary_columns(sample.combine_chunks().to_batches()[0]) \
                    if sample.num_rows else []
    head = upserts.slice(0, delta_files.ROW_GROUP).combine_chunks()
    return delta_files.dictionary_columns(head.to_batches()[0]) if head.num_rows else []


def _merged_order(old: pa.Table, keep: np.ndarray, mine: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    """Row numbers into ``old`` followed by ``mine`` (``len(old)`` + i): the kept rows of ``old`` and
    all of ``mine``, in key order (ties keep ``old`` first). ``mine`` is sorted by key."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n_old, n_new = old.num_rows, mine.num_rows
    if len(keys) == 1 and _plain(old.column(0)) and _plain(mine.column(0)):
        k = old.column(0).to_numpy()[keep]
        m = mine.column(0).to_numpy()
        if len(k) < 2 or bool(np.all(k[1:] >= k[:-1])):
            # two sorted runs: each upsert goes after the kept rows with a smaller (or equal) key
            at = np.searchsorted(k, m, side="right") + np.arange(n_new)
            out = np.empty(len(k) + n_new, dtype=np.int64)
            taken = np.zeros(len(out), dtype=bool)
            taken[at] = True
            out[at] = n_old + np.arange(n_new)
            out[~taken] = keep
            return out
    rows = np.concatenate([keep, n_old + np.arange(n_new)])
    both = pa.concat_tables([old, mine]).take(pa.array(rows))
    order = pc.sort_indices(both, sort_keys=[(k, "ascending") for k in keys]).to_numpy()
    result: np.ndarray = rows[order]
    return result


def _sorted_hits(column: pa.ChunkedArray, keys: np.ndarray | None) -> pa.Array | None:
    """``hits`` where the file's keys are sorted (as FlowForge writes them): each batch key is looked
    up by bisection (the rows of a repeated key all match); None where the column is not sorted."""
    import numpy as np
    import pyarrow as pa

    if keys is None:
        return None
    values = column.to_numpy()
    if len(values) < 2:
        return pa.array(np.isin(values, keys))
    step_up = values[1:] > values[:-1]
    if bool(np.all(step_up)):  # sorted, each key once
        mine = keys[(keys >= values[0]) & (keys <= values[-1])]
        at = np.searchsorted(values, mine, side="left")
        mask = np.zeros(len(values), dtype=bool)
        mask[at[values[at] == mine]] = True
        return pa.array(mask)
    if not bool(np.all(values[1:] >= values[:-1])):
        return None
    mine = keys[(keys >= values[0]) & (keys <= values[-1])]
    first = np.searchsorted(values, mine, side="left")
    last = np.searchsorted(values, mine, side="right")
    step = np.zeros(len(values) + 1, dtype=np.int64)
    np.add.at(step, first, 1)
    np.add.at(step, last, -1)
    return pa.array(np.cumsum(step[:-1]) > 0)


def _plain(col: pa.ChunkedArray) -> bool:
    """A key column numpy can order as it is: integers or dates, without nulls."""
    import pyarrow as pa

    return bool(col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_date32(col.type)))


def _rewrite_sorted(loc: str, schema: pa.Schema, keys: tuple[str, ...], source: pa.Table,
                    upserts_schema: pa.Schema, flag: str | None,
                    work: list[tuple[list[_File], pa.Table]]) -> list[_Rewritten]:
    from flowforge.engine.duckdb_engine import DuckDBEngine

    out = []
    with tempfile.TemporaryDirectory(prefix="flowforge-merge-") as spill:
        engine = DuckDBEngine(threads=WORKERS)
        try:
            con = engine.con
            con.execute(f"SET memory_limit = '{SORT_MEMORY}'")
            con.execute("SET temp_directory = ?", [spill])
            con.execute("SET preserve_insertion_order = false")
            con.register("__keys", source.select(list(keys) + ([flag] if flag else [])))
            for run, mine in work:
                rows_in = sum(f.rows for f in run)
                writer = FileWriter(loc, schema)
                written = writer.write_run(_run_rows(con, loc, run, mine, keys, schema), rows_in + mine.num_rows)
                deleted = _matched_deletes(con, loc, run, keys, flag) if flag is not None else 0
                out.append(_Rewritten(writer.added, rows_in, written - mine.num_rows, deleted))
        finally:
            engine.close()
    return out


def _path(loc: str, f: _File) -> str:
    from urllib.parse import unquote

    return os.path.join(loc, unquote(f.path))


def _file_list(loc: str, run: list[_File]) -> str:
    return ", ".join("'" + _path(loc, f).replace("'", "''") + "'" for f in run)


def _run_rows(con: Any, loc: str, run: list[_File], mine: pa.Table, keys: tuple[str, ...],
              schema: pa.Schema) -> pa.RecordBatchReader:
    """The run's rows without the batch's keys, with the run's upserts, sorted by key."""
    import pyarrow as pa

    from flowforge.storage.delta import cast_batch

    order = ", ".join(quote(k) for k in keys)
    con.register("__mine", mine)
    if run:
        sql = (f"SELECT * FROM read_parquet([{_file_list(loc, run)}], union_by_name = true) "
               f"ANTI JOIN __keys USING ({order}) UNION ALL BY NAME SELECT * FROM __mine ORDER BY {order}")
    else:
        sql = f"SELECT * FROM __mine ORDER BY {order}"
    rel = con.sql(sql)
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    reader = fetch(delta_files.ROW_GROUP)
    cols = schema.names

    def batches() -> Iterator[pa.RecordBatch]:
        for b in reader:
            arrays = [b.column(c) if c in b.schema.names else pa.nulls(b.num_rows, schema.field(c).type)
                      for c in cols]
            yield cast_batch(pa.RecordBatch.from_arrays(arrays, names=cols), schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _matched_deletes(con: Any, loc: str, run: list[_File], keys: tuple[str, ...], flag: str) -> int:
    cols = ", ".join(quote(k) for k in keys)
    sql = (f"SELECT count(*) FROM (SELECT {cols} FROM read_parquet([{_file_list(loc, run)}], union_by_name = true)) "
           f"JOIN __keys USING ({cols}) WHERE {quote(flag)}")
    return int(con.execute(sql).fetchall()[0][0])


def matched_rows(dt: DeltaTable, batch_keys: pa.Table, keys: tuple[str, ...], columns: list[str],
                 storage_options: dict[str, str] | None = None) -> pa.Table:
    """The table's rows (``columns`` of them, keys first) whose key is among ``batch_keys``, read
    from the files whose key range can hold them, one file at a time (for merges that decide a row
    from the row it replaces). Call ``applies`` first."""
    import pyarrow as pa

    table_schema = pa.schema(dt.schema().to_arrow())
    names = list(keys) + [c for c in columns if c not in keys]
    schema = pa.schema([table_schema.field(c) for c in names])
    runs = plan_runs(_files(dt, keys[0]), _sorted_keys(batch_keys.column(keys[0])))
    found = _KeySet(batch_keys, keys, None, table_schema)
    place = _Place.of(dt, storage_options)
    parts = [schema.empty_table()]
    for f in (f for run in runs for f in run):
        with place.open(f) as pf:
            have = set(pf.schema_arrow.names)
            part = _conform(pf.read(columns=[c for c in names if c in have]), schema)
        parts.append(part.filter(found.hits(part)))
    return pa.concat_tables(parts)

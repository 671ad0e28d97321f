"""The lakehouse: Delta tables under ``<root>/<layer>/<table>``, written with delta-rs.

The root, or any single table, is a local path or an ``s3://bucket/prefix`` on AWS S3 or any
S3-compatible store (MinIO, Ceph), reached with the object_store options in ``storage_options``.

Progress (watermarks, processed bronze versions) travels in the commit's custom metadata
under ``flowforge.*`` keys, so data and progress become visible in one atomic commit.

Two writers never lose a commit: a Delta commit is a create-only PUT of the next log entry,
which S3 stores refuse when the key exists (``If-None-Match: *``). Before the first write to a
bucket the store checks that the bucket really refuses it; where it does not, writing needs
``single_writer=True``, the user's statement that only one process writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import StorageError
from flowforge.storage.objects import Bucket, storage_errors
from flowforge.storage.options import is_remote, split_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable, PostCommitHookProperties

LAYERS = ("bronze", "silver", "gold")
META_PREFIX = "flowforge."
COMMIT_ID = META_PREFIX + "commit_id"
# Tables FlowForge creates take a checkpoint every 10 commits (Delta Lake's usual interval; delta-rs
# defaults to 100): opening a snapshot then reads at most ten JSON log entries, which on an
# object store is the difference between a few requests and a hundred per open.
CHECKPOINT_INTERVAL = 10


class CommitConflict(StorageError):
    """Other writers kept committing first (or changed the same files); nothing was committed and
    the job may simply run again, so the runner retries it."""

    transient = True


@dataclass(frozen=True)
class CommitResult:
    version: int
    rows_written: int
    bytes_written: int
    rows_updated: int = 0
    rows_deleted: int = 0


@contextmanager
def _storage_errors(action: str, location: str, options: Mapping[str, str] | None = None) -> Iterator[None]:
    """delta-rs errors carry a Rust backtrace; keep one line that names the table and the cause."""
    from deltalake.exceptions import CommitFailedError

    with storage_errors(f"{action} Delta table at", location, options):
        try:
            yield
        except CommitFailedError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "commit failed"
            raise CommitConflict(f"Could not {action} Delta table at {location}: concurrent writers committed "
                                 f"first or in conflict on every attempt ({first})",
                                 hint="Nothing of this write was committed; run the job again.") from None


def _interval_struct() -> pa.DataType:
    import pyarrow as pa

    return pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


def delta_compatible(schema: pa.Schema) -> pa.Schema:
    """Arrow types Delta cannot store, mapped to the nearest exact type it can."""
    import pyarrow as pa

    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_time(t):
            t = pa.string()  # Delta has no TIME type; ISO text keeps every digit
        elif pa.types.is_uint64(t):
            t = pa.decimal128(20, 0)
        elif pa.types.is_uint32(t):
            t = pa.int64()
        elif pa.types.is_uint16(t):
            t = pa.int32()
        elif pa.types.is_uint8(t):
            t = pa.int16()
        elif pa.types.is_null(t):
            t = pa.string()
        elif pa.types.is_interval(t):
            t = _interval_struct()  # Delta has no interval type; its three exact parts as a struct
        elif pa.types.is_timestamp(t) and t.tz is None and t.unit != "us":
            t = pa.timestamp("us")  # nanosecond digits: bronze applies the table's sub_microseconds first
        elif pa.types.is_timestamp(t) and t.tz is not None:
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t, f.nullable, f.metadata))
    return pa.schema(fields)


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    import pyarrow as pa

    if array.type == target:  # most columns: the schemas differ in nullability or metadata only
        return array
    if pa.types.is_interval(array.type) and pa.types.is_struct(target):
        # no Arrow kernel turns intervals into structs; intervals are rare, so per value is fine
        return pa.array([None if v is None else {"months": v.months, "days": v.days, "nanoseconds": v.nanoseconds}
                         for v in array.to_pylist()], target)
    return array.cast(target)


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    import pyarrow as pa

    arrays = [_cast(batch.column(i), schema.field(i).type) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# (endpoint, bucket) -> whether the bucket refuses a second create-only PUT; checked once per process
_CONDITIONAL_PUT: dict[tuple[str, str], bool] = {}
_CONDITIONAL_PUT_LOCK = threading.Lock()


class LakehouseStore:
    """Reads and writes the Delta tables of one lakehouse root (a local folder or ``s3://``).

    ``storage_options`` are object_store keys (``aws_endpoint``, ``aws_access_key_id``...);
    credentials left out come from the ``AWS_*`` environment or the standard AWS chain.
    ``locations`` places single tables elsewhere: ``{"bronze": {"bronze_customers": "s3://..."}}``.
    """

    def __init__(self, root: str, storage_options: Mapping[str, str] | None = None, *,
                 single_writer: bool = False, locations: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options: dict[str, str] | None = dict(storage_options) if storage_options else None
        self.single_writer = single_writer
        self.locations = {layer: {t: loc.rstrip("/") for t, loc in tables.items()}
                          for layer, tables in (locations or {}).items()}

    # -- locations ---------------------------------------------------------------
    def location(self, layer: str, table: str) -> str:
        return self.locations.get(layer, {}).get(table) or f"{self.root}/{layer}/{table}"

    def _options(self, location: str) -> dict[str, str] | None:
        return self.storage_options if is_remote(location) else None

    def open(self, layer: str, table: str, version: int | None = None) -> DeltaTable | None:
        """The table's newest snapshot (or ``version``), or None when there is no table there."""
        return self._open_uri(self.location(layer, table), version)

    def _open_uri(self, loc: str, version: int | None = None,
                  options: Mapping[str, str] | None = None) -> DeltaTable | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if not is_remote(loc) and not has_commit(loc):
            return None
        opts = dict(options) if options is not None else self._options(loc)
        with _storage_errors("open", loc, opts):
            try:
                return DeltaTable(loc, version=version, storage_options=opts)
            except TableNotFoundError:
                return None

    def open_version(self, dt: DeltaTable, version: int) -> DeltaTable | None:
        """An older snapshot of ``dt``, or None when its log was cleaned up."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        try:
            return DeltaTable(dt.table_uri, version=version, storage_options=self._options(dt.table_uri))
        except DeltaError:
            return None

    def find(self, table: str) -> tuple[str, DeltaTable] | None:
        """Locate a table by name in any layer (gold SQL refers to tables by name)."""
        for layer in LAYERS:
            dt = self.open(layer, table)
            if dt is not None:
                return layer, dt
        return None

    def tables(self) -> list[tuple[str, str]]:
        """(layer, table) for every table under the root, and every table placed elsewhere that exists."""
        found: list[tuple[str, str]] = []
        for layer in LAYERS:
            base = f"{self.root}/{layer}"
            names = self._remote_tables(base) if is_remote(base) else _local_tables(base)
            found += [(layer, n) for n in names]
        for layer, tables in self.locations.items():
            for name, loc in tables.items():
                if (layer, name) not in found and self._is_table(loc):
                    found.append((layer, name))
        return found

    def _remote_tables(self, base: str) -> list[str]:
        bucket, key = Bucket.for_uri(base, self.storage_options)
        names = bucket.list_dirs(key + "/")
        return [n for n in names if _remote_commit(bucket, f"{key}/{n}")]

    def _is_table(self, loc: str) -> bool:
        if not is_remote(loc):
            return has_commit(loc)
        bucket, key = Bucket.for_uri(loc, self.storage_options)
        return _remote_commit(bucket, key)

    def preview(self, layer: str, table: str, limit: int = 100) -> pa.Table:
        """The first ``limit`` rows of a table, read from wherever it lives."""
        loc = self.location(layer, table)
        dt = self.open(layer, table)
        if dt is None:
            raise StorageError(f"There is no {layer} table '{table}' at {loc}.",
                               hint="List the tables with 'flowforge tables'.")
        with _storage_errors("read", loc, self._options(loc)):
            result: pa.Table = dt.to_pyarrow_dataset().head(limit)
        return result

    # -- writes --------------------------------------------------------------------
    def append(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
               progress: dict[str, Any]) -> CommitResult:
        return self._write(layer, table, data, progress, mode="append")

    def overwrite(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
                  progress: dict[str, Any]) -> CommitResult:
        return self._write(layer, table, data, progress, mode="overwrite")

    def replace(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table, predicate: str,
                progress: dict[str, Any]) -> CommitResult:
        """Replace the rows matching ``predicate`` (delta-rs SQL) with ``data``, in one commit."""
        return self._write(layer, table, data, progress, mode="overwrite", predicate=predicate)

    def _write(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
               progress: dict[str, Any], mode: str, predicate: str | None = None) -> CommitResult:
        from deltalake import CommitProperties, write_deltalake

        loc = self.location(layer, table)
        opts = self.write_options(loc)
        commit_id = uuid.uuid4().hex
        props = CommitProperties(custom_metadata={**_encode(progress), COMMIT_ID: commit_id})
        schema_mode = "merge" if mode == "append" or predicate else "overwrite"
        dt = self._open_uri(loc, options=opts)
        with _storage_errors("write", loc, opts):
            if dt is None:
                if not is_remote(loc):
                    clear_uncommitted(loc)
                data = _first_commit(data)
                write_deltalake(loc, data, mode=mode, schema_mode=schema_mode,  # type: ignore[call-overload]
                                storage_options=opts, commit_properties=props, writer_properties=_writer(),
                                configuration={"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)})
                created = self._open_uri(loc, options=opts)
                assert created is not None
                version = _version_of(created, commit_id)
            else:
                write_deltalake(dt, data, mode=mode, schema_mode=schema_mode,  # type: ignore[call-overload]
                                commit_properties=props, post_commithook_properties=_hooks(dt),
                                writer_properties=_writer(), predicate=predicate)
                version = dt.version()
        return self._commit_result(loc, opts, version)

    def appends_streamed(self, layer: str, table: str, schema: pa.Schema) -> DeltaTable | None:
        """The table's snapshot when ``append_streamed`` can take rows of ``schema`` (a local,
        unpartitioned table that exists already and holds exactly these columns: no schema change to
        commit), else None. Open it before the rows start to arrive: opening a snapshot while a
        reader thread converts batches waits on the interpreter lock for tens of milliseconds."""
        import pyarrow as pa

        loc = self.location(layer, table)
        if is_remote(loc):
            return None
        dt = self._open_uri(loc)
        from flowforge.storage.delta_merge import plain_layout

        if dt is None or not plain_layout(dt, appends=True):
            return None  # column mapping, constraints, generated columns...: delta-rs' writer keeps those
        have = pa.schema(dt.schema().to_arrow())
        fits = have.names == schema.names and all(
            h.type == f.type and (h.nullable or not f.nullable) for h, f in zip(have, schema, strict=True))
        return dt if fits else None

    def append_streamed(self, layer: str, table: str, dt: DeltaTable, data: pa.RecordBatchReader | pa.Table,
                        progress: dict[str, Any], finish: Callable[[], dict[str, Any]]) -> CommitResult:
        """Append ``data`` to the table of snapshot ``dt`` (from ``appends_streamed``) in one commit
        whose progress is completed by ``finish()`` once the last row is written: ``progress``
        updated with what it returns (the watermark of the rows read). ``finish`` may raise
        (``NothingNew``): the files written are removed and nothing is committed.

        delta-rs takes a commit's metadata before it reads the stream, so the files are written here
        (``delta_files``, with the statistics delta-rs would write) and committed as add actions;
        a writer that committed since ``dt`` was opened is resolved by delta-rs' commit, as for any
        append."""
        import time

        import pyarrow as pa
        from deltalake import CommitProperties
        from deltalake.transaction import AddAction

        from flowforge.storage import delta_files

        loc = self.location(layer, table)
        schema = pa.schema(dt.schema().to_arrow())
        batches = data.to_batches(delta_files.ROW_GROUP) if isinstance(data, pa.Table) else data
        # the encodings chosen from the first 8K rows: counting distinct values of a whole batch
        # cost about as much as writing it
        writer = delta_files.FileWriter(loc, schema, dictionary_sample=8192)
        try:
            rows = writer.write_run((cast_batch(b, schema) for b in batches if b.num_rows), None)
            done = {**progress, **finish()}
        except BaseException as exc:
            for added in writer.added:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(loc, added.path))
            if isinstance(exc, OSError):  # the disk, not the source: say which table
                raise StorageError(f"Could not write Delta table at {loc}: {exc}",
                                   hint="Nothing of this write was committed; run the job again.") from exc
            raise
        from flowforge.testing import fault_point

        fault_point("storage.streamed_written")  # the files are written, the commit not yet
        with _storage_errors("write", loc):
            commit_id = uuid.uuid4().hex
            props = CommitProperties(custom_metadata={**_encode(done), COMMIT_ID: commit_id})
            now = int(time.time() * 1000)
            actions: list[Any] = [AddAction(a.path, a.size, {}, now, True, a.stats) for a in writer.added]
            dt.create_write_transaction(actions, "append", dt.schema(),
                                        commit_properties=delta_files.with_rows_added(props, rows),
                                        post_commithook_properties=_hooks(dt))
            dt.update_incremental()
            version = _version_of(dt, commit_id)
        return CommitResult(version=version, rows_written=rows, bytes_written=sum(a.size for a in writer.added))

    def merge(self, layer: str, table: str, source: pa.Table | pa.RecordBatchReader, keys: tuple[str, ...],
              progress: dict[str, Any], delete_flag: str | None = None) -> CommitResult:
        """Upsert ``source`` on ``keys``: matched rows are replaced, new rows inserted. With
        ``delete_flag``, source rows where that boolean column is true delete their key instead
        (the flag itself is not stored), all in one commit.

        A new table is written as it comes (a first silver build streams in sorted by key); an
        existing one is merged by rewriting only the files that can hold the batch's keys
        (``delta_merge``, local or object storage), or with delta-rs' merge where that does not apply."""
        from deltalake import CommitProperties

        loc = self.location(layer, table)
        opts = self.write_options(loc)
        dt = self._open_uri(loc, options=opts)
        if dt is None and delete_flag is None:
            return self._create(layer, table, source, progress)
        import pyarrow as pa

        if not isinstance(source, pa.Table):
            source = source.read_all()  # a batch of changes: bounded by the change, not the table
        if dt is None:
            assert delete_flag is not None
            source = source.filter(_not(source.column(delete_flag))).drop_columns([delete_flag])
            return self._create(layer, table, source, progress)
        from flowforge.storage import delta_merge

        if delta_merge.applies(dt, keys):
            with _storage_errors("merge into", loc, opts):
                done = delta_merge.merge_by_files(
                    dt, source, keys, delete_flag=delete_flag, hooks=_hooks(dt), storage_options=opts,
                    commit_properties=CommitProperties(custom_metadata=_encode(progress)))
        else:
            done = None
        if done is not None:
            return CommitResult(version=done.version, rows_written=done.inserted, rows_updated=done.updated,
                                bytes_written=done.bytes_written, rows_deleted=done.deleted)
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
        with _storage_errors("merge into", loc, opts):
            builder = dt.merge(source, predicate=predicate, source_alias="s", target_alias="t",
                               merge_schema=delete_flag is None, post_commithook_properties=_hooks(dt),
                               commit_properties=CommitProperties(custom_metadata=_encode(progress)))
            if delete_flag is None:
                builder = builder.when_matched_update_all().when_not_matched_insert_all()
            else:
                values = {f'"{c}"': f's."{c}"' for c in source.column_names if c != delete_flag}
                keep = f'NOT s."{delete_flag}"'
                builder = (builder.when_matched_delete(predicate=f's."{delete_flag}"')
                           .when_matched_update(updates=values, predicate=keep)
                           .when_not_matched_insert(updates=values, predicate=keep))
            metrics = builder.execute()
        return CommitResult(version=dt.version(), rows_written=int(metrics["num_target_rows_inserted"]),
                            rows_updated=int(metrics["num_target_rows_updated"]),
                            bytes_written=int(source.nbytes),
                            rows_deleted=int(metrics.get("num_target_rows_deleted", 0)))

    def _create(self, layer: str, table: str, data: pa.RecordBatchReader | pa.Table,
                progress: dict[str, Any]) -> CommitResult:
        """A new merged table, in files of ``delta_files.FILE_ROWS`` rows with the statistics merges
        plan from (written as it comes: a first silver build streams in sorted by key)."""
        loc = self.location(layer, table)
        if is_remote(loc):
            return self.overwrite(layer, table, data, progress)
        from deltalake import CommitProperties

        from flowforge.storage import delta_files

        props = CommitProperties(custom_metadata={**_encode(progress), COMMIT_ID: uuid.uuid4().hex})
        with _storage_errors("write", loc):
            clear_uncommitted(loc)
            delta_files.create(loc, _first_commit(data), delta_compatible(data.schema), commit_properties=props,
                               configuration={"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)})
        return self._commit_result(loc, None, 0)

    def write_options(self, location: str) -> dict[str, str] | None:
        """The options for writing ``location``, once the store is known to keep concurrent commits apart.

        Raises StorageError, before anything is written, where two writers could lose a commit.
        """
        opts = self._options(location)
        if opts is None and not is_remote(location):
            return None
        opts = dict(opts or {})
        mode = opts.get("aws_conditional_put", "etag").lower()
        if self.single_writer:
            if mode == "disabled":
                # delta-rs needs some create-only PUT; with one writer a store that ignores the
                # If-None-Match header behaves as a plain PUT, which is then safe
                opts["aws_conditional_put"] = "etag"
            return opts
        if mode == "disabled":
            raise StorageError(
                f"Refusing to write {location}: aws_conditional_put is 'disabled' and single_writer is off, "
                f"so two writers could overwrite each other's Delta commit.",
                hint="Remove aws_conditional_put (the store then must support conditional writes, as AWS S3 "
                     "and MinIO do), or set 'single_writer: true' in flowforge.yml if only one process ever "
                     "writes this lakehouse.")
        if mode == "etag":
            self._check_conditional_put(location, opts)
        return opts

    def _check_conditional_put(self, location: str, opts: dict[str, str]) -> None:
        _, bucket_name, key = split_uri(location)
        cache_key = (opts.get("aws_endpoint", ""), bucket_name)
        with _CONDITIONAL_PUT_LOCK:
            if cache_key not in _CONDITIONAL_PUT:
                bucket = Bucket(bucket_name, opts)
                _CONDITIONAL_PUT[cache_key] = bucket.enforces_conditional_put(key)
            enforced = _CONDITIONAL_PUT[cache_key]
        if not enforced:
            endpoint = opts.get("aws_endpoint", "AWS S3")
            raise StorageError(
                f"Refusing to write {location}: the object store at {endpoint} does not enforce conditional "
                f"writes (it accepted a second create-only PUT of one key), so two writers could overwrite "
                f"each other's Delta commit.",
                hint="Set 'single_writer: true' in flowforge.yml if only one process ever writes this lakehouse, "
                     "or use a store with conditional writes (AWS S3, MinIO, Ceph RGW with If-None-Match), "
                     "or a DynamoDB lock (aws_s3_locking_provider: dynamodb).")

    def _commit_result(self, loc: str, opts: Mapping[str, str] | None, version: int) -> CommitResult:
        """Rows and bytes added by one commit, from its log entry (exact even when others commit too)."""
        actions = self.log_actions(loc, version, opts)
        rows = size = 0
        for action in actions or ():
            add = action.get("add")
            if add:
                size += int(add.get("size") or 0)
                stats = json.loads(add["stats"]) if add.get("stats") else {}
                rows += int(stats.get("numRecords") or 0)
        return CommitResult(version=version, rows_written=rows, bytes_written=size)

    def log_actions(self, loc: str, version: int, opts: Mapping[str, str] | None = None) -> list[dict[str, Any]] | None:
        """The actions of one commit (``add``, ``remove``, ``commitInfo``...), or None when its log
        entry is gone (cleaned up after a checkpoint)."""
        entry = f"_delta_log/{version:020d}.json"
        opts = opts if opts is not None else self._options(loc)
        with _storage_errors("read the log of", loc, opts):
            if is_remote(loc):
                bucket, key = Bucket.for_uri(loc, opts)
                if bucket.head(f"{key}/{entry}") is None:
                    return None
                text = bucket.get(f"{key}/{entry}").decode()
            else:
                path = os.path.join(loc, entry)
                if not os.path.exists(path):
                    return None
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # -- progress ------------------------------------------------------------------
    def progress(self, layer: str, table: str, key: str) -> tuple[Any, int] | None:
        """The newest ``flowforge.<key>`` recorded in the table's commits, with its version."""
        return self.progress_many(layer, table, (key,)).get(key)

    def progress_many(self, layer: str, table: str, keys: tuple[str, ...],
                      dt: DeltaTable | None = None, recent: tuple[str, ...] = ()) -> dict[str, tuple[Any, int]]:
        """``progress`` of several keys from one read of the history (of ``dt`` when given); keys in
        ``recent`` are looked for only in the newest commits (never worth reading the whole log)."""
        keys = (*keys, *recent)
        needed = len(keys) - len(recent)
        dt = dt if dt is not None else self.open(layer, table)
        found: dict[str, tuple[Any, int]] = {}
        if dt is None:
            return found
        loc = self.location(layer, table)
        with _storage_errors("read the history of", loc, self._options(loc)):
            # the newest commits almost always carry them; read the whole log only when they don't
            for limit in (10, None):
                for commit in dt.history(limit):
                    for key in keys:
                        raw = commit.get(META_PREFIX + key)
                        if raw is not None and key not in found:
                            found[key] = (json.loads(raw), int(commit["version"]))
                if sum(k in found for k in keys[:needed]) == needed or (limit is not None and dt.version() < limit):
                    break
        return found


def _local_tables(base: str) -> list[str]:
    if not os.path.isdir(base):
        return []
    return [name for name in sorted(os.listdir(base)) if has_commit(os.path.join(base, name))]


def _remote_commit(bucket: Bucket, key: str) -> bool:
    """Whether a table folder in object storage holds a commit or checkpoint (not just leftovers)."""
    for info in bucket.list_objects(f"{key}/_delta_log/"):
        name = info.key.rsplit("/", 1)[-1]
        if name[:20].isdigit() and name.endswith((".json", ".parquet")):
            return True
    return False


def has_commit(loc: str) -> bool:
    """Whether a local table folder holds at least one Delta commit or checkpoint (a folder whose
    first commit never completed has data files and an ``_delta_log`` without either)."""
    log = os.path.join(loc, "_delta_log")
    if not os.path.isdir(log):
        return False
    return any(n[:20].isdigit() and n.endswith((".json", ".parquet")) for n in os.listdir(log))


def clear_uncommitted(loc: str) -> None:
    """Remove what a first commit that never completed left in a local table folder (data files, an
    ``_delta_log`` without a commit), so that it cannot trip a reader once the table exists. Only the
    writer of the table calls it, holding the table's lease: no one else is writing there."""
    import shutil

    if os.path.isdir(loc) and not has_commit(loc):
        shutil.rmtree(loc, ignore_errors=True)


def _first_commit(data: pa.RecordBatchReader | pa.Table) -> pa.RecordBatchReader | pa.Table:
    """The same rows, with fault point ``storage.first_commit`` once the last one is handed to the
    writer of a new table (its data files are written; its first commit is under way)."""
    import pyarrow as pa

    from flowforge.testing import fault_point

    reader = data if isinstance(data, pa.RecordBatchReader) else pa.RecordBatchReader.from_batches(
        data.schema, data.to_batches())

    def batches() -> Iterator[pa.RecordBatch]:
        yield from reader
        fault_point("storage.first_commit")

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _hooks(dt: DeltaTable) -> PostCommitHookProperties:
    """Clean up expired log entries only when a checkpoint is due: cleaning lists the whole log,
    which on an object store would otherwise cost a full listing per commit."""
    from deltalake import PostCommitHookProperties

    interval = int(dt.metadata().configuration.get("delta.checkpointInterval") or 100)
    due = (dt.version() + 1) % max(interval, 1) == 0
    return PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=None if due else False)


def _version_of(dt: DeltaTable, commit_id: str) -> int:
    """The version of the commit that carries ``commit_id`` (another writer may have committed since)."""
    for commit in dt.history(50):
        if commit.get(COMMIT_ID) == commit_id:
            return int(commit["version"])
    return dt.version()


def _encode(progress: dict[str, Any]) -> dict[str, str]:
    return {META_PREFIX + k: json.dumps(v, sort_keys=True, default=str) for k, v in progress.items()}


def _not(flags: Any) -> Any:
    import pyarrow.compute as pc

    return pc.invert(flags)


def data_files(dt: DeltaTable) -> list[str]:
    """The snapshot's data files as they are named where they lie: local files as paths on disk,
    objects as ``s3://bucket/key``. delta-rs gives both percent-encoded (``/a%20b/part-0.parquet``
    for ``/a b/part-0.parquet``), which no file reader finds and an object store encodes again."""
    from urllib.parse import unquote

    uris: list[str] = dt.file_uris()
    return [unquote(u if is_remote(u) else u.removeprefix("file://")) for u in uris]


def add_actions_table(dt: DeltaTable) -> pa.Table:
    """The snapshot's add actions (``path``, ``size_bytes``, ``num_records``, statistics...) as Arrow.

    Read through the Arrow C stream: ``pa.table()`` of delta-rs' result first asks whether it is a
    pandas DataFrame, which imports pandas (about 0.4 s) just to count rows."""
    import pyarrow as pa

    return pa.RecordBatchReader.from_stream(dt.get_add_actions(flatten=True)).read_all()


def add_actions(dt: DeltaTable) -> list[tuple[str, int, int]]:
    """(relative path, size in bytes, row count) of every file in the snapshot."""
    adds = add_actions_table(dt)
    return list(zip(adds.column("path").to_pylist(),
                    (s or 0 for s in adds.column("size_bytes").to_pylist()),
                    (n or 0 for n in adds.column("num_records").to_pylist()), strict=True))


def conform_reader(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same stream with types Delta can store (see ``delta_compatible``)."""
    import pyarrow as pa

    target = delta_compatible(reader.schema)
    if target.equals(reader.schema):
        return reader
    return pa.RecordBatchReader.from_batches(target, (cast_batch(b, target) for b in reader))


def row_count(dt: DeltaTable) -> int:
    return sum(n for _, _, n in add_actions(dt))


def parquet_dataset(files: list[str], schema: pa.Schema, options: Mapping[str, str] | None) -> Any:
    """An Arrow dataset over Parquet files in object storage (read through delta-rs' object store)."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    by_bucket: dict[str, list[str]] = {}
    for f in files:
        _, bucket, key = split_uri(f)
        by_bucket.setdefault(bucket, []).append(key)
    parts = []
    for bucket, keys in by_bucket.items():
        fs = pafs.PyFileSystem(DeltaStorageHandler(f"s3://{bucket}", dict(options or {})))
        parts.append(ds.dataset(keys, schema=schema, format="parquet", filesystem=fs))
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def _writer() -> Any:
    """Snappy-compressed row groups of 128K rows: delta-rs buffers a whole row group before
    flushing it, so the default (1M rows) held about 100-160 MB more at peak for the same speed.
    (Given any WriterProperties, delta-rs no longer defaults to Snappy; it is set explicitly.)"""
    from deltalake import WriterProperties

    return WriterProperties(max_row_group_size=131_072, compression="SNAPPY")

"""DuckDB over Delta snapshots.

The file list comes from delta-rs; DuckDB reads local Parquet files with its own reader
(about 3x faster than scanning ``to_pyarrow_dataset()``). Tables in object storage, and
tables whose protocol needs more than plain Parquet (deletion vectors, column mapping,
partitions), are read through Arrow datasets backed by delta-rs' object store: DuckDB's own
S3 reader is the httpfs extension, and extensions are never installed or loaded (they
download at run time).

Every query runs sealed (see ``flowforge.engine.sandbox``): once the tables are registered,
``seal()`` leaves only their Parquet files readable, turns file system, network and extension
access off and locks the configuration; ``query`` and ``reader`` also refuse SQL that names
anything outside the registered tables. Python objects are never found by name (DuckDB's
replacement scans are off), so a query cannot read a variable of the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.errors import UserCodeError
from flowforge.storage.delta import data_files

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable

_NEEDS_DELTA_READER = {"deletionVectors", "columnMapping"}


class DuckDBEngine:
    """An in-process DuckDB connection with lakehouse tables registered as views."""

    def __init__(self, threads: int | None = None) -> None:
        import duckdb

        config: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                  "python_enable_replacements": False, "allow_community_extensions": False}
        if threads:
            config["threads"] = threads
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:", config=config)
        self._keep: list[Any] = []  # Arrow objects registered by reference must outlive the views
        self._files: list[str] = []  # the local Parquet files the views read: all a sealed engine may open
        self.sealed = False

    def close(self) -> None:
        self.con.close()

    def register_delta(self, name: str, dt: DeltaTable) -> None:
        from flowforge.storage.options import is_remote

        features = set(dt.protocol().reader_features or [])
        if is_remote(dt.table_uri) or features & _NEEDS_DELTA_READER or dt.metadata().partition_columns:
            dataset = dt.to_pyarrow_dataset()
            self.register_arrow(name, dataset)
            return
        self.register_files(name, data_files(dt), dt.schema().to_arrow())

    def register_files(self, name: str, files: list[str], schema: Any,
                       storage_options: Mapping[str, str] | None = None) -> None:
        """A view over Parquet files (local paths or ``s3://`` URIs reached with ``storage_options``);
        an empty file list gives an empty view of ``schema``."""
        import pyarrow as pa

        from flowforge.storage.options import is_remote

        self._unsealed(name)
        if not files:
            self.register_arrow(name, pa.schema(schema).empty_table())
            return
        if any(is_remote(f) for f in files):
            from flowforge.storage.delta import parquet_dataset

            self.register_arrow(name, parquet_dataset(files, pa.schema(schema), storage_options))
            return
        self._files.extend(files)
        file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS "
            f"SELECT * FROM read_parquet([{file_list}], union_by_name = true)"
        )

    def register_arrow(self, name: str, data: Any) -> None:
        self._unsealed(name)
        self._keep.append(data)
        self.con.register(f"__arrow_{name}", data)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT * FROM {quote('__arrow_' + name)}")

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """FlowForge's own small queries (counts, DESCRIBE, never a user's SQL); fetched to the end."""
        return self.con.execute(sql, params).fetchall()

    def arrow(self, sql: str) -> pa.Table:
        """FlowForge's own SQL (never a user's) as Arrow, without sealing the engine: for an engine
        that keeps registering tables, such as the search index."""
        rel = self.con.sql(sql)
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
        table: pa.Table = fetch()
        return table

    def columns(self, name: str) -> list[str]:
        return [r[0] for r in self.rows(f"DESCRIBE {quote(name)}")]

    def seal(self) -> None:
        """Leave only the registered tables' files readable: no file system, network or extension
        access, and no setting can be changed back. Views cannot be added after this."""
        if self.sealed:
            return
        allowed = ", ".join("'" + f.replace("'", "''") + "'" for f in dict.fromkeys(self._files))
        self.con.execute(f"SET allowed_paths = [{allowed}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")
        self.sealed = True

    def _unsealed(self, name: str) -> None:
        if self.sealed:
            raise RuntimeError(f"cannot register {name!r}: the engine is sealed (register every table first)")

    def _checked(self, sql: str, context: str) -> None:
        from flowforge.engine.sandbox import UnsafeSQL, check_query

        try:
            check_query(sql, context)
        except UnsafeSQL as exc:
            raise UserCodeError(str(exc), hint="User SQL reads lakehouse tables by name; files, settings and "
                                               "other databases are out of its reach.") from None
        self.seal()

    def query(self, sql: str, context: str) -> pa.Table:
        """Run SQL in the sandbox; its errors come back as UserCodeError naming ``context``."""
        import duckdb

        self._checked(sql, context)
        try:
            rel = self.con.sql(sql)
            # DuckDB 2 renamed arrow()/fetch_arrow_reader() to to_arrow_table()/to_arrow_reader()
            fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
            table: pa.Table = fetch()
            return table
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserCodeError(f"{context}: {first}", hint="Fix the SQL in the workflow file.") from None

    def reader(self, sql: str, context: str, batch_size: int = 100_000) -> pa.RecordBatchReader:
        import duckdb

        self._checked(sql, context)
        try:
            rel = self.con.sql(sql)
            reader = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
            stream: pa.RecordBatchReader = reader(batch_size)
            return stream
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserCodeError(f"{context}: {first}", hint="Fix the SQL in the workflow file.") from None

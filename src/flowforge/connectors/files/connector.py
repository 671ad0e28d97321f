"""Read CSV and Parquet files from a folder as Arrow batches.

"New files since the last run" is tracked by relative path, size and modification time in
the bronze commit, so each file version lands exactly once.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors import register_connector
from flowforge.connectors.base import (
    ColumnInfo,
    ConnectionTest,
    Connector,
    ConnectorCapabilities,
    FileEntry,
    ReadPlan,
    ReadRequest,
    SourcePart,
    TableInfo,
)
from flowforge.connectors.files.types import arrow_type, infer_type
from flowforge.errors import ConfigError, SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.files.config import FilesConfig


@register_connector("files")
class FilesConnector(Connector):
    """CSV or Parquet files under ``path``; a job names a file or a glob pattern."""

    capabilities = ConnectorCapabilities(tables=False, files=True, incremental=True)
    config: FilesConfig

    # -- discovery -------------------------------------------------------------------
    def test(self) -> ConnectionTest:
        start = time.perf_counter()
        if not os.path.isdir(self.config.path):
            raise SourceNotFound(f"{self.describe()}: folder {self.config.path} does not exist",
                                 hint="Fix 'path' of the connection in flowforge.yml.")
        return ConnectionTest(True, f"local files ({self.config.format})", (time.perf_counter() - start) * 1000)

    def list_tables(self) -> list[TableInfo]:
        self.test()
        suffix = "." + self.config.format
        names = sorted(os.path.relpath(p, self.config.path)
                       for p in glob.glob(os.path.join(self.config.path, "**", "*" + suffix), recursive=True))
        return [TableInfo(name=n) for n in names]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        schema = self._schema(self._match(self._pattern(request))[0].path)
        return [ColumnInfo(f.name, str(f.type), f.type, True) for f in schema]

    # -- extract ---------------------------------------------------------------------
    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        files = self._match(self._pattern(request))
        seen: dict[str, Any] = dict((state or {}).get("files", {}))
        new = [f for f in files if seen.get(f.path) != _fingerprint(f)]
        schema = self._schema(new[0].path if new else files[0].path)
        for f in new:
            seen[f.path] = _fingerprint(f)
        return ReadPlan(
            request=request, schema=schema, new_state={"files": seen}, has_data=bool(new),
            description=f"{len(new)} new file(s) of {len(files)} matching {request.files}",
            files=tuple(new),
        )

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        for entry in plan.files:
            yield SourcePart(
                name=os.path.relpath(entry.path, self.config.path),
                modified_time=entry.modified,
                batches=self._batches(entry.path, plan.schema, plan.request.batch_size),
            )

    # -- internals -------------------------------------------------------------------
    def _pattern(self, request: ReadRequest) -> str:
        if not request.files:
            raise ConfigError(f"{self.describe()}: a files connection reads 'files', not a table or query",
                              hint="Write 'files: crm_customers.csv' (a name or a glob) in the job.")
        return request.files

    def _match(self, pattern: str) -> list[FileEntry]:
        full = os.path.join(self.config.path, pattern)
        paths = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        if not paths:
            raise SourceNotFound(f"{self.describe()}: no file matches '{pattern}' ({full})",
                                 hint="Check the file name and the connection's 'path'.")
        entries = []
        for p in paths:
            st = os.stat(p)
            entries.append(FileEntry(path=p, size=st.st_size,
                                     modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)))
        return entries

    def _schema(self, path: str) -> pa.Schema:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.config.format == "parquet":
            return pq.read_schema(path)
        names, samples = self._sample(path)
        fields = []
        for i, name in enumerate(names):
            declared = self.config.columns.get(name)
            try:
                t = arrow_type(declared) if declared else infer_type([row[i] for row in samples if i < len(row)])
            except ValueError as exc:
                raise ConfigError(f"{self.describe()}: column '{name}': {exc}") from None
            fields.append(pa.field(name, t))
        unknown = set(self.config.columns) - set(names)
        if unknown:
            raise SourceSchemaError(
                f"{self.describe()}: {os.path.basename(path)} has no column(s) {', '.join(sorted(unknown))}",
                hint=f"Columns in the file: {', '.join(names)}.")
        return pa.schema(fields)

    def _sample(self, path: str) -> tuple[list[str], list[list[str]]]:
        import csv

        with open(path, newline="", encoding=self.config.encoding.replace("utf8", "utf-8")) as fh:
            reader = csv.reader(fh, delimiter=self.config.delimiter)
            header = next(reader, None)
            if header is None:
                raise SourceSchemaError(f"{self.describe()}: {os.path.basename(path)} is empty")
            if not self.config.header:
                header = [f"column_{i + 1}" for i in range(len(header))]
            rows = [row for _, row in zip(range(self.config.infer_rows), reader, strict=False)]
        return header, rows

    def _batches(self, path: str, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        name = os.path.basename(path)
        if self.config.format == "parquet":
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=batch_size):
                yield _conform(batch, schema, name)
            return
        read_opts = pcsv.ReadOptions(
            encoding=self.config.encoding, block_size=1 << 22,
            column_names=None if self.config.header else schema.names,
        )
        parse_opts = pcsv.ParseOptions(delimiter=self.config.delimiter)
        convert = pcsv.ConvertOptions(
            column_types={f.name: f.type for f in schema}, null_values=list(self.config.null_values),
            strings_can_be_null=True, true_values=["true", "True", "TRUE", "1"],
            false_values=["false", "False", "FALSE", "0"],
        )
        try:
            reader = pcsv.open_csv(path, read_options=read_opts, parse_options=parse_opts,
                                   convert_options=convert)
            for batch in reader:
                for offset in range(0, batch.num_rows, batch_size):
                    yield _conform(batch.slice(offset, batch_size), schema, name)
        except pa.ArrowInvalid as exc:
            raise SourceSchemaError(
                f"{self.describe()}: {name}: {str(exc).splitlines()[0]}",
                hint="Fix the row in the file, or declare the column's type under 'columns' "
                     "of the connection (for example 'string').",
            ) from None


def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    missing = [f.name for f in schema if f.name not in batch.schema.names]
    if missing:
        raise SourceSchemaError(f"{name} lacks column(s) {', '.join(missing)} that earlier files have",
                                hint="Files of one job must share their columns.")
    try:
        arrays = [batch.column(f.name).cast(f.type) for f in schema]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceSchemaError(f"{name}: {str(exc).splitlines()[0]}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _fingerprint(entry: FileEntry) -> list[Any]:
    return [entry.size, entry.modified.isoformat()]

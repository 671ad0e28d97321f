"""Read CSV, newline-delimited JSON and Parquet files from a folder or an S3 prefix as Arrow batches.

"New files since the last run" is tracked in the bronze commit by path, size and modification
time, plus the ETag in object storage, so each file version lands exactly once: a new key is
read, and so is a key uploaded again with new content.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from functools import cached_property
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
from flowforge.connectors.files.folders import Folder, open_folder, text_stream
from flowforge.connectors.files.types import arrow_type, infer_type
from flowforge.errors import ConfigError, SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.files.config import FilesConfig

SUFFIXES = {"csv": (".csv",), "parquet": (".parquet",), "json": (".json", ".jsonl", ".ndjson")}


@register_connector("files")
class FilesConnector(Connector):
    """CSV, JSON or Parquet files under ``path``; a job names a file or a glob pattern."""

    capabilities = ConnectorCapabilities(tables=False, files=True, incremental=True)
    config: FilesConfig

    @cached_property
    def folder(self) -> Folder:
        return open_folder(self.config.path, self.config.storage_options(), self.describe())

    # -- discovery -------------------------------------------------------------------
    def test(self) -> ConnectionTest:
        start = time.perf_counter()
        if not self.folder.exists():
            raise SourceNotFound(f"{self.describe()}: folder {self.config.path} does not exist",
                                 hint="Fix 'path' of the connection in flowforge.yml.")
        where = "object storage" if "://" in self.config.path else "local files"
        return ConnectionTest(True, f"{where} ({self.config.format})", (time.perf_counter() - start) * 1000)

    def list_tables(self) -> list[TableInfo]:
        self.test()
        names = {self.folder.relative(e) for suffix in SUFFIXES[self.config.format]
                 for e in self.folder.match("**/*" + suffix)}
        return [TableInfo(name=n) for n in sorted(names)]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        schema = self._schema(self._match(self._pattern(request))[0])
        return [ColumnInfo(f.name, str(f.type), f.type, True) for f in schema]

    # -- extract ---------------------------------------------------------------------
    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        files = self._match(self._pattern(request))
        seen: dict[str, Any] = dict((state or {}).get("files", {}))
        new = [f for f in files if seen.get(f.path) != _fingerprint(f)]
        schema = self._schema(new[0] if new else files[0])
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
                name=self.folder.relative(entry),
                modified_time=entry.modified,
                batches=self._batches(entry, plan.schema, plan.request.batch_size),
            )

    # -- internals -------------------------------------------------------------------
    def _pattern(self, request: ReadRequest) -> str:
        if not request.files:
            raise ConfigError(f"{self.describe()}: a files connection reads 'files', not a table or query",
                              hint="Write 'files: crm_customers.csv' (a name or a glob) in the job.")
        return request.files

    def _match(self, pattern: str) -> list[FileEntry]:
        entries = self.folder.match(pattern)
        if not entries:
            raise SourceNotFound(f"{self.describe()}: no file matches '{pattern}' "
                                 f"({self.folder.label.rstrip('/')}/{pattern})",
                                 hint="Check the file name and the connection's 'path'.")
        return entries

    def _name(self, entry: FileEntry) -> str:
        return self.folder.relative(entry).rsplit("/", 1)[-1]

    def _schema(self, entry: FileEntry) -> pa.Schema:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.config.format == "parquet":
            try:
                return pq.read_schema(self.folder.open_arrow(entry))
            except pa.ArrowInvalid as exc:
                raise SourceSchemaError(f"{self.describe()}: {self._name(entry)}: {str(exc).splitlines()[0]}") \
                    from None
        if self.config.format == "json":
            names, fields = self._json_sample(entry)
        else:
            names, samples = self._sample(entry)
            fields = {}
            for i, name in enumerate(names):
                fields[name] = infer_type([row[i] for row in samples if i < len(row)])
        out = []
        for name in names:
            declared = self.config.columns.get(name)
            try:
                t = arrow_type(declared) if declared else fields[name]
            except ValueError as exc:
                raise ConfigError(f"{self.describe()}: column '{name}': {exc}") from None
            out.append(pa.field(name, t))
        unknown = set(self.config.columns) - set(names)
        if unknown:
            raise SourceSchemaError(
                f"{self.describe()}: {self._name(entry)} has no column(s) {', '.join(sorted(unknown))}",
                hint=f"Columns in the file: {', '.join(names)}.")
        return pa.schema(out)

    def _sample(self, entry: FileEntry) -> tuple[list[str], list[list[str]]]:
        import csv

        with text_stream(self.folder.open_binary(entry), self.config.encoding) as fh:
            reader = csv.reader(fh, delimiter=self.config.delimiter)
            header = next(reader, None)
            if header is None:
                raise SourceSchemaError(f"{self.describe()}: {self._name(entry)} is empty")
            if not self.config.header:
                header = [f"column_{i + 1}" for i in range(len(header))]
            rows = [row for _, row in zip(range(self.config.infer_rows), reader, strict=False)]
        return header, rows

    def _json_sample(self, entry: FileEntry) -> tuple[list[str], dict[str, pa.DataType]]:
        """Field names in order of appearance and the exact type of each (numbers with a
        fraction become decimals, as in CSV; dates and timestamps are recognised in strings)."""
        values: dict[str, list[Any]] = {}
        with text_stream(self.folder.open_binary(entry), self.config.encoding) as fh:
            read = 0
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line, parse_float=_json_number)
                except json.JSONDecodeError as exc:
                    raise SourceSchemaError(f"{self.describe()}: {self._name(entry)} line {number}: {exc.msg}",
                                            hint="Each line must be one JSON object (newline-delimited JSON).") \
                        from None
                if not isinstance(record, dict):
                    raise SourceSchemaError(f"{self.describe()}: {self._name(entry)} line {number} is not "
                                            f"a JSON object")
                for key, value in record.items():
                    values.setdefault(key, []).append(value)
                read += 1
                if read >= self.config.infer_rows:
                    break
        if not values:
            raise SourceSchemaError(f"{self.describe()}: {self._name(entry)} is empty")
        fields = {}
        for key, vals in values.items():
            try:
                fields[key] = _json_type([v for v in vals if v is not None])
            except ValueError as exc:
                if key in self.config.columns:
                    continue  # the declared type decides
                raise SourceSchemaError(f"{self.describe()}: {self._name(entry)}: field '{key}' {exc}",
                                        hint=f"Declare its type under 'columns', e.g. {{{key}: string}}.") from None
        return list(values), fields

    def _batches(self, entry: FileEntry, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.json as pj
        import pyarrow.parquet as pq

        name = self._name(entry)
        try:
            if self.config.format == "parquet":
                pf = pq.ParquetFile(self.folder.open_arrow(entry))
                for batch in pf.iter_batches(batch_size=batch_size):
                    yield _conform(batch, schema, name)
                return
            if self.config.format == "json":
                stream = pj.open_json(
                    self.folder.open_arrow(entry), read_options=pj.ReadOptions(block_size=1 << 22),
                    parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
            else:
                stream = pcsv.open_csv(
                    self.folder.open_arrow(entry),
                    read_options=pcsv.ReadOptions(encoding=self.config.encoding, block_size=1 << 22,
                                                  column_names=None if self.config.header else schema.names),
                    parse_options=pcsv.ParseOptions(delimiter=self.config.delimiter),
                    convert_options=pcsv.ConvertOptions(
                        column_types={f.name: f.type for f in schema}, null_values=list(self.config.null_values),
                        strings_can_be_null=True, true_values=["true", "True", "TRUE", "1"],
                        false_values=["false", "False", "FALSE", "0"]))
            for batch in stream:
                for offset in range(0, batch.num_rows, batch_size):
                    yield _conform(batch.slice(offset, batch_size), schema, name)
        except pa.ArrowInvalid as exc:
            raise SourceSchemaError(
                f"{self.describe()}: {name}: {str(exc).splitlines()[0]}",
                hint="Fix the row in the file, or declare the column's type under 'columns' "
                     "of the connection (for example 'string').",
            ) from None


def _json_type(values: list[Any]) -> pa.DataType:
    import pyarrow as pa

    if not values:
        return pa.string()
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64() if all(-(2**63) <= v < 2**63 for v in values) else pa.decimal128(38, 0)
    if all(isinstance(v, int | Decimal | float) and not isinstance(v, bool) for v in values):
        if any(isinstance(v, float) for v in values):
            return pa.float64()  # written in scientific notation: a binary float, as the writer meant
        scale = max(-int(v.as_tuple().exponent) for v in values if isinstance(v, Decimal))
        whole = max(len(str(abs(int(v)))) for v in values)
        return pa.decimal128(38, max(scale, 0)) if whole + scale <= 38 else pa.float64()
    if all(isinstance(v, str) for v in values):
        inferred = infer_type(values)
        # dates and timestamps are text in JSON; a quoted number stays the text it was written as
        return inferred if pa.types.is_temporal(inferred) else pa.string()
    if all(isinstance(v, dict | list) for v in values):
        return pa.array(values).type
    kinds = sorted({type(v).__name__ for v in values})
    raise ValueError(f"mixes value kinds ({', '.join(kinds)})")


def _json_number(text: str) -> Decimal | float:
    """Numbers with a fraction keep every digit (decimal); scientific notation is a float."""
    return float(text) if "e" in text or "E" in text else Decimal(text)


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
    """Size and modification time; in object storage also the ETag (content changes at equal size)."""
    return [entry.size, entry.modified.isoformat(), *([entry.etag] if entry.etag else [])]

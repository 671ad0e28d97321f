"""Read CSV, newline-delimited JSON and Parquet files from a folder or an S3 prefix as Arrow batches.

"New files since the last run" is tracked in the bronze commit by path, size and modification
time, plus the ETag in object storage, so each file version lands exactly once: a new key is
read, and so is a key uploaded again with new content. The commit also records the fingerprint
of the read options each file was read with (``options.py``): when they change, the plan reads
those files again on their own, and bronze replaces the rows they landed before in one commit.
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
from flowforge.connectors.files.folders import Folder, open_folder
from flowforge.connectors.files.options import FileRead, changed_settings, fingerprint, resolve
from flowforge.connectors.files.problems import conversion_error
from flowforge.connectors.files.sniff import check_split, locate_bad_bytes, long_line, sample_rows, sniff
from flowforge.connectors.files.types import arrow_type, infer_type
from flowforge.errors import ConfigError, SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.files.config import FilesConfig

PARQUET = (".parquet", ".parq")
# files no text reader makes sense of: left out of a csv or json connection's listing
NOT_TEXT = (*PARQUET, ".zip", ".gz", ".bz2", ".xz", ".zst", ".7z", ".xlsx", ".xls", ".pdf", ".png", ".jpg", ".avro",
            ".orc", ".db", ".sqlite")


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
        """Every file the connection can read, any extension (hidden files left out)."""
        self.test()
        out = []
        for entry in self.folder.match("**/*"):
            rel = self.folder.relative(entry)
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            lower = rel.lower()
            readable = lower.endswith(PARQUET) if self.config.format == "parquet" else not lower.endswith(NOT_TEXT)
            if readable:
                out.append(TableInfo(name=rel, row_estimate=None))
        return sorted(out, key=lambda t: t.name)

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        entry = self._match(self._pattern(request))[0]
        read = self._options(entry, request)
        schema = self._schema(entry, read)
        return [ColumnInfo(f.name, read.columns.get(f.name) or _inferred(f.type), f.type, True) for f in schema]

    def dialect(self, request: ReadRequest) -> dict[str, Any] | None:
        """The sniffed dialect of the first matching file beside the options it is read with."""
        if self.config.format != "csv":
            return None
        entry = self._match(self._pattern(request))[0]
        read = self._options(entry, request)
        with self.folder.open_binary(entry) as raw:
            found = sniff(raw, self._label(entry), self.folder.relative(entry), read)
        configured = {"delimiter": "tab" if read.delimiter == "\t" else read.delimiter,
                      "quote": read.quote or "none", "header": read.header, "encoding": read.encoding,
                      "null_values": list(read.null_values)}
        return {"file": found.file, "sniffed": found.as_options(), "configured": configured,
                "columns": found.columns}

    # -- extract ---------------------------------------------------------------------
    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        """New and changed files; but first, on their own, files already read whose read options
        changed since (the next plan, after that commit, takes the new files)."""
        files = self._match(self._pattern(request))
        state = state or {}
        seen: dict[str, Any] = dict(state.get("files", {}))
        read_with: dict[str, str] = dict(state.get("read", {}))
        options: dict[str, Any] = dict(state.get("options", {}))
        current: dict[str, str] = {}
        new: list[FileEntry] = []
        again: list[FileEntry] = []
        why: dict[str, list[str]] = {}
        for f in files:
            read = self._options(f, request)
            current[f.path] = fingerprint(read)
            options.setdefault(current[f.path], read.shaping())
            if seen.get(f.path) != _fingerprint(f):
                new.append(f)
            elif read_with.setdefault(f.path, current[f.path]) != current[f.path]:
                # (a file read before its options were recorded keeps what it was read with)
                again.append(f)
                what = changed_settings(options.get(read_with[f.path]), read.shaping())
                why.setdefault(what, []).append(self.folder.relative(f))
        chosen = again or new
        for f in chosen:
            read_with[f.path] = current[f.path]
        new_state = {"files": {**seen, **{f.path: _fingerprint(f) for f in chosen}}, "read": read_with,
                     "options": {k: v for k, v in options.items() if k in set(read_with.values())}}
        first = (chosen or files)[0]
        schema = self._schema(first, self._options(first, request))
        if again:
            names = tuple(self.folder.relative(f) for f in again)
            reasons = "; ".join(f"{what} for {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
                                for what, paths in why.items())
            return ReadPlan(request=request, schema=schema, new_state=new_state, has_data=True,
                            description=f"{len(again)} file(s) read again because their read options changed "
                                        f"({reasons})",
                            files=tuple(again), replaces=names,
                            replaces_all=set(seen) <= {f.path for f in again})
        return ReadPlan(
            request=request, schema=schema, new_state=new_state, has_data=bool(new),
            description=f"{len(new)} new file(s) of {len(files)} matching {request.files or request.table}",
            files=tuple(new),
        )

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        for entry in plan.files:
            read = self._options(entry, plan.request)
            yield SourcePart(
                name=self.folder.relative(entry),
                modified_time=entry.modified,
                batches=self._batches(entry, read, plan.schema, plan.request.batch_size),
            )

    # -- internals -------------------------------------------------------------------
    def _pattern(self, request: ReadRequest) -> str:
        # 'connections schema/preview <conn> <file>' name the file where a database names a table
        pattern = request.files or request.table
        if not pattern or request.query or request.procedure:
            raise ConfigError(f"{self.describe()}: a files connection reads 'files', not a table or query",
                              hint="Write 'files: crm_customers.csv' (a name or a glob) in the job.")
        return pattern

    def _match(self, pattern: str) -> list[FileEntry]:
        entries = self.folder.match(pattern)
        if not entries:
            raise SourceNotFound(f"{self.describe()}: no file matches '{pattern}' "
                                 f"({self.folder.label.rstrip('/')}/{pattern})",
                                 hint="Check the file name and the connection's 'path'; "
                                      f"'flowforge connections tables {self.name}' lists its files.")
        return entries

    def _options(self, entry: FileEntry, request: ReadRequest) -> FileRead:
        return resolve(self.config, self.folder.relative(entry), request.read_options)

    def _name(self, entry: FileEntry) -> str:
        return self.folder.relative(entry).rsplit("/", 1)[-1]

    def _label(self, entry: FileEntry) -> str:
        return f"{self.describe()}: file {self.folder.relative(entry)}"

    def _schema(self, entry: FileEntry, read: FileRead) -> pa.Schema:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.config.format == "parquet":
            try:
                return pq.read_schema(self.folder.open_arrow(entry))
            except pa.ArrowInvalid as exc:
                raise SourceSchemaError(f"{self.describe()}: {self._name(entry)}: {str(exc).splitlines()[0]}") \
                    from None
        if self.config.format == "json":
            names, fields = self._json_sample(entry, read)
        else:
            names, samples = self._sample(entry, read)
            fields = {}
            for i, name in enumerate(names):
                fields[name] = infer_type([row[i] for row in samples if i < len(row)])
        out = []
        for name in names:
            declared = read.columns.get(name)
            try:
                t = arrow_type(declared) if declared else fields[name]
            except ValueError as exc:
                raise ConfigError(f"{self.describe()}: column '{name}': {exc}") from None
            out.append(pa.field(name, t))
        unknown = set(read.required) - set(names)
        if unknown:
            raise SourceSchemaError(
                f"{self._label(entry)} has no column(s) {', '.join(sorted(unknown))} declared under 'columns' "
                f"of {' and '.join(read.sources[1:])}",
                hint=f"Columns in the file: {', '.join(names)}.")
        return pa.schema(out)

    def _sample(self, entry: FileEntry, read: FileRead) -> tuple[list[str], list[list[str]]]:
        with self.folder.open_binary(entry) as raw:
            check_split(raw, self._label(entry), read)
        with self.folder.open_binary(entry) as raw:
            rows = sample_rows(raw, self._label(entry), read, read.infer_rows + 1)
        if not rows:
            raise SourceSchemaError(f"{self._label(entry)} is empty")
        header = rows[0]
        if not read.header:
            return [f"column_{i + 1}" for i in range(len(header))], rows
        return header, rows[1:]

    def _json_sample(self, entry: FileEntry, read: FileRead) -> tuple[list[str], dict[str, pa.DataType]]:
        """Field names in order of appearance and the exact type of each (numbers with a
        fraction become decimals, as in CSV; dates and timestamps are recognised in strings)."""
        from flowforge.connectors.files.sniff import SAMPLE_BYTES, decoded_lines

        values: dict[str, list[Any]] = {}
        budget = SAMPLE_BYTES
        with self.folder.open_binary(entry) as raw:
            read_rows = 0
            for number, line in enumerate(decoded_lines(raw, self._label(entry), read), start=1):
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
                read_rows += 1
                budget -= len(line)
                if read_rows >= read.infer_rows or budget < 0:
                    break
        if not values:
            raise SourceSchemaError(f"{self.describe()}: {self._name(entry)} is empty")
        fields = {}
        for key, vals in values.items():
            try:
                fields[key] = _json_type([v for v in vals if v is not None])
            except ValueError as exc:
                if key in read.columns:
                    continue  # the declared type decides
                raise SourceSchemaError(f"{self.describe()}: {self._name(entry)}: field '{key}' {exc}",
                                        hint=f"Declare its type under 'columns', e.g. {{{key}: string}}.") from None
        return list(values), fields

    def _batches(self, entry: FileEntry, read: FileRead, schema: pa.Schema,
                 batch_size: int) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.json as pj
        import pyarrow.parquet as pq

        name = self._name(entry)
        block = max(1 << 22, read.max_line_size)
        try:
            if self.config.format == "parquet":
                pf = pq.ParquetFile(self.folder.open_arrow(entry))
                for batch in pf.iter_batches(batch_size=batch_size):
                    yield _conform(batch, schema, name)
                return
            if self.config.format == "json":
                stream = pj.open_json(
                    self.folder.open_arrow(entry), read_options=pj.ReadOptions(block_size=block),
                    parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
            else:
                with self.folder.open_binary(entry) as raw:
                    check_split(raw, self._label(entry), read)
                stream = pcsv.open_csv(self.folder.open_arrow(entry), **csv_options(read, schema, block))
            for batch in stream:
                for offset in range(0, batch.num_rows, batch_size):
                    yield _conform(batch.slice(offset, batch_size), schema, name)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise self._read_error(entry, read, schema, exc) from None

    def _read_error(self, entry: FileEntry, read: FileRead, schema: pa.Schema,
                    exc: Exception) -> SourceSchemaError:
        """The file, the line and the column by name (pyarrow says 'column #9' and no line)."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "decode" in text.lower():
            with self.folder.open_binary(entry) as raw:
                found = locate_bad_bytes(raw, self._label(entry), read.encoding)
            if found is not None:
                return found
        if "straddl" in text:
            return long_line(self._label(entry), read.max_line_size)
        if self.config.format == "csv":
            found = conversion_error(self.folder, entry, self._label(entry), read, schema, text)
            if found is not None:
                return found
        return SourceSchemaError(
            f"{self._label(entry)}: {text}",
            hint="Fix the row in the file, or declare the column's type under 'columns' "
                 "of the connection (for example 'string').")


def csv_options(read: FileRead, schema: pa.Schema, block: int, *, convert: bool = True) -> dict[str, Any]:
    """pyarrow's CSV options for ``read`` (``convert=False``: every column as text)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {f.name: (f.type if convert else pa.string()) for f in schema}
    return {
        "read_options": pcsv.ReadOptions(encoding="utf8" if read.encoding == "utf-8" else read.encoding,
                                         block_size=block, column_names=None if read.header else schema.names),
        "parse_options": pcsv.ParseOptions(delimiter=read.delimiter, quote_char=read.quote or False,
                                           double_quote=bool(read.quote), escape_char=read.escape or False),
        "convert_options": pcsv.ConvertOptions(
            column_types=types, null_values=list(read.null_values), strings_can_be_null=True,
            quoted_strings_can_be_null="" in read.null_values,
            true_values=["true", "True", "TRUE", "1"], false_values=["false", "False", "FALSE", "0"]),
    }


def _inferred(type_: pa.DataType) -> str:
    return f"{type_} (inferred)"


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

"""Read Debezium JSONL files as change-event batches, each new file exactly once.

Files are listed in name order (the ``batch=YYYYMMDDTHHMMSSZ.jsonl`` layout sorts by time);
the plan's ``new_state`` holds every file read so far with its size and modification time,
and the cdc bronze executor commits it together with the events.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
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
from flowforge.connectors.cdc.debezium.decode import decode_document
from flowforge.connectors.cdc.events import event_schema
from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from flowforge.connectors.cdc.debezium.config import DebeziumConfig

DEFAULT_PATTERN = "**/*.jsonl"


@register_connector("debezium")
class DebeziumConnector(Connector):
    """Debezium JSON change events from files (the ``cdc`` job kind reads it)."""

    capabilities = ConnectorCapabilities(tables=False, files=True, incremental=True, cdc=True)
    config: DebeziumConfig

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        path = self.config.path
        if path.startswith("s3://"):
            opts = self.config.storage_options
            endpoint = opts.get("aws_endpoint") or opts.get("endpoint_url")
            scheme = "http" if endpoint and endpoint.startswith("http://") else "https"
            fs = pafs.S3FileSystem(
                access_key=opts.get("aws_access_key_id"), secret_key=opts.get("aws_secret_access_key"),
                region=opts.get("aws_region", "us-east-1"), scheme=scheme,
                endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
            )
            return fs, path[len("s3://"):].rstrip("/")
        return pafs.LocalFileSystem(), path.rstrip("/")

    # -- discovery -------------------------------------------------------------------
    def test(self) -> ConnectionTest:
        import pyarrow.fs as pafs

        start = time.perf_counter()
        fs, base = self._fs()
        if fs.get_file_info(base).type != pafs.FileType.Directory:
            raise SourceNotFound(f"{self.describe()}: {self.config.path} is not a folder",
                                 hint="Fix 'path' of the connection.")
        return ConnectionTest(True, "Debezium JSON files", (time.perf_counter() - start) * 1000)

    def list_tables(self) -> list[TableInfo]:
        return [TableInfo(name=e.path) for e in self._match(DEFAULT_PATTERN)]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, str(f.type), f.type, f.nullable) for f in event_schema()]

    # -- extract ---------------------------------------------------------------------
    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        pattern = request.files or DEFAULT_PATTERN
        files = self._match(pattern)
        seen: dict[str, Any] = dict((state or {}).get("files", {}))
        new = [f for f in files if seen.get(f.path) != [f.size, f.modified.isoformat()]]
        for f in new:
            seen[f.path] = [f.size, f.modified.isoformat()]
        return ReadPlan(request=request, schema=event_schema(), new_state={"files": seen}, has_data=bool(new),
                        description=f"{len(new)} new file(s) of {len(files)} matching {pattern}",
                        files=tuple(new))

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        # each file's last batch carries the state once that file is in bronze, so a run over many
        # files commits in bounded chunks (see layers/cdc.py)
        files: dict[str, Any] = dict((plan.new_state or {}).get("files", {}))
        done = {k: v for k, v in files.items() if k not in {e.path for e in plan.files}}
        for entry in plan.files:
            done[entry.path] = files[entry.path]
            yield SourcePart(name=entry.path, modified_time=entry.modified,
                             batches=_last_marked(self._batches(entry.path, plan.request.batch_size),
                                                  {"files": dict(done)}))

    # -- internals -------------------------------------------------------------------
    def _match(self, pattern: str) -> list[FileEntry]:
        import pyarrow.fs as pafs

        fs, base = self._fs()
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        except (FileNotFoundError, OSError) as exc:
            raise SourceNotFound(f"{self.describe()}: cannot list {self.config.path}: {exc}",
                                 hint="Check 'path' and the storage options of the connection.") from None
        entries = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(base):].lstrip("/")
            if not (fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.replace("**/", ""))):
                continue
            mtime = info.mtime or dt.datetime.fromtimestamp(0, dt.UTC)
            entries.append(FileEntry(path=rel, size=int(info.size or 0), modified=mtime.astimezone(dt.UTC)))
        return sorted(entries, key=lambda e: e.path)

    def _batches(self, rel: str, batch_size: int) -> Iterator[Any]:
        fs, base = self._fs()
        if not self.config.path.startswith("s3://"):
            import os

            root, real = os.path.realpath(base), os.path.realpath(f"{base}/{rel}")
            if os.path.commonpath([root, real]) != root:
                raise SourceNotFound(f"{self.describe()}: {rel} links to a file outside the folder; FlowForge "
                                     "does not follow it.", hint="Copy the file into the folder instead.")
        with fs.open_input_stream(f"{base}/{rel}") as fh:
            data = fh.read()
        yield from decode_document(data, where=rel, batch_size=min(batch_size, self.config.batch_size))


def _last_marked(batches: Iterator[Any], state: dict[str, Any]) -> Iterator[Any]:
    """The batches, the last one marked with ``state`` (the position once all of them are in bronze)."""
    from flowforge.connectors.cdc.events import with_resume

    previous = None
    for batch in batches:
        if previous is not None:
            yield previous
        previous = batch
    if previous is not None:
        yield with_resume(previous, state)

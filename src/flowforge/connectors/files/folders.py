"""Where a files connection's files live: a local folder or an ``s3://bucket/prefix``.

Both list files matching a glob pattern (``*``, ``?``, ``[...]``, ``**`` for any depth) with
size, modification time and, in object storage, the ETag; and open one for the Arrow readers.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Protocol

from flowforge.connectors.base import FileEntry
from flowforge.errors import AuthenticationFailed, ConnectionFailed, ConnectorError, SourceNotFound, StorageError

if TYPE_CHECKING:
    import pyarrow as pa


class Folder(Protocol):
    label: str

    def exists(self) -> bool: ...

    def match(self, pattern: str) -> list[FileEntry]: ...

    def relative(self, entry: FileEntry) -> str: ...

    def open_binary(self, entry: FileEntry) -> IO[bytes]: ...

    def open_arrow(self, entry: FileEntry) -> str | pa.NativeFile: ...


def open_folder(path: str, options: Mapping[str, str], describe: str) -> Folder:
    from flowforge.storage.options import is_remote

    return S3Folder(path, options, describe) if is_remote(path) else LocalFolder(path)


class LocalFolder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.label = path

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def match(self, pattern: str) -> list[FileEntry]:
        """Files under this folder matching ``pattern``; a pattern or a symlink that leads out of the
        folder is refused (the folder itself was checked against the project's data roots)."""
        parts = pattern.replace("\\", "/").split("/")
        if os.path.isabs(pattern) or ".." in parts:
            raise SourceNotFound(f"File pattern {pattern!r} leads out of the connection's folder {self.path}.",
                                 hint="Give a pattern relative to the connection's folder, such as 'orders/*.csv'.")
        root = os.path.realpath(self.path)
        full = os.path.join(self.path, pattern)
        entries = []
        for p in sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p)):
            real = os.path.realpath(p)
            if os.path.commonpath([root, real]) != root:
                raise SourceNotFound(f"{os.path.relpath(p, self.path)} in {self.path} links to a file outside the "
                                     "connection's folder; FlowForge does not follow it.",
                                     hint="Copy the file into the folder instead of linking to it.")
            st = os.stat(p)
            entries.append(FileEntry(path=p, size=st.st_size,
                                     modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)))
        return entries

    def relative(self, entry: FileEntry) -> str:
        return os.path.relpath(entry.path, self.path)

    def open_binary(self, entry: FileEntry) -> IO[bytes]:
        return open(entry.path, "rb")

    def open_arrow(self, entry: FileEntry) -> str:
        return entry.path


class S3Folder:
    """Objects under ``s3://bucket/prefix``; a failure becomes the connector error it is."""

    def __init__(self, uri: str, options: Mapping[str, str], describe: str) -> None:
        from flowforge.storage.objects import Bucket

        self.label = uri.rstrip("/")
        self.describe = describe
        with self._errors():
            self.bucket, self.prefix = Bucket.for_uri(uri, options)

    def exists(self) -> bool:
        with self._errors():
            return self.bucket.exists_prefix(self._key(""))

    def match(self, pattern: str) -> list[FileEntry]:
        pattern = pattern.lstrip("/")
        regex = glob_regex(pattern)
        with self._errors():
            if not any(c in pattern for c in "*?["):  # one named file: no listing needed
                found = self.bucket.head(self._key(pattern))
                objects = [found] if found is not None else []
            else:
                objects = list(self.bucket.list_objects(self._key(_literal_dir(pattern))))
        entries = []
        for obj in objects:
            rel = obj.key[len(self._key("")):]
            if rel and not rel.endswith("/") and regex.fullmatch(rel):
                entries.append(FileEntry(path=obj.uri, size=obj.size, modified=obj.modified, etag=obj.etag))
        return sorted(entries, key=lambda e: e.path)

    def relative(self, entry: FileEntry) -> str:
        return entry.path[len(self.label) + 1:]

    def open_binary(self, entry: FileEntry) -> IO[bytes]:
        with self._errors():
            return self.bucket.open_binary(self._key(self.relative(entry)))

    def open_arrow(self, entry: FileEntry) -> pa.NativeFile:
        with self._errors():
            return self.bucket.open_input(self._key(self.relative(entry)))

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from flowforge.storage.objects import ObjectStoreError

        try:
            yield
        except ObjectStoreError as exc:
            kind = {"not_found": SourceNotFound, "credentials": AuthenticationFailed,
                    "denied": AuthenticationFailed, "unreachable": ConnectionFailed}.get(exc.kind, ConnectorError)
            raise kind(f"{self.describe}: {exc.message}", hint=exc.hint) from None
        except StorageError as exc:
            raise ConnectorError(f"{self.describe}: {exc.message}", hint=exc.hint) from None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated keys: ``*`` and ``?`` stay within one folder, ``**`` spans any depth."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _literal_dir(pattern: str) -> str:
    """The folder part of ``pattern`` before its first wildcard, to list no more than needed."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/") + 1] if "/" in head else ""


def text_stream(raw: IO[bytes], encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding=encoding.replace("utf8", "utf-8"), newline="")

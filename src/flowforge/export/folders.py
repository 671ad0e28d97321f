"""Snapshot folders: ``<root>/snapshot_date=YYYY-MM-DD/<table>.<ext>``, ``_metadata.json``, ``_SUCCESS``.

A reader that waits for ``_SUCCESS`` never sees a partial snapshot, and two exports of the same
day are never mixed:

* **local folders** are written in a hidden sibling (``.snapshot_date=…-<id>.tmp``) and moved into
  place only when complete. Replacing an existing day swaps the two folders in one
  ``renameat2(RENAME_EXCHANGE)`` call on Linux, so a reader sees the old snapshot or the new
  one, never neither and never a mix (elsewhere: two renames, a brief moment with no folder);
* **object stores** have no rename, so a day that already has objects gets a new attempt
  folder (``snapshot_date=YYYY-MM-DD_attempt-2``), with ``_SUCCESS`` written last.

``if_exists``: ``replace`` (local default), ``new_attempt`` (object-store default) or ``fail``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from flowforge.errors import ConfigError, StorageError
from flowforge.storage.options import is_remote

if TYPE_CHECKING:
    from flowforge.storage.objects import Bucket

SUCCESS = "_SUCCESS"
METADATA = "_metadata.json"
IfExists = Literal["replace", "new_attempt", "fail"]
_STALE_SECONDS = 24 * 3600


def day_folder(day: str, attempt: int) -> str:
    return f"snapshot_date={day}" if attempt == 1 else f"snapshot_date={day}_attempt-{attempt}"


class HashingFile(io.RawIOBase):
    """A write-only stream that counts bytes and computes the SHA-256 of what passes through."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self.size += len(view)
        self._raw.write(bytes(view) if not isinstance(data, bytes | bytearray) else data)
        return len(view)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class SnapshotFolder:
    """Where one snapshot is written; ``finish`` makes it visible, ``abort`` drops it."""

    location: str  # the final folder (path or URI), known once started
    attempt: int  # 1, or the attempt folder it writes (snapshot_date=…_attempt-N)

    def open(self, name: str) -> HashingFile:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self, metadata: bytes) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def open_folder(root: str, day: str, if_exists: IfExists | None,
                storage_options: Mapping[str, str] | None = None) -> SnapshotFolder:
    if is_remote(root):
        return ObjectStoreFolder(root, day, if_exists or "new_attempt", storage_options)
    return LocalFolder(root, day, if_exists or "replace")


class LocalFolder(SnapshotFolder):
    def __init__(self, root: str, day: str, if_exists: IfExists) -> None:
        self.root, self.day, self.if_exists = root, day, if_exists
        os.makedirs(root, exist_ok=True)
        self._sweep()
        final = os.path.join(root, day_folder(day, 1))
        self.attempt = 1
        if os.path.exists(final):
            if if_exists == "fail":
                raise StorageError(f"A snapshot for {day} already exists at {final}.",
                                   hint="Use if_exists: replace or new_attempt (--if-exists), or remove it.")
            if if_exists == "new_attempt":
                while os.path.exists(final):
                    self.attempt += 1
                    final = os.path.join(root, day_folder(day, self.attempt))
        self.location = final
        self.tmp = os.path.join(root, f".{day_folder(day, self.attempt)}-{uuid.uuid4().hex[:12]}.tmp")
        os.makedirs(self.tmp)

    def _sweep(self) -> None:
        """Remove temporary folders of exports killed more than a day ago (a live one is younger)."""
        now = time.time()
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            stale = name.startswith(".snapshot_date=") and name.endswith(".tmp") and os.path.isdir(path)
            if stale and now - os.path.getmtime(path) > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)

    def open(self, name: str) -> HashingFile:
        return HashingFile(open(os.path.join(self.tmp, name), "wb"))  # closed by the caller

    def finish(self, metadata: bytes) -> str:
        _write_synced(os.path.join(self.tmp, METADATA), metadata)
        _write_synced(os.path.join(self.tmp, SUCCESS), b"")
        _fsync_dir(self.tmp)
        if os.path.exists(self.location):
            if not _exchange(self.tmp, self.location):
                old = self.tmp + ".old"
                os.rename(self.location, old)
                os.rename(self.tmp, self.location)
                shutil.rmtree(old, ignore_errors=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)  # now holds the previous snapshot
        else:
            os.rename(self.tmp, self.location)
        _fsync_dir(self.root)
        return self.location

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


class ObjectStoreFolder(SnapshotFolder):
    def __init__(self, root: str, day: str, if_exists: IfExists,
                 storage_options: Mapping[str, str] | None) -> None:
        from flowforge.storage.objects import Bucket

        if if_exists == "replace":
            raise ConfigError("An object store cannot replace a snapshot atomically (it has no rename).",
                              hint="Use if_exists: new_attempt (the default for s3://) or fail.")
        self.bucket, prefix = Bucket.for_uri(root, storage_options)
        self.attempt = 1
        key = f"{prefix}/{day_folder(day, 1)}".lstrip("/")
        while self.bucket.exists_prefix(key + "/"):
            if if_exists == "fail":
                raise StorageError(f"A snapshot for {day} already exists at {self.bucket.uri(key)}.",
                                   hint="Use if_exists: new_attempt, or remove it.")
            self.attempt += 1
            key = f"{prefix}/{day_folder(day, self.attempt)}".lstrip("/")
        self.prefix = key
        self.location = self.bucket.uri(key)
        self._written: list[str] = []

    def open(self, name: str) -> HashingFile:
        return HashingFile(_ObjectWriter(self.bucket, f"{self.prefix}/{name}"))

    def finish(self, metadata: bytes) -> str:
        self._put(METADATA, metadata)
        self._put(SUCCESS, b"")
        return self.location

    def _put(self, name: str, data: bytes) -> None:
        writer = _ObjectWriter(self.bucket, f"{self.prefix}/{name}")
        writer.write(data)
        writer.close()

    def abort(self) -> None:
        """Leave no half snapshot behind where possible (a reader ignores it anyway: no ``_SUCCESS``)."""
        import obstore

        keys = [o.key for o in self.bucket.list_objects(self.prefix + "/")]
        if keys:
            try:
                obstore.delete(self.bucket.store, keys)
            except Exception:  # best effort; the snapshot stays invisible without _SUCCESS
                return


class _ObjectWriter:
    """A streamed multipart upload of one object (obstore's buffered writer)."""

    def __init__(self, bucket: Bucket, key: str) -> None:
        import obstore

        from flowforge.storage.objects import storage_errors

        self._uri = bucket.uri(key)
        self._options = bucket.options
        self._errors = storage_errors
        with storage_errors("write", self._uri, self._options):
            self._file: Any = obstore.open_writer(bucket.store, key, buffer_size=8 << 20)

    def write(self, data: bytes) -> int:
        with self._errors("write", self._uri, self._options):
            self._file.write(data)
        return len(data)

    def close(self) -> None:
        with self._errors("write", self._uri, self._options):
            self._file.close()

"""Objects in S3-compatible stores (AWS S3, MinIO, Ceph), through obstore.

Delta tables are read and written by delta-rs itself; this module does what delta-rs does not:
list prefixes (the catalog, file sources), read one file as an Arrow input file, tell whether
the store enforces conditional writes, and turn object-store failures into one clear line.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import FlowForgeError, MissingDependencyError, SchemaDriftError, StorageError
from flowforge.storage.options import obstore_kwargs, scrub, split_uri

if TYPE_CHECKING:
    import pyarrow as pa

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
# HTTP 501 as obstore reports it; a bare "501" would also match elapsed times ("in 12.501ms").
_NOT_IMPLEMENTED = re.compile(r"\b501 Not Implemented\b|status(?: code)?:? 501\b|\bNotImplemented\b")
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
                     "InvalidToken", "AuthorizationHeaderMalformed", "TokenRefreshRequired"}
_SCHEMA = ("schema error", "cast error", "cannot merge field", "schema mismatch", "invalid data type for delta",
           "invalid data found")
_MERGE_FIELD = re.compile(r"[Cc]annot merge field (\S+) from (.+?) to (.+?)\s*$")
_UNREACHABLE = ("connection refused", "tcp connect error", "dns error", "failed to lookup address",
                "timed out", "connection reset", "error sending request", "no route to host")


class ObjectStoreError(StorageError):
    """An object-store failure; ``kind`` is one of not_found, credentials, denied, unreachable, other."""

    def __init__(self, message: str, *, kind: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its full URI, key in the bucket, size, last-modified time and ETag."""

    uri: str
    key: str
    size: int
    modified: dt.datetime
    etag: str | None


def describe_failure(exc: BaseException, location: str,
                     options: Mapping[str, str] | None) -> tuple[str, str, str]:
    """(kind, reason, hint) for an object-store or delta-rs failure, without backtraces or secrets."""
    text = scrub(_ANSI.sub("", str(exc)), options)
    lower = text.lower()
    code_match = _CODE.search(text)
    code = code_match.group(1) if code_match else None
    endpoint = (options or {}).get("aws_endpoint") or "the default AWS endpoint"
    bucket = location.split("://", 1)[1].split("/", 1)[0] if "://" in location else ""
    if code == "NoSuchBucket":
        return ("not_found", f"bucket '{bucket}' does not exist at {endpoint}",
                "Create the bucket, or fix the bucket name in the location.")
    if code in _CREDENTIAL_CODES:
        return ("credentials", f"the object store at {endpoint} rejected the credentials ({code})",
                "Check aws_access_key_id and aws_secret_access_key (the 'storage' settings, the connection, "
                "or the AWS_* environment variables).")
    if code == "AccessDenied" or "403 forbidden" in lower or "lacked the necessary privileges" in lower:
        return ("denied", f"access denied ({code or '403 Forbidden'})",
                "Grant these credentials s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject "
                "on the location.")
    if any(marker in lower for marker in _UNREACHABLE):
        detail = next((m for m in _UNREACHABLE[:5] if m in lower), "no answer")
        return ("unreachable", f"cannot reach the object store at {endpoint} ({detail})",
                "Check that the endpoint is up and that aws_endpoint (and aws_allow_http for http://) is right.")
    lines = [ln.strip(" ↳") for ln in text.strip().splitlines() if ln.strip(" ↳")]
    first = lines[0] if lines else type(exc).__name__
    if any(marker in lower for marker in _SCHEMA):
        # the data does not fit the table: nothing to do with the location, so never blame it
        merge = _MERGE_FIELD.search(first)
        reason = (f"column '{merge.group(1)}' is {merge.group(3)} in the table but {merge.group(2)} in the data"
                  if merge else first.removeprefix("Kernel error -> "))
        return ("schema", reason, "The data's columns or types differ from the table's: set on_schema_change on "
                "the table, cast the column with casts: {col: TYPE}, or run with --full-refresh.")
    hint = ("Check the location and the storage settings." if "://" in location
            else "Check that the lakehouse location exists and is writable.")
    if code == "NoSuchKey" or "404 not found" in lower:
        return "not_found", f"no object there ({code or '404 Not Found'})", hint
    return "other", first.removeprefix("Kernel error -> ").removeprefix("Generic S3 error: "), hint


@contextmanager
def storage_errors(action: str, location: str, options: Mapping[str, str] | None) -> Iterator[None]:
    """Turn any non-FlowForge failure inside into one StorageError naming ``location``."""
    try:
        yield
    except FlowForgeError:
        raise
    except Exception as exc:
        kind, reason, hint = describe_failure(exc, location, options)
        if kind == "schema":
            raise SchemaDriftError(f"Could not {action} {location}: {reason}", hint=hint) from None
        raise ObjectStoreError(f"Could not {action} {location}: {reason}", kind=kind, hint=hint) from None


def _obstore() -> Any:
    try:
        import obstore
    except ImportError:
        raise MissingDependencyError("Reading and writing s3:// locations needs obstore.",
                                     hint="pip install 'flowforge[s3]'") from None
    return obstore


_stores: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
_stores_lock = threading.Lock()


class Bucket:
    """One bucket of an S3-compatible store, opened with object_store options."""

    def __init__(self, bucket: str, options: Mapping[str, str] | None = None) -> None:
        self.name = bucket
        self.options = dict(options or {})
        self.store = _store_for(bucket, self.options)

    @classmethod
    def for_uri(cls, uri: str, options: Mapping[str, str] | None = None) -> tuple[Bucket, str]:
        """The bucket of ``uri`` and the key (no leading or trailing slash) inside it."""
        _, bucket, key = split_uri(uri)
        return cls(bucket, options), key

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    # -- listing ---------------------------------------------------------------------
    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a folder: give it a trailing slash)."""
        obs = _obstore()
        with storage_errors("list", self.uri(prefix), self.options):
            for chunk in obs.list(self.store, prefix=prefix or None, chunk_size=1000):
                for meta in chunk:
                    yield self._info(meta)

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the "folders" directly under ``prefix`` (a key ending in '/', or '')."""
        obs = _obstore()
        with storage_errors("list", self.uri(prefix), self.options):
            result = obs.list_with_delimiter(self.store, prefix=prefix or None)
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in result["common_prefixes"])

    def exists_prefix(self, prefix: str) -> bool:
        obs = _obstore()
        with storage_errors("list", self.uri(prefix), self.options):
            for chunk in obs.list(self.store, prefix=prefix, chunk_size=1):
                if chunk:
                    return True
        return False

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or None when there is no object at ``key``."""
        obs = _obstore()
        from obstore.exceptions import NotFoundError

        with storage_errors("read", self.uri(key), self.options):
            try:
                return self._info(obs.head(self.store, key))
            except (NotFoundError, FileNotFoundError):
                return None

    # -- reading ---------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        obs = _obstore()
        with storage_errors("read", self.uri(key), self.options):
            return bytes(obs.get(self.store, key).bytes())

    def open_binary(self, key: str, size: int | None = None) -> io.BufferedReader:
        """A seekable binary file over the object: ranged reads, nothing downloaded up front."""
        obs = _obstore()
        with storage_errors("open", self.uri(key), self.options):
            reader = obs.open_reader(self.store, key, buffer_size=8 << 20, size=size)
        return io.BufferedReader(_RawObject(reader, self.uri(key), self.options), buffer_size=1 << 20)

    def open_input(self, key: str, size: int | None = None) -> pa.NativeFile:
        """The object as an Arrow random-access input file (Parquet, CSV and JSON readers take it)."""
        import pyarrow as pa

        return pa.PythonFile(self.open_binary(key, size), mode="r")

    # -- writing ---------------------------------------------------------------------
    def enforces_conditional_put(self, prefix: str) -> bool:
        """Whether a second create-only write to one key is refused (HTTP 412 on If-None-Match).

        Delta commits rely on it: without it two writers can both "create" version N and one
        commit silently replaces the other.
        """
        obs = _obstore()
        from obstore.exceptions import AlreadyExistsError, NotSupportedError, PreconditionError

        key = f"{prefix.strip('/')}/_flowforge_probe/{uuid.uuid4().hex}".lstrip("/")
        store = _store_for(self.name, {**self.options, "aws_conditional_put": "etag"})
        with storage_errors("write a probe object to", self.uri(key), self.options):
            try:
                obs.put(store, key, b"1", mode="create")
            except (NotImplementedError, NotSupportedError):
                return False
            except Exception as exc:  # a store that rejects the If-None-Match header outright
                if _NOT_IMPLEMENTED.search(str(exc)):
                    return False
                raise
            try:
                obs.put(store, key, b"2", mode="create")
                refused = False
            except (AlreadyExistsError, PreconditionError, FileExistsError):
                refused = True
            obs.delete(store, key)
        return refused

    def _info(self, meta: Mapping[str, Any]) -> ObjectInfo:
        modified = meta["last_modified"]
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=dt.UTC)
        return ObjectInfo(uri=self.uri(meta["path"]), key=meta["path"], size=int(meta["size"]),
                          modified=modified, etag=meta.get("e_tag"))


def _store_for(bucket: str, options: Mapping[str, str]) -> Any:
    _obstore()  # the clear "pip install" message when obstore is missing
    cache_key = (bucket, tuple(sorted(options.items())))
    with _stores_lock:
        store = _stores.get(cache_key)
        if store is None:
            from obstore.store import S3Store

            with storage_errors("open", f"s3://{bucket}", options):
                store = S3Store(bucket, **obstore_kwargs(options))
            _stores[cache_key] = store
        return store


class _RawObject(io.RawIOBase):
    """obstore's ReadableFile as a raw Python binary stream (failures become StorageError)."""

    def __init__(self, reader: Any, uri: str, options: Mapping[str, str]) -> None:
        super().__init__()
        self._reader = reader
        self._uri = uri
        self._options = options

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with storage_errors("read", self._uri, self._options):
            data = self._reader.read(len(buffer))
        n = len(data)
        memoryview(buffer)[:n] = memoryview(data).cast("B")
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._reader.seek(offset, whence))

    def tell(self) -> int:
        return int(self._reader.tell())

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()

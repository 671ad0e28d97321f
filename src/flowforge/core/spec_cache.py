"""Parsed workflow specs kept between requests of a server (and ticks of a scheduler).

Validating a workflow runs pydantic over every job and sqlglot over every SQL expression in it:
about a millisecond for a small workflow, tens for a large one. A server answering the same
workflow's detail or lineage page many times a second need not do that again while nothing
changed. Entries are keyed by *what was parsed*, never by a time:

* a registered spec (the JSON in the metadata store) by the digest of its canonical JSON;
* a workflow file by the digest of its bytes (the file is read, which costs microseconds; a
  modification time alone can miss two edits within the file system's clock granularity).

So an edit — through the API, the UI, another process or an editor — is seen by the very next
call. Parsed specs are frozen pydantic models, safe to share between threads.

Example::

    wf = spec_cache(ctx).registered(record.spec)      # Workflow, parsed once per distinct spec
    wf = spec_cache(ctx).file(path)                    # parsed again only when the bytes change
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.spec.workflow import Workflow

MAX_ENTRIES = 4096
T = TypeVar("T")


class SpecCache:
    """A bounded map from content digest to parsed Workflow (least recently used leave first)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._items: OrderedDict[tuple[str, str], Workflow] = OrderedDict()
        self._views: OrderedDict[tuple[str, Callable[[Workflow], Any]], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def registered(self, spec: Mapping[str, Any]) -> Workflow:
        """The Workflow of a registered spec (as the metadata store holds it)."""
        return self._registered(spec, _digest(spec))

    def registered_view(self, spec: Mapping[str, Any], view: Callable[[Workflow], T]) -> T:
        """``view(workflow)`` of a registered spec, made once per distinct spec and ``view``: what a page shows
        that follows from the spec alone (a workflow's jobs with the tables each reads, which sqlglot finds
        in their SQL). The value is shared: treat it as read-only."""
        digest = _digest(spec)
        key = (digest, view)
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                made: T = self._views[key]
                return made
        made = view(self._registered(spec, digest))
        with self._lock:
            self._views[key] = made
            while len(self._views) > self._max:
                self._views.popitem(last=False)
        return made

    def _registered(self, spec: Mapping[str, Any], digest: str) -> Workflow:
        from flowforge.spec.workflow import Workflow

        return self._get(("spec", digest), lambda: Workflow.model_validate(spec))

    def file(self, path: Path) -> Workflow:
        """The Workflow of a YAML file, parsed with file:line errors (never cached: a bad file is parsed
        again on each call, so fixing it is seen at once)."""
        from flowforge.errors import SpecError
        from flowforge.spec import parse_workflow

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpecError("workflow file not found", file=str(path),
                            hint="List workflows with 'flowforge workflows list'.") from None
        digest = hashlib.blake2b(data, digest_size=20).hexdigest()

        def parse() -> Workflow:
            wf: Workflow = parse_workflow(data.decode("utf-8"), str(path))
            return wf

        return self._get((str(path), digest), parse)

    def __len__(self) -> int:
        return len(self._items)

    def _get(self, key: tuple[str, str], make: Callable[[], Workflow]) -> Workflow:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = make()  # outside the lock: parsing one spec does not hold up readers of others
        with self._lock:
            if key[0] != "spec":  # one entry per file: its older contents go at once
                for stale in [k for k in self._items if k[0] == key[0] and k != key]:
                    del self._items[stale]
            self._items[key] = made
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return made


def _digest(spec: Mapping[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(spec, sort_keys=True, default=str).encode(), digest_size=20).hexdigest()


def spec_cache(ctx: Context) -> SpecCache:
    """The cache every view of ``ctx``'s project shares."""
    cache: SpecCache = ctx.shared_cache("parsed_specs", SpecCache)
    return cache

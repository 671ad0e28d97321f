"""What shaped a table, recorded in each of its Delta commits, and what a run does when it changed.

Every bronze, silver and gold commit carries ``flowforge.fingerprint``: the settings of the spec
that produced its rows (casts, derived columns, keys, ``order_by``, SQL, SCD2 settings, the source
and its read options as far as the job knows them), with a digest. A run compares the recorded
settings with the spec's, setting by setting, the way SQLMesh plans a change:

* silver: rebuilt from all of its bronze table in one overwrite commit (history is kept, so time
  travel to the old rows still works);
* gold: recomputed (and never skipped as "up to date" while its settings differ);
* bronze written with ``replace``: the next load replaces the table anyway, so it just goes on;
* bronze written with ``append`` or ``merge``: the rows already there were shaped by the old
  settings and only the source has the rest, so the run refuses and names each setting
  (old → new) until it is run with ``--full-refresh``.

A table committed before fingerprints existed has none: its next commit records one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.connectors.base import Connector
    from flowforge.layers.base import JobContext
    from flowforge.spec.jobs import GoldTable, IngestTable, SilverTable

FINGERPRINT = "fingerprint"  # commit metadata key: flowforge.fingerprint
REBUILT = "rebuilt"  # commit metadata key of a full refresh's commit: the tables reading it rebuild too
# connection settings that change what a read returns (not where it reads from, nor credentials)
READ_OPTIONS = ("format", "delimiter", "quote", "escape", "header", "encoding", "null_values", "columns",
                "comment", "skip_rows", "infer_rows", "sheet", "compression", "dialect", "read_options")


@dataclass(frozen=True)
class Change:
    setting: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.setting}: {_show(self.old)} → {_show(self.new)}"


@dataclass(frozen=True)
class Fingerprint:
    settings: dict[str, Any]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        text = json.dumps(self.settings, sort_keys=True, default=str)
        object.__setattr__(self, "digest", hashlib.sha256(text.encode()).hexdigest()[:16])

    def record(self) -> dict[str, Any]:
        """What goes in the commit metadata."""
        return {"digest": self.digest, "settings": self.settings}

    def changes(self, recorded: Any) -> list[Change]:
        """Settings that differ from a recorded fingerprint (none when nothing was recorded)."""
        if not isinstance(recorded, Mapping) or not isinstance(recorded.get("settings"), Mapping):
            return []
        if recorded.get("digest") == self.digest:
            return []
        old: Mapping[str, Any] = recorded["settings"]
        return [Change(k, old.get(k), self.settings.get(k)) for k in sorted({*old, *self.settings})
                if _norm(old.get(k)) != _norm(self.settings.get(k))]


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    return "unset" if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _flat(values: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting spelled as ``casts.amount`` so that a message names the exact setting."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


# -- what shapes each kind of table -----------------------------------------------------------------

# what a table does when its source's columns change, and ingest casts (whose effect on the landed
# types that policy governs, batch by batch: see layers/schema_drift.py), never force a rebuild
_DRIFT_SETTINGS = {"on_schema_change"}


def silver_fingerprint(spec: SilverTable) -> Fingerprint:
    return Fingerprint(_flat(spec.model_dump(mode="json", exclude_defaults=True,
                                             exclude={"target", "tests", *_DRIFT_SETTINGS})))


def gold_fingerprint(spec: GoldTable) -> Fingerprint:
    # a gold table's tests count: it is skipped while up to date, and a check added to it must still run
    return Fingerprint(_flat(spec.model_dump(mode="json", exclude_defaults=True, exclude={"target"})))


def bronze_fingerprint(spec: IngestTable, connector: Connector | None) -> Fingerprint:
    # sub_microseconds only decides what happens to values no committed row holds (with "error" they were
    # refused, so what landed is whole microseconds under every choice): changing it leaves the table right
    settings = spec.model_dump(mode="json", exclude_defaults=True,
                               exclude={"target", "tests", "batch_size", "write_disposition", "sub_microseconds",
                                        "casts", *_DRIFT_SETTINGS})
    settings["write_disposition"] = spec.disposition
    config = getattr(connector, "config", None)
    if config is not None:
        dumped = config.model_dump(mode="json")
        settings["connection"] = {k: dumped[k] for k in READ_OPTIONS if k in dumped}
    return Fingerprint(_flat(settings))


# -- what a run does about a change ---------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    fingerprint: Fingerprint
    changes: tuple[Change, ...]
    rebuild: bool  # rebuild the table from its sources, in one overwrite commit
    refresh: bool  # asked for by --full-refresh

    def described(self) -> str:
        return "; ".join(str(c) for c in self.changes)


def decide(ctx: JobContext, layer: str, table: str, fingerprint: Fingerprint, recorded: Any) -> Decision:
    """Compare ``fingerprint`` with the one the table's newest commits recorded."""
    refresh = ctx.refresh.rebuilds(table)
    changes = tuple(fingerprint.changes(recorded))
    if changes:
        ctx.note(f"{table}: settings changed since its last commit: {'; '.join(str(c) for c in changes)}")
    return Decision(fingerprint, changes, rebuild=refresh or bool(changes), refresh=refresh)


def refuse(ctx: JobContext, table: str, decision: Decision, why: str) -> None:
    """Stop before anything is read: the change cannot be applied to what the table holds."""
    raise ConfigError(
        f"Table {table}: {decision.described()}. {why}",
        hint=f"Rebuild it from its source with 'flowforge run {ctx.workflow} --full-refresh --select {table}' "
             f"(history is kept: time travel to the old version still works), or undo the change.")


def ignored_for_files(changes: tuple[Change, ...]) -> bool:
    """Changes only in read options (the connection's, or the table's ``read``): the files connector
    reads the files they concern again, each into a fresh version."""
    return all(c.setting.split(".")[0] in ("connection", "read") for c in changes)


def rebuilt_since(dt: DeltaTable, seen: int) -> bool:
    """Whether a commit after version ``seen`` was a full refresh (only those commits are read)."""
    from flowforge.storage.delta import META_PREFIX

    return any(c.get(META_PREFIX + REBUILT) and int(c["version"]) > seen for c in dt.history(dt.version() - seen))

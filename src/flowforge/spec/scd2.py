"""The ``strategy: scd2`` fields shared by silver and gold tables (history of batch sources).

A table with ``strategy: scd2`` keeps one row per version of each key: ``valid_from`` (when
the version began), ``valid_to`` (when the next one began, or the key was deleted; NULL while
current), ``is_current`` and ``_changed_at`` (the newest change folded into the version). A
change in a ``track``ed column opens a new version; a change in any other column updates the
version in place (type 1). Versions start at ``changed_at`` (a
column: ``updated_at``); silver defaults to ``order_by`` and then to the bronze ingestion time,
gold to the run's start time. ``first_valid_from`` names a column whose value starts the *first*
version of a key (``created_at``), so facts older than the first change still find a version.
``close_deleted: true`` treats each input as the full set of live keys: a key missing from it
has its current version closed (silver: keys missing from the newest bronze batch; use it only
with a full, non-incremental ingest).

```yaml
- target: dim_customer
  strategy: scd2
  keys: [customer_id]
  track: [segment, city]
  changed_at: updated_at
  first_valid_from: created_at
  surrogate_key: customer_sk
  sql: SELECT customer_id, full_name, segment, city, created_at, updated_at FROM silver_customers
```

Never two current rows per key, no gaps or overlaps between versions, and replaying the same
input changes nothing: every run rebuilds the history of the keys it touches from their stored
versions and the new rows (deduplicated on key and ``changed_at``), and merges only the
difference.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from flowforge.spec.base import Identifier, SpecModel

SCD2_FIELDS = ("track", "valid_from", "valid_to", "is_current", "changed_at", "first_valid_from", "close_deleted")


class Scd2Fields(SpecModel):
    """Fields of ``strategy: scd2``; refused on tables with another strategy."""

    track: tuple[str, ...] = ()
    valid_from: Identifier = "valid_from"
    valid_to: Identifier = "valid_to"
    is_current: Identifier = "is_current"
    changed_at: str | None = None
    first_valid_from: str | None = None
    close_deleted: bool = False

    @model_validator(mode="after")
    def _scd2_fields(self) -> Any:
        strategy = getattr(self, "strategy", None)
        given = [f for f in SCD2_FIELDS if f in self.model_fields_set]
        if strategy != "scd2":
            if strategy == "replace":  # a gold table rebuilt in full has no use for keys
                given += [f for f in ("keys", "surrogate_key") if f in self.model_fields_set]
            if given:
                raise ValueError(f"{', '.join(given)}: only for 'strategy: scd2'")
            return self
        keys: tuple[str, ...] = getattr(self, "keys", ())
        if not keys:
            raise ValueError("strategy 'scd2' needs 'keys' (the business key whose versions are kept)")
        names = [self.valid_from, self.valid_to, self.is_current]
        if len(set(names)) != 3:
            raise ValueError("valid_from, valid_to and is_current must be three different column names")
        clash = sorted(set(names) & set(keys) | set(names) & set(self.track))
        if clash:
            raise ValueError(f"column(s) {', '.join(clash)} are both a key or tracked column and an SCD2 column")
        overlap = sorted(set(keys) & set(self.track))
        if overlap:
            raise ValueError(f"key column(s) {', '.join(overlap)} cannot also be tracked")
        return self

"""The ``cdc`` job kind: change events into bronze, applied to silver tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from flowforge.quality.spec import ChangeTests
from flowforge.spec.base import Identifier, SpecModel, SqlType
from flowforge.spec.jobs import JobSpec, register_job_kind
from flowforge.spec.maintenance import MaintenancePolicy


class ApplyTable(SpecModel):
    """One silver table kept up to date from the change events of one source table.

    ``strategy: scd1`` keeps the latest state (deletes remove the row, or set ``_is_deleted``
    with ``soft_delete: true``); ``scd2`` keeps every version with ``valid_from``, ``valid_to``,
    ``is_current`` and ``is_deleted`` (changes of a key within one source transaction make one
    version). ``keys`` default to the event key; an update that changes the key removes (or
    closes) the old key and inserts the new one. Column types come from the source's schema
    when events carry it, otherwise text; ``casts`` override them.
    """

    target: Identifier
    source_table: str | None = None
    strategy: Literal["scd1", "scd2"] = "scd1"
    keys: tuple[str, ...] = ()
    soft_delete: bool = False
    columns: tuple[str, ...] | None = None
    casts: dict[str, SqlType] = Field(default_factory=dict)
    tests: ChangeTests = ()


@register_job_kind("cdc")
class CdcJob(JobSpec):
    """Land change events in bronze exactly once, then apply them to silver tables.

    ```yaml
    - name: product_cdc
      kind: cdc
      connection: product_events
      files: "batch=*.jsonl"
      target: bronze_product_cdc
      tables:
        - {target: silver_product, strategy: scd1, keys: [ID], soft_delete: true}
        - {target: silver_product_history, strategy: scd2, keys: [ID]}
      commit_every: 50000      # bronze commits a long read in chunks of this many events
      maintenance: {optimize_every: 50, vacuum_retention: 7d}   # overrides flowforge.yml's
    ```
    """

    kind: Literal["cdc"]
    layer: ClassVar[str] = "bronze"
    connection: Identifier
    files: str | None = None
    target: Identifier
    tables: tuple[ApplyTable, ...] = ()
    # events per decoded batch and per bronze commit: small enough that a run's memory stays flat
    # (about 350 MB at 1M and 10M PostgreSQL changes, bench/cdc_memory.py), large enough for speed
    batch_size: int = Field(10_000, ge=1, le=10_000_000)
    follow_interval: float = Field(1.0, gt=0)
    commit_every: int = Field(50_000, ge=1, le=100_000_000)
    maintenance: MaintenancePolicy | None = None

    @model_validator(mode="after")
    def _distinct(self) -> CdcJob:
        names = [self.target, *(t.target for t in self.tables)]
        if len(names) != len(set(names)):
            raise ValueError("the bronze target and every silver target must have different names")
        return self

    def outputs(self) -> tuple[str, ...]:
        return (self.target, *(t.target for t in self.tables))

    def lineage_pairs(self, source_node: Callable[[str, str], str]) -> list[tuple[str, str]]:
        """(source, target) table edges: the change stream into bronze, bronze into each silver table."""
        return [(source_node(self.connection, self.files or "events"), self.target),
                *((self.target, t.target) for t in self.tables)]

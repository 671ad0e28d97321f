"""The ``export`` job kind: dated staging snapshots of a connection or a lakehouse layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field

from flowforge.spec.base import Identifier
from flowforge.spec.jobs import JobSpec, register_job_kind

LAYER_NAMES = ("bronze", "silver", "gold")


@register_job_kind("export")
class ExportJob(JobSpec):
    """Write ``<to>/snapshot_date=YYYY-MM-DD/<table>.<csv|parquet>``, ``_metadata.json`` and, last,
    ``_SUCCESS``. ``source`` is a connection (all tables of its schema unless ``tables`` lists them;
    PostgreSQL reads them all in one snapshot) or a lakehouse layer (``bronze``, ``silver``,
    ``gold``: then ``tables`` are lakehouse tables and the job runs after the jobs that write them).
    A second export of a day replaces the first atomically (local folders) or goes to a new attempt
    folder (object stores; ``if_exists: new_attempt`` asks for that locally too).

    ```yaml
    - name: staging_snapshot
      kind: export
      source: shop_db
      to: data/staging             # a folder under a data root (flowforge.yml: data_roots), or s3://bucket/prefix
      format: csv
    - name: gold_extract
      kind: export
      source: gold
      tables: [dim_customer, fact_orders]
      to: s3://exports/shop
      format: parquet
    ```
    """

    kind: Literal["export"]
    layer: ClassVar[str] = "export"
    source: Identifier
    to: str = Field(min_length=1)
    tables: tuple[str, ...] = ()
    format: Literal["csv", "parquet"] = "csv"
    if_exists: Literal["replace", "new_attempt", "fail"] | None = None
    parallel: int = Field(2, ge=1, le=8)

    def outputs(self) -> tuple[str, ...]:
        return ()

    def inputs(self) -> tuple[str, ...]:
        return self.tables if self.source in LAYER_NAMES else ()

    def lineage_pairs(self, source_node: Callable[[str, str], str]) -> list[tuple[str, str]]:
        return []  # files, not tables: nothing for the table lineage

"""The ``publish`` job kind: lakehouse tables copied into a PostgreSQL schema for BI tools."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from flowforge.spec.base import Identifier, SpecModel
from flowforge.spec.jobs import JobSpec, register_job_kind


class PublishTable(SpecModel):
    """One lakehouse table and how it appears in the warehouse.

    ``keys`` become the primary key and let later publishes send only the rows that changed since
    the version last published; ``indexes`` are columns (or lists of columns) to index, such as a
    dimension's business key or a fact's foreign keys; ``description`` and ``columns`` become
    ``COMMENT ON`` text (columns without one get their type and origin). ``mode: full`` always
    reloads the whole table.
    """

    table: Identifier
    target: Identifier | None = None
    keys: tuple[str, ...] = ()  # column names: any text, quoted where they are used
    indexes: tuple[str | tuple[str, ...], ...] = ()
    description: str = ""
    columns: dict[str, str] = Field(default_factory=dict)
    mode: Literal["auto", "full"] = "auto"

    @field_validator("indexes", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return value

    @property
    def name(self) -> str:
        return self.target or self.table


@register_job_kind("publish")
class PublishJob(JobSpec):
    """Copy lakehouse tables (gold, usually) into a PostgreSQL schema where Metabase, Superset or
    Power BI read them. Each table is replaced atomically (loaded under another name, then swapped
    in one transaction) or, when it has ``keys`` and was published before, updated with only the
    rows that changed, also in one transaction: readers never see a half-loaded table. The Delta
    version each table was published from is kept in ``<schema>._flowforge_published``, in the
    same transaction as the rows.

    ```yaml
    - name: publish_warehouse
      kind: publish
      connection: warehouse          # a postgres connection allowed to create tables in the schema
      target_schema: warehouse
      tables:
        - {table: dim_customer, keys: [customer_sk], indexes: [customer_id, is_current],
           description: "Customers, one row per version"}
        - {table: fact_orders, keys: [order_id], indexes: [customer_sk, date_key]}
        - {table: mart_monthly_revenue}
    ```
    """

    kind: Literal["publish"]
    layer: ClassVar[str] = "publish"
    connection: Identifier
    target_schema: Identifier = "warehouse"
    tables: tuple[PublishTable, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PublishJob:
        names = [t.name for t in self.tables]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"warehouse table(s) {', '.join(twice)} are published twice")
        return self

    def outputs(self) -> tuple[str, ...]:
        return ()

    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.table for t in self.tables))

    def lineage_pairs(self, source_node: Callable[[str, str], str]) -> list[tuple[str, str]]:
        return []  # the warehouse copies are not lakehouse tables

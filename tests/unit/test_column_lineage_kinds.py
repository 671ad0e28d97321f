"""Column lineage of every job kind from its spec and the tables' schemas (no run needed)."""

from __future__ import annotations

from typing import Any

from flowforge.lineage.columns import ColumnRef, job_column_edges, trace, workflow_column_edges
from flowforge.spec.workflow import Workflow

SCHEMAS: dict[str, list[str]] = {
    "bronze_products": ["id", "name", "price", "updated_at", "_batch_id", "_ingestion_time", "_source_system",
                        "_source_file", "_file_modified_time"],
    "silver_products": ["id", "name", "price", "updated_at", "label", "valid_from", "valid_to", "is_current",
                        "_batch_id", "_silver_updated_at"],
    "dim_product": ["product_sk", "id", "name", "price_band", "valid_from", "valid_to", "is_current"],
    "product_embeddings": ["id", "_text", "_text_hash", "_embedding", "_model"],
}


def _wf(*jobs: dict[str, Any]) -> Workflow:
    return Workflow.model_validate({"name": "shop", "jobs": list(jobs)})


def _edges(wf: Workflow) -> set[tuple[str, str, str, str, str]]:
    return {(str(e.source), str(e.target), e.type, e.subtype, e.job) for e in workflow_column_edges(wf, SCHEMAS.get)}


WF = _wf(
    {"name": "ingest", "kind": "ingest", "connection": "shop_db",
     "tables": [{"table": "public.products", "target": "bronze_products"}]},
    {"name": "silver", "kind": "silver", "tables": [{
        "target": "silver_products", "source": "bronze_products", "strategy": "scd2", "keys": ["id"],
        "changed_at": "updated_at", "casts": {"price": "DECIMAL(10,2)"}, "derived": {"label": "upper(name)"}}]},
    {"name": "dims", "kind": "gold", "tables": [{
        "target": "dim_product", "strategy": "scd2", "keys": ["id"], "surrogate_key": "product_sk",
        "sql": "SELECT id, name, CASE WHEN price > 100 THEN 'high' ELSE 'low' END AS price_band "
               "FROM silver_products WHERE is_current"}]},
    {"name": "embed", "kind": "embed", "source": "silver_products", "target": "product_embeddings", "key": "id",
     "text": "{name}: {label}", "serve": {"pgvector": {"connection": "pg", "table": "ai.products"}}},
    {"name": "publish", "kind": "publish", "connection": "warehouse", "target_schema": "bi",
     "tables": [{"table": "dim_product", "keys": ["product_sk"]}]},
    {"name": "extract", "kind": "export", "source": "gold", "tables": ["dim_product"], "to": "s3://exports/shop",
     "format": "parquet"},
)


def test_ingest_maps_source_columns_one_to_one_without_audit_columns() -> None:
    edges = {e for e in _edges(WF) if e[4] == "ingest"}
    assert edges == {(f"shop_db.public.products.{c}", f"bronze_products.{c}", "DIRECT", "IDENTITY", "ingest")
                     for c in ("id", "name", "price", "updated_at")}


def test_silver_casts_derived_and_scd2_columns() -> None:
    edges = {e[:4] for e in _edges(WF) if e[4] == "silver"}
    assert ("bronze_products.price", "silver_products.price", "DIRECT", "TRANSFORMATION") in edges
    assert ("bronze_products.name", "silver_products.label", "DIRECT", "TRANSFORMATION") in edges
    assert ("bronze_products.updated_at", "silver_products.valid_from", "DIRECT", "TRANSFORMATION") in edges
    assert ("bronze_products.id", "silver_products.*", "INDIRECT", "GROUP_BY") in edges
    assert not any(t.endswith(("._batch_id", "._silver_updated_at", ".is_current")) for _, t, *_ in edges)


def test_gold_sql_conditional_columns_and_filters() -> None:
    edges = {e[:4] for e in _edges(WF) if e[4] == "dims"}
    assert ("silver_products.price", "dim_product.price_band", "DIRECT", "TRANSFORMATION") in edges
    assert ("silver_products.name", "dim_product.name", "DIRECT", "IDENTITY") in edges
    assert ("silver_products.is_current", "dim_product.*", "INDIRECT", "FILTER") in edges


def test_embed_publish_and_export_carry_their_columns() -> None:
    edges = {e[:2] + e[3:4] for e in _edges(WF) if e[4] in ("embed", "publish", "extract")}
    assert {("silver_products.id", "product_embeddings.id", "IDENTITY"),
            ("silver_products.name", "product_embeddings._embedding", "TRANSFORMATION"),
            ("silver_products.label", "product_embeddings._text", "TRANSFORMATION"),
            ("product_embeddings._embedding", "pg.ai.products._embedding", "IDENTITY"),
            ("dim_product.price_band", "warehouse.bi.dim_product.price_band", "IDENTITY"),
            ("dim_product.product_sk", "s3://exports/shop/dim_product.product_sk", "IDENTITY")} <= edges


def test_a_column_traces_from_the_warehouse_back_to_the_source() -> None:
    edges = workflow_column_edges(WF, SCHEMAS.get)
    up = [(str(e.source), d) for e, d in trace(edges, ColumnRef("sink:warehouse.bi.dim_product", "price_band"),
                                                 "upstream")]
    assert up == [("dim_product.price_band", 1), ("silver_products.price", 2), ("bronze_products.price", 3),
                  ("shop_db.public.products.price", 4)]


def test_unknown_schemas_and_untraceable_sql_give_no_edges_instead_of_errors() -> None:
    wf = _wf({"name": "g", "kind": "gold", "tables": [{"target": "t", "sql": "SELECT * FROM nowhere"}]})
    assert job_column_edges(wf.jobs[0], lambda name: None) == []
    blind = workflow_column_edges(WF, lambda name: None)  # before any run: what the SQL and spec say
    assert {e.job for e in blind} == {"dims", "embed"}
    assert ("silver_products.price", "dim_product.price_band") in {(str(e.source), str(e.target)) for e in blind}


def test_dataset_names_follow_the_openlineage_naming_spec() -> None:
    from flowforge.connectors.config import parse_connection
    from flowforge.lineage.openlineage import connection_dataset, location_dataset

    def name(config: dict[str, Any], what: str) -> tuple[str, str]:
        return connection_dataset(parse_connection(config), what, lambda p: f"/project/{p}")

    assert name({"type": "postgres", "url": "postgresql://u:secret@db1:5433/shop"}, "sales.orders") == (
        "postgres://db1:5433", "shop.sales.orders")
    assert name({"type": "postgres", "host": "db1", "database": "shop"}, "orders") == (
        "postgres://db1:5432", "shop.public.orders")
    assert name({"type": "mysql", "url": "mysql://root:pw@127.0.0.1:3306/crm"}, "contacts") == (
        "mysql://127.0.0.1:3306", "crm.contacts")
    assert name({"type": "sqlserver", "host": "mssql1", "port": 1433, "database": "BFSI_Test", "user": "sa",
                 "password": "pw"}, "accounts") == ("sqlserver://mssql1:1433", "BFSI_Test.dbo.accounts")
    assert name({"type": "sqlite", "path": "data/bfsi.db"}, "accounts") == ("sqlite", "/project/data/bfsi.db.accounts")
    assert name({"type": "files", "path": "data/crm", "format": "csv"}, "*.csv") == ("file", "/project/data/crm/*.csv")
    assert name({"type": "files", "path": "s3://landing/crm", "format": "csv"}, "*.csv") == (
        "s3://landing", "crm/*.csv")
    assert name({"type": "kafka", "bootstrap_servers": "k1:9092,k2:9092", "topics": ["cord.dbo.Product"],
                 "group_id": "ff"}, "events") == ("kafka://k1:9092", "cord.dbo.Product")
    assert location_dataset("s3://lake/prod/gold/gold_customer_360") == ("s3://lake", "prod/gold/gold_customer_360")
    assert location_dataset("/srv/lake/gold/gold_customer_360") == ("file", "/srv/lake/gold/gold_customer_360")
    secret = [name({"type": "postgres", "url": "postgresql://u:secret@db1:5433/shop"}, "t")]
    assert "secret" not in repr(secret)


def test_a_source_query_traces_its_columns_to_the_tables_it_reads() -> None:
    wf = _wf({"name": "ingest", "kind": "ingest", "connection": "core", "tables": [{
        "query": "SELECT a.account_id, a.balance * 100 AS balance_cents, c.email FROM dbo.accounts a "
                 "JOIN dbo.customers c ON c.customer_id = a.customer_id",
        "target": "bronze_accounts_wide"}]})
    schemas = {"bronze_accounts_wide": ["account_id", "balance_cents", "email", "_batch_id"]}
    edges = {(str(e.source), str(e.target), e.subtype) for e in workflow_column_edges(wf, schemas.get)}
    assert edges == {("core.dbo.accounts.account_id", "bronze_accounts_wide.account_id", "IDENTITY"),
                     ("core.dbo.accounts.balance", "bronze_accounts_wide.balance_cents", "TRANSFORMATION"),
                     ("core.dbo.customers.email", "bronze_accounts_wide.email", "IDENTITY")}

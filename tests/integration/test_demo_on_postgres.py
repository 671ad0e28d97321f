"""The same BFSI workflow against a real PostgreSQL source and PostgreSQL metadata."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from tests.e2e.helpers import cents, flowforge, table

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _reference(url: str) -> dict[int, tuple[int, int, int, int]]:
    with psycopg.connect(url) as con:
        rows = con.execute("""
            SELECT c.customer_id,
                   (SELECT count(*) FROM bfsi.accounts a WHERE a.customer_id = c.customer_id),
                   (SELECT coalesce(sum(a.balance), 0) FROM bfsi.accounts a WHERE a.customer_id = c.customer_id),
                   (SELECT count(*) FROM bfsi.transactions t JOIN bfsi.accounts a USING (account_id)
                     WHERE a.customer_id = c.customer_id),
                   (SELECT coalesce(sum(t.amount), 0) FROM bfsi.transactions t JOIN bfsi.accounts a
                     USING (account_id) WHERE a.customer_id = c.customer_id)
            FROM bfsi.customers c""").fetchall()
    return {r[0]: (r[1], cents(Decimal(r[2])), r[3], cents(Decimal(r[4]))) for r in rows}


def _gold(project: Path) -> dict[int, tuple[int, int, int, int]]:
    return {r["customer_id"]: (r["account_count"], cents(r["total_balance"]), r["transaction_count"],
                               cents(r["total_transaction_amount"]))
            for r in table(project, "gold", "gold_customer_360")}


def test_bfsi_on_postgres_source_and_metadata(tmp_path: Path, pg_database: str, pg_metadata_database: str) -> None:
    project = tmp_path / "pgdemo"
    env = {"FLOWFORGE_METADATA_URL": pg_metadata_database.replace("postgresql://", "postgresql+psycopg://")}
    out = flowforge("demo", "--dir", str(project), "--postgres", pg_database, env=env).stdout
    assert "SUCCESS" in out
    assert "type: postgres" in (project / "flowforge.yml").read_text()
    assert _gold(project) == _reference(pg_database)
    bronze = table(project, "bronze", "bronze_core_accounts")
    assert bronze[0]["_source_system"] == "postgres:core_banking"

    flowforge("demo", "change", "--dir", str(project), env=env)
    out = flowforge("run", "bfsi_customer_360", project=project, env=env).stdout
    assert "bronze_core_customers: 35 rows (v1)" in out
    assert _gold(project) == _reference(pg_database)
    silver = table(project, "silver", "silver_customer_master")
    assert len(silver) == len({r["customer_id"] for r in silver}) == 510
    # the run history lives in PostgreSQL, not in a local SQLite file
    assert not (project / ".flowforge" / "metadata.db").exists()
    with psycopg.connect(pg_metadata_database) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY id").fetchall()]
    assert statuses == ["success", "success"]

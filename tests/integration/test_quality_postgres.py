"""The BFSI template's tests against a live PostgreSQL source: they pass on the demo data, and an
orphan account inserted in PostgreSQL stops the silver job before it commits anything."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from deltalake import DeltaTable
from tests.e2e.helpers import flowforge

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_bfsi_tests_on_a_postgres_source(tmp_path: Path, pg_database: str) -> None:
    project = tmp_path / "pgdemo"
    out = flowforge("demo", "--dir", str(project), "--postgres", pg_database).stdout
    assert "Tests: PASS=12 WARN=0 ERROR=0" in out
    for line in ("PASS  relationships(customer_id → silver_customer_master.customer_id)",
                 "PASS  relationships(account_id → silver_accounts.account_id)",
                 "PASS  unique(transaction_id)", "PASS  not_null(customer_id)"):
        assert line in out, out
    tested = flowforge("test", project=project).stdout
    assert "Done. PASS=12 WARN=0 ERROR=0 SKIP=0 TOTAL=12" in tested

    # the source stops enforcing its foreign key, and an account of an unknown customer arrives
    with psycopg.connect(pg_database) as con:
        con.execute("ALTER TABLE bfsi.accounts DROP CONSTRAINT IF EXISTS accounts_customer_id_fkey")
        con.execute("""INSERT INTO bfsi.accounts (account_id, customer_id, account_type, balance, credit_limit,
                              interest_rate, open_date, status, last_transaction_date, modified_date)
                       SELECT account_id + 100000, 987654, account_type, balance, credit_limit, interest_rate,
                              open_date, status, last_transaction_date,
                              (SELECT max(modified_date) FROM bfsi.accounts) + interval '1 day'
                       FROM bfsi.accounts ORDER BY account_id LIMIT 1""")
    silver = project / "lakehouse" / "silver" / "silver_accounts"
    before = DeltaTable(str(silver)).version()
    failed = flowforge("run", "bfsi_customer_360", project=project, check=False)
    assert failed.returncode == 1
    assert "test relationships(customer_id → silver_customer_master.customer_id) failed: 1 of 1 checked row(s) " \
           "fail" in failed.stdout
    assert "'customer_id': 987654" in failed.stdout
    assert DeltaTable(str(silver)).version() == before
    assert "SKIP" in failed.stdout  # gold waits for a silver job that passes its tests

"""The BFSI demo data loaded into a real PostgreSQL server.

The module works in its own throw-away database (``flowforge_demo_test_<random>``) on the
server at FLOWFORGE_TEST_PG_URL, dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from flowforge.demo import BfsiData, generate, mutate_postgres, mutate_sqlite, write_postgres, write_sqlite
from flowforge.demo.loaders import libpq_url
from flowforge.errors import ConnectionFailed, SourceNotFound

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.postgres

PG_URL = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEMA = "core_banking"
TABLES = ("customers", "accounts", "transactions")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = f"flowforge_demo_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(libpq_url(PG_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if "FLOWFORGE_TEST_PG_URL" in os.environ:
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_URL!r} ({exc}); set FLOWFORGE_TEST_PG_URL")
    with admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        try:
            yield _with_database(PG_URL, name)
        finally:
            drop = psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(psycopg.sql.Identifier(name)))


@pytest.fixture(scope="module")
def data() -> BfsiData:
    return generate(scale=1.0, seed=42, as_of=dt.date(2025, 11, 8))


@pytest.fixture
def loaded(pg_url: str, data: BfsiData) -> str:
    write_postgres(data, pg_url, schema=SCHEMA)
    return pg_url


def _scalar(url: str, query: str, *params: object) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def test_counts_and_exact_balance_sum(loaded: str, data: BfsiData) -> None:
    for table in TABLES:
        assert _scalar(loaded, f"SELECT COUNT(*) FROM {SCHEMA}.{table}") == data.table(table).num_rows
    expected = sum(data.accounts.column("balance").to_pylist(), Decimal(0))
    assert _scalar(loaded, f"SELECT SUM(balance) FROM {SCHEMA}.accounts") == expected


def test_columns_have_real_postgres_types(loaded: str) -> None:
    with psycopg.connect(loaded) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s",
            (SCHEMA,),
        ).fetchall()
        constraints = conn.execute(
            "SELECT tc.table_name, tc.constraint_type FROM information_schema.table_constraints tc "
            "WHERE tc.table_schema = %s AND tc.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')",
            (SCHEMA,),
        ).fetchall()
        index_rows = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (SCHEMA,))
        indexes = {r[0] for r in index_rows}
    types = {(r[0], r[1]): r[2:] for r in rows}
    assert types["accounts", "balance"] == ("numeric", 15, 2, "NO")
    assert types["accounts", "credit_limit"] == ("numeric", 15, 2, "YES")
    assert types["accounts", "interest_rate"][:3] == ("numeric", 5, 4)
    assert types["transactions", "amount"][:3] == ("numeric", 15, 2)
    assert types["customers", "dob"][0] == "date"
    assert types["transactions", "transaction_time"][0] == "time without time zone"
    for table in TABLES:
        assert types[table, "modified_date"][0] == "timestamp without time zone"
        assert f"ix_{table}_modified_date" in indexes
    assert sorted(constraints) == [
        ("accounts", "FOREIGN KEY"), ("accounts", "PRIMARY KEY"), ("customers", "PRIMARY KEY"),
        ("transactions", "FOREIGN KEY"), ("transactions", "PRIMARY KEY"),
    ]


def test_values_round_trip_exactly(loaded: str, data: BfsiData) -> None:
    expected = data.transactions.slice(0, 1).to_pylist()[0]
    with psycopg.connect(loaded) as conn:
        cur = conn.execute(f"SELECT * FROM {SCHEMA}.transactions WHERE transaction_id = 1")
        got = dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))
        nulls = conn.execute(
            f"SELECT COUNT(*) FROM {SCHEMA}.accounts WHERE credit_limit IS NULL"
        ).fetchone()[0]
    assert got == expected
    assert nulls == data.accounts.column("credit_limit").null_count


def test_reload_replaces_tables_and_accepts_sqlalchemy_urls(pg_url: str) -> None:
    small = generate(scale=0.1, seed=5, as_of=dt.date(2025, 11, 8))
    write_postgres(small, pg_url.replace("postgresql://", "postgresql+psycopg://", 1), schema="reload_test")
    assert _scalar(pg_url, "SELECT COUNT(*) FROM reload_test.customers") == 50
    write_postgres(small, pg_url, schema="reload_test")
    assert _scalar(pg_url, "SELECT COUNT(*) FROM reload_test.transactions") == 500


def test_mutate_postgres_changes_exactly_what_it_reports(loaded: str) -> None:
    before = {t: _scalar(loaded, f"SELECT MAX(modified_date) FROM {SCHEMA}.{t}") for t in TABLES}
    counts = {t: _scalar(loaded, f"SELECT COUNT(*) FROM {SCHEMA}.{t}") for t in TABLES}
    summary = mutate_postgres(loaded, SCHEMA, seed=1)
    assert (summary.customers_inserted, summary.customers_updated, summary.accounts_updated) == (10, 25, 25)
    assert summary.transactions_inserted >= 200 + summary.accounts_inserted
    assert dict(summary.previous_max_modified) == before
    for table in TABLES:
        query = f"SELECT COUNT(*) FROM {SCHEMA}.{table} WHERE modified_date > %s"
        changed = _scalar(loaded, query, before[table])
        assert changed == summary.changed(table), table
    assert _scalar(loaded, f"SELECT COUNT(*) FROM {SCHEMA}.customers") == counts["customers"] + 10
    assert _scalar(loaded, f"SELECT COUNT(*) FROM {SCHEMA}.transactions") == (
        counts["transactions"] + summary.transactions_inserted
    )


def test_mutate_postgres_makes_the_same_changes_as_mutate_sqlite(
    loaded: str, data: BfsiData, tmp_path: Path
) -> None:
    lite = tmp_path / "bfsi.db"
    write_sqlite(data, lite)
    assert mutate_postgres(loaded, SCHEMA, seed=9) == mutate_sqlite(lite, seed=9)
    customers = "SELECT customer_id, email, customer_segment, credit_score FROM {}customers ORDER BY 1"
    accounts = "SELECT account_id, CAST(balance AS TEXT), status FROM {}accounts ORDER BY 1"
    with psycopg.connect(loaded) as pg, closing(sqlite3.connect(lite)) as sq:
        pg_customers = pg.execute(customers.format(f"{SCHEMA}.")).fetchall()
        assert pg_customers == sq.execute(customers.format("")).fetchall()
        pg_accounts = pg.execute(accounts.format(f"{SCHEMA}.")).fetchall()
        sq_accounts = sq.execute(accounts.format("")).fetchall()
    # SQLite keeps NUMERIC as REAL, so compare balances as decimals rather than as text.
    assert [(a, Decimal(b), s) for a, b, s in pg_accounts] == [
        (a, Decimal(b).quantize(Decimal("0.01")), s) for a, b, s in sq_accounts
    ]


def test_mutate_postgres_on_a_missing_schema_says_so(pg_url: str) -> None:
    with pytest.raises(SourceNotFound, match="no_such_schema"):
        mutate_postgres(pg_url, "no_such_schema", seed=1)


def test_unreachable_server_is_a_connection_failure_without_the_password(data: BfsiData) -> None:
    url = "postgresql://flowforge:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(ConnectionFailed) as info:
        write_postgres(data, url)
    assert "s3cret-pw" not in str(info.value)
    assert "127.0.0.1" in str(info.value)

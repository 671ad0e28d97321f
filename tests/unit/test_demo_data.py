"""The BFSI demo data: deterministic, shaped like the original database, exact money types."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flowforge.demo import DDL, BfsiData, generate, mutate_sqlite, write_crm_csv, write_sqlite
from flowforge.errors import SourceNotFound

AS_OF = dt.date(2025, 11, 8)
TABLES = ("customers", "accounts", "transactions")


@pytest.fixture(scope="module")
def data() -> BfsiData:
    return generate(scale=1.0, seed=42, as_of=AS_OF)


@pytest.fixture
def db(data: BfsiData, tmp_path: Path) -> Path:
    path = tmp_path / "bfsi.db"
    write_sqlite(data, path)
    return path


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path)) as conn:
        yield conn


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def test_same_arguments_give_identical_tables(data: BfsiData) -> None:
    again = generate(scale=1.0, seed=42, as_of=AS_OF)
    for name in ("customers", "accounts", "transactions", "crm"):
        assert again.table(name).equals(data.table(name)), name


def test_a_different_seed_gives_different_data(data: BfsiData) -> None:
    other = generate(scale=1.0, seed=7, as_of=AS_OF)
    assert other.customers.num_rows == data.customers.num_rows
    assert not other.customers.equals(data.customers)
    assert not other.transactions.equals(data.transactions)


def test_row_counts_at_scale_one(data: BfsiData) -> None:
    assert (data.customers.num_rows, data.accounts.num_rows, data.transactions.num_rows) == (500, 750, 5000)
    assert column(data.crm, "customer_id") == column(data.customers, "customer_id") == list(range(1, 501))


def test_scale_two_doubles_every_table() -> None:
    big = generate(scale=2.0, seed=42, as_of=AS_OF)
    assert (big.customers.num_rows, big.accounts.num_rows, big.transactions.num_rows, big.crm.num_rows) == (
        1000, 1500, 10000, 1000,
    )


def test_segments_are_exactly_300_150_50(data: BfsiData) -> None:
    segments = Counter(column(data.customers, "customer_segment"))
    assert segments == {"retail": 300, "corporate": 150, "wealth": 50}


def test_segment_averages_follow_the_original_database(data: BfsiData) -> None:
    rows = data.customers.select(["customer_segment", "credit_score", "annual_income"]).to_pylist()
    seed_averages = (("retail", 662, 54_859), ("corporate", 737, 137_088), ("wealth", 804, 581_846))
    for segment, score, income in seed_averages:
        mine = [r for r in rows if r["customer_segment"] == segment]
        assert abs(sum(r["credit_score"] for r in mine) / len(mine) - score) < 15
        assert abs(float(sum(r["annual_income"] for r in mine)) / len(mine) / income - 1) < 0.15
        assert all(300 <= r["credit_score"] <= 850 for r in mine)


def test_account_status_shares_are_about_90_5_5(data: BfsiData) -> None:
    shares = {k: v / data.accounts.num_rows for k, v in Counter(column(data.accounts, "status")).items()}
    assert shares["active"] == pytest.approx(0.90, abs=0.02)
    assert shares["closed"] == pytest.approx(0.05, abs=0.02)
    assert shares["suspended"] == pytest.approx(0.05, abs=0.02)


def test_account_types_and_credit_limits(data: BfsiData) -> None:
    rows = data.accounts.to_pylist()
    kinds = Counter(r["account_type"] for r in rows)
    assert set(kinds) == {"checking", "savings", "credit", "loan"}
    assert kinds["checking"] > kinds["savings"] > kinds["credit"] > kinds["loan"]
    for r in rows:
        assert (r["credit_limit"] is not None) == (r["account_type"] == "credit")
        if r["credit_limit"] is not None:
            assert 0 < r["balance"] <= r["credit_limit"]


def test_foreign_keys_and_dates_hold(data: BfsiData) -> None:
    customers = {r["customer_id"]: r for r in data.customers.to_pylist()}
    accounts = {r["account_id"]: r for r in data.accounts.to_pylist()}
    assert {a["customer_id"] for a in accounts.values()} == set(customers)  # everyone has an account
    for a in accounts.values():
        assert a["open_date"] >= customers[a["customer_id"]]["account_open_date"]
    window_start = AS_OF - dt.timedelta(days=90)
    for t in data.transactions.select(["account_id", "transaction_date"]).to_pylist():
        assert t["account_id"] in accounts
        assert window_start <= t["transaction_date"] < AS_OF


def test_emails_are_unique(data: BfsiData) -> None:
    emails = column(data.customers, "email")
    assert len(set(emails)) == len(emails)


def test_modified_dates_are_before_as_of_midnight(data: BfsiData) -> None:
    midnight = dt.datetime.combine(AS_OF, dt.time())
    for name in ("customers", "accounts", "transactions"):
        values = column(data.table(name), "modified_date")
        assert max(values) < midnight, name
        assert any(v.microsecond for v in values), "microsecond precision is exercised"


def test_transactions_mix_small_debits_and_large_credits(data: BfsiData) -> None:
    amounts = column(data.transactions, "amount")
    debits, credits = [a for a in amounts if a < 0], [a for a in amounts if a > 0]
    assert 0.45 < len(debits) / len(amounts) < 0.65
    assert -300 < sum(debits) / len(debits) < -150
    assert 1500 < sum(credits) / len(credits) < 2500
    assert Counter(column(data.transactions, "status")).most_common(1)[0][0] == "completed"
    merchants = set(column(data.transactions, "merchant"))
    assert {"McDonalds", "Amazon", "Whole Foods", "Wire Transfer"} <= merchants


def test_money_and_types_are_exact(data: BfsiData) -> None:
    for name in ("customers", "accounts", "transactions", "crm"):
        assert data.table(name).schema.equals(DDL[name].arrow_schema()), name
        assert data.table(name).column_names == list(DDL[name].column_names)
    for name, col in (("customers", "annual_income"), ("accounts", "balance"), ("accounts", "credit_limit"),
                      ("transactions", "amount")):
        assert data.table(name).schema.field(col).type == pa.decimal128(15, 2)
    assert data.crm.schema.field("lifetime_value").type == pa.decimal128(12, 2)
    assert data.accounts.schema.field("interest_rate").type == pa.decimal128(5, 4)
    assert data.customers.schema.field("customer_id").type == pa.int64()
    assert data.customers.schema.field("credit_score").type == pa.int32()
    assert data.transactions.schema.field("transaction_time").type == pa.time64("us")
    assert data.transactions.schema.field("modified_date").type == pa.timestamp("us")
    assert all(isinstance(v, Decimal) for v in column(data.accounts, "balance"))


def test_write_sqlite_round_trips_counts_and_exact_balance_sum(data: BfsiData, db: Path) -> None:
    with _open(db) as conn:
        for name in ("customers", "accounts", "transactions"):
            assert conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] == data.table(name).num_rows
        (total,) = conn.execute("SELECT ROUND(SUM(balance), 2) FROM accounts").fetchone()
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'accounts'").fetchone()[0]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        row = conn.execute(
            "SELECT transaction_date, transaction_time, modified_date FROM transactions "
            "WHERE transaction_id = 1"
        ).fetchone()
    assert Decimal(f"{total:.2f}") == sum(column(data.accounts, "balance"), Decimal(0))
    assert "balance DECIMAL(15,2)" in ddl and "modified_date TIMESTAMP" in ddl and "FOREIGN KEY" in ddl
    assert {f"ix_{t}_modified_date" for t in ("customers", "accounts", "transactions")} <= indexes
    first = data.transactions.slice(0, 1).to_pylist()[0]
    assert row == (
        first["transaction_date"].isoformat(),
        first["transaction_time"].strftime("%H:%M:%S"),
        first["modified_date"].isoformat(sep=" ", timespec="microseconds"),
    )


def test_write_sqlite_replaces_existing_tables(data: BfsiData, db: Path) -> None:
    small = generate(scale=0.1, seed=1, as_of=AS_OF)
    write_sqlite(small, db)
    with _open(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 50


def test_crm_csv_has_header_iso_dates_exact_decimals_and_booleans(data: BfsiData, tmp_path: Path) -> None:
    path = tmp_path / "crm_customers.csv"
    write_crm_csv(data, path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 500
    assert list(rows[0]) == list(DDL["crm"].column_names)
    expected = data.crm.slice(0, 1).to_pylist()[0]
    assert rows[0]["crm_id"] == "CRM-000001"
    assert Decimal(rows[0]["lifetime_value"]) == expected["lifetime_value"]
    assert rows[0]["last_contact_date"] == expected["last_contact_date"].isoformat()
    assert {r["marketing_opt_in"] for r in rows} == {"true", "false"}


def _max_modified(conn: sqlite3.Connection) -> dict[str, str]:
    return {t: conn.execute(f"SELECT MAX(modified_date) FROM {t}").fetchone()[0] for t in TABLES}


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_mutate_sqlite_changes_exactly_what_it_reports(db: Path) -> None:
    with _open(db) as conn:
        before, counts = _max_modified(conn), _counts(conn)
    summary = mutate_sqlite(db, seed=1)
    assert (summary.customers_inserted, summary.customers_updated, summary.accounts_updated) == (10, 25, 25)
    assert summary.accounts_inserted >= 10
    assert summary.transactions_inserted >= 200 + summary.accounts_inserted
    with _open(db) as conn:
        after = _counts(conn)
        for table in ("customers", "accounts", "transactions"):
            changed = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE modified_date > ?", (before[table],)
            ).fetchone()[0]
            assert changed == summary.changed(table), table
        orphans = conn.execute(
            "SELECT COUNT(*) FROM transactions t LEFT JOIN accounts a USING (account_id) "
            "WHERE a.account_id IS NULL"
        ).fetchone()[0]
        emails = conn.execute("SELECT COUNT(*), COUNT(DISTINCT email) FROM customers").fetchone()
    assert after["customers"] == counts["customers"] + 10
    assert after["accounts"] == counts["accounts"] + summary.accounts_inserted
    assert after["transactions"] == counts["transactions"] + summary.transactions_inserted
    assert orphans == 0
    assert emails[0] == emails[1]


def test_mutate_sqlite_is_repeatable_and_moves_forward(data: BfsiData, tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    write_sqlite(data, a)
    write_sqlite(data, b)
    assert mutate_sqlite(a, seed=3) == mutate_sqlite(b, seed=3)
    with _open(a) as ca, _open(b) as cb:
        dump = "SELECT * FROM customers ORDER BY customer_id"
        assert ca.execute(dump).fetchall() == cb.execute(dump).fetchall()
        first = _max_modified(ca)
    second = mutate_sqlite(a, seed=3, new_customers=0, updated_customers=5, updated_accounts=0,
                           new_transactions=0)
    assert (second.customers_inserted, second.customers_updated, second.transactions_inserted) == (0, 5, 0)
    with _open(a) as conn:
        changed = conn.execute(
            "SELECT COUNT(*) FROM customers WHERE modified_date > ?", (first["customers"],)
        ).fetchone()[0]
    assert changed == 5


def test_mutate_sqlite_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="does not exist"):
        mutate_sqlite(tmp_path / "nope.db", seed=1)
    assert not (tmp_path / "nope.db").exists()


def test_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(scale=0)

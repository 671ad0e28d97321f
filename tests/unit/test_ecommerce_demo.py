"""The e-commerce demo source: seed 003's counts and shares, keys that resolve, totals that
reconcile to the cent, determinism, and a day of changes that incremental loads can pick up."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from flowforge.demo import _vocab_vn as vocab
from flowforge.demo.ecommerce import EcommerceData, generate
from flowforge.demo.ecommerce_change import change_sqlite
from flowforge.demo.ecommerce_load import load_sqlite
from flowforge.demo.ecommerce_schema import ECOMMERCE_DDL, TABLES, UNIQUE

SEED_COUNTS = {"categories": 20, "products": 1_000, "customers": 10_000, "orders": 100_000,
               "order_items": 198_225, "payments": 96_984, "invoices": 79_923, "invoice_items": 158_337}


@pytest.fixture(scope="module")
def data() -> EcommerceData:
    return generate(scale=1.0, seed=42)


@pytest.fixture(scope="module")
def db(data: EcommerceData) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name in TABLES:
        con.register(name, data.table(name))
    yield con
    con.close()


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchone()[0]


def _checksum(data: EcommerceData) -> str:
    digest = hashlib.sha256()
    for name in TABLES:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.table(name).schema) as writer:
            writer.write_table(data.table(name))
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def test_scale_one_has_exactly_the_seed_row_counts(data: EcommerceData) -> None:
    assert {name: data.table(name).num_rows for name in TABLES} == SEED_COUNTS
    assert data.total_rows == 644_489


def test_columns_have_the_declared_types(data: EcommerceData) -> None:
    for name in TABLES:
        assert data.table(name).schema == ECOMMERCE_DDL[name].arrow_schema(), name
    assert data.table("orders").schema.field("total_amount").type == pa.decimal128(15, 2)


@pytest.mark.parametrize(("table", "column", "shares"), [
    ("customers", "segment", {"VIP": 5, "Regular": 30, "Occasional": 45, "New": 20}),
    ("orders", "channel", {"Website": 45, "Mobile App": 30, "Marketplace": 15, "Store": 10}),
    ("orders", "payment_method", {"Bank Transfer": 30, "Credit Card": 25, "COD": 25, "E-Wallet": 20}),
    ("orders", "status", {"completed": 70, "delivered": 10, "shipped": 5, "processing": 5, "pending": 3,
                          "cancelled": 5, "refunded": 2}),
])
def test_shares_are_the_seed_ones_within_one_percent(data: EcommerceData, table: str, column: str,
                                                     shares: dict[str, int]) -> None:
    counts = Counter(data.table(table).column(column).to_pylist())
    total = sum(counts.values())
    assert set(counts) == set(shares)
    for label, percent in shares.items():
        assert abs(100 * counts[label] / total - percent) <= 1, (label, counts[label])


def test_orders_cover_2024_with_the_november_december_peak(db: duckdb.DuckDBPyConnection) -> None:
    by_month = dict(db.execute("SELECT month(order_date), count(*) FROM orders GROUP BY 1").fetchall())
    assert sorted(by_month) == list(range(1, 13))
    assert _one(db, "SELECT count(*) FROM orders WHERE year(order_date) <> 2024") == 0
    peak = by_month[11] + by_month[12]
    assert peak / sum(by_month.values()) > 0.25
    assert min(by_month[11], by_month[12]) > max(v for m, v in by_month.items() if m < 11)


def test_every_foreign_key_resolves(db: duckdb.DuckDBPyConnection) -> None:
    for name in TABLES:
        for column, ref_table, ref_column in ECOMMERCE_DDL[name].foreign_keys:
            orphans = _one(db, f"SELECT count(*) FROM {name} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
                               f"(SELECT 1 FROM {ref_table} r WHERE r.{ref_column} = c.{column})")
            assert orphans == 0, f"{name}.{column} → {ref_table}.{ref_column}"
    assert _one(db, "SELECT count(*) FROM invoices v JOIN orders o USING (order_id) "
                    "WHERE v.customer_id <> o.customer_id") == 0
    assert _one(db, "SELECT count(*) FROM invoice_items ii JOIN order_items oi USING (order_item_id) "
                    "JOIN invoices v ON v.invoice_id = ii.invoice_id WHERE oi.order_id <> v.order_id") == 0


def test_keys_and_business_codes_are_unique(db: duckdb.DuckDBPyConnection) -> None:
    for name in TABLES:
        for cols in (ECOMMERCE_DDL[name].primary_key, *UNIQUE.get(name, ())):
            listed = ", ".join(cols)
            assert _one(db, f"SELECT count(*) - count(DISTINCT ({listed})) FROM {name}") == 0, (name, cols)


def test_money_reconciles_to_the_cent(db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT count(*) FROM orders o JOIN (SELECT order_id, sum(line_total) s FROM order_items "
                    "GROUP BY 1) i USING (order_id) WHERE o.subtotal <> i.s") == 0
    assert _one(db, "SELECT count(*) FROM orders WHERE total_amount <> subtotal + shipping_fee") == 0
    assert _one(db, "SELECT count(*) FROM order_items WHERE line_total <> quantity * unit_price - discount_amount "
                    "OR line_total <= 0") == 0
    assert _one(db, "SELECT count(*) FROM invoices v JOIN (SELECT invoice_id, sum(line_total) t, sum(vat_amount) "
                    "vat FROM invoice_items GROUP BY 1) i USING (invoice_id) WHERE v.total_amount <> i.t "
                    "OR v.vat_amount <> i.vat OR v.total_amount <> v.subtotal + v.vat_amount") == 0
    assert _one(db, "SELECT count(*) FROM invoices v JOIN orders o USING (order_id) "
                    "WHERE v.subtotal <> o.subtotal") == 0
    assert _one(db, "SELECT count(*) FROM payments p JOIN orders o USING (order_id) "
                    "WHERE p.amount <> o.total_amount") == 0
    # VAT lines are rounded half up to the cent, never beyond it
    assert _one(db, "SELECT count(*) FROM invoice_items WHERE vat_amount <> round(line_amount * vat_rate, 2)") == 0


def test_prices_emails_phones_and_vietnamese_addresses(data: EcommerceData) -> None:
    prices = data.table("products").column("unit_price").to_pylist()
    assert min(prices) >= Decimal(50_000) and max(prices) <= Decimal(50_000_000)
    costs = data.table("products").column("cost_price").to_pylist()
    assert all(Decimal(0) < c < p for c, p in zip(costs, prices, strict=True))
    customers = data.table("customers").to_pylist()
    email = re.compile(r"^[a-z0-9._]+@[a-z0-9.-]+\.[a-z]{2,}$")
    assert all(email.match(c["email"]) for c in customers)
    assert all(re.fullmatch(r"0\d{9}", c["phone"]) for c in customers)
    cities = {c.name for c in vocab.CITIES}
    assert {c["city"] for c in customers} <= cities
    assert Counter(c["city"] for c in customers).most_common(2)[0][0] == "Hồ Chí Minh"
    assert sum(bool(re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", c["full_name"].lower()))
               for c in customers) > len(customers) / 2
    assert all(", Phường " in c["address"] for c in customers)


def test_each_customer_orders_after_registering(db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT count(*) FROM orders o JOIN customers c USING (customer_id) "
                    "WHERE o.order_date < c.created_at") == 0
    assert _one(db, "SELECT count(*) FROM order_items i JOIN products p USING (product_id) "
                    "JOIN orders o USING (order_id) "
                    "WHERE o.order_date < p.created_at OR i.unit_price <> p.unit_price") == 0


def test_same_seed_same_checksum_other_seed_other_data(data: EcommerceData) -> None:
    again = generate(scale=1.0, seed=42)
    assert _checksum(again) == _checksum(data)
    other = generate(scale=1.0, seed=7)
    assert _checksum(other) != _checksum(data)
    assert other.total_rows == data.total_rows


def test_fractional_scales_keep_the_rules() -> None:
    small = generate(scale=0.05, seed=1)
    assert small.table("orders").num_rows == 5_000
    assert small.table("order_items").num_rows == round(198_225 * 0.05)
    assert small.table("categories").num_rows == 20
    with pytest.raises(ValueError, match="positive"):
        generate(scale=0)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_sqlite_source_declares_keys_and_a_day_of_changes_is_all_newer(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    summary = load_sqlite(path, scale=0.05, seed=3)
    assert summary.rows["orders"] == 5_000
    ddl = _rows(path, "SELECT sql FROM sqlite_master WHERE name = 'order_items'")[0][0]
    assert "PRIMARY KEY (order_item_id)" in ddl and "FOREIGN KEY (order_id) REFERENCES orders (order_id)" in ddl
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    before = {t: _rows(path, f"SELECT max(updated_at), count(*) FROM {t}")[0] for t in TABLES}
    segments = dict(_rows(path, "SELECT customer_id, segment FROM customers"))
    prices = dict(_rows(path, "SELECT product_id, unit_price FROM products"))
    newest = max(v[0] for v in before.values())

    change = change_sqlite(str(path), seed=9)
    assert change.day == dt.date.fromisoformat(newest[:10]) + dt.timedelta(days=1)
    assert change.segment_changes >= 1 and change.price_changes >= 1
    for table in TABLES:
        fresh = _rows(path, f"SELECT count(*) FROM {table} WHERE updated_at > '{newest}'")[0][0]
        assert fresh == change.inserted.get(table, 0) + change.updated.get(table, 0), table
        assert _rows(path, f"SELECT count(*) FROM {table}")[0][0] == before[table][1] + change.inserted.get(table, 0)
    moved = [r for r in _rows(path, "SELECT customer_id, segment FROM customers") if r[0] in segments
             and segments[r[0]] != r[1]]
    assert len(moved) == change.segment_changes
    repriced = [r for r in _rows(path, "SELECT product_id, unit_price FROM products") if prices[r[0]] != r[1]]
    assert len(repriced) == change.price_changes
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        bad = conn.execute("SELECT count(*) FROM orders o JOIN (SELECT order_id, sum(line_total) s FROM order_items "
                           "GROUP BY 1) i USING (order_id) WHERE abs(o.subtotal - i.s) > 0.001").fetchone()[0]
        assert bad == 0
        new_items = conn.execute(f"SELECT count(*) FROM order_items i JOIN products p USING (product_id) "
                                 f"WHERE i.created_at > '{newest}' AND i.unit_price <> p.unit_price").fetchone()[0]
        assert new_items == 0, "the day's orders are priced at the day's prices"
    again = change_sqlite(str(path), seed=9)
    assert again.day == change.day + dt.timedelta(days=1)

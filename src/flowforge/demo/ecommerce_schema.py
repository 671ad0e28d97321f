"""Declared shape of the e-commerce demo source: eight tables in schema ``ecommerce``.

Money is ``DECIMAL(15,2)`` (exact: an order's ``subtotal`` is the sum of its items' ``line_total``
to the cent), timestamps are ``TIMESTAMP``, every table has ``created_at`` and ``updated_at``
(the incremental cursor). Primary keys, foreign keys and unique business codes are declared.

Example::

    ECOMMERCE_DDL["orders"].foreign_keys   # (('customer_id', 'customers', 'customer_id'),)
    UNIQUE["customers"]                     # (('customer_code',), ('email',))
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flowforge.demo.schema import Column, TableDDL, _c

SCHEMA = "ecommerce"

SEED_COUNTS: Mapping[str, int] = MappingProxyType({
    "categories": 20, "products": 1_000, "customers": 10_000, "orders": 100_000, "order_items": 198_225,
    "payments": 96_984, "invoices": 79_923, "invoice_items": 158_337,
})
"""Row counts of seed 003's source at scale 1 (644,489 rows)."""

TABLES = tuple(SEED_COUNTS)
"""The eight tables in foreign-key order (a table only references tables before it)."""

_MONEY = "DECIMAL(15,2)"


def _stamps() -> tuple[Column, Column]:
    return _c("created_at", "TIMESTAMP"), _c("updated_at", "TIMESTAMP")


_TABLES = (
    TableDDL("categories", (
        _c("category_id", "INTEGER"), _c("category_name", "VARCHAR(100)"),
        _c("parent_id", "INTEGER", nullable=True), _c("description", "VARCHAR(255)"), *_stamps(),
    ), ("category_id",), (("parent_id", "categories", "category_id"),)),
    TableDDL("products", (
        _c("product_id", "INTEGER"), _c("sku", "VARCHAR(20)"), _c("product_name", "VARCHAR(200)"),
        _c("category_id", "INTEGER"), _c("brand", "VARCHAR(100)"), _c("unit_price", _MONEY),
        _c("cost_price", _MONEY), Column("stock_quantity", "INTEGER", "int32"), _c("is_active", "BOOLEAN"),
        *_stamps(),
    ), ("product_id",), (("category_id", "categories", "category_id"),)),
    TableDDL("customers", (
        _c("customer_id", "INTEGER"), _c("customer_code", "VARCHAR(20)"), _c("full_name", "VARCHAR(100)"),
        _c("email", "VARCHAR(150)"), _c("phone", "VARCHAR(20)"), _c("gender", "VARCHAR(10)"),
        _c("date_of_birth", "DATE"), _c("address", "VARCHAR(255)"), _c("district", "VARCHAR(100)"),
        _c("city", "VARCHAR(100)"), _c("segment", "VARCHAR(20)"), *_stamps(),
    ), ("customer_id",)),
    TableDDL("orders", (
        _c("order_id", "INTEGER"), _c("order_number", "VARCHAR(30)"), _c("customer_id", "INTEGER"),
        _c("order_date", "TIMESTAMP"), _c("status", "VARCHAR(20)"), _c("channel", "VARCHAR(20)"),
        _c("payment_method", "VARCHAR(20)"), _c("shipping_address", "VARCHAR(255)"),
        _c("shipping_city", "VARCHAR(100)"), _c("subtotal", _MONEY), _c("shipping_fee", _MONEY),
        _c("total_amount", _MONEY), *_stamps(),
    ), ("order_id",), (("customer_id", "customers", "customer_id"),)),
    TableDDL("order_items", (
        _c("order_item_id", "INTEGER"), _c("order_id", "INTEGER"), _c("product_id", "INTEGER"),
        Column("quantity", "INTEGER", "int32"), _c("unit_price", _MONEY), _c("discount_amount", _MONEY),
        _c("line_total", _MONEY), *_stamps(),
    ), ("order_item_id",), (("order_id", "orders", "order_id"), ("product_id", "products", "product_id"))),
    TableDDL("payments", (
        _c("payment_id", "INTEGER"), _c("payment_code", "VARCHAR(30)"), _c("order_id", "INTEGER"),
        _c("payment_method", "VARCHAR(20)"), _c("amount", _MONEY), _c("status", "VARCHAR(20)"),
        _c("paid_at", "TIMESTAMP", nullable=True), *_stamps(),
    ), ("payment_id",), (("order_id", "orders", "order_id"),)),
    TableDDL("invoices", (
        _c("invoice_id", "INTEGER"), _c("invoice_number", "VARCHAR(30)"), _c("order_id", "INTEGER"),
        _c("customer_id", "INTEGER"), _c("issue_date", "DATE"), _c("due_date", "DATE"), _c("subtotal", _MONEY),
        _c("vat_amount", _MONEY), _c("total_amount", _MONEY), _c("status", "VARCHAR(20)"), *_stamps(),
    ), ("invoice_id",), (("order_id", "orders", "order_id"), ("customer_id", "customers", "customer_id"))),
    TableDDL("invoice_items", (
        _c("invoice_item_id", "INTEGER"), _c("invoice_id", "INTEGER"), _c("order_item_id", "INTEGER"),
        _c("product_id", "INTEGER"), Column("quantity", "INTEGER", "int32"), _c("unit_price", _MONEY),
        _c("line_amount", _MONEY), _c("vat_rate", "DECIMAL(5,4)"), _c("vat_amount", _MONEY),
        _c("line_total", _MONEY), *_stamps(),
    ), ("invoice_item_id",), (("invoice_id", "invoices", "invoice_id"),
                              ("order_item_id", "order_items", "order_item_id"),
                              ("product_id", "products", "product_id"))),
)

ECOMMERCE_DDL: Mapping[str, TableDDL] = MappingProxyType({t.name: t for t in _TABLES})
"""Declared shape of every e-commerce table, keyed by table name."""

UNIQUE: Mapping[str, tuple[tuple[str, ...], ...]] = MappingProxyType({
    "products": (("sku",),),
    "customers": (("customer_code",), ("email",)),
    "orders": (("order_number",),),
    "payments": (("payment_code",),),
    "invoices": (("invoice_number",), ("order_id",)),
})
"""Unique business codes per table (besides the primary key)."""

SEGMENTS = ("VIP", "Regular", "Occasional", "New")
SEGMENT_SHARES = (5, 30, 45, 20)
CHANNELS = ("Website", "Mobile App", "Marketplace", "Store")
CHANNEL_SHARES = (45, 30, 15, 10)
PAYMENT_METHODS = ("Bank Transfer", "Credit Card", "COD", "E-Wallet")
PAYMENT_METHOD_SHARES = (30, 25, 25, 20)
ORDER_STATUSES = ("completed", "delivered", "shipped", "processing", "pending", "cancelled", "refunded")
ORDER_STATUS_SHARES = (70, 10, 5, 5, 3, 5, 2)
# Orders per month of 2024: a flat year with the Tết dip in February and the 11.11/12.12 peak.
MONTH_WEIGHTS = (7.0, 6.0, 7.0, 7.0, 7.5, 7.5, 7.5, 7.5, 8.0, 8.5, 12.5, 14.0)

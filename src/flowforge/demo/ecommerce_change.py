"""One day of activity in the e-commerce source, so incremental runs and SCD2 have work to do.

The day is the one after the newest ``updated_at`` in the source; every inserted or updated row
gets a timestamp on that day, so exactly these rows are new to an incremental reader. In order:
some products change price, some customers change segment or move to another city (new SCD2
versions of ``dim_product`` and ``dim_customer``), new customers register, open orders move on
(pending → processing with a payment, processing → shipped → delivered, delivered → completed
with an invoice), and the day's new orders arrive with their items and payments, priced at the
day's prices. Totals stay exact (order subtotal = Σ items, invoice total = Σ invoice items).
The same seed on the same source gives the same changes; each day differs from the last.

Example::

    load_sqlite("shop.db", scale=0.1)
    summary = change_sqlite("shop.db", seed=7)
    summary.updated["products"]     # price changes
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from flowforge.demo import _vocab_vn as vocab
from flowforge.demo.arrays import (
    DAY_US,
    US,
    decimal_array,
    distinct_per_group,
    pick,
    rng_for,
    round_half_up,
    shares,
    timestamps,
)
from flowforge.demo.ecommerce import (
    CODE_WIDTH,
    FREE_SHIPPING_CENTS,
    ITEM_COUNT_WEIGHTS,
    SHIPPING_FEES_CENTS,
    build_table,
    code,
    people,
)
from flowforge.demo.ecommerce_backends import PostgresBackend, SqliteBackend
from flowforge.demo.ecommerce_schema import (
    CHANNEL_SHARES,
    CHANNELS,
    PAYMENT_METHOD_SHARES,
    PAYMENT_METHODS,
    SCHEMA,
    SEGMENTS,
    TABLES,
)
from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["ChangeSummary", "change_postgres", "change_sqlite"]

SEGMENT_MOVES = {"VIP": "Regular", "Regular": "VIP", "Occasional": "Regular", "New": "Occasional"}
NEXT_STATUS = {"pending": "processing", "processing": "shipped", "shipped": "delivered", "delivered": "completed"}


@dataclass(frozen=True)
class ChangeSummary:
    """What one day of changes inserted and updated, per table."""

    day: dt.date
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    segment_changes: int = 0
    moves: int = 0
    price_changes: int = 0

    def describe(self) -> str:
        parts = [f"{t}: {self.inserted.get(t, 0)} inserted, {self.updated.get(t, 0)} updated"
                 for t in TABLES if self.inserted.get(t) or self.updated.get(t)]
        return (f"{self.day}: {self.price_changes} price changes, {self.segment_changes} segment changes, "
                f"{self.moves} customers moved; " + "; ".join(parts))


class _Backend(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def update(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def insert(self, name: str, table: pa.Table) -> None: ...
    def table(self, name: str) -> str: ...
    param: str


def change_sqlite(path: str, seed: int = 7) -> ChangeSummary:
    """Apply one day of changes to the SQLite source written by ``load_sqlite``."""
    import os

    if not os.path.isfile(path):
        raise SourceNotFound(f"E-commerce demo database {path} does not exist.",
                             hint="Generate it first: flowforge demo ecommerce")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            summary = _apply(SqliteBackend(conn), seed)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return summary


def change_postgres(url: str, schema: str = SCHEMA, seed: int = 7) -> ChangeSummary:
    """Apply one day of changes to the PostgreSQL source written by ``load_postgres`` (one transaction)."""
    from flowforge.demo.loaders import connect_postgres

    with connect_postgres(url) as conn:  # commits on success, rolls back on an exception
        return _apply(PostgresBackend(conn, schema), seed)


# -- planning and applying ----------------------------------------------------------------------

def _apply(db: _Backend, seed: int) -> ChangeSummary:
    import numpy as np

    newest = [db.query(f"SELECT max(updated_at) FROM {db.table(t)}")[0][0] for t in TABLES]
    if all(v is None for v in newest):
        raise SourceNotFound("The e-commerce demo source is empty.", hint="Generate it first: flowforge demo ecommerce")
    last = max(_as_datetime(v) for v in newest if v is not None)
    day = last.date() + dt.timedelta(days=1)
    start = int(np.datetime64(day.isoformat(), "us").astype(np.int64))
    rng = rng_for(seed, f"change:{day.isoformat()}")
    s = _Day(db, rng, start)
    s.price_changes()
    s.customer_changes()
    s.new_customers()
    s.progress_orders()
    s.new_orders()
    return ChangeSummary(day, s.inserted, s.updated, s.segment_changes, s.moves, s.price_changes_done)


class _Day:
    def __init__(self, db: _Backend, rng: np.random.Generator, start_us: int) -> None:
        import numpy as np

        self.db, self.rng, self.start = db, rng, start_us
        self.inserted: dict[str, int] = {}
        self.updated: dict[str, int] = {}
        self.segment_changes = self.moves = self.price_changes_done = 0
        rows = db.query(f"SELECT product_id, unit_price FROM {db.table('products')} ORDER BY product_id")
        self.product_ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.prices = np.array([_cents(r[1]) for r in rows], dtype=np.int64)
        rows = db.query(f"SELECT product_id, category_id FROM {db.table('products')} ORDER BY product_id")
        category_vat = {i + 1: c.vat_rate_bp for i, c in enumerate(vocab.CATEGORIES)}
        self.vat_bp = np.array([category_vat[r[1]] for r in rows], dtype=np.int64)
        rows = db.query(f"SELECT customer_id, segment, city FROM {db.table('customers')} ORDER BY customer_id")
        self.customers = rows
        self.n_orders = int(db.query(f"SELECT count(*) FROM {db.table('orders')}")[0][0])

    def _at(self, hour: float, n: int) -> np.ndarray:
        """``n`` increasing timestamps from ``hour`` o'clock on the day, one second apart."""
        import numpy as np

        return self.start + int(hour * 3600) * US + np.arange(n, dtype=np.int64) * US

    def _count(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.db.insert(name, table)
            self.inserted[name] = self.inserted.get(name, 0) + table.num_rows

    def _update(self, name: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.db.update(sql, rows)
            self.updated[name] = self.updated.get(name, 0) + len(rows)

    def price_changes(self) -> None:
        import numpy as np

        n = max(1, round(len(self.product_ids) * 0.02))
        chosen = np.sort(self.rng.choice(len(self.product_ids), n, replace=False))
        factor = self.rng.uniform(0.8, 1.25, n)
        new = np.clip(np.round(self.prices[chosen] * factor / 100_000) * 100_000, 50_000 * 100, 50_000_000 * 100)
        new = np.where(new == self.prices[chosen], new + 100_000, new).astype(np.int64)
        self.prices[chosen] = new
        when = self._at(0.1, n)
        p = self.db.param
        self._update("products", f"UPDATE {self.db.table('products')} SET unit_price = {p}, updated_at = {p} "
                                 f"WHERE product_id = {p}",
                     [(_decimal(c), _stamp(w), int(self.product_ids[i]))
                      for c, w, i in zip(new, when, chosen, strict=True)])
        self.price_changes_done = n

    def customer_changes(self) -> None:
        import numpy as np

        n_customers = len(self.customers)
        n_seg, n_move = max(1, round(n_customers * 0.005)), max(1, round(n_customers * 0.001))
        chosen = self.rng.choice(n_customers, min(n_customers, n_seg + n_move), replace=False)
        seg, move = np.sort(chosen[:n_seg]), np.sort(chosen[n_seg:])
        p, table = self.db.param, self.db.table("customers")
        when = self._at(0.2, len(seg))
        self._update("customers", f"UPDATE {table} SET segment = {p}, updated_at = {p} WHERE customer_id = {p}",
                     [(SEGMENT_MOVES[self.customers[i][1]], _stamp(w), self.customers[i][0])
                      for i, w in zip(seg, when, strict=True)])
        self.segment_changes = len(seg)
        if len(move):
            names = [c.name for c in vocab.CITIES]
            old = np.array([names.index(self.customers[i][2]) if self.customers[i][2] in names else 0 for i in move])
            city = (old + self.rng.integers(1, len(names), len(move))) % len(names)
            cols = people(self.rng, np.array([self.customers[i][0] for i in move]), city)
            when = self._at(0.3, len(move))
            rows = [(a, d, c, _stamp(w), self.customers[i][0]) for a, d, c, w, i in zip(
                cols["address"].to_pylist(), cols["district"].to_pylist(), cols["city"].to_pylist(), when, move,
                strict=True)]
            self._update("customers", f"UPDATE {table} SET address = {p}, district = {p}, city = {p}, "
                                      f"updated_at = {p} WHERE customer_id = {p}", rows)
            self.moves = len(move)

    def new_customers(self) -> None:
        import numpy as np

        n = max(1, round(len(self.customers) / 365))
        first = max(c[0] for c in self.customers) + 1 if self.customers else 1
        ids = np.arange(first, first + n)
        city = self.rng.choice(len(vocab.CITIES), n, p=shares([c.weight for c in vocab.CITIES]))
        created = self.start + 3600 * US + np.arange(n, dtype=np.int64) * 60 * US
        table = build_table("customers", {
            **people(self.rng, ids, city), "customer_id": ids,
            "customer_code": code("CUS-", ids, CODE_WIDTH["customers"]),
            "segment": pick(SEGMENTS, np.full(n, SEGMENTS.index("New"))), "created_at": timestamps(created),
            "updated_at": timestamps(created)})
        self._count("customers", table)
        self.customers = self.customers + [(int(i), "New", None) for i in ids]

    def progress_orders(self) -> None:
        import numpy as np

        db, p = self.db, self.db.param
        rows = db.query(f"SELECT order_id, status FROM {db.table('orders')} WHERE status IN "
                        f"('pending', 'processing', 'shipped', 'delivered') ORDER BY order_id")
        per_step = max(1, round(self.n_orders * 0.002))
        hour = 8.0
        for status, following in NEXT_STATUS.items():
            ids = np.array([r[0] for r in rows if r[1] == status], dtype=np.int64)
            if not len(ids):
                continue
            chosen = np.sort(self.rng.choice(ids, min(per_step, len(ids)), replace=False))
            when = self._at(hour, len(chosen))
            hour += 0.5
            self._update("orders", f"UPDATE {db.table('orders')} SET status = {p}, updated_at = {p} "
                                   f"WHERE order_id = {p}",
                         [(following, _stamp(w), int(o)) for o, w in zip(chosen, when, strict=True)])
            if following == "processing":
                self._pay_pending(chosen, when)
            elif following == "completed":
                self._invoice(chosen, when)

    def _in(self, ids: Sequence[int] | np.ndarray) -> str:
        return "(" + ", ".join(str(int(i)) for i in ids) + ")"  # integers from the database itself

    def _next_id(self, table: str, key: str) -> int:
        return int(self.db.query(f"SELECT coalesce(max({key}), 0) FROM {self.db.table(table)}")[0][0]) + 1

    def _pay_pending(self, orders: np.ndarray, when: np.ndarray) -> None:
        import numpy as np

        db = self.db
        paid = {r[0] for r in db.query(f"SELECT order_id FROM {db.table('payments')} "
                                       f"WHERE order_id IN {self._in(orders)}")}
        info = {r[0]: r[1:] for r in db.query(f"SELECT order_id, payment_method, total_amount FROM "
                                              f"{db.table('orders')} WHERE order_id IN {self._in(orders)}")}
        todo = [(int(o), int(w)) for o, w in zip(orders, when, strict=True) if int(o) not in paid]
        if not todo:
            return
        first = self._next_id("payments", "payment_id")
        ids = np.arange(first, first + len(todo))
        stamp = np.array([w for _, w in todo], dtype=np.int64) + 30 * US
        self._count("payments", build_table("payments", {
            "payment_id": ids, "payment_code": code("PAY-", ids, CODE_WIDTH["payments"]),
            "order_id": [o for o, _ in todo], "payment_method": [info[o][0] for o, _ in todo],
            "amount": [_money(info[o][1]) for o, _ in todo], "status": ["completed"] * len(todo),
            "paid_at": timestamps(stamp), "created_at": timestamps(stamp), "updated_at": timestamps(stamp)}))

    def _invoice(self, orders: np.ndarray, when: np.ndarray) -> None:

        db = self.db
        done = {r[0] for r in db.query(f"SELECT order_id FROM {db.table('invoices')} "
                                       f"WHERE order_id IN {self._in(orders)}")}
        todo = [int(o) for o in orders if int(o) not in done]
        if not todo:
            return
        at = dict(zip((int(o) for o in orders), (int(w) for w in when), strict=True))
        owner = dict(db.query(f"SELECT order_id, customer_id FROM {db.table('orders')} "
                              f"WHERE order_id IN {self._in(todo)}"))
        items = db.query(f"SELECT order_item_id, order_id, product_id, quantity, unit_price, line_total FROM "
                         f"{db.table('order_items')} WHERE order_id IN {self._in(todo)} "
                         f"ORDER BY order_id, order_item_id")
        self._write_invoices(todo, at, owner, items)

    def _write_invoices(self, orders: list[int], at: dict[int, int], owner: dict[int, int],
                        items: list[tuple[Any, ...]]) -> None:
        import numpy as np

        first_inv = self._next_id("invoices", "invoice_id")
        first_item = self._next_id("invoice_items", "invoice_item_id")
        invoice_of = {o: first_inv + k for k, o in enumerate(orders)}
        amount = np.array([_cents(r[5]) for r in items], dtype=np.int64)
        vat_bp = self.vat_bp[np.searchsorted(self.product_ids, [r[2] for r in items])]
        vat = round_half_up(amount * vat_bp, 10_000)
        per_order: dict[int, list[int]] = {}
        for k, r in enumerate(items):
            per_order.setdefault(r[1], []).append(k)
        sub = np.array([amount[per_order[o]].sum() for o in orders], dtype=np.int64)
        vat_sum = np.array([vat[per_order[o]].sum() for o in orders], dtype=np.int64)
        stamp = np.array([at[o] for o in orders], dtype=np.int64) + 60 * US
        day = stamp // DAY_US
        money = _money_type()
        ids = np.arange(first_inv, first_inv + len(orders))
        self._count("invoices", build_table("invoices", {
            "invoice_id": ids, "invoice_number": code("INV-", ids, CODE_WIDTH["invoices"]), "order_id": orders,
            "customer_id": [owner[o] for o in orders], "issue_date": _dates(day), "due_date": _dates(day + 30),
            "subtotal": decimal_array(sub, money), "vat_amount": decimal_array(vat_sum, money),
            "total_amount": decimal_array(sub + vat_sum, money), "status": ["paid"] * len(orders),
            "created_at": timestamps(stamp), "updated_at": timestamps(stamp)}))
        import pyarrow as pa

        item_stamp = np.array([at[r[1]] for r in items], dtype=np.int64) + 60 * US
        self._count("invoice_items", build_table("invoice_items", {
            "invoice_item_id": np.arange(first_item, first_item + len(items)),
            "invoice_id": [invoice_of[r[1]] for r in items], "order_item_id": [r[0] for r in items],
            "product_id": [r[2] for r in items], "quantity": [r[3] for r in items],
            "unit_price": [_money(r[4]) for r in items], "line_amount": decimal_array(amount, money),
            "vat_rate": decimal_array(vat_bp, pa.decimal128(5, 4)), "vat_amount": decimal_array(vat, money),
            "line_total": decimal_array(amount + vat, money), "created_at": timestamps(item_stamp),
            "updated_at": timestamps(item_stamp)}))

    def new_orders(self) -> None:
        import numpy as np
        import pyarrow as pa

        rng, db = self.rng, self.db
        n = max(1, round(self.n_orders / 366))
        first = self._next_id("orders", "order_id")
        ids = np.arange(first, first + n)
        when = np.sort(self.start + rng.integers(8 * 3600, 22 * 3600, n) * US + rng.integers(0, US, n))
        customer = np.array([c[0] for c in self.customers])[rng.integers(0, len(self.customers), n)]
        where = {r[0]: r[1:] for r in db.query(f"SELECT customer_id, address, city FROM {db.table('customers')} "
                                                f"WHERE customer_id IN {self._in(sorted(set(customer.tolist())))}")}
        status = np.where(rng.random(n) < 0.7, "processing", "pending")
        counts = rng.choice(np.arange(1, len(ITEM_COUNT_WEIGHTS) + 1), n, p=shares(ITEM_COUNT_WEIGHTS))
        item_order = np.repeat(np.arange(n), counts)
        k = len(item_order)
        product = distinct_per_group(rng, item_order, rng.integers(0, len(self.product_ids), k), len(self.product_ids))
        qty = rng.choice(np.arange(1, 5), k, p=[0.78, 0.15, 0.05, 0.02])
        gross = self.prices[product] * qty
        discount = round_half_up(gross * np.where(rng.random(k) < 0.25, rng.choice([5, 10, 15, 20], k), 0), 100)
        line = gross - discount
        subtotal = np.add.reduceat(line, np.concatenate(([0], np.cumsum(counts)[:-1])))
        shipping = np.where(subtotal >= FREE_SHIPPING_CENTS, 0,
                            np.array(SHIPPING_FEES_CENTS)[rng.integers(0, len(SHIPPING_FEES_CENTS), n)])
        total = subtotal + shipping
        method = pick(PAYMENT_METHODS, rng.choice(len(PAYMENT_METHODS), n, p=shares(PAYMENT_METHOD_SHARES)))
        money = _money_type()
        self._count("orders", build_table("orders", {
            "order_id": ids, "order_number": code("ORD-", ids, CODE_WIDTH["orders"]), "customer_id": customer,
            "order_date": timestamps(when), "status": pa.array(status.tolist(), pa.string()),
            "channel": pick(CHANNELS, rng.choice(len(CHANNELS), n, p=shares(CHANNEL_SHARES))),
            "payment_method": method, "shipping_address": [where[c][0] for c in customer],
            "shipping_city": [where[c][1] for c in customer], "subtotal": decimal_array(subtotal, money),
            "shipping_fee": decimal_array(shipping, money), "total_amount": decimal_array(total, money),
            "created_at": timestamps(when), "updated_at": timestamps(when)}))
        first_item = self._next_id("order_items", "order_item_id")
        stamp = timestamps(when[item_order])
        self._count("order_items", build_table("order_items", {
            "order_item_id": np.arange(first_item, first_item + k), "order_id": ids[item_order],
            "product_id": self.product_ids[product], "quantity": qty.astype(np.int32),
            "unit_price": decimal_array(self.prices[product], money), "discount_amount": decimal_array(discount, money),
            "line_total": decimal_array(line, money), "created_at": stamp, "updated_at": stamp}))
        paid = np.flatnonzero(status == "processing")
        first_pay = self._next_id("payments", "payment_id")
        pay_ids = np.arange(first_pay, first_pay + len(paid))
        pay_at = when[paid] + 45 * US
        self._count("payments", build_table("payments", {
            "payment_id": pay_ids, "payment_code": code("PAY-", pay_ids, CODE_WIDTH["payments"]),
            "order_id": ids[paid], "payment_method": method.take(pa.array(paid)),
            "amount": decimal_array(total[paid], money), "status": ["completed"] * len(paid),
            "paid_at": timestamps(pay_at), "created_at": timestamps(when[paid]), "updated_at": timestamps(pay_at)}))


# -- values ---------------------------------------------------------------------------------------


def _money_type() -> pa.DataType:
    import pyarrow as pa

    return pa.decimal128(15, 2)


def _dates(days: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(days.astype("int32"), type=pa.date32())


def _cents(value: Any) -> int:
    """A money value as the database returns it (Decimal; SQLite: REAL or INTEGER) in cents."""
    return int((Decimal(str(value)) * 100).to_integral_value())


def _money(value: Any) -> Decimal:
    return Decimal(_cents(value)) / 100


def _decimal(cents: Any) -> Decimal:
    return Decimal(int(cents)) / 100


def _stamp(us: Any) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(us))


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))

"""Deterministic e-commerce source data: seed 003's eight tables, vectorised with numpy.

At scale 1 the row counts are exactly the seed's (20 categories, 1,000 products, 10,000
customers, 100,000 orders, 198,225 order items, 96,984 payments, 79,923 invoices, 158,337
invoice items: 644,489 rows); every other count is the seed's times ``scale``, rounded (the 20
categories stay). Shares are exact, not sampled: segments 5/30/45/20 %, channels 45/30/15/10 %,
payment methods 30/25/25/20 %, the seven order statuses 70/10/5/5/3/5/2 %, orders over 2024 with
the November-December peak. Money is computed in integer cents and handed to Arrow as
``decimal128``, so an order's ``subtotal`` is the sum of its items' ``line_total`` and an invoice's
``total_amount`` the sum of its items' ``line_total``, to the cent. Vietnamese names and
addresses, unique e-mails and codes, unit prices from 50,000 to 50,000,000 VND.

Example::

    data = generate(scale=1.0, seed=42)
    data.table("order_items").num_rows     # 198225
    for name, table in iter_tables(scale=10, seed=42):   # one table at a time, for big scales
        ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.demo import _vocab_vn as vocab
from flowforge.demo.arrays import (
    DAY_US,
    US,
    dates,
    decimal_array,
    distinct_per_group,
    epoch_us,
    exact_labels,
    fit_counts,
    padded,
    pick,
    rng_for,
    round_half_up,
    shares,
    text,
    timestamps,
)
from flowforge.demo.ecommerce_schema import (
    CHANNEL_SHARES,
    CHANNELS,
    ECOMMERCE_DDL,
    MONTH_WEIGHTS,
    ORDER_STATUS_SHARES,
    ORDER_STATUSES,
    PAYMENT_METHOD_SHARES,
    PAYMENT_METHODS,
    SEED_COUNTS,
    SEGMENT_SHARES,
    SEGMENTS,
    TABLES,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["EcommerceData", "counts_for", "generate", "iter_tables"]

PRICE_MIN_CENTS = 50_000 * 100
PRICE_MAX_CENTS = 50_000_000 * 100
MAX_ITEMS_PER_ORDER = 6
FREE_SHIPPING_CENTS = 500_000 * 100
SHIPPING_FEES_CENTS = (15_000 * 100, 22_000 * 100, 30_000 * 100)
# Seconds from an order to its last update, by status (low, high).
_STATUS_LAG_S = {"completed": (3 * 86_400, 10 * 86_400), "delivered": (2 * 86_400, 6 * 86_400),
                 "shipped": (86_400, 3 * 86_400), "processing": (600, 86_400), "pending": (0, 1),
                 "cancelled": (600, 2 * 86_400), "refunded": (10 * 86_400, 20 * 86_400)}
SEGMENT_ACTIVITY = {"VIP": 10.0, "Regular": 4.0, "Occasional": 1.2, "New": 1.5}
ITEM_COUNT_WEIGHTS = (0.42, 0.31, 0.15, 0.07, 0.03, 0.02)  # 1..6 items per order, before the exact fit


def counts_for(scale: float) -> dict[str, int]:
    """Rows per table at ``scale``: the seed's counts times the scale (categories stay 20)."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    counts = {t: max(1, round(n * scale)) for t, n in SEED_COUNTS.items()}
    counts["categories"] = SEED_COUNTS["categories"]
    counts["products"] = max(counts["products"], 20)
    return counts


@dataclass(frozen=True)
class EcommerceData:
    """The eight generated tables (Arrow, exact types), in foreign-key order."""

    tables: Mapping[str, pa.Table]

    def table(self, name: str) -> pa.Table:
        return self.tables[name]

    @property
    def total_rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


def generate(scale: float = 1.0, seed: int = 42) -> EcommerceData:
    """All eight tables at once; identical arguments give identical tables."""
    return EcommerceData(dict(iter_tables(scale, seed)))


def iter_tables(scale: float = 1.0, seed: int = 42) -> Iterator[tuple[str, pa.Table]]:
    """The tables one at a time in foreign-key order, so a loader can write and drop each."""
    builder = _Builder(counts_for(scale), seed)
    for name in TABLES:
        yield name, getattr(builder, name)()


def build_table(name: str, columns: Mapping[str, Any]) -> pa.Table:
    """An Arrow table of the declared schema from arrays (or sequences) keyed by column name."""
    import pyarrow as pa

    schema = ECOMMERCE_DDL[name].arrow_schema()
    arrays = []
    for f in schema:
        value = columns[f.name]
        array = value if isinstance(value, pa.Array) else pa.array(value, type=f.type)
        arrays.append(array.cast(f.type) if array.type != f.type else array)
    return pa.Table.from_arrays(arrays, schema=schema)


def people(rng: np.random.Generator, ids: np.ndarray, city: np.ndarray) -> dict[str, pa.Array]:
    """Name, e-mail (unique: it holds the id), phone, gender, birth date and address of customers."""
    import numpy as np
    import pyarrow as pa

    n = len(ids)
    female = rng.random(n) < 0.52
    fam_idx = rng.choice(len(vocab.FAMILY_NAMES), n, p=shares([w for _, w in vocab.FAMILY_NAMES]))
    families = [f for f, _ in vocab.FAMILY_NAMES]
    given = _by_gender(rng, female, vocab.GIVEN_NAMES_MALE, vocab.GIVEN_NAMES_FEMALE)
    middle = _by_gender(rng, female, vocab.MIDDLE_NAMES_MALE, vocab.MIDDLE_NAMES_FEMALE)
    family = pick(families, fam_idx)
    folded_family = pick([vocab.ascii_fold(f) for f in families], fam_idx)
    folded_given = pa.array([vocab.ascii_fold(g) for g in given.to_pylist()], pa.string())
    domain = pick(vocab.EMAIL_DOMAINS, rng.choice(len(vocab.EMAIL_DOMAINS), n, p=shares(vocab.EMAIL_DOMAIN_WEIGHTS)))
    birth = (epoch_us(1959) // DAY_US) + rng.integers(0, 365 * 47, n)
    address, district = addresses(rng, city)
    return {
        "full_name": text(family, " ", middle, " ", given),
        "email": text(folded_given, ".", folded_family, pa.array(ids).cast(pa.string()), "@", domain),
        "phone": text(pick(vocab.PHONE_PREFIXES, rng.integers(0, len(vocab.PHONE_PREFIXES), n)),
                      padded(rng.integers(0, 10_000_000, n), 7)),
        "gender": pick(("male", "female"), female.astype(np.int64)), "date_of_birth": dates(birth),
        "address": address, "district": district, "city": pick([c.name for c in vocab.CITIES], city)}


def addresses(rng: np.random.Generator, city: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(street address, district) for customers living in ``city`` (indexes into ``CITIES``)."""
    import numpy as np
    import pyarrow as pa

    n = len(city)
    pick_d = rng.integers(0, 1 << 30, n)
    district = [vocab.CITIES[c].districts[d % len(vocab.CITIES[c].districts)]
                for c, d in zip(city, pick_d, strict=True)]
    house = rng.integers(1, 500, n)
    lane = np.where(rng.random(n) < 0.3, rng.integers(1, 200, n), 0)
    house_text = pa.array([f"{h}/{ln}" if ln else str(h) for h, ln in zip(house, lane, strict=True)], pa.string())
    address = text(house_text, " ", pick(vocab.STREETS, rng.integers(0, len(vocab.STREETS), n)),
                   ", Phường ", pa.array(rng.integers(1, 16, n)).cast(pa.string()))
    return address, pa.array(district, pa.string())


def code(prefix: str, ids: np.ndarray, width: int) -> pa.Array:
    """Business codes such as ``ORD-00000042``: unique because they hold the id."""
    return text(prefix, padded(ids, width))


CODE_WIDTH = {"customers": 6, "orders": 8, "payments": 8, "invoices": 8}


# -- the tables -------------------------------------------------------------------------------------

class _Builder:
    """Computes the shared numpy arrays once; each table method builds one Arrow table."""

    def __init__(self, counts: Mapping[str, int], seed: int) -> None:
        self.n = dict(counts)
        self.seed = seed
        self._products()
        self._customers()
        self._orders()
        self._items()

    def _table(self, name: str, columns: dict[str, Any]) -> pa.Table:
        return build_table(name, columns)

    # -- shared state ---------------------------------------------------------------------------
    def _products(self) -> None:
        import numpy as np

        rng = rng_for(self.seed, "products")
        n = self.n["products"]
        leaves = [i for i, c in enumerate(vocab.CATEGORIES) if c.parent is not None]
        leaf_weights = np.array([6, 4, 10, 9, 11, 7, 9, 5, 10, 6, 7, 4, 6, 6], dtype=float)
        self.product_category = np.array(leaves)[rng.choice(len(leaves), n, p=leaf_weights / leaf_weights.sum())]
        low = np.array([vocab.CATEGORIES[c].price_low for c in self.product_category], dtype=float)
        high = np.array([vocab.CATEGORIES[c].price_high for c in self.product_category], dtype=float)
        vnd = np.exp(rng.uniform(np.log(low), np.log(high)))
        price = np.clip(np.round(vnd / 1000) * 1000, 50_000, 50_000_000).astype(np.int64) * 100
        self.product_price = price
        self.product_cost = (np.round(price * rng.uniform(0.55, 0.8, n) / 100_000) * 100_000).astype(np.int64)
        self.product_vat_bp = np.array([vocab.CATEGORIES[c].vat_rate_bp for c in self.product_category])
        self.product_created = epoch_us(2023) + rng.integers(0, 300 * DAY_US, n)
        # popularity: a few best sellers, a long tail
        rank = rng.permutation(n) + 1
        weight = 1.0 / rank ** 0.9
        self.product_weight = weight / weight.sum()

    def _customers(self) -> None:
        import numpy as np

        rng = rng_for(self.seed, "customers")
        n = self.n["customers"]
        self.segment = exact_labels(rng, n, SEGMENT_SHARES)
        is_new = self.segment == SEGMENTS.index("New")
        created = np.where(
            is_new, epoch_us(2024) + rng.integers(0, 350 * DAY_US, n),
            epoch_us(2021) + rng.integers(0, (epoch_us(2024) - epoch_us(2021)), n))
        self.customer_created = created
        self.customer_city = rng.choice(len(vocab.CITIES), n, p=shares([c.weight for c in vocab.CITIES]))
        self._customer_table: pa.Table | None = None

    def _orders(self) -> None:
        import numpy as np

        rng = rng_for(self.seed, "orders")
        n = self.n["orders"]
        months = exact_labels(rng, n, MONTH_WEIGHTS)
        month_start = np.array([epoch_us(2024, m + 1) for m in range(12)] + [epoch_us(2025)], dtype=np.int64)
        span = month_start[months + 1] - month_start[months]
        day = (rng.random(n) * (span // DAY_US)).astype(np.int64)
        evening = rng.random(n) < 0.6
        seconds = np.clip(rng.normal(np.where(evening, 20.5, 12.5) * 3600, 2.5 * 3600), 0, 86_399).astype(np.int64)
        when = month_start[months] + day * DAY_US + seconds * US + rng.integers(0, US, n)
        when.sort()  # order ids follow time
        self.order_date = when
        self.status = exact_labels(rng, n, ORDER_STATUS_SHARES)
        self.channel = exact_labels(rng, n, CHANNEL_SHARES)
        self.method = exact_labels(rng, n, PAYMENT_METHOD_SHARES)
        # the customer: someone registered by then, active customers more often
        by_created = np.argsort(self.customer_created, kind="stable")
        activity = np.array([SEGMENT_ACTIVITY[s] for s in SEGMENTS])[self.segment[by_created]]
        cum = np.cumsum(activity)
        registered = np.searchsorted(self.customer_created[by_created], when, side="right")
        registered = np.maximum(registered, 1)
        draw = rng.random(n) * cum[registered - 1]
        self.order_customer = by_created[np.minimum(np.searchsorted(cum, draw, side="right"), registered - 1)]
        low = np.array([_STATUS_LAG_S[s][0] for s in ORDER_STATUSES])[self.status]
        high = np.array([_STATUS_LAG_S[s][1] for s in ORDER_STATUSES])[self.status]
        self.order_updated = when + (low + rng.random(n) * (high - low)).astype(np.int64) * US
        self.shipping_pick = rng.integers(0, len(SHIPPING_FEES_CENTS), n)
        self._choose_payments_and_invoices()

    def _choose_payments_and_invoices(self) -> None:
        import numpy as np

        rng = rng_for(self.seed, "documents")
        status = np.array(ORDER_STATUSES)[self.status]
        pending, cancelled = np.flatnonzero(status == "pending"), np.flatnonzero(status == "cancelled")
        paid = np.ones(len(status), dtype=bool)
        paid[pending] = False
        surplus = int(paid.sum()) - self.n["payments"]
        if surplus > 0:  # cancelled before any payment (a COD order refused at the door)
            paid[rng.choice(cancelled, min(surplus, len(cancelled)), replace=False)] = False
        elif surplus < 0:  # a payment started for a pending order
            paid[rng.choice(pending, min(-surplus, len(pending)), replace=False)] = True
        self.paid = paid
        eligible = np.flatnonzero(np.isin(status, ("completed", "delivered")))
        wanted = self.n["invoices"]
        if wanted > len(eligible):
            eligible = np.flatnonzero(np.isin(status, ("completed", "delivered", "shipped")))
        if wanted > len(eligible):
            raise ValueError(f"{wanted} invoices need as many completed or delivered orders; there are "
                             f"{len(eligible)}")
        invoiced = np.zeros(len(status), dtype=bool)
        invoiced[rng.choice(eligible, wanted, replace=False)] = True
        self.invoiced = invoiced

    def _items(self) -> None:
        import numpy as np

        rng = rng_for(self.seed, "order_items")
        n_orders, invoiced = self.n["orders"], self.invoiced
        counts = np.empty(n_orders, dtype=np.int64)
        inv_total = self.n["invoice_items"]
        counts[invoiced] = fit_counts(rng, int(invoiced.sum()), inv_total, ITEM_COUNT_WEIGHTS, MAX_ITEMS_PER_ORDER)
        counts[~invoiced] = fit_counts(rng, int((~invoiced).sum()), self.n["order_items"] - inv_total,
                                       ITEM_COUNT_WEIGHTS, MAX_ITEMS_PER_ORDER)
        self.item_count = counts
        item_order = np.repeat(np.arange(n_orders), counts)
        self.item_order = item_order
        self.order_first_item = np.concatenate(([0], np.cumsum(counts)[:-1]))
        n_products = self.n["products"]
        product = rng.choice(n_products, len(item_order), p=self.product_weight)
        self.item_product = distinct_per_group(rng, item_order, product, n_products)
        self.item_quantity = rng.choice(np.arange(1, 5), len(item_order), p=[0.78, 0.15, 0.05, 0.02])
        gross = self.product_price[self.item_product] * self.item_quantity
        pct = np.where(rng.random(len(item_order)) < 0.25, rng.choice([5, 10, 15, 20], len(item_order)), 0)
        self.item_discount = round_half_up(gross * pct, 100)
        self.item_total = gross - self.item_discount
        self.order_subtotal = np.add.reduceat(self.item_total, self.order_first_item)
        fees = np.array(SHIPPING_FEES_CENTS)[self.shipping_pick]
        self.order_shipping = np.where(self.order_subtotal >= FREE_SHIPPING_CENTS, 0, fees)
        self.order_total = self.order_subtotal + self.order_shipping

    # -- tables -----------------------------------------------------------------------------
    def categories(self) -> pa.Table:
        import numpy as np

        names = [c.name for c in vocab.CATEGORIES]
        parent = [names.index(c.parent) + 1 if c.parent else None for c in vocab.CATEGORIES]
        created = epoch_us(2022, 6) + np.arange(len(names)) * 3600 * US
        return self._table("categories", {
            "category_id": np.arange(1, len(names) + 1), "category_name": names, "parent_id": parent,
            "description": [c.description for c in vocab.CATEGORIES],
            "created_at": timestamps(created), "updated_at": timestamps(created)})

    def products(self) -> pa.Table:
        import numpy as np

        rng, n = rng_for(self.seed, "products.columns"), self.n["products"]
        ids = np.arange(1, n + 1)
        brand_pick = rng.integers(0, 1 << 30, n)
        noun_pick = rng.integers(0, 1 << 30, n)
        brands = [vocab.CATEGORIES[c].brands[b % len(vocab.CATEGORIES[c].brands)]
                  for c, b in zip(self.product_category, brand_pick, strict=True)]
        nouns = [vocab.CATEGORIES[c].nouns[k % len(vocab.CATEGORIES[c].nouns)]
                 for c, k in zip(self.product_category, noun_pick, strict=True)]
        import pyarrow as pa

        name = text(pa.array(nouns), " ", pa.array(brands), " ",
                    pick(vocab.SERIES_WORDS, rng.integers(0, len(vocab.SERIES_WORDS), n)), " ",
                    pa.array(rng.integers(100, 1000, n)).cast(pa.string()))
        updated = self.product_created + rng.integers(0, 60 * DAY_US, n)
        return self._table("products", {
            "product_id": ids, "sku": code("SKU-", ids, max(6, len(str(n)))), "product_name": name,
            "category_id": self.product_category + 1, "brand": brands,
            "unit_price": decimal_array(self.product_price, pa.decimal128(15, 2)),
            "cost_price": decimal_array(self.product_cost, pa.decimal128(15, 2)),
            "stock_quantity": rng.integers(0, 500, n).astype(np.int32), "is_active": rng.random(n) < 0.97,
            "created_at": timestamps(self.product_created), "updated_at": timestamps(updated)})

    def customers(self) -> pa.Table:
        import numpy as np

        if self._customer_table is not None:
            return self._customer_table
        rng, n = rng_for(self.seed, "customers.columns"), self.n["customers"]
        ids = np.arange(1, n + 1)
        columns = people(rng, ids, self.customer_city)
        updated = np.minimum(self.customer_created + (rng.exponential(120, n) * DAY_US).astype(np.int64),
                             epoch_us(2025) - US)
        self._customer_table = self._table("customers", {
            **columns, "customer_id": ids,
            "customer_code": code("CUS-", ids, max(CODE_WIDTH["customers"], len(str(n)))),
            "segment": pick(SEGMENTS, self.segment), "created_at": timestamps(self.customer_created),
            "updated_at": timestamps(np.maximum(updated, self.customer_created))})
        return self._customer_table

    def orders(self) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        n = self.n["orders"]
        ids = np.arange(1, n + 1)
        customers = self.customers()
        cust = pa.array(self.order_customer)
        money = pa.decimal128(15, 2)
        return self._table("orders", {
            "order_id": ids, "order_number": code("ORD-", ids, max(CODE_WIDTH["orders"], len(str(n)))),
            "customer_id": self.order_customer + 1, "order_date": timestamps(self.order_date),
            "status": pick(ORDER_STATUSES, self.status), "channel": pick(CHANNELS, self.channel),
            "payment_method": pick(PAYMENT_METHODS, self.method),
            "shipping_address": customers.column("address").take(cust).combine_chunks(),
            "shipping_city": customers.column("city").take(cust).combine_chunks(),
            "subtotal": decimal_array(self.order_subtotal, money),
            "shipping_fee": decimal_array(self.order_shipping, money),
            "total_amount": decimal_array(self.order_total, money),
            "created_at": timestamps(self.order_date), "updated_at": timestamps(self.order_updated)})

    def order_items(self) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        n = len(self.item_order)
        ids = np.arange(1, n + 1)
        money = pa.decimal128(15, 2)
        stamp = timestamps(self.order_date[self.item_order])
        return self._table("order_items", {
            "order_item_id": ids, "order_id": self.item_order + 1, "product_id": self.item_product + 1,
            "quantity": self.item_quantity.astype(np.int32),
            "unit_price": decimal_array(self.product_price[self.item_product], money),
            "discount_amount": decimal_array(self.item_discount, money),
            "line_total": decimal_array(self.item_total, money), "created_at": stamp, "updated_at": stamp})

    def payments(self) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        rng = rng_for(self.seed, "payments")
        orders = np.flatnonzero(self.paid)
        n = len(orders)
        ids = np.arange(1, n + 1)
        status_name = np.array(ORDER_STATUSES)[self.status[orders]]
        pay_status = np.select([status_name == "cancelled", status_name == "refunded", status_name == "pending"],
                               ["failed", "refunded", "pending"], "completed")
        created = self.order_date[orders] + rng.integers(0, 600, n) * US
        settled = np.isin(pay_status, ("completed", "refunded"))
        paid_at = created + rng.integers(5, 3600, n) * US
        updated = np.where(pay_status == "refunded", self.order_updated[orders], np.where(settled, paid_at, created))
        return self._table("payments", {
            "payment_id": ids, "payment_code": code("PAY-", ids, max(CODE_WIDTH["payments"], len(str(n)))),
            "order_id": orders + 1, "payment_method": pick(PAYMENT_METHODS, self.method[orders]),
            "amount": decimal_array(self.order_total[orders], pa.decimal128(15, 2)),
            "status": pa.array(pay_status.tolist(), pa.string()), "paid_at": timestamps(paid_at, settled),
            "created_at": timestamps(created), "updated_at": timestamps(updated)})

    def _invoice_lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(invoiced order indexes, their item indexes, VAT per item, first item of each invoice)."""
        import numpy as np

        orders = np.flatnonzero(self.invoiced)
        items = np.flatnonzero(self.invoiced[self.item_order])
        vat = round_half_up(self.item_total[items] * self.product_vat_bp[self.item_product[items]], 10_000)
        first = np.concatenate(([0], np.cumsum(self.item_count[orders])[:-1]))
        return orders, items, vat, first

    def _invoice_times(self, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(issue day, creation time) of each invoice: one to five days after its order."""
        rng = rng_for(self.seed, "invoices")
        issue_day = (self.order_date[orders] // DAY_US) + rng.integers(1, 6, len(orders))
        created = issue_day * DAY_US + rng.integers(8 * 3600, 18 * 3600, len(orders)) * US
        return issue_day, created

    def invoices(self) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        orders, _, vat, first = self._invoice_lines()
        n = len(orders)
        ids = np.arange(1, n + 1)
        vat_total = np.add.reduceat(vat, first)
        issue_day, created = self._invoice_times(orders)
        status_name = np.array(ORDER_STATUSES)[self.status[orders]]
        money = pa.decimal128(15, 2)
        settled = self.paid[orders] & (status_name != "refunded")
        return self._table("invoices", {
            "invoice_id": ids, "invoice_number": code("INV-", ids, max(CODE_WIDTH["invoices"], len(str(n)))),
            "order_id": orders + 1, "customer_id": self.order_customer[orders] + 1,
            "issue_date": dates(issue_day), "due_date": dates(issue_day + 30),
            "subtotal": decimal_array(self.order_subtotal[orders], money),
            "vat_amount": decimal_array(vat_total, money),
            "total_amount": decimal_array(self.order_subtotal[orders] + vat_total, money),
            "status": pick(("issued", "paid"), settled.astype(np.int64)),
            "created_at": timestamps(created), "updated_at": timestamps(created)})

    def invoice_items(self) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        orders, items, vat, _ = self._invoice_lines()
        invoice_of_order = np.zeros(self.n["orders"], dtype=np.int64)
        invoice_of_order[orders] = np.arange(1, len(orders) + 1)
        _, created = self._invoice_times(orders)
        stamp = timestamps(np.repeat(created, self.item_count[orders]))
        money = pa.decimal128(15, 2)
        product = self.item_product[items]
        return self._table("invoice_items", {
            "invoice_item_id": np.arange(1, len(items) + 1), "invoice_id": invoice_of_order[self.item_order[items]],
            "order_item_id": items + 1, "product_id": product + 1,
            "quantity": self.item_quantity[items].astype(np.int32),
            "unit_price": decimal_array(self.product_price[product], money),
            "line_amount": decimal_array(self.item_total[items], money),
            "vat_rate": decimal_array(self.product_vat_bp[product], pa.decimal128(5, 4)),
            "vat_amount": decimal_array(vat, money),
            "line_total": decimal_array(self.item_total[items] + vat, money),
            "created_at": stamp, "updated_at": stamp})


def _by_gender(rng: np.random.Generator, female: np.ndarray, male_words: Sequence[str],
               female_words: Sequence[str]) -> pa.Array:
    import numpy as np

    m = rng.integers(0, len(male_words), len(female))
    f = rng.integers(0, len(female_words), len(female))
    words = list(male_words) + list(female_words)
    return pick(words, np.where(female, len(male_words) + f, m))

"""Deterministic BFSI sample data: customers, accounts, transactions and a CRM extract.

The shape follows the ``BFSI_Test`` database the first FlowForge users built by hand:
500 customers (300 retail, 150 corporate, 50 wealth), 750 accounts, 5,000 transactions
over the last 90 days, plus one CRM row per customer. The same arguments always give the
same tables, so tests, docs and benchmarks can quote exact numbers.

Example::

    data = generate(scale=1.0, seed=42, as_of=datetime.date(2025, 11, 8))
    data.customers.num_rows           # 500
    data.ddl["accounts"].types["balance"]   # 'DECIMAL(15,2)'
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flowforge.demo._vocab import (
    CITIES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    MERCHANTS,
    RELATIONSHIP_MANAGERS,
    STREET_NAMES,
    STREET_SUFFIXES,
    City,
    Merchant,
)
from flowforge.demo.schema import DATABASE_TABLES, DDL, TableDDL

__all__ = ["DATABASE_TABLES", "DDL", "BfsiData", "TableDDL", "generate"]

if TYPE_CHECKING:
    import pyarrow as pa

Row = tuple[Any, ...]

CENT = Decimal("0.01")
BASIS_POINT = Decimal("0.0001")
WINDOW_DAYS = 90
SEGMENTS = ("retail", "corporate", "wealth")
ACCOUNT_TYPES = ("checking", "savings", "credit", "loan")
ACCOUNT_STATUSES = ("active", "closed", "suspended")


@dataclass(frozen=True)
class BfsiData:
    """The generated tables (Arrow, exact types) and their declared DDL."""

    customers: pa.Table
    accounts: pa.Table
    transactions: pa.Table
    crm: pa.Table
    as_of: dt.date
    ddl: Mapping[str, TableDDL] = field(default_factory=lambda: DDL)

    def table(self, name: str) -> pa.Table:
        tables: dict[str, pa.Table] = {"customers": self.customers, "accounts": self.accounts,
                                       "transactions": self.transactions, "crm": self.crm}
        return tables[name]


@dataclass(frozen=True)
class _Segment:
    share: int  # percent of customers
    score_mean: float
    score_sd: float
    income_mean: float
    income_sigma: float
    age: tuple[int, int]
    balance_factor: float  # wealth customers hold larger balances; the factors average to ~1 per account
    extra_accounts: int  # relative chance of holding more than one account
    tiers: tuple[int, int, int, int]  # bronze, silver, gold, platinum weights in the CRM


SEGMENT_PROFILES: Mapping[str, _Segment] = MappingProxyType({
    "retail": _Segment(60, 662, 55, 54_859, 0.45, (21, 80), 0.6, 1, (55, 30, 12, 3)),
    "corporate": _Segment(30, 737, 40, 137_088, 0.45, (28, 70), 1.15, 2, (20, 40, 30, 10)),
    "wealth": _Segment(10, 806, 25, 581_846, 0.6, (35, 85), 2.2, 3, (0, 10, 40, 50)),
})
# Proportions of the original database: 243 checking, 227 savings, 134 credit, 59 loan.
ACCOUNT_TYPE_WEIGHTS = (243, 227, 134, 59)
_BALANCE = {  # mean balance in dollars, lognormal sigma
    "checking": (24_683, 0.9), "savings": (48_635, 1.0), "credit": (7_408, 0.7), "loan": (113_305, 0.8),
}
_RATE_BP = {"checking": (1, 50), "savings": (150, 450), "credit": (1499, 2999), "loan": (399, 899)}
_CREDIT_LIMITS = (2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 25_000, 50_000)
_CITY_CUM = tuple(accumulate(c.weight for c in CITIES))
MERCHANT_CUM = tuple(accumulate(m.weight for m in MERCHANTS))


def stream(seed: int, name: str) -> random.Random:
    """An independent RNG per table, so changing one table's rules leaves the others unchanged."""
    return random.Random(f"flowforge-demo:{seed}:{name}")


def exact_counts(n: int, weights: Sequence[float]) -> list[int]:
    """Split ``n`` in proportion to ``weights`` by largest remainder (500 → 300/150/50)."""
    total = sum(weights)
    raw = [n * w / total for w in weights]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def shuffled_labels(rng: random.Random, n: int, labels: Sequence[str], weights: Sequence[float]) -> list[str]:
    out = [label for label, k in zip(labels, exact_counts(n, weights), strict=True) for _ in range(k)]
    rng.shuffle(out)
    return out


def lognormal_cents(rng: random.Random, mean: float, sigma: float) -> int:
    """A positive amount in cents whose expected value is ``mean`` dollars."""
    return max(1, round(rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma) * 100))


def cents(value: int) -> Decimal:
    return Decimal(value) * CENT


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def random_date(rng: random.Random, low: dt.date, high: dt.date) -> dt.date:
    return low + dt.timedelta(days=rng.randint(0, max(0, (high - low).days)))


def random_modified(rng: random.Random, since: dt.datetime, as_of: dt.date) -> dt.datetime:
    """A microsecond timestamp in ``[since, as_of 00:00)``, at most two years back."""
    end = midnight(as_of)
    start = min(max(since, end - dt.timedelta(days=730)), end - dt.timedelta(microseconds=1))
    span = int((end - start) / dt.timedelta(microseconds=1))
    return start + dt.timedelta(microseconds=rng.randrange(span))


def unique_email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    f, ln = first.lower(), last.lower()
    local = rng.choice((f"{f}.{ln}", f"{f}{ln}", f"{f[0]}{ln}", f"{f}_{ln}", f"{f}.{ln}{rng.randint(1, 99)}"))
    domain = rng.choice(EMAIL_DOMAINS)
    email, n = f"{local}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def pick_city(rng: random.Random) -> City:
    return rng.choices(CITIES, cum_weights=_CITY_CUM)[0]


def make_customer(
    rng: random.Random, customer_id: int, segment: str, as_of: dt.date, emails: set[str],
    *, opened: dt.date | None = None, modified: dt.datetime | None = None,
) -> Row:
    """One ``customers`` row in DDL column order."""
    p = SEGMENT_PROFILES[segment]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city = pick_city(rng)
    years = rng.randint(*p.age)
    dob = as_of - dt.timedelta(days=years * 365 + rng.randint(0, 364))
    apartment = f", Apt {rng.randint(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.25 else ""
    address = f"{rng.randint(1, 9899)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}{apartment}"
    if opened is None:
        earliest = max(dob + dt.timedelta(days=18 * 365), as_of - dt.timedelta(days=20 * 365))
        opened = random_date(rng, earliest, as_of - dt.timedelta(days=30))
    score = min(850, max(300, round(rng.gauss(p.score_mean, p.score_sd))))
    income = cents(lognormal_cents(rng, p.income_mean, p.income_sigma))
    return (
        customer_id, first, last, unique_email(rng, first, last, emails),
        f"({city.area_code}) {rng.randint(201, 989)}-{rng.randint(0, 9999):04d}",
        dob, f"{rng.randint(0, 9999):04d}", address, city.name, city.state,
        f"{rng.randint(city.zip_low, city.zip_high):05d}", opened, segment, score, income,
        modified or random_modified(rng, midnight(opened), as_of),
    )


def make_account(
    rng: random.Random, account_id: int, customer_id: int, account_type: str, segment: str,
    opened: dt.date, status: str, as_of: dt.date, *, modified: dt.datetime | None = None,
) -> list[Any]:
    """One ``accounts`` row in DDL column order (a list: ``last_transaction_date`` is filled later)."""
    mean, sigma = _BALANCE[account_type]
    balance = lognormal_cents(rng, mean * SEGMENT_PROFILES[segment].balance_factor, sigma)
    limit: Decimal | None = None
    if account_type == "credit":
        limit_dollars = max(rng.choice(_CREDIT_LIMITS), math.ceil((balance / 100 + 1) / 5000) * 5000)
        limit = Decimal(limit_dollars).quantize(CENT)
    rate = Decimal(rng.randint(*_RATE_BP[account_type])) * BASIS_POINT
    return [
        account_id, customer_id, account_type, cents(balance), limit, rate, opened, status, None,
        modified or random_modified(rng, midnight(opened), as_of),
    ]


def merchant_location(rng: random.Random, merchant: Merchant, home: City) -> str:
    if merchant.online:
        return "Online"
    city = home if rng.random() < 0.9 else pick_city(rng)
    return f"{city.name}, {city.state}"


def make_transaction(
    rng: random.Random, transaction_id: int, account_id: int, merchant: Merchant, home: City,
    when: dt.datetime, status: str, modified: dt.datetime,
) -> Row:
    """One ``transactions`` row in DDL column order; money out is negative."""
    amount = cents(merchant.sign * lognormal_cents(rng, merchant.mean, 0.6))
    return (
        transaction_id, account_id, amount, when.date(), when.time(), merchant.transaction_type,
        merchant.category, merchant.merchant, merchant.merchant_category,
        merchant_location(rng, merchant, home), status, modified,
    )


def make_crm(rng: random.Random, customer: Row, as_of: dt.date) -> Row:
    """The CRM system's view of one customer (DDL column order)."""
    customer_id, segment, income = customer[0], customer[12], customer[14]
    tier = rng.choices(("bronze", "silver", "gold", "platinum"), SEGMENT_PROFILES[segment].tiers)[0]
    lifetime_value = (income * Decimal(rng.randint(5, 60)) * CENT).quantize(CENT)
    return (
        customer_id, f"CRM-{customer_id:06d}",
        rng.choices(("email", "phone", "sms", "mail"), (50, 25, 15, 10))[0],
        rng.random() < 0.62, tier, lifetime_value,
        as_of - dt.timedelta(days=rng.randint(1, 365)), rng.choice(RELATIONSHIP_MANAGERS),
    )


def account_pools(types: Sequence[str], statuses: Sequence[str]) -> list[list[int]]:
    """For each merchant, the row indexes of open accounts it may post to (never empty if any exist)."""
    open_idx = [i for i, s in enumerate(statuses) if s != "closed"] or list(range(len(types)))
    pools = []
    for m in MERCHANTS:
        allowed = set(m.account_types)
        pools.append([i for i in open_idx if types[i] in allowed] or open_idx)
    return pools


def to_table(ddl: TableDDL, rows: Sequence[Sequence[Any]]) -> pa.Table:
    import pyarrow as pa

    schema = ddl.arrow_schema()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in ddl.columns]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def generate(scale: float = 1.0, seed: int = 42, as_of: dt.date | None = None) -> BfsiData:
    """Generate the BFSI demo data set; identical arguments give identical tables."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    as_of = as_of or dt.date.today()
    n_customers = max(1, round(500 * scale))
    n_accounts = max(n_customers, round(750 * scale))
    n_transactions = round(5000 * scale)

    rng = stream(seed, "customers")
    emails: set[str] = set()
    segments = shuffled_labels(rng, n_customers, SEGMENTS, [SEGMENT_PROFILES[s].share for s in SEGMENTS])
    customers = [make_customer(rng, i + 1, seg, as_of, emails) for i, seg in enumerate(segments)]

    rng = stream(seed, "accounts")
    owners = list(range(n_customers))
    extra_weights = [SEGMENT_PROFILES[s].extra_accounts for s in segments]
    owners += rng.choices(range(n_customers), extra_weights, k=n_accounts - n_customers)
    first_seen: set[int] = set()
    opened_on = []
    for owner in owners:  # the first account opens with the customer, later ones any day since
        since = customers[owner][11]
        later = random_date(rng, since, as_of - dt.timedelta(days=1)) if owner in first_seen else since
        opened_on.append(later)
        first_seen.add(owner)
    order = sorted(range(n_accounts), key=lambda i: (opened_on[i], owners[i], i))
    types = shuffled_labels(rng, n_accounts, ACCOUNT_TYPES, ACCOUNT_TYPE_WEIGHTS)
    statuses = shuffled_labels(rng, n_accounts, ACCOUNT_STATUSES, (90, 5, 5))
    accounts = [
        make_account(rng, n + 1, owners[i] + 1, types[n], segments[owners[i]], opened_on[i], statuses[n],
                     as_of)
        for n, i in enumerate(order)
    ]

    transactions = _transactions(stream(seed, "transactions"), n_transactions, customers, accounts, as_of)
    last_seen: dict[int, Row] = {}
    for txn in transactions:  # rows are in time order, so the last write per account wins
        last_seen[txn[1]] = txn
    horizon = as_of - dt.timedelta(days=WINDOW_DAYS + 1)
    for acc in accounts:
        if (last := last_seen.get(acc[0])) is not None:  # the balance changed with the latest transaction
            acc[8], acc[9] = last[3], max(acc[9], last[11])
        elif acc[6] <= horizon and rng.random() < 0.7:  # activity before the window
            acc[8] = random_date(rng, acc[6], horizon)

    rng = stream(seed, "crm")
    crm = [make_crm(rng, c, as_of) for c in customers]
    return BfsiData(
        customers=to_table(DDL["customers"], customers), accounts=to_table(DDL["accounts"], accounts),
        transactions=to_table(DDL["transactions"], transactions), crm=to_table(DDL["crm"], crm), as_of=as_of,
    )


def _transactions(
    rng: random.Random, n: int, customers: Sequence[Row], accounts: Sequence[Sequence[Any]], as_of: dt.date,
) -> list[Row]:
    if n == 0:
        return []
    city_by_name = {(c.name, c.state): c for c in CITIES}
    homes = [city_by_name[(customers[a[1] - 1][8], customers[a[1] - 1][9])] for a in accounts]
    pools = account_pools([a[2] for a in accounts], [a[7] for a in accounts])
    start = midnight(as_of - dt.timedelta(days=WINDOW_DAYS))
    end = midnight(as_of)
    # Seconds into the window: a uniform day and a time of day peaking early afternoon.
    offsets = sorted(
        rng.randrange(WINDOW_DAYS) * 86_400 + min(86_399, max(0, int(rng.gauss(48_600, 14_400))))
        for _ in range(n)
    )
    picks = rng.choices(range(len(MERCHANTS)), cum_weights=MERCHANT_CUM, k=n)
    recent = end - dt.timedelta(days=3)
    rows = []
    for tid, (offset, m) in enumerate(zip(offsets, picks, strict=True), start=1):
        when = start + dt.timedelta(seconds=offset)
        roll = rng.random()
        status = "failed" if roll < 0.02 else ("pending" if when >= recent and roll < 0.3 else "completed")
        lag = dt.timedelta(seconds=rng.randint(0, 21_600), microseconds=rng.randrange(1_000_000))
        modified = min(when + lag, end - dt.timedelta(microseconds=1))
        i = rng.choice(pools[m])
        account_id = accounts[i][0]
        rows.append(make_transaction(rng, tid, account_id, MERCHANTS[m], homes[i], when, status, modified))
    return rows

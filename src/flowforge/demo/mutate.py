"""Apply a deterministic batch of changes to a loaded demo database.

Incremental loads select ``modified_date > last watermark``; this module makes the next run
of a demo pipeline have something to pick up. One call inserts new customers (each with new
accounts and a few transactions), updates existing customers (email, segment or credit score)
and account balances, and inserts transactions on existing accounts. Every inserted or updated
row gets a ``modified_date`` strictly after the table's current maximum, so exactly these rows
are new to an incremental reader.

The change set is planned once in pure Python from a snapshot of the database; a tiny
backend (SQLite or PostgreSQL) only reads the snapshot and executes the statements.

Example::

    write_sqlite(generate(seed=42), "bfsi.db")
    summary = mutate_sqlite("bfsi.db", seed=1)
    summary.changed("customers")      # 35 = 10 inserted + 25 updated
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from flowforge.demo._vocab import CITIES, MERCHANTS, City
from flowforge.demo.bfsi import (
    CENT,
    MERCHANT_CUM,
    SEGMENT_PROFILES,
    SEGMENTS,
    Row,
    account_pools,
    cents,
    lognormal_cents,
    make_account,
    make_customer,
    make_transaction,
    unique_email,
)
from flowforge.demo.loaders import connect_postgres
from flowforge.demo.schema import DATABASE_TABLES, DDL
from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import psycopg

__all__ = ["MutationSummary", "mutate_postgres", "mutate_sqlite"]


@dataclass(frozen=True)
class MutationSummary:
    """How many rows one mutation inserted or updated, and the watermarks it moved past."""

    customers_inserted: int
    customers_updated: int
    accounts_inserted: int
    accounts_updated: int
    transactions_inserted: int
    previous_max_modified: Mapping[str, dt.datetime | None] = field(default_factory=dict)

    def changed(self, table: str) -> int:
        """Rows of ``table`` whose ``modified_date`` is now past ``previous_max_modified[table]``."""
        return {
            "customers": self.customers_inserted + self.customers_updated,
            "accounts": self.accounts_inserted + self.accounts_updated,
            "transactions": self.transactions_inserted,
        }[table]


class _Backend(Protocol):
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...
    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def table(self, name: str) -> str: ...
    @property
    def param(self) -> str: ...


@dataclass
class _Snapshot:
    customers: list[tuple[Any, ...]]  # customer_id, first_name, last_name, email, segment, score, city, state
    accounts: list[tuple[Any, ...]]  # account_id, customer_id, account_type, balance, credit_limit, status
    max_transaction_id: int
    max_modified: dict[str, dt.datetime | None]


@dataclass
class _Changes:
    inserts: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in DATABASE_TABLES})
    customer_updates: list[Row] = field(default_factory=list)  # email, segment, score, modified, id
    account_updates: list[Row] = field(default_factory=list)  # balance, status, modified, id


class _Clock:
    """Hands out ``modified_date`` values: one second after the newest row of any table, then one
    microsecond apart per table, so every change sorts after every existing row."""

    def __init__(self, max_modified: Mapping[str, dt.datetime | None]) -> None:
        known = [m for m in max_modified.values() if m is not None]
        start = max(known, default=dt.datetime.combine(dt.date.today(), dt.time())) + dt.timedelta(seconds=1)
        self._next = dict.fromkeys(max_modified, start)
        self.day = start.date()

    def tick(self, table: str) -> dt.datetime:
        stamp = self._next[table]
        self._next[table] = stamp + dt.timedelta(microseconds=1)
        return stamp


def _money(value: Any) -> Decimal:
    # SQLite hands NUMERIC back as REAL or INTEGER; its shortest repr is the stored 2-decimal value.
    return Decimal(str(value)).quantize(CENT)


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _read(db: _Backend) -> _Snapshot:
    t = db.table
    customers = db.query(
        "SELECT customer_id, first_name, last_name, email, customer_segment, credit_score, city, state "
        f"FROM {t('customers')} ORDER BY customer_id"
    )
    accounts = [
        (a[0], a[1], a[2], _money(a[3]), None if a[4] is None else _money(a[4]), a[5])
        for a in db.query(
            "SELECT account_id, customer_id, account_type, balance, credit_limit, status "
            f"FROM {t('accounts')} ORDER BY account_id"
        )
    ]
    max_txn = db.query(f"SELECT MAX(transaction_id) FROM {t('transactions')}")[0][0] or 0
    max_modified = {
        name: _timestamp(db.query(f"SELECT MAX(modified_date) FROM {t(name)}")[0][0])
        for name in DATABASE_TABLES
    }
    return _Snapshot(customers, accounts, int(max_txn), max_modified)


def _plan(snap: _Snapshot, seed: int, counts: Mapping[str, int]) -> _Changes:
    # Mixing the database's size into the seed makes repeated calls produce fresh changes
    # while the same database and seed always produce the same ones.
    rng = random.Random(f"flowforge-demo-mutation:{seed}:{len(snap.customers)}:{snap.max_transaction_id}")
    clock, out = _Clock(snap.max_modified), _Changes()
    emails = {c[3] for c in snap.customers}
    cities = {(c.name, c.state): c for c in CITIES}
    home = {c[0]: cities.get((c[6], c[7]), CITIES[0]) for c in snap.customers}
    next_txn = snap.max_transaction_id + 1

    def add_transaction(account_id: int, merchant: int, city: City) -> None:
        nonlocal next_txn
        stamp = clock.tick("transactions")
        status = "pending" if rng.random() < 0.2 else "completed"
        out.inserts["transactions"].append(make_transaction(
            rng, next_txn, account_id, MERCHANTS[merchant], city, stamp.replace(microsecond=0), status, stamp,
        ))
        next_txn += 1

    # New customers, each with one or two accounts that see one to three transactions today.
    next_customer = max((c[0] for c in snap.customers), default=0) + 1
    next_account = max((a[0] for a in snap.accounts), default=0) + 1
    shares = [SEGMENT_PROFILES[s].share for s in SEGMENTS]
    for customer_id in range(next_customer, next_customer + counts["new_customers"]):
        segment = rng.choices(SEGMENTS, shares)[0]
        row = make_customer(rng, customer_id, segment, clock.day, emails, opened=clock.day,
                            modified=clock.tick("customers"))
        out.inserts["customers"].append(row)
        city = cities[(row[8], row[9])]
        for account_type in ("checking", rng.choice(("savings", "credit")))[: 1 + (rng.random() < 0.35)]:
            account = make_account(rng, next_account, customer_id, account_type, segment, clock.day, "active",
                                   clock.day, modified=clock.tick("accounts"))
            allowed = [i for i, m in enumerate(MERCHANTS) if account_type in m.account_types]
            for m in rng.choices(allowed, [MERCHANTS[i].weight for i in allowed], k=rng.randint(1, 3)):
                add_transaction(next_account, m, city)
            account[8] = clock.day
            out.inserts["accounts"].append(tuple(account))
            next_account += 1

    # Existing customers change an email, a segment or a credit score.
    for c in rng.sample(snap.customers, min(counts["updated_customers"], len(snap.customers))):
        customer_id, first, last, email, segment, score = c[:6]
        kind = rng.choices(("email", "segment", "credit_score"), (40, 20, 40))[0]
        if kind == "email":
            email = unique_email(rng, first, last, emails)
        elif kind == "segment":
            segment = rng.choice([s for s in SEGMENTS if s != segment])
        else:
            score = min(850, max(300, int(score) + rng.choice((-1, 1)) * rng.randint(5, 60)))
        out.customer_updates.append((email, segment, score, clock.tick("customers"), customer_id))

    # Open accounts move their balance; one in ten is suspended or reinstated.
    open_accounts = [a for a in snap.accounts if a[5] != "closed"]
    for a in rng.sample(open_accounts, min(counts["updated_accounts"], len(open_accounts))):
        account_id, _, account_type, balance, limit, status = a
        balance = max(Decimal(0), balance + cents(rng.choice((-1, 1)) * lognormal_cents(rng, 400, 1.0)))
        if limit is not None:
            balance = min(balance, limit)
        if rng.random() < 0.1:
            status = {"active": "suspended", "suspended": "active"}.get(status, status)
        out.account_updates.append((balance, status, clock.tick("accounts"), account_id))

    # Transactions on existing, open accounts.
    if snap.accounts and counts["new_transactions"]:
        pools = account_pools([a[2] for a in snap.accounts], [a[5] for a in snap.accounts])
        for m in rng.choices(range(len(MERCHANTS)), cum_weights=MERCHANT_CUM, k=counts["new_transactions"]):
            account_id, customer_id = snap.accounts[rng.choice(pools[m])][:2]
            add_transaction(account_id, m, home.get(customer_id, CITIES[0]))
    return out


def _apply(db: _Backend, changes: _Changes) -> None:
    p = db.param
    for name in DATABASE_TABLES:
        columns = DDL[name].column_names
        if rows := changes.inserts[name]:
            marks = ", ".join([p] * len(columns))
            db.execute_many(f"INSERT INTO {db.table(name)} ({', '.join(columns)}) VALUES ({marks})", rows)
    if changes.customer_updates:
        db.execute_many(
            f"UPDATE {db.table('customers')} SET email = {p}, customer_segment = {p}, credit_score = {p}, "
            f"modified_date = {p} WHERE customer_id = {p}",
            changes.customer_updates,
        )
    if changes.account_updates:
        db.execute_many(
            f"UPDATE {db.table('accounts')} SET balance = {p}, status = {p}, modified_date = {p} "
            f"WHERE account_id = {p}",
            changes.account_updates,
        )


def _mutate(db: _Backend, seed: int, counts: Mapping[str, int]) -> MutationSummary:
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"mutation counts must not be negative: {dict(counts)}")
    snapshot = _read(db)
    changes = _plan(snapshot, seed, counts)
    _apply(db, changes)
    return MutationSummary(
        customers_inserted=len(changes.inserts["customers"]),
        customers_updated=len(changes.customer_updates),
        accounts_inserted=len(changes.inserts["accounts"]),
        accounts_updated=len(changes.account_updates),
        transactions_inserted=len(changes.inserts["transactions"]),
        previous_max_modified=MappingProxyType(dict(snapshot.max_modified)),
    )


# --- backends -------------------------------------------------------------------------------------------

def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    return value


class _SqliteBackend:
    param = "?"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql).fetchall()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))

    def table(self, name: str) -> str:
        return name


class _PostgresBackend:
    param = "%s"

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> None:
        self._conn, self._schema = conn, schema

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql).fetchall()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql, rows)

    def table(self, name: str) -> str:
        from psycopg import sql

        return sql.Identifier(self._schema, name).as_string(self._conn)


@contextmanager
def _sqlite(path: str | os.PathLike[str]) -> Iterator[_SqliteBackend]:
    if not Path(path).is_file():
        raise SourceNotFound(f"Demo database {os.fspath(path)!r} does not exist",
                             hint="Create it first with flowforge.demo.write_sqlite(generate(), path).")
    with closing(sqlite3.connect(os.fspath(path), isolation_level=None)) as conn:
        missing = set(DATABASE_TABLES) - {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if missing:
            raise SourceNotFound(f"Demo database {os.fspath(path)!r} has no table(s) {sorted(missing)}",
                                 hint="Load it first with flowforge.demo.write_sqlite(generate(), path).")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteBackend(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def mutate_sqlite(
    path: str | os.PathLike[str], seed: int, new_customers: int = 10, updated_customers: int = 25,
    updated_accounts: int = 25, new_transactions: int = 200,
) -> MutationSummary:
    """Apply one batch of changes to a demo SQLite database in a single transaction."""
    counts = {"new_customers": new_customers, "updated_customers": updated_customers,
              "updated_accounts": updated_accounts, "new_transactions": new_transactions}
    with _sqlite(path) as db:
        return _mutate(db, seed, counts)


def mutate_postgres(
    url: str, schema: str, seed: int, new_customers: int = 10, updated_customers: int = 25,
    updated_accounts: int = 25, new_transactions: int = 200,
) -> MutationSummary:
    """Apply one batch of changes to demo tables in a PostgreSQL schema in a single transaction."""
    import psycopg

    from flowforge.errors import map_exceptions, redact

    counts = {"new_customers": new_customers, "updated_customers": updated_customers,
              "updated_accounts": updated_accounts, "new_transactions": new_transactions}
    where = f"Demo schema {schema!r} in {redact(url)}"
    with connect_postgres(url) as conn, map_exceptions(
        {psycopg.errors.UndefinedTable: SourceNotFound}, where,
        hint="Load it first with flowforge.demo.write_postgres(generate(), url, schema).",
    ):
        return _mutate(_PostgresBackend(conn, schema), seed, counts)

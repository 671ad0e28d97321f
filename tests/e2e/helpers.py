"""Shared steps of the end-to-end tests: run the real CLI, read the lakehouse, and compute
the Customer 360 independently from the source database with plain SQL."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

CLI = [sys.executable, "-m", "flowforge"]


def flowforge(*args: str, project: Path | None = None, env: dict[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, *(["-p", str(project)] if project else []), *args]
    full_env = {**os.environ, "COLUMNS": "160", **(env or {})}
    result = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def table(project: Path, layer: str, name: str) -> list[dict[str, Any]]:
    return DeltaTable(str(project / "lakehouse" / layer / name)).to_pyarrow_table().to_pylist()


def cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def reference_customer_360(db: Path) -> dict[int, dict[str, Any]]:
    """Customer 360 straight from the source, money summed in integer cents (no float sums)."""
    con = sqlite3.connect(db)
    rows = con.execute("""
        SELECT c.customer_id,
               (SELECT count(*) FROM accounts a WHERE a.customer_id = c.customer_id),
               (SELECT coalesce(sum(CAST(round(a.balance * 100) AS INTEGER)), 0)
                  FROM accounts a WHERE a.customer_id = c.customer_id),
               (SELECT count(*) FROM transactions t JOIN accounts a ON a.account_id = t.account_id
                 WHERE a.customer_id = c.customer_id),
               (SELECT coalesce(sum(CAST(round(t.amount * 100) AS INTEGER)), 0)
                  FROM transactions t JOIN accounts a ON a.account_id = t.account_id
                 WHERE a.customer_id = c.customer_id),
               c.first_name || ' ' || c.last_name
        FROM customers c
    """).fetchall()
    con.close()
    return {r[0]: {"account_count": r[1], "balance_cents": r[2], "transaction_count": r[3],
                   "amount_cents": r[4], "full_name": r[5]} for r in rows}


def crm_rows(csv_path: Path) -> dict[int, dict[str, str]]:
    with open(csv_path, newline="") as fh:
        return {int(r["customer_id"]): r for r in csv.DictReader(fh)}


def assert_gold_matches_source(project: Path) -> int:
    """Compare gold_customer_360 with the reference, per customer, to the cent. Returns rows checked."""
    expected = reference_customer_360(project / "data" / "bfsi.db")
    crm = crm_rows(project / "data" / "crm" / "crm_customers.csv")
    gold = {r["customer_id"]: r for r in table(project, "gold", "gold_customer_360")}
    assert set(gold) == set(expected), "gold must have exactly one row per source customer"
    for cid, exp in expected.items():
        got = gold[cid]
        assert got["account_count"] == exp["account_count"], cid
        assert cents(got["total_balance"]) == exp["balance_cents"], cid
        assert got["transaction_count"] == exp["transaction_count"], cid
        assert cents(got["total_transaction_amount"]) == exp["amount_cents"], cid
        assert got["full_name"] == exp["full_name"], cid
        if cid in crm:
            assert got["loyalty_tier"] == crm[cid]["loyalty_tier"], cid
            assert cents(got["lifetime_value"]) == cents(crm[cid]["lifetime_value"]), cid
            assert got["crm_id"] == crm[cid]["crm_id"], cid
    return len(expected)


def source_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()

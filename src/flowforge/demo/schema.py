"""Declared shape of the demo tables: portable SQL types, Arrow types, keys.

Loaders create tables from this description (``balance DECIMAL(15,2)``, ``modified_date
TIMESTAMP``), and the generator builds its Arrow tables from the same columns, so the
database, the CSV and the Arrow data can never disagree about a type.

Example::

    DDL["accounts"].types["balance"]        # 'DECIMAL(15,2)'
    DDL["accounts"].foreign_keys            # (('customer_id', 'customers', 'customer_id'),)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One column: its portable SQL type, its Arrow type and whether it may be NULL."""

    name: str
    sql_type: str
    arrow_type: str
    nullable: bool = False


@dataclass(frozen=True)
class TableDDL:
    """Declared shape of one demo table, so loaders create tables with real types."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[tuple[str, str, str], ...] = ()  # (column, referenced table, referenced column)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def types(self) -> dict[str, str]:
        """Column name → portable SQL type, e.g. ``{'balance': 'DECIMAL(15,2)'}``."""
        return {c.name: c.sql_type for c in self.columns}

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, _arrow_type(c.arrow_type), c.nullable) for c in self.columns])


def _arrow_type(spec: str) -> pa.DataType:
    import pyarrow as pa

    if m := re.fullmatch(r"decimal128\((\d+),(\d+)\)", spec):
        return pa.decimal128(int(m[1]), int(m[2]))
    simple: dict[str, pa.DataType] = {
        "int64": pa.int64(), "int32": pa.int32(), "string": pa.string(), "bool": pa.bool_(),
        "date32": pa.date32(), "time64[us]": pa.time64("us"), "timestamp[us]": pa.timestamp("us"),
    }
    return simple[spec]


def _c(name: str, sql_type: str, nullable: bool = False) -> Column:
    arrow = {"INTEGER": "int64", "DATE": "date32", "TIME": "time64[us]", "TIMESTAMP": "timestamp[us]",
             "BOOLEAN": "bool"}.get(sql_type)
    if arrow is None:
        m = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", sql_type)
        arrow = f"decimal128({m[1]},{m[2]})" if m else "string"
    return Column(name, sql_type, arrow, nullable)


_CUSTOMERS = TableDDL("customers", (
    _c("customer_id", "INTEGER"), _c("first_name", "VARCHAR(50)"), _c("last_name", "VARCHAR(50)"),
    _c("email", "VARCHAR(100)"), _c("phone", "VARCHAR(20)"), _c("dob", "DATE"), _c("ssn_last4", "CHAR(4)"),
    _c("address", "VARCHAR(200)"), _c("city", "VARCHAR(50)"), _c("state", "CHAR(2)"),
    _c("zip", "VARCHAR(10)"),
    _c("account_open_date", "DATE"), _c("customer_segment", "VARCHAR(20)"),
    Column("credit_score", "INTEGER", "int32"), _c("annual_income", "DECIMAL(15,2)"),
    _c("modified_date", "TIMESTAMP"),
), ("customer_id",))
_ACCOUNTS = TableDDL("accounts", (
    _c("account_id", "INTEGER"), _c("customer_id", "INTEGER"), _c("account_type", "VARCHAR(20)"),
    _c("balance", "DECIMAL(15,2)"), _c("credit_limit", "DECIMAL(15,2)", nullable=True),
    _c("interest_rate", "DECIMAL(5,4)"), _c("open_date", "DATE"), _c("status", "VARCHAR(20)"),
    _c("last_transaction_date", "DATE", nullable=True), _c("modified_date", "TIMESTAMP"),
), ("account_id",), (("customer_id", "customers", "customer_id"),))
_TRANSACTIONS = TableDDL("transactions", (
    _c("transaction_id", "INTEGER"), _c("account_id", "INTEGER"), _c("amount", "DECIMAL(15,2)"),
    _c("transaction_date", "DATE"), _c("transaction_time", "TIME"), _c("transaction_type", "VARCHAR(20)"),
    _c("category", "VARCHAR(50)"), _c("merchant", "VARCHAR(100)"), _c("merchant_category", "VARCHAR(50)"),
    _c("location", "VARCHAR(100)"), _c("status", "VARCHAR(20)"), _c("modified_date", "TIMESTAMP"),
), ("transaction_id",), (("account_id", "accounts", "account_id"),))
_CRM = TableDDL("crm", (
    _c("customer_id", "INTEGER"), _c("crm_id", "VARCHAR(20)"), _c("preferred_contact_method", "VARCHAR(10)"),
    _c("marketing_opt_in", "BOOLEAN"), _c("loyalty_tier", "VARCHAR(10)"),
    _c("lifetime_value", "DECIMAL(12,2)"),
    _c("last_contact_date", "DATE"), _c("assigned_rep", "VARCHAR(100)"),
), ("customer_id",))

DDL: Mapping[str, TableDDL] = MappingProxyType(
    {t.name: t for t in (_CUSTOMERS, _ACCOUNTS, _TRANSACTIONS, _CRM)}
)
"""Declared shape of every demo table, keyed by table name."""

DATABASE_TABLES = ("customers", "accounts", "transactions")
"""Tables that live in the demo database, in foreign-key order (the CRM extract is a CSV file)."""

"""Deterministic demo data: the BFSI core-banking database and its CRM extract.

Example::

    from flowforge.demo import generate, write_sqlite, write_crm_csv, mutate_sqlite

    data = generate(scale=1.0, seed=42)          # 500 customers, 750 accounts, 5,000 transactions
    write_sqlite(data, "bfsi.db")
    write_crm_csv(data, "crm_customers.csv")
    mutate_sqlite("bfsi.db", seed=1)             # changes for the next incremental run

The generator and loaders import pyarrow (and psycopg, for PostgreSQL) only when called.
"""

from flowforge.demo.bfsi import BfsiData, generate
from flowforge.demo.loaders import write_crm_csv, write_postgres, write_sqlite
from flowforge.demo.mutate import MutationSummary, mutate_postgres, mutate_sqlite
from flowforge.demo.schema import DATABASE_TABLES, DDL, Column, TableDDL

__all__ = [
    "DATABASE_TABLES",
    "DDL",
    "BfsiData",
    "Column",
    "MutationSummary",
    "TableDDL",
    "generate",
    "mutate_postgres",
    "mutate_sqlite",
    "write_crm_csv",
    "write_postgres",
    "write_sqlite",
]

"""Lineage: table-to-table edges from the spec (column-level from sqlglot next)."""

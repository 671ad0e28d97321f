"""Compute engines. The embedded default is DuckDB over the Delta snapshot's Parquet files."""

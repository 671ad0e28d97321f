"""SQL database sources: one subpackage per dialect, sharing ``common`` (quoting, read-only
checks, incremental windows, type mapping)."""

"""Files on disk (CSV, Parquet) as a source; each new or changed file is read exactly once."""

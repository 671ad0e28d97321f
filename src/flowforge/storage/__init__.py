"""Lakehouse storage: Delta tables on local disk (S3-compatible stores next)."""

from flowforge.storage.delta import LAYERS, CommitResult, LakehouseStore

__all__ = ["LAYERS", "CommitResult", "LakehouseStore"]

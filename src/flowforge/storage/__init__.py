"""Lakehouse storage: Delta tables on local disk or S3-compatible object storage."""

from flowforge.storage.delta import LAYERS, CommitConflict, CommitResult, LakehouseStore

__all__ = ["LAYERS", "CommitConflict", "CommitResult", "LakehouseStore"]

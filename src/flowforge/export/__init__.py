"""Staging snapshots of source tables or lakehouse layers (``flowforge export``, ``kind: export``)."""

"""Debezium change events in JSON, from JSONL files on local or S3 storage."""

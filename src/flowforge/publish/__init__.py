"""Serving gold tables to BI tools: ``kind: publish`` copies them into a PostgreSQL schema."""

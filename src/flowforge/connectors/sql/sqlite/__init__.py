"""SQLite source: a read-only view of a local database file."""

"""Runs workflows: dependency order, retries of transient errors, run records."""

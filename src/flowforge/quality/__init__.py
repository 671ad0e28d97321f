"""Data quality: declarative tests on every table, quarantine, results history.

Tests are declared next to each table in the workflow YAML (``tests:``); kinds live in
``flowforge.quality.kinds`` (one module each); ``gate.commit_checked`` is the one call a layer
makes per table, around its Delta commit.
"""

# The workflow spec (flowforge.spec.jobs) embeds the tests union, whose kinds build on
# flowforge.spec.base: load the spec package first so either import order resolves.
import flowforge.spec  # noqa: F401

"""Changes applied to a rendered template beyond its own parameters: tags and table names.

Renaming a table renames it everywhere in the workflow: the job that writes it, silver
sources and gold SQL (through sqlglot, so only real table references change).

Example::

    customise(text, tags=["bfsi", "pilot"], tables={"gold_customer_360": "gold_c360_pilot"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from flowforge.errors import ConfigError


def customise(text: str, *, tags: Sequence[str] | None = None, tables: Mapping[str, str] | None = None) -> str:
    """The workflow YAML with ``tags`` replaced and tables renamed (old name → new name)."""
    from flowforge.core.spec_edit import merge_text

    if tags is None and not tables:
        return text
    spec: dict[str, Any] = yaml.safe_load(text)
    if tags is not None:
        spec["tags"] = [t.strip() for t in tags if t.strip()]
    if tables:
        readers = ("publish", "export")  # their 'tables' name tables to read, not to write
        written = {t["target"] for job in spec["jobs"] if job.get("kind") not in readers
                   for t in job.get("tables", [])}
        unknown = sorted(set(tables) - written)
        if unknown:
            raise ConfigError(f"The template writes no table(s) {', '.join(unknown)}.",
                              hint=f"Tables: {', '.join(sorted(written))}.")
        for job in spec["jobs"]:
            if job.get("kind") == "publish":
                for entry in job.get("tables", []):
                    entry["table"] = tables.get(entry["table"], entry["table"])
                continue
            if job.get("kind") == "export":
                if "tables" in job:
                    job["tables"] = [tables.get(t, t) for t in job["tables"]]
                continue
            for table in job.get("tables", []):
                table["target"] = tables.get(table["target"], table["target"])
                if "source" in table:
                    table["source"] = tables.get(table["source"], table["source"])
                if "sql" in table:
                    table["sql"] = rename_tables(table["sql"], tables)
    return merge_text(text, spec)  # the template's layout and comments stay


def rename_tables(sql: str, names: Mapping[str, str], dialect: str = "duckdb") -> str:
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read=dialect)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name in names and node.name not in ctes:
            node.set("this", exp.to_identifier(names[node.name]))
        return node

    return tree.transform(swap).sql(dialect=dialect, pretty=True) + "\n"

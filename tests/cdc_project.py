"""A FlowForge project with one cdc job, for CDC tests against real sources: run it in process,
read its tables, and check SCD2 history the way a user would audit it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from deltalake import DeltaTable

from flowforge.core.context import Context
from flowforge.core.project import init_project, write_project_file

SCD1 = "items"
SCD2 = "items_history"
WORKFLOW = "cdc"
JOB = "items_cdc"
BRONZE = "bronze_items"


class CdcProject:
    def __init__(self, root: Path, connection: dict[str, Any], *, keys: tuple[str, ...] = ("id",),
                 tables: list[dict[str, Any]] | None = None, settings: dict[str, Any] | None = None,
                 **job: Any) -> None:
        self.root = root
        init_project(root)
        (root / "workflows" / "example.yml").unlink()
        local = connection.get("path")  # a folder of change files outside the project is a data root of its own
        roots = [str(local)] if isinstance(local, str) and "://" not in local else None
        write_project_file(root, {"src": connection}, data_roots=roots)
        if settings:
            project = yaml.safe_load((root / "flowforge.yml").read_text(encoding="utf-8"))
            project.update(settings)
            (root / "flowforge.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
        tables = tables if tables is not None else [
            {"target": SCD1, "strategy": "scd1", "keys": list(keys)},
            {"target": SCD2, "strategy": "scd2", "keys": list(keys)}]
        wf = {"name": WORKFLOW, "jobs": [{"name": JOB, "kind": "cdc", "connection": "src", "target": BRONZE,
                                          "tables": tables, **job}]}
        (root / "workflows" / f"{WORKFLOW}.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")

    def context(self) -> Context:
        return Context.open(self.root)

    def run(self, ok: bool = True) -> Any:
        with self.context() as ctx:
            summary = ctx.run(WORKFLOW)
        if ok:
            assert summary.status == "success", "\n".join(e.error or "" for e in summary.failed)
        return summary

    def path(self, layer: str, table: str) -> Path:
        return self.root / "lakehouse" / layer / table

    def dt(self, layer: str, table: str) -> DeltaTable:
        return DeltaTable(str(self.path(layer, table)))

    def rows(self, table: str, layer: str = "silver") -> list[dict[str, Any]]:
        return self.dt(layer, table).to_pyarrow_table().to_pylist()

    def logs(self, run_id: int) -> str:
        with self.context() as ctx:
            return "\n".join(j.log or "" for j in ctx.run_detail(run_id).job_runs)


def scd2_problems(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("id",)) -> list[str]:
    """What is wrong with an SCD2 table: more than one current row per key, a current row of a
    deleted key, versions that overlap or leave a gap (a version ends where the next begins,
    unless it ended in a delete), an end before a start."""
    problems = []
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(tuple(r[k] for k in keys), []).append(r)
    for key, versions in by_key.items():
        versions.sort(key=lambda r: (r["_position"], r["_event_id"]))
        current = [v for v in versions if v["is_current"]]
        if len(current) > 1:
            problems.append(f"{key}: {len(current)} current rows")
        if current and current[0] is not versions[-1]:
            problems.append(f"{key}: the current row is not the newest version")
        for v, nxt in itertools.pairwise(versions):
            end = v["_valid_to_position"]
            if v["is_current"] or end is None:
                problems.append(f"{key}: version at {v['_position']} is open but a newer one exists")
            elif v["is_deleted"]:
                if end > nxt["_position"]:
                    problems.append(f"{key}: deleted at {end} after the next version began at {nxt['_position']}")
            elif end != nxt["_position"]:
                problems.append(f"{key}: version ends at {end}, the next begins at {nxt['_position']}")
        for v in versions:
            if v["valid_from"] is None:
                problems.append(f"{key}: version at {v['_position']} has no valid_from")
            if v["valid_to"] is not None and v["valid_from"] is not None and v["valid_to"] < v["valid_from"]:
                problems.append(f"{key}: version at {v['_position']} ends before it starts")
    return problems


def current(rows: list[dict[str, Any]], columns: list[str], key: str = "id") -> dict[Any, tuple[Any, ...]]:
    return {r[key]: tuple(r[c] for c in columns) for r in rows if r.get("is_current", True)
            and not r.get("_is_deleted", False)}

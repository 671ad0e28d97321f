"""The job editor's values and the job they make, without any widget (so tests drive the very
code the page runs).

A draft starts from the job as its file says it (``JobSource.data``): every table and every
field the form does not show is carried through untouched, and a value the user did not change
keeps the way it was written (``incremental: modified_date`` stays a shorthand). The form edits
one table at a time; ``select`` switches tables, ``add_table`` and ``remove_table`` change the list.

Example::

    draft = JobDraft(source.data)
    draft.select(2)
    draft.v["target"] = "bronze_core_transactions_v2"
    job = draft.job(connection="core_banking")
"""

from __future__ import annotations

import copy
import re
from typing import Any

_SOURCES = ("table", "query", "procedure", "files")


def slug(text: str) -> str:
    return re.sub(r"\W+", "_", text.split(".")[-1]).strip("_").lower()


class JobDraft:
    """``v`` holds the job's values and those of the table being edited (``current``)."""

    def __init__(self, existing: dict[str, Any] | None) -> None:
        self.existing = copy.deepcopy(existing) if existing else None
        base = self.existing or {}
        self.tables: list[dict[str, Any]] = [dict(t) for t in base.get("tables") or [{}] if isinstance(t, dict)] or [{}]
        self.current = 0
        files = any(t.get("files") for t in self.tables)
        self.v: dict[str, Any] = {
            "name": base.get("name", ""), "description": base.get("description", ""),
            "source": "file" if files else "database",
            "files_connection": base.get("connection", "") if files else "",
            "silver": False, "silver_target": "", "keys": [], "order_by": None, "strategy": "merge",
            "gold": False, "gold_target": "", "gold_sql": ""}
        self._load()

    @property
    def is_new(self) -> bool:
        return self.existing is None

    # -- the table being edited -------------------------------------------------------------------
    def _load(self) -> None:
        t = self.tables[self.current]
        inc = t.get("incremental")
        column = inc.get("column") if isinstance(inc, dict) else inc
        lookback = inc.get("lookback") if isinstance(inc, dict) else None
        self.v.update(table=t.get("table"), files=t.get("files") or "", target=t.get("target", ""),
                      incremental=bool(inc), delta_column=column, lookback="" if lookback is None else str(lookback),
                      other_source=next((k for k in ("query", "procedure") if t.get(k)), None))

    def _store(self) -> None:
        """The form's values back into the current table, leaving every other field as written."""
        v, t = self.v, self.tables[self.current]
        if v["other_source"] is None:  # a query or procedure is edited as YAML, never replaced here
            key = "files" if v["source"] == "file" else "table"
            value = v["files"] if key == "files" else v["table"]
            for other in _SOURCES:
                if other != key:
                    t.pop(other, None)
            if value:
                t[key] = value
            else:
                t.pop(key, None)
        if v["target"]:
            t["target"] = v["target"]
        inc = t.get("incremental")
        if not (v["incremental"] and v["delta_column"]):
            t.pop("incremental", None)
        else:
            lookback = _lookback(v["lookback"])
            if isinstance(inc, dict):
                inc = {**inc, "column": v["delta_column"]}
                if lookback is None:
                    inc.pop("lookback", None)
                else:
                    inc["lookback"] = lookback
                t["incremental"] = inc
            elif lookback is None:
                t["incremental"] = v["delta_column"]  # the shorthand, as most files write it
            else:
                t["incremental"] = {"column": v["delta_column"], "lookback": lookback}

    def select(self, index: int) -> None:
        self._store()
        self.current = max(0, min(index, len(self.tables) - 1))
        self._load()

    def add_table(self) -> None:
        self._store()
        self.tables.append({})
        self.current = len(self.tables) - 1
        self._load()

    def remove_table(self) -> None:
        """Drop the table being edited (a job keeps at least one)."""
        if len(self.tables) == 1:
            return
        del self.tables[self.current]
        self.current = min(self.current, len(self.tables) - 1)
        self._load()

    def table_rows(self) -> list[dict[str, Any]]:
        """One row per table for the picker: its number, source, target and incremental column."""
        self._store()
        rows = []
        for i, t in enumerate(self.tables):
            source = next((f"{k}: {str(t[k])[:60]}" for k in _SOURCES if t.get(k)), "(not chosen yet)")
            inc = t.get("incremental")
            rows.append({"#": i + 1, "source": source, "target": t.get("target", ""),
                         "incremental": (inc.get("column") if isinstance(inc, dict) else inc) or ""})
        return rows

    # -- the job ------------------------------------------------------------------------------------
    def job(self, connection: str) -> dict[str, Any]:
        """The ingest job: the job as written with the form's values laid over it."""
        self._store()
        v = self.v
        tables = [copy.deepcopy(t) for t in self.tables]
        first = tables[0]
        label = str(first.get("table") or first.get("files") or "source")
        for t in tables:
            if not t.get("target"):
                t["target"] = f"bronze_{slug(str(t.get('table') or t.get('files') or 'source'))}"
        out: dict[str, Any] = copy.deepcopy(self.existing) if self.existing else {}
        out.update(name=v["name"] or f"ingest_{slug(label)}", kind="ingest",
                   connection=v["files_connection"] if v["source"] == "file" else connection)
        if v["description"] or "description" in out:
            out["description"] = v["description"]
        out["tables"] = tables
        if not self.existing:  # a new job: keys in the order people write them
            out = {k: out[k] for k in ("name", "kind", "description", "connection", "tables") if k in out}
        return out

    def jobs(self, connection: str) -> list[dict[str, Any]]:
        """The ingest job, and for a new one the silver and gold jobs the form asked for."""
        v = self.v
        ingest = self.job(connection)
        out = [ingest]
        if not self.is_new:
            return out
        target = ingest["tables"][0]["target"]
        if v["silver"]:
            silver_target = v["silver_target"] or target.replace("bronze_", "silver_", 1)
            out.append({"name": f"build_{silver_target}", "kind": "silver", "tables": [{
                "target": silver_target, "source": target, "strategy": v["strategy"], "keys": list(v["keys"]),
                **({"order_by": v["order_by"]} if v["order_by"] else {})}]})
        if v["gold"]:
            out.append({"name": f"build_{v['gold_target'] or 'gold'}", "kind": "gold",
                        "tables": [{"target": v["gold_target"], "sql": v["gold_sql"]}]})
        return out


def _lookback(text: Any) -> str | float | None:
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip()
    try:
        return float(raw) if "." in raw else int(raw)
    except ValueError:
        return raw

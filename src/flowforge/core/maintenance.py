"""Table maintenance on demand: ``flowforge optimize`` and ``flowforge vacuum`` (and their API routes).

Example::

    for line in ctx.maintenance.optimize(["silver_products"]):   # an editor
        print(line.table, line.detail)
    ctx.maintenance.vacuum(None, retention="7d", versions=False)   # an admin
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowforge.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.layers.maintenance import MaintenanceDone


class MaintenanceService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _tables(self, names: Sequence[str] | None) -> list[tuple[str, str]]:
        found = self.ctx.store.tables()
        if not names:
            return found
        out = []
        for name in names:
            match = [t for t in found if t[1] == name]
            if not match:
                known = ", ".join(sorted(t for _, t in found)) or "none"
                raise NotFoundError(f"Table '{name}' is not in the lakehouse (tables: {known}).",
                                    hint="List the tables with 'flowforge tables'.")
            out += match
        return out

    def optimize(self, tables: Sequence[str] | None = None) -> list[MaintenanceDone]:
        """Compact small files and write a checkpoint, for the named tables or every table (editors). A
        bronze table that a silver table has not fully read yet is skipped (run the workflow first)."""
        from flowforge.layers.maintenance import MaintenanceDone, consumers_behind, describe_optimize
        from flowforge.storage.maintenance import optimize

        self.ctx.require("editor")
        policy = self.ctx.settings.maintenance
        done = []
        for layer, name in self._tables(tables):
            behind = consumers_behind(self.ctx.store, name) if layer == "bronze" else []
            if behind:
                done.append(MaintenanceDone(name, layer, "skipped", f"{', '.join(behind)} has not read its newest rows "
                                            "yet; run the workflow that applies them first"))
                continue
            result = optimize(self.ctx.store, layer, name, int(policy.target_file_mb * (1 << 20)))
            done.append(MaintenanceDone(name, layer, "optimize", describe_optimize(result)))
        self._audit(done)
        return done

    def vacuum(self, tables: Sequence[str] | None = None, *, retention: str | None = None, versions: bool = False,
               dry_run: bool = False) -> list[MaintenanceDone]:
        """Delete files no commit references (left by runs killed before their commit) and, with
        ``versions``, the files of versions older than the retention; remove table folders whose
        first commit never completed (all of it only when every file is older than the retention).
        Deleting history is for admins."""
        from flowforge.layers.maintenance import MaintenanceDone, describe_vacuum
        from flowforge.spec.maintenance import parse_retention
        from flowforge.storage.maintenance import remove_uncommitted, uncommitted_tables, vacuum

        self.ctx.require("admin")
        text = retention or self.ctx.settings.maintenance.vacuum_retention
        try:
            keep = parse_retention(text)
        except ValueError as exc:
            raise ConfigError(str(exc), hint="Give --retention as hours, days or weeks: 36h, 7d, 2w.") from None
        leftovers = [u for u in uncommitted_tables(self.ctx.store) if not tables or u[1] in tables]
        named = [t for t in tables or () if t not in {u[1] for u in leftovers}]
        done = []
        for layer, name in self._tables(named) if named or not tables else []:
            result = vacuum(self.ctx.store, layer, name, keep, versions=versions, dry_run=dry_run)
            done.append(MaintenanceDone(name, layer, "vacuum", describe_vacuum(result, text)))
        for layer, name, loc in leftovers:
            result = remove_uncommitted(layer, name, loc, keep, dry_run=dry_run)
            detail = describe_vacuum(result, text) if result.files_deleted else (
                f"never committed; kept: some files are younger than {text}")
            done.append(MaintenanceDone(name, layer, "vacuum", detail))
        if not dry_run:
            self._audit(done)
        return done

    def _audit(self, done: list[MaintenanceDone]) -> None:
        for item in done:
            self.ctx.metadata.audit(self.ctx.actor, f"table.{item.action}", "table", item.table,
                                    after={"layer": item.layer, "detail": item.detail})

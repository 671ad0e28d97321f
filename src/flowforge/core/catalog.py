"""Catalog detail of one lakehouse table: schema, rows, last update, Delta history, sample rows.

Values are made JSON-safe for the API and UI: decimals as strings (no float rounding),
dates and timestamps as ISO 8601, bytes as base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.core.context import Context


@dataclass(frozen=True)
class TableVersion:
    version: int
    timestamp: dt.datetime | None
    operation: str
    rows_added: int | None


@dataclass(frozen=True)
class TableDetail:
    name: str
    layer: str
    location: str
    rows: int
    version: int
    last_updated: dt.datetime | None
    workflow: str | None
    # name, type, nullable; dropped (with when) for a column the source no longer sends
    columns: tuple[dict[str, Any], ...]
    history: tuple[TableVersion, ...]  # newest first
    sample: tuple[dict[str, Any], ...]
    schema_changes: tuple[dict[str, Any], ...] = ()  # the newest column changes, oldest first


def table_detail(ctx: Context, name: str, sample: int = 10) -> TableDetail:
    import pyarrow as pa

    from flowforge.storage.delta import row_count

    found = ctx.store.find(name)
    if found is None:
        known = ", ".join(t for _, t in ctx.store.tables()) or "none"
        raise NotFoundError(f"Table '{name}' is not in the lakehouse (tables: {known}).")
    layer, table = found
    schema = pa.schema(table.schema().to_arrow())
    from flowforge.layers.schema_drift_apply import dropped_columns, schema_events

    dropped = dropped_columns(table)
    from flowforge.core.catalog_docs import sql_type

    columns = tuple({"name": f.name, "type": sql_type(f.type), "arrow_type": str(f.type), "nullable": f.nullable,
                     **({"dropped": True, "dropped_at": dropped[f.name].get("at"),
                         "renamed_to": dropped[f.name].get("renamed_to")} if f.name in dropped else {})}
                    for f in schema)
    history = tuple(_version(h) for h in table.history())
    asset = ctx.metadata.get_asset(name)
    last = asset.last_updated if asset else (history[0].timestamp if history else None)
    rows = sample_rows(table.to_pyarrow_dataset().head(sample)) if sample > 0 else []
    return TableDetail(name=name, layer=layer, location=ctx.store.location(layer, name), rows=row_count(table),
                       version=table.version(), last_updated=last, workflow=asset.workflow_name if asset else None,
                       columns=columns, history=history, sample=tuple(rows),
                       schema_changes=tuple(schema_events(table)))


def _version(entry: dict[str, Any]) -> TableVersion:
    metrics = entry.get("operationMetrics") or {}
    added = next((metrics[k] for k in ("num_added_rows", "numOutputRows", "num_target_rows_inserted")
                  if k in metrics), entry.get("flowforge.rows_added"))  # commits FlowForge writes itself
    stamp = entry.get("timestamp")
    return TableVersion(
        version=int(entry.get("version", 0)),
        timestamp=dt.datetime.fromtimestamp(stamp / 1000, dt.UTC) if isinstance(stamp, int | float) else None,
        operation=str(entry.get("operation", "")),
        rows_added=int(added) if added is not None else None)


def sample_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of an Arrow table as JSON-safe dicts."""
    return [{k: json_safe(v) for k, v in row.items()} for row in table.to_pylist()]


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)

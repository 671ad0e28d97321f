"""What happens when a source's columns change under an existing table (``on_schema_change``).

``evolve`` (the default): added columns are added; safe widenings (``INTEGER`` → ``BIGINT``,
``SMALLINT`` → ``INTEGER``, ``REAL`` → ``DOUBLE``, ``DECIMAL(10,2)`` → ``DECIMAL(12,4)``, a
finer timestamp) rewrite the table to the wider type in one commit, keeping every value;
a column the source no longer sends is kept, marked dropped in the catalog (table property
``flowforge.dropped_columns``), and later rows hold NULL there — silver keeps the value it
had for keys it already holds. A rename is a drop and an add, and is reported as such.
``fail`` stops the job before anything is committed on any change. ``ignore`` keeps the
table's columns: new columns are left out, changed types are cast to the table's type.

A change no table can absorb — a narrowing (``BIGINT`` → ``INTEGER``, fewer decimal digits)
or another type (``INTEGER`` → ``TEXT``) — stops the job before any commit under every policy,
naming the table, the column and both types.

```yaml
- table: public.orders
  target: bronze_orders
  on_schema_change: fail        # evolve | fail | ignore
  casts: {amount: "DECIMAL(12,2)"}   # land a changed column in the type the table has
```
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flowforge.errors import SchemaDriftError

if TYPE_CHECKING:
    import pyarrow as pa


Policy = Literal["evolve", "fail", "ignore"]
DROPPED = "flowforge.dropped_columns"  # table property: column -> {"at", "run_id", "renamed_to"?}
CHANGES = "flowforge.schema_changes"   # table property: the newest schema events, newest last
REWRITE = "schema_rewrite"             # commit metadata of a rewrite that only widened types
__all__ = ["SchemaDriftError", "compare", "conform", "resolve", "widens"]


@dataclass(frozen=True)
class Change:
    column: str
    kind: Literal["added", "dropped", "restored", "widened", "narrowed", "incompatible", "as_text"]
    old: pa.DataType | None = None
    new: pa.DataType | None = None
    renamed_to: str | None = None

    def describe(self) -> str:
        col = f"column '{self.column}'"
        if self.kind == "added":
            return f"{col} added ({sql_name(self.new)})"
        if self.kind == "dropped":
            moved = f" (renamed to '{self.renamed_to}'?)" if self.renamed_to else ""
            return f"{col} ({sql_name(self.old)}) no longer sent by the source{moved}"
        if self.kind == "restored":
            return f"{col} sent again by the source ({sql_name(self.new)})"
        if self.kind == "as_text":
            return f"{col} is now {sql_name(self.new)} at the source; kept as {sql_name(self.old)}"
        verb = {"widened": "widened", "narrowed": "narrowed", "incompatible": "changed"}[self.kind]
        return f"{col} {verb} from {sql_name(self.old)} to {sql_name(self.new)}"


@dataclass(frozen=True)
class Drift:
    """How a batch meets an existing table: the schema to write with and what to do first."""

    layer: str
    table: str
    changes: tuple[Change, ...]
    target: pa.Schema                       # the table's schema after this batch
    rewrite: bool = False                   # existing rows must be cast to wider types first
    dropped: dict[str, dict[str, Any]] = field(default_factory=dict)  # every dropped column, after
    marks_changed: bool = False             # ``dropped`` differs from what the table records

    @property
    def none(self) -> bool:
        return not self.changes


# -- types -------------------------------------------------------------------------------

_INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}
_UNITS = ("s", "ms", "us", "ns")


def _norm(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t) and t.tz is not None and t.tz in ("+00:00", "Z", "Etc/UTC"):
        return pa.timestamp(t.unit, tz="UTC")
    return t


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    return bool(_norm(a).equals(_norm(b)))


def widens(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether every value of ``old`` is exactly a value of ``new`` (a safe widening)."""
    import pyarrow as pa

    old, new = _norm(old), _norm(new)
    if old.equals(new):
        return False
    t = pa.types
    if t.is_signed_integer(old) and t.is_signed_integer(new):
        return bool(new.bit_width > old.bit_width)
    if t.is_floating(old) and t.is_floating(new):
        return bool(new.bit_width > old.bit_width)
    if t.is_signed_integer(old) and t.is_float64(new):
        return bool(old.bit_width <= 32)
    if t.is_decimal(old) and t.is_decimal(new):
        return bool(new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale)
    if t.is_signed_integer(old) and t.is_decimal(new):
        return bool(new.precision - new.scale >= _INT_DIGITS[old.bit_width])
    if t.is_timestamp(old) and t.is_timestamp(new):
        return bool(old.tz == new.tz and _UNITS.index(new.unit) > _UNITS.index(old.unit))
    if t.is_date32(old) and t.is_timestamp(new):
        return bool(new.tz is None)
    return False


def _text_holds(old: pa.DataType, new: pa.DataType) -> bool:
    """A text column takes a number, decimal, boolean, date or timestamp as its exact text."""
    import pyarrow as pa

    t = pa.types
    return bool(t.is_string(_norm(old)) and (t.is_integer(new) or t.is_floating(new) or t.is_decimal(new)
                                            or t.is_boolean(new) or t.is_date(new) or t.is_timestamp(new)))


def sql_name(t: pa.DataType | None) -> str:
    """A type as a SQL user reads it (the type ``casts`` would name)."""
    import pyarrow as pa

    if t is None:
        return "?"
    t = _norm(t)
    names = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
             pa.float32(): "REAL", pa.float64(): "DOUBLE", pa.string(): "TEXT", pa.binary(): "BLOB",
             pa.bool_(): "BOOLEAN", pa.date32(): "DATE"}
    for arrow, name in names.items():
        if t.equals(arrow):
            return name
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        return f"TIMESTAMP({digits})" + (" WITH TIME ZONE" if t.tz else "")
    return str(t).upper()


_SIMPLE = {"TINYINT": "int8", "INT1": "int8", "SMALLINT": "int16", "INT2": "int16", "INT": "int32",
           "INTEGER": "int32", "INT4": "int32", "BIGINT": "int64", "INT8": "int64", "REAL": "float32",
           "FLOAT4": "float32", "FLOAT": "float64", "FLOAT8": "float64", "DOUBLE": "float64",
           "DOUBLE PRECISION": "float64", "TEXT": "string", "VARCHAR": "string", "STRING": "string",
           "CHAR": "string", "BOOLEAN": "bool_", "BOOL": "bool_", "DATE": "date32", "BLOB": "binary",
           "BYTEA": "binary"}
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
_VARCHAR = re.compile(r"^(?:VARCHAR|CHAR|CHARACTER VARYING)\s*\(\s*\d+\s*\)$")


def arrow_type(sql: str) -> pa.DataType:
    """The Arrow type an ingest ``casts`` entry names (a small, exact set of SQL types)."""
    import pyarrow as pa

    text = " ".join(sql.strip().upper().split())
    if text in _SIMPLE:
        made: pa.DataType = getattr(pa, _SIMPLE[text])()
        return made
    if m := _DECIMAL.match(text):
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"'{sql}': precision must be 1..38 and scale at most the precision")
        return pa.decimal128(precision, scale)
    if _VARCHAR.match(text):
        return pa.string()
    if text in ("TIMESTAMP", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE"):
        return pa.timestamp("us")
    if text in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return pa.timestamp("us", tz="UTC")
    raise ValueError(f"'{sql}' is not a type an ingest cast can name: use INTEGER, BIGINT, SMALLINT, DOUBLE, "
                     f"REAL, DECIMAL(p,s), TEXT, BOOLEAN, DATE, TIMESTAMP or TIMESTAMPTZ")


# -- comparing -----------------------------------------------------------------------------

def compare(existing: pa.Schema, incoming: pa.Schema, *, dropped_before: Mapping[str, Any] | None = None,
            always_sent: Sequence[str] = ()) -> list[Change]:
    """The changes from the table's columns (``existing``) to a batch's (``incoming``). Columns
    already marked dropped and still missing are no news; ``always_sent`` are never compared
    (audit columns the layer adds itself)."""
    dropped_before = dropped_before or {}
    changes: list[Change] = []
    old = {f.name: f.type for f in existing if f.name not in always_sent}
    new = {f.name: f.type for f in incoming if f.name not in always_sent}
    for name, new_t in new.items():
        if name not in old:
            changes.append(Change(name, "added", new=new_t))
            continue
        old_t = old[name]
        if name in dropped_before:
            changes.append(Change(name, "restored", old=old_t, new=new_t))
        if same_type(old_t, new_t):
            continue
        kind = ("widened" if widens(old_t, new_t) else "narrowed" if widens(new_t, old_t)
                else "as_text" if _text_holds(old_t, new_t) else "incompatible")
        changes.append(Change(name, kind, old=old_t, new=new_t))  # type: ignore[arg-type]
    gone = [n for n in old if n not in new and n not in dropped_before]
    added = [c for c in changes if c.kind == "added"]
    old_pos = {n: i for i, n in enumerate(old)}
    new_pos = {n: i for i, n in enumerate(new)}
    for name in gone:
        # a rename is a drop and an add; guess the pair by type and place, to say it
        guess = next((a.column for a in added if a.new is not None and same_type(a.new, old[name])
                      and new_pos[a.column] == old_pos[name]), None)
        guess = guess or (added[0].column if len(gone) == 1 and len(added) == 1 and added[0].new is not None
                          and same_type(added[0].new, old[name]) else None)
        changes.append(Change(name, "dropped", old=old[name], renamed_to=guess))
    return changes


def resolve(layer: str, table: str, policy: Policy, existing: pa.Schema, incoming: pa.Schema, *,
            dropped_before: Mapping[str, dict[str, Any]], always_sent: Sequence[str] = (),
            run_id: int | None = None, how_to_cast: str = "casts") -> Drift:
    """Decide what the batch does to the table, or raise ``SchemaDriftError`` before anything is written."""
    import pyarrow as pa

    changes = compare(existing, incoming, dropped_before=dropped_before, always_sent=always_sent)
    where = f"{layer} table {table}"
    blocked = [c for c in changes if c.kind in ("narrowed", "incompatible")]
    if policy == "ignore":
        blocked = [c for c in blocked if c.kind == "incompatible"]  # a narrower value fits the table's type
    if policy == "fail":
        blocked = [c for c in changes if c.kind != "restored"] or blocked
    if blocked:
        raise refusal(where, policy, blocked, how_to_cast)
    by_name = {c.column: c for c in changes}
    # a NOT NULL column the source dropped, or now sends nullable, must take NULLs: Delta checks
    # nullability on write, so the table is rewritten with the column nullable
    relaxed = [f.name for f in existing if not f.nullable and f.name not in always_sent
               and (f.name not in incoming.names or incoming.field(f.name).nullable)
               and (f.name not in dropped_before or f.name in incoming.names)]
    fields: list[pa.Field] = []
    for f in existing:
        change = by_name.get(f.name)
        if change is not None and change.kind == "widened" and policy == "evolve":
            fields.append(pa.field(f.name, change.new, True, f.metadata))
        else:
            fields.append(pa.field(f.name, f.type, True, f.metadata) if change or f.name in relaxed else f)
    if policy == "evolve":
        fields += [incoming.field(c.column).with_nullable(True) for c in changes if c.kind == "added"]
    dropped = {k: v for k, v in dropped_before.items() if k not in incoming.names and k in existing.names}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for c in changes:
        if c.kind == "dropped":
            dropped[c.column] = {"at": now, "run_id": run_id,
                                 **({"renamed_to": c.renamed_to} if c.renamed_to else {})}
    rewrite = (policy == "evolve" and any(c.kind == "widened" for c in changes)) or bool(relaxed)
    return Drift(layer, table, tuple(changes), pa.schema(fields), rewrite=rewrite, dropped=dropped,
                 marks_changed=dropped != dict(dropped_before))


def refusal(where: str, policy: Policy, blocked: list[Change], how_to_cast: str) -> SchemaDriftError:
    what = "; ".join(c.describe() for c in blocked)
    first = next((c for c in blocked if c.old is not None), None)
    if policy == "fail" and all(c.kind not in ("narrowed", "incompatible") for c in blocked):
        return SchemaDriftError(
            f"{where}: the source's columns changed and on_schema_change is 'fail': {what}. Nothing was committed.",
            hint="Set on_schema_change: evolve to take the change, or ignore to keep the table's columns, "
                 "or rebuild the table with 'flowforge run <workflow> --full-refresh'.")
    cast = f"{how_to_cast}: {{{first.column}: {sql_name(first.old)}}}" if first else f"{how_to_cast}: {{col: TYPE}}"
    return SchemaDriftError(
        f"{where}: {what}, which the table cannot hold without losing or changing values. Nothing was committed.",
        hint=f"Cast it with {cast}, or run with --full-refresh to rebuild the table with the new type.")


# -- applying ------------------------------------------------------------------------------

def conform(batch: pa.RecordBatch, target: pa.Schema, column: str = "") -> pa.RecordBatch:
    """``batch`` with exactly ``target``'s columns: missing ones NULL, extra ones left out, types cast
    (a value that does not fit stops the job, naming the column)."""
    import pyarrow as pa

    if batch.schema.equals(target):
        return batch
    from flowforge.storage.delta import cast_batch

    arrays = []
    for f in target:
        if f.name in batch.schema.names:
            arr = batch.column(f.name)
            if not arr.type.equals(f.type):
                try:
                    arr = cast_batch(pa.RecordBatch.from_arrays([arr], schema=pa.schema([pa.field(f.name, arr.type)])),
                                     pa.schema([pa.field(f.name, f.type)])).column(0)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaDriftError(
                        f"{column}: a value of column '{f.name}' does not fit the table's type "
                        f"{sql_name(f.type)} ({str(exc).splitlines()[0]}). Nothing was committed.",
                        hint="Set on_schema_change: evolve to widen the column, or run with --full-refresh.") from None
            arrays.append(arr)
        else:
            arrays.append(pa.nulls(batch.num_rows, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def conform_stream(reader: pa.RecordBatchReader, target: pa.Schema, where: str) -> pa.RecordBatchReader:
    import pyarrow as pa

    if reader.schema.equals(target):
        return reader

    def batches() -> Iterator[pa.RecordBatch]:
        for b in reader:
            yield conform(b, target, where)

    return pa.RecordBatchReader.from_batches(target, batches())

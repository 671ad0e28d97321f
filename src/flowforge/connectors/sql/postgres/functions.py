"""PostgreSQL functions as a read mode: ``procedure: sales.orders_since`` with ``params`` reads
``SELECT * FROM sales.orders_since(since => '2024-01-01'::date)``.

The function is looked up in ``pg_proc`` first, so a misspelt name or parameter gets a message
listing what exists; arguments are passed by name (PostgreSQL then fills defaulted ones and picks
among overloads), each as a literal quoted by sqlglot and cast to the parameter's declared type.
The call runs in the connector's read-only session, so a function that writes fails.
PostgreSQL *procedures* (``CREATE PROCEDURE``) return no rows and are refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.connectors.sql import common
from flowforge.errors import SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import psycopg

DIALECT = "postgres"
_IN_MODES = ("i", "b", "v")  # IN, INOUT, VARIADIC: the arguments a caller passes


@dataclass(frozen=True)
class Signature:
    kind: str  # pg_proc.prokind: 'f' function, 'p' procedure, 'a' aggregate, 'w' window
    inputs: tuple[tuple[str, str], ...]  # (name, declared type) of each input, in order
    defaults: int  # how many trailing inputs have defaults

    @property
    def required(self) -> set[str]:
        return {name for name, _ in self.inputs[:len(self.inputs) - self.defaults]}

    @property
    def text(self) -> str:
        return "(" + ", ".join(f"{n or f'${i + 1}'} {t}" for i, (n, t) in enumerate(self.inputs)) + ")"


def relation(conn: psycopg.Connection[Any], name: str, params: tuple[tuple[str, Any], ...],
             default_schema: str, where: str) -> str:
    """The FROM-able call of function ``name`` with ``params``, as SQL text."""
    schema, function = common.split_table(name, DIALECT)
    schema = schema or default_schema
    found = _signatures(conn, schema, function)
    if not found:
        raise SourceNotFound(f"{where}: function {schema}.{function} does not exist or is not visible to this user.",
                             hint="Check the name (and the schema, as schema.function) and the EXECUTE grant.")
    if all(s.kind == "p" for s in found):
        raise SourceSchemaError(f"{where}: {schema}.{function} is a procedure; PostgreSQL procedures return no rows.",
                                hint="Read a function (RETURNS TABLE or SETOF) instead.")
    given = {key.lower(): value for key, value in params}
    fits = [s for s in found if s.kind == "f" and set(given) <= {n.lower() for n, _ in s.inputs}
            and {n.lower() for n in s.required} <= set(given)]
    if len(fits) != 1:
        signatures = "; ".join(f"{function}{s.text}" for s in found if s.kind == "f")
        problem = "no signature takes" if not fits else "more than one signature takes"
        raise SourceSchemaError(f"{where}: {problem} the parameters {sorted(given)}; {schema}.{function} is "
                                f"{signatures}.", hint="Give params by the function's parameter names.")
    types = {n.lower(): (n, t) for n, t in fits[0].inputs}
    arguments = ", ".join(f"{common.quote_ident(types[key][0], DIALECT)} => {_literal(value, types[key][1])}"
                          for key, value in given.items())
    call = f"{common.quote_table(schema, function, DIALECT)}({arguments})"
    return f"(SELECT * FROM {call}) AS {common.quote_ident(common.QUERY_ALIAS, DIALECT)}"


def _signatures(conn: psycopg.Connection[Any], schema: str, function: str) -> list[Signature]:
    rows = conn.execute(
        """SELECT p.prokind::text, p.proargnames, p.proargmodes::text[], p.pronargdefaults,
                  array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = %s AND p.proname = %s AND has_function_privilege(p.oid, 'EXECUTE')
            ORDER BY p.oid""", (schema, function)).fetchall()
    out = []
    for kind, names, modes, defaults, in_types in rows:
        names = list(names or [])
        modes = list(modes or ["i"] * len(names))
        in_names = [n for n, m in zip(names, modes, strict=False) if m in _IN_MODES]
        if len(in_names) != len(in_types):  # unnamed arguments cannot be passed by name
            in_names = [""] * len(in_types)
        out.append(Signature(kind, tuple(zip(in_names, in_types, strict=True)), int(defaults or 0)))
    return out


def _literal(value: Any, declared: str) -> str:
    if value is None:
        return f"NULL::{declared}"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.date | dt.datetime | dt.time):
        text = value.isoformat()
    else:
        text = str(value)
    return f"{common.literal(text, DIALECT)}::{declared}"

"""Text templates (``"{name}. {description}. Vendor {vendor_code}"``) as DuckDB expressions, so
the text of every row and its hash are computed in SQL, not row by row in Python."""

from __future__ import annotations

import string
from collections.abc import Iterable

from flowforge.engine.sql import quote


def template_fields(template: str) -> tuple[str, ...]:
    """Column names a template refers to, in order; ValueError for a malformed template."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"text template '{template}': {exc} (write a literal brace as '{{{{' or '}}}}')") from None
    fields = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name:
            raise ValueError(f"text template '{template}': '{{}}' must name a column, like '{{name}}'")
        if spec or conversion:
            raise ValueError(f"text template '{template}': '{{{name}...}}' has a format; write just '{{{name}}}'")
        fields.append(name)
    if not fields:
        raise ValueError(f"text template '{template}' names no column; write e.g. '{{name}}. {{description}}'")
    return tuple(dict.fromkeys(fields))


def template_sql(template: str, columns: Iterable[str]) -> str:
    """A DuckDB expression building the text; NULL columns give empty strings."""
    known = {c.lower(): c for c in columns}
    pieces: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append("'" + literal.replace("'", "''") + "'")
        if name is not None:
            column = known.get(name.lower())
            if column is None:
                raise ValueError(f"text template '{template}' names column '{name}', which the source does not "
                                 f"have (columns: {', '.join(sorted(known.values()))})")
            pieces.append(f"coalesce(CAST({quote(column)} AS VARCHAR), '')")
    return "concat(" + ", ".join(pieces) + ")" if len(pieces) > 1 else pieces[0]

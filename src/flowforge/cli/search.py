"""``flowforge search``: semantic search over an embedded table."""

from __future__ import annotations

from typing import Annotated

import typer

from flowforge.cli.common import _context


def search(table: Annotated[str, typer.Argument(help="The embedded table (or its embeddings table).")],
           text: Annotated[str, typer.Argument(help="What to search for, in words.")],
           k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
           where: Annotated[str | None, typer.Option(help="SQL condition on the table's columns, "
                                                     "e.g. \"category_id = 3\".")] = None,
           method: Annotated[str, typer.Option(help="exact | ann | pgvector | auto.")] = "exact",
           as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False) -> None:
    """Rank a table's rows by meaning: the closest rows to TEXT, with their scores."""
    from flowforge.cli import output

    with _context() as ctx:
        result = ctx.search.search(table, text, k=k, where=where, method=method)
    if as_json:
        import dataclasses
        import json

        output.console.print_json(json.dumps(dataclasses.asdict(result), default=str))
        return
    rows = [{"rank": h.rank, "score": f"{h.score:.4f}", **h.key,
             "text": h.text if len(h.text) <= 90 else h.text[:87] + "...",
             "version": h.source_version, "now": "deleted" if h.row is None else ""} for h in result.hits]
    keys = list(result.hits[0].key) if result.hits else []
    output.records(rows, ["rank", "score", *keys, "text", "version", "now"],
                   title=f"{result.source_table}: {len(result.hits)} hits for '{result.query}'")
    first = result.hits[0] if result.hits else None
    lineage = " → ".join([*first.lineage, result.table]) if first else result.table
    output.plain(f"{result.method} search of {result.table} (v{result.embeddings_version}, {result.model}) in "
                 f"{result.seconds * 1000:.0f} ms; {result.source_table} is at v{result.source_current_version}; "
                 f"lineage {lineage}; quality: {first.quality if first else 'n/a'}")

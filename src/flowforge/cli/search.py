"""``flowforge search``: semantic search over an embedded table."""


from pathlib import Path
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


def product_search_demo(
        directory: Annotated[Path, typer.Option("--dir", help="Demo project directory.")] = Path("product-search-demo"),
        products: Annotated[int, typer.Option(help="Products in the generated catalog.")] = 3000,
        seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 42) -> None:
    """Product catalog → Debezium JSONL → bronze → staging → embeddings, then a change round."""
    from flowforge.cli import output
    from flowforge.cli.common import _guard
    from flowforge.demo.product_search import WORKFLOW, add_changes, setup_product_search

    output.info(f"Generating {products:,} products and their Debezium snapshot in {directory.resolve()} ...")
    catalog = _guard(lambda: setup_product_search(directory, products=products, seed=seed))
    with _context(directory) as ctx:
        first = ctx.run(WORKFLOW, on_event=output.job_event)
        output.run_summary(first)
        changed = add_changes(directory, catalog)
        output.info(f"\nThe source changed: {changed} change events in 3 new batches (a few records re-delivered). "
                    "Running again, incrementally ...")
        second = ctx.run(WORKFLOW, on_event=output.job_event)
        output.run_summary(second)
    output.info(f"\nSearch it:\n  cd {directory.resolve()}\n"
                f"  flowforge search stg_product \"waterproof boots for hiking\" -k 5\n"
                f"  flowforge search stg_product \"quiet kitchen appliance\" --where \"price < 100\"\n"
                f"  flowforge serve   # then open /ui/search")
    if first.status != "success" or second.status != "success":
        raise typer.Exit(1)

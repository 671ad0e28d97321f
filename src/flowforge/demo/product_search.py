"""``flowforge demo product-search``: a project with the product_search workflow over a generated
catalog, and its change stream delivered in two rounds so the second run is incremental."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flowforge.demo.products import ProductCatalog

EVENTS = "events"
WORKFLOW = "product_search"


def setup_product_search(directory: Path, *, products: int = 3000, seed: int = 42) -> ProductCatalog:
    """Create the project (flowforge.yml, the workflow from its template) and the snapshot batch."""
    from flowforge.core.context import Context
    from flowforge.core.project import write_project_file
    from flowforge.errors import ConfigError
    from flowforge.settings import STATE_DIR

    directory = directory.resolve()
    if (directory / EVENTS).exists():
        raise ConfigError(f"{directory} already holds a product-search demo.",
                          hint="Pick another --dir, or delete that folder first.")
    (directory / "workflows").mkdir(parents=True, exist_ok=True)
    (directory / STATE_DIR).mkdir(exist_ok=True)
    write_project_file(directory, {"product_events": {"type": "debezium", "path": EVENTS}})
    catalog = ProductCatalog(seed=seed, products=products)
    catalog.write_batch(directory / EVENTS, catalog.snapshot())
    with Context.open(directory) as ctx:
        ctx.instantiate_template("product_search", {"workflow_name": WORKFLOW}, overwrite=True)
    return catalog


def add_changes(directory: Path, catalog: ProductCatalog, *, batches: int = 3, changes: int = 100) -> int:
    """Write ``batches`` change batches (each re-delivering a few records); returns the records written."""
    written = 0
    for _ in range(batches):
        catalog.clock += dt.timedelta(minutes=5)
        records = catalog.changes(changes)
        catalog.write_batch(directory.resolve() / EVENTS, records, redeliver=5)
        written += len(records)
    return written

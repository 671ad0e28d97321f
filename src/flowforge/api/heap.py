"""A serving process's heap, settled before its first request.

Python's cycle collector stops the process while it walks every tracked object of the generation
it collects. A server's oldest generation is mostly what it imported (modules, classes, functions:
about 150,000 objects for the API), and it was walked again every time the kept answers and parsed
specs grew by a quarter: under 50 clients such a pause held every request in flight for 50 to 250 ms,
which made the whole tail of the API's latency (issue 17).

``settle()`` imports what the read routes otherwise import on their first request, collects once,
then freezes what is left (``gc.freeze``): those objects are never walked again. Frozen objects are
still freed by reference counting; only a reference cycle among them would outlive its last user,
and what exists at start-up lives as long as the process anyway. Objects made later (kept answers,
parsed specs) are collected as before, in pauses a few times shorter.

Only ``flowforge serve`` settles (once per process): a process that builds many apps (the tests)
would freeze every earlier app's leftovers.
"""

from __future__ import annotations

import gc
import importlib
from typing import Final

#: Modules the API's read routes import on their first request (workflow pages, lineage, run pages,
#: the catalog): guarded by ``tests/integration/test_api_heap.py``.
WARM_IMPORTS: Final = (
    "anyio._backends._asyncio", "anyio.streams.memory", "anyio.streams.stapled", "anyio.streams.tls",
    "ruamel.yaml", "sqlglot", "sqlglot.dialects.duckdb", "sqlglot.optimizer.scope",
    "flowforge.core.runs", "flowforge.core.spec_cache", "flowforge.core.spec_edit", "flowforge.core.spec_text",
    "flowforge.core.workflows", "flowforge.engine.sandbox", "flowforge.lineage.graph", "flowforge.metadata.alerts",
    "flowforge.metadata.leases", "flowforge.metadata.pages", "flowforge.metadata.users", "flowforge.runner.owner",
)


def settle() -> int:
    """Import the read routes' modules, collect, freeze; the number of objects frozen."""
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

"""The e-commerce demo project: the source, ``flowforge.yml`` and the ``ecommerce_analytics`` workflow.

With ``postgres_url`` the source is schema ``ecommerce`` of that database and the warehouse that
BI tools read is schema ``warehouse`` of the same database; without it the source is the SQLite
file ``data/shop.db`` and the workflow has no publish job (there is no warehouse to publish to).

Example::

    setup_ecommerce_project(Path("shop"), scale=0.1)          # SQLite source
    setup_ecommerce_project(Path("shop"), postgres_url="postgresql://me@db/shop")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.demo.ecommerce_schema import SCHEMA
from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.connectors.config import ConnectionConfig
    from flowforge.demo.ecommerce_change import ChangeSummary
    from flowforge.demo.ecommerce_load import LoadSummary

TEMPLATE = "ecommerce_analytics"
WORKFLOW = "ecommerce_analytics"
SOURCE = "shop_db"
WAREHOUSE = "warehouse"
SQLITE_FILE = "data/shop.db"
PUBLISH_JOB = "publish_warehouse"


@dataclass(frozen=True)
class EcommerceProject:
    project_dir: Path
    workflow: Path
    load: LoadSummary
    warehouse: bool


def setup_ecommerce_project(project_dir: Path, *, scale: float = 1.0, seed: int = 42,
                            postgres_url: str | None = None, warehouse_schema: str = WAREHOUSE) -> EcommerceProject:
    """Generate the source, write the project file and the workflow; returns what was made."""
    from flowforge.core.project import _keep_secret_out, write_project_file
    from flowforge.demo.ecommerce_load import load_postgres, load_sqlite
    from flowforge.settings import STATE_DIR
    from flowforge.templates.registry import get_template

    project_dir = project_dir.resolve()
    for folder in (project_dir / "data", project_dir / "workflows", project_dir / STATE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    connections: dict[str, dict[str, object]]
    if postgres_url:
        load = load_postgres(postgres_url, scale=scale, seed=seed, schema=SCHEMA)
        url = _keep_secret_out(project_dir, "SHOP_PG_URL", postgres_url)
        connections = {SOURCE: {"type": "postgres", "url": url, "schema": SCHEMA},
                       WAREHOUSE: {"type": "postgres", "url": url, "schema": warehouse_schema}}
    else:
        load = load_sqlite(project_dir / SQLITE_FILE, scale=scale, seed=seed)
        connections = {SOURCE: {"type": "sqlite", "path": SQLITE_FILE}}
    write_project_file(project_dir, connections)
    text = get_template(TEMPLATE).render({"warehouse_schema": warehouse_schema})
    if not postgres_url:
        text = without_jobs(text, {PUBLISH_JOB})
    workflow = project_dir / "workflows" / f"{WORKFLOW}.yml"
    workflow.write_text(text, encoding="utf-8")
    gitignore = project_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("lakehouse/\n.flowforge/\n.env\ndata/\n", encoding="utf-8")
    return EcommerceProject(project_dir, workflow, load, bool(postgres_url))


def without_jobs(text: str, names: set[str]) -> str:
    """The workflow YAML without the named jobs."""
    import yaml

    from flowforge.core.spec_text import dump_yaml

    spec: dict[str, Any] = yaml.safe_load(text)
    spec["jobs"] = [j for j in spec["jobs"] if j.get("name") not in names]
    return dump_yaml(spec)


def change_ecommerce_source(config: ConnectionConfig, seed: int) -> ChangeSummary:
    """One day of changes in the demo source behind ``config`` (the project's ``shop_db``)."""
    from flowforge.demo.ecommerce_change import change_postgres, change_sqlite

    data = config.model_dump()
    if config.type == "sqlite":
        return change_sqlite(str(data["path"]), seed=seed)
    if config.type == "postgres":
        url = config.url.get_secret_value() if config.url else config.libpq_url()  # type: ignore[attr-defined]
        return change_postgres(url, data.get("schema_", SCHEMA), seed=seed)
    raise ConfigError(f"The e-commerce demo cannot change a {config.type} source.",
                      hint="Its source is a SQLite file or a PostgreSQL schema made by 'flowforge demo ecommerce'.")

"""Project scaffolding: ``flowforge init`` and the demo project."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from flowforge.errors import ConfigError
from flowforge.secrets import KEY_FILE, Keyring
from flowforge.settings import PROJECT_FILE, STATE_DIR

if TYPE_CHECKING:
    from flowforge.connectors.config import ConnectionConfig

PROJECT_TEMPLATE = """\
# FlowForge project settings. Environment variables override any value:
#   FLOWFORGE_LAKEHOUSE=/data/lake   FLOWFORGE_CONNECTIONS__CORE_BANKING__URL=postgresql://...
# Strings may reference the environment as ${{VAR}} (or ${{VAR:-default}}) to keep secrets out.

# Where Delta tables go: <lakehouse>/<bronze|silver|gold>/<table>; a path or s3://bucket/prefix
lakehouse: {lakehouse}
{storage}

# Metadata (workflows, runs, watermarks, catalog). Default: SQLite in .flowforge/metadata.db
# metadata_url: postgresql+psycopg://flowforge@db-host/flowforge

# OpenLineage events of every job run (Marquez or any OpenLineage endpoint; off by default)
# openlineage: {{transport: http, url: "http://marquez:5000", api_key: "${{OPENLINEAGE_API_KEY}}"}}

# The only local folders that files and sqlite connections may read (the state folder and the
# lakehouse never are). Only whoever edits this file changes it; the API and web UI cannot.
data_roots: {data_roots}

connections:
{connections}
"""

EXAMPLE_WORKFLOW = """\
name: example
description: A CSV file through bronze, silver and gold. Edit me.
team: data
environment: dev
jobs:
  - name: ingest_orders
    kind: ingest
    connection: local_files
    tables:
      - {files: "orders*.csv", target: bronze_orders}

  - name: clean_orders
    kind: silver
    tables:
      - target: silver_orders
        source: bronze_orders
        keys: [order_id]
        order_by: updated_at
        derived:
          amount_with_tax: "round(amount * 1.2, 2)"

  - name: daily_revenue
    kind: gold
    tables:
      - target: gold_daily_revenue
        sql: |
          SELECT CAST(updated_at AS DATE) AS day, count(*) AS orders, sum(amount) AS revenue
          FROM silver_orders GROUP BY 1 ORDER BY 1
"""

EXAMPLE_CSV = """\
order_id,customer,amount,updated_at
1,alice,19.99,2026-01-05 10:00:00
2,bob,5.00,2026-01-05 11:30:00
3,carol,120.50,2026-01-06 09:15:00
"""


@dataclass(frozen=True)
class ScaffoldResult:
    project_dir: Path
    created: tuple[Path, ...]


def connections_yaml(connections: dict[str, dict[str, object]]) -> str:
    body = yaml.safe_dump(connections, sort_keys=False, default_flow_style=False)
    return "\n".join("  " + line for line in body.splitlines())


STORAGE_EXAMPLE = """\
# For an s3:// lakehouse: object_store options (credentials may instead come from AWS_* variables)
# storage: {aws_endpoint: "http://127.0.0.1:9000", aws_region: us-east-1, aws_allow_http: true}
# single_writer: false   # true only if one process ever writes (stores without conditional writes)"""


def write_project_file(project_dir: Path, connections: dict[str, dict[str, object]], *,
                       lakehouse: str = "lakehouse", storage: dict[str, str] | None = None,
                       data_roots: list[str] | None = None) -> Path:
    path = project_dir / PROJECT_FILE
    block = yaml.safe_dump({"storage": storage}, sort_keys=False).rstrip() if storage else STORAGE_EXAMPLE
    roots = yaml.safe_dump(data_roots or ["data"], default_flow_style=True).strip()
    path.write_text(PROJECT_TEMPLATE.format(connections=connections_yaml(connections), storage=block,
                                            lakehouse=yaml.safe_dump(lakehouse).splitlines()[0], data_roots=roots),
                    encoding="utf-8")
    return path


def init_project(project_dir: Path, *, force: bool = False) -> ScaffoldResult:
    """Create ``flowforge.yml``, ``workflows/example.yml`` and a sample CSV to edit by hand."""
    project_dir = project_dir.resolve()
    if (project_dir / PROJECT_FILE).exists() and not force:
        raise ConfigError(f"{project_dir / PROJECT_FILE} already exists.",
                          hint="Use --force to overwrite the scaffold files.")
    (project_dir / "workflows").mkdir(parents=True, exist_ok=True)
    (project_dir / "data").mkdir(exist_ok=True)
    (project_dir / STATE_DIR).mkdir(exist_ok=True)
    created = [write_project_file(project_dir, {"local_files": {"type": "files", "path": "data", "format": "csv"}})]
    key_file = project_dir / STATE_DIR / KEY_FILE
    if not key_file.exists():
        Keyring.load(project_dir / STATE_DIR, create=True)  # 0600; encrypts stored connection secrets
        created.append(key_file)
    for rel, text in (("workflows/example.yml", EXAMPLE_WORKFLOW), ("data/orders.csv", EXAMPLE_CSV),
                      (".gitignore", "lakehouse/\n.flowforge/\n.env\n")):
        path = project_dir / rel
        if force or not path.exists():
            path.write_text(text, encoding="utf-8")
            created.append(path)
    return ScaffoldResult(project_dir, tuple(created))


def setup_demo_project(project_dir: Path, *, scale: float = 1.0, seed: int = 42,
                       postgres_url: str | None = None, postgres_schema: str = "bfsi",
                       lakehouse: str | None = None, storage_options: Mapping[str, str] | None = None,
                       ) -> ScaffoldResult:
    """Generate the BFSI source (SQLite file or PostgreSQL schema) and the CRM CSV, write the
    project file and instantiate the BFSI Customer 360 template.

    ``lakehouse`` puts the Delta tables elsewhere (``s3://bucket/prefix`` or a path), reached with
    the object_store ``storage_options``; their secrets go to the project's 0600 ``.env``."""
    from flowforge.demo import generate, write_crm_csv, write_postgres, write_sqlite
    from flowforge.storage.options import SECRET_KEYS, normalize_options
    from flowforge.templates.registry import get_template

    storage = normalize_options(storage_options, "storage option")  # a typo fails before any work
    if storage and not (lakehouse and "://" in lakehouse):
        raise ConfigError("Storage options are for an object-store lakehouse.",
                          hint="Give --lakehouse s3://bucket/prefix as well.")
    project_dir = project_dir.resolve()
    data_dir = project_dir / "data"
    for folder in (data_dir, project_dir / "workflows", project_dir / STATE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    data = generate(scale=scale, seed=seed)
    core: dict[str, object]
    if postgres_url:
        write_postgres(data, postgres_url, schema=postgres_schema)
        core = {"type": "postgres", "url": _keep_secret_out(project_dir, "BFSI_PG_URL", postgres_url),
                "schema": postgres_schema}
    else:
        write_sqlite(data, data_dir / "bfsi.db")
        core = {"type": "sqlite", "path": "data/bfsi.db"}
    crm_dir = data_dir / "crm"
    crm_dir.mkdir(exist_ok=True)
    write_crm_csv(data, crm_dir / "crm_customers.csv")
    for key in SECRET_KEYS & set(storage):
        var = f"LAKEHOUSE_{key.upper()}"  # not FLOWFORGE_*: those are settings
        _write_env(project_dir, var, storage[key])
        storage[key] = "${" + var + "}"
    project_file = write_project_file(project_dir, {
        "core_banking": core,
        "crm_files": {"type": "files", "path": "data/crm", "format": "csv",
                      "columns": {"lifetime_value": "decimal(12,2)"}},
    }, lakehouse=lakehouse or "lakehouse", storage=storage or None)
    workflow = project_dir / "workflows" / "bfsi_customer_360.yml"
    workflow.write_text(get_template("bfsi_customer_360").render(), encoding="utf-8")
    return ScaffoldResult(project_dir, (project_file, workflow, crm_dir / "crm_customers.csv"))


def change_demo_source(config: ConnectionConfig, seed: int) -> object:
    """New and updated rows in the demo's core banking source, later modified_date than any."""
    from flowforge.demo import mutate_postgres, mutate_sqlite

    data = config.model_dump()
    if config.type == "sqlite":
        return mutate_sqlite(Path(data["path"]), seed=seed)
    if config.type == "postgres":
        url = config.url.get_secret_value()  # type: ignore[attr-defined]
        return mutate_postgres(url, data.get("schema_", "public"), seed=seed)
    raise ConfigError(f"The demo cannot change a {config.type} source.")


def _keep_secret_out(project_dir: Path, var: str, url: str) -> str:
    """A URL with a password goes to the project's 0600 ``.env``; the YAML references it."""
    from flowforge.errors import redact

    if redact(url) == url:
        return url
    _write_env(project_dir, var, url)
    return "${" + var + "}"


def _write_env(project_dir: Path, var: str, value: str) -> None:
    """Set ``var`` in the project's ``.env``, readable by its owner only."""
    env_file = project_dir / ".env"
    lines = [ln for ln in (env_file.read_text().splitlines() if env_file.exists() else [])
             if not ln.startswith(f"{var}=")]
    env_file.touch(mode=0o600)
    env_file.chmod(0o600)
    env_file.write_text("\n".join([*lines, f"{var}={value}"]) + "\n", encoding="utf-8")

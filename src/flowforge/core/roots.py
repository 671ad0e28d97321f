"""What a connection may reach on the server: local files under the project's data roots only,
never the project's state folder, the lakehouse, or the metadata database.

``data_roots`` in ``flowforge.yml`` (default ``[data]``) lists the folders that ``files``,
``sqlite`` and ``debezium`` connections may read. Paths are resolved with every symlink followed
before they are compared, so ``data/link -> /etc`` is outside. Only someone who can edit the
project file (an admin of the server) changes the list; the API and UI cannot.

Example::

    confine(settings, "data/crm", "Connection 'crm'")      # '/srv/project/data/crm'
    confine(settings, ".flowforge", "Connection 'x'")      # ConfigError naming data_roots
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.connectors.config import ConnectionConfig
    from flowforge.settings import Settings

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "", None}


def real(path: str | Path) -> Path:
    """``path`` absolute, with every symlink resolved (as far as the path exists)."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(path))))


def roots(settings: Settings) -> list[Path]:
    return [real(settings.resolve_path(r)) for r in settings.data_roots]


def forbidden(settings: Settings) -> list[Path]:
    """Folders no connection may read, whatever the data roots say."""
    out = [real(settings.state_dir)]
    locations = [settings.lakehouse_root, *(loc for layer in settings.lakehouse_locations.values()
                                             for loc in layer.values())]
    out += [real(loc) for loc in locations if "://" not in loc]
    return out


def confine(settings: Settings, path: str, what: str) -> str:
    """The resolved ``path`` when it lies under a data root and outside the state folder and the
    lakehouse; else a ConfigError that names the ``data_roots`` setting."""
    target = real(settings.resolve_path(path))
    for bad in forbidden(settings):
        if target == bad or target.is_relative_to(bad) or bad.is_relative_to(target):
            raise ConfigError(f"{what}: {path} is (or holds) the project's own state or lakehouse, which no "
                              "connection may read.",
                              hint="Point the connection at a folder of source data under data_roots.")
    allowed = roots(settings)
    if not any(target == root or target.is_relative_to(root) for root in allowed):
        shown = ", ".join(str(r) for r in allowed) or "none"
        raise ConfigError(f"{what}: {path} is outside the data roots ({shown}).",
                          hint="Move the files under a data root, or have an admin add their folder to "
                               "'data_roots' in flowforge.yml.")
    return str(target)


def check_connection(settings: Settings, name: str, config: ConnectionConfig) -> ConnectionConfig:
    """``config`` with its local paths resolved and confined; refuses the metadata database itself."""
    updates = {field: confine(settings, getattr(config, field), f"Connection '{name}'")
               for field in config.local_path_fields()}
    _not_the_metadata_store(settings, name, config)
    return config.model_copy(update=updates) if updates else config


def _not_the_metadata_store(settings: Settings, name: str, config: ConnectionConfig) -> None:
    described = config.describe()
    meta = settings.metadata_url or ""
    if not described.startswith("postgresql://") or not meta.startswith(("postgresql", "postgres")):
        return
    a, b = urlsplit(described), urlsplit(meta.replace("+psycopg", "").replace("+psycopg2", ""))
    same_host = a.hostname == b.hostname or (a.hostname in _LOOPBACK and b.hostname in _LOOPBACK)
    try:
        same_port = (a.port or 5432) == (b.port or 5432)
    except ValueError:
        same_port = False
    if same_host and same_port and unquote(a.path.lstrip("/")) == unquote(b.path.lstrip("/")):
        raise ConfigError(f"Connection '{name}' points at FlowForge's own metadata database, which no "
                          "connection may read.", hint="Use a database that holds source data.")

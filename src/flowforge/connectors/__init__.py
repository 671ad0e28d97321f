"""Connector registry. A connector is a folder with ``config.py`` and ``connector.py``;
built-in kinds are listed here by module, third-party kinds arrive through the
``flowforge.connectors`` entry point group."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.connectors.base import Connector
    from flowforge.connectors.config import ConnectionConfig

BUILTIN: dict[str, str] = {
    "sqlite": "flowforge.connectors.sql.sqlite",
    "postgres": "flowforge.connectors.sql.postgres",
    "mysql": "flowforge.connectors.sql.mysql",
    "sqlserver": "flowforge.connectors.sql.sqlserver",
    "files": "flowforge.connectors.files",
    "pg_logical": "flowforge.connectors.cdc.pg_logical",
    "sqlserver_cdc": "flowforge.connectors.cdc.sqlserver_cdc",
    "kafka": "flowforge.connectors.cdc.kafka",
    "mysql_binlog": "flowforge.connectors.cdc.mysql_binlog",
    "debezium": "flowforge.connectors.cdc.debezium",
}

_CONNECTORS: dict[str, type[Connector]] = {}
_loaded = False

T = TypeVar("T", bound="type[Connector]")


def register_connector(kind: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        cls.kind = kind
        _CONNECTORS[kind] = cls
        return cls

    return deco


@functools.cache
def _modules() -> dict[str, str]:
    # cached: scanning the installed distributions' entry points costs 30-90 ms a call
    mods = dict(BUILTIN)
    for ep in entry_points(group="flowforge.connectors"):
        mods.setdefault(ep.name, ep.value)
    return mods


def module_of(kind: str) -> str | None:
    """The module of a connector kind; a built-in kind is found without scanning entry points."""
    return BUILTIN.get(kind) or _modules().get(kind)


def load_builtin_configs() -> None:
    global _loaded
    if _loaded:
        return
    for module in _modules().values():
        importlib.import_module(f"{module}.config")
    _loaded = True


def connector_kinds() -> list[str]:
    return sorted(_modules())


def connector_class(kind: str) -> type[Connector]:
    if kind not in _CONNECTORS:
        module = module_of(kind)
        if module is None:
            raise ConfigError(f"Unknown connector kind {kind!r}.", hint=f"Known: {', '.join(connector_kinds())}.")
        importlib.import_module(f"{module}.connector")
    return _CONNECTORS[kind]


def open_connector(name: str, config: ConnectionConfig) -> Connector:
    return connector_class(config.type)(name, config)

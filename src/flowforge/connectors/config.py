"""Connection configs: one pydantic model per connector kind, unioned from the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

_CONFIGS: dict[str, type[ConnectionConfig]] = {}

C = TypeVar("C", bound="type[ConnectionConfig]")


class ConnectionConfig(BaseModel):
    """Base of every connection config; subclasses add ``type: Literal["<kind>"]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    def describe(self) -> str:
        """Where this connection points, without secrets (host and database, or a path)."""
        return self.type

    def local_path_fields(self) -> tuple[str, ...]:
        """Fields holding a local path the connector reads data from; each must lie under the
        project's data roots (see ``flowforge.core.roots``)."""
        return ()


def register_config(kind: str) -> Callable[[C], C]:
    def deco(cls: C) -> C:
        _CONFIGS[kind] = cls
        return cls

    return deco


def config_models() -> dict[str, type[ConnectionConfig]]:
    from flowforge.connectors import load_builtin_configs

    load_builtin_configs()
    return dict(_CONFIGS)


def _config_of(kind: str) -> type[ConnectionConfig] | None:
    import importlib

    from flowforge.connectors import module_of

    module = module_of(kind) if kind not in _CONFIGS else None
    if module is not None:
        importlib.import_module(f"{module}.config")
    return _CONFIGS.get(kind)


def parse_connection(data: dict[str, Any]) -> ConnectionConfig:
    """Validate a connection mapping against the model its ``type`` names."""
    from flowforge.errors import ConfigError

    kind = data.get("type")
    model = _config_of(kind) if isinstance(kind, str) else None
    if model is not None:  # only this kind's module is imported, not every connector's
        return model.model_validate(data)
    models = config_models()
    if kind not in models:
        raise ConfigError(
            f"Unknown connection type {kind!r}.",
            hint=f"Use one of: {', '.join(sorted(models))}.",
        )
    try:
        return TypeAdapter(models[kind]).validate_python(data)
    except ValidationError:
        raise

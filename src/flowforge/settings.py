"""Project settings: ``flowforge.yml`` in the project directory, overridden by ``FLOWFORGE_*``
environment variables (``__`` nests: ``FLOWFORGE_CONNECTIONS__CORE__URL``) and ``.env``."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from flowforge.errors import ConfigError, SpecError

PROJECT_FILE = "flowforge.yml"
STATE_DIR = ".flowforge"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Settings(BaseSettings):
    """Where a project keeps its lakehouse, metadata and connections."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWFORGE_", env_nested_delimiter="__", env_file=".env", extra="forbid"
    )

    project_dir: Path = Field(default_factory=Path.cwd)
    lakehouse: str = "lakehouse"
    metadata_url: str | None = None
    workflows_dir: str = "workflows"
    connections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    actor: str = Field(default_factory=lambda: _current_user())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over flowforge.yml (passed as init values), as users expect
        # from twelve-factor tools.
        return env_settings, dotenv_settings, init_settings

    # -- derived locations ---------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    @property
    def lakehouse_root(self) -> str:
        if "://" in self.lakehouse:
            return self.lakehouse.rstrip("/")
        path = Path(self.lakehouse).expanduser()
        return str(path if path.is_absolute() else (self.project_dir / path).resolve())

    @property
    def metadata_database_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.state_dir / 'metadata.db'}"

    @property
    def workflows_path(self) -> Path:
        return self.project_dir / self.workflows_dir

    def resolve_path(self, value: str) -> str:
        """A path from the project file, made absolute against the project directory."""
        if "://" in value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (self.project_dir / path).resolve())

    @classmethod
    def load(cls, project_dir: Path | str | None = None) -> Settings:
        """Read ``flowforge.yml`` from ``project_dir`` (or the nearest parent of the cwd)."""
        from flowforge.spec.loader import load_yaml

        root = Path(project_dir).resolve() if project_dir else find_project_dir(Path.cwd())
        data: dict[str, Any] = {}
        file = root / PROJECT_FILE
        if file.exists():
            loaded = load_yaml(file)
            if loaded.data is not None and not isinstance(loaded.data, dict):
                raise SpecError("the project file must be a mapping of settings", file=str(file), line=1)
            data = expand_env(loaded.data or {}, _environment(root))
        data["project_dir"] = root
        try:
            return cls(_env_file=str(root / ".env"), **data)  # type: ignore[call-arg]
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(
                f"{file}: setting '{where}': {err['msg']}",
                hint="See 'flowforge init' for a valid flowforge.yml.",
            ) from None


def find_project_dir(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / PROJECT_FILE).exists():
            return candidate
    return start


def _environment(root: Path) -> dict[str, str]:
    """The process environment over the project's ``.env`` file."""
    from dotenv import dotenv_values

    env_file = root / ".env"
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.exists() else {}
    return {**values, **os.environ}


def expand_env(value: Any, env: dict[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings so secrets stay out of files."""
    env = dict(os.environ) if env is None else env
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in env:
                return env[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigError(
                f"Environment variable {m.group(1)} is referenced in {PROJECT_FILE} but not set.",
                hint=f"export {m.group(1)}=... or give a default with ${{{m.group(1)}:-value}}.",
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    return value


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"

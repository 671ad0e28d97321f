"""Project settings: ``flowforge.yml`` in the project directory, overridden by ``FLOWFORGE_*``
environment variables (``__`` nests: ``FLOWFORGE_CONNECTIONS__CORE__URL``) and ``.env``."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from flowforge.errors import ConfigError, FlowForgeError, SpecError
from flowforge.lineage.config import OpenLineageSettings
from flowforge.spec.maintenance import MaintenancePolicy

PROJECT_FILE = "flowforge.yml"
STATE_DIR = ".flowforge"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class SchedulerSettings(BaseModel):
    """``scheduler:`` in flowforge.yml (see runner/scheduler.py)."""

    model_config = ConfigDict(extra="forbid")

    tick: float = Field(default=1.0, gt=0, le=60)  # seconds between looks at the triggers
    threads: int = Field(default=4, ge=1, le=256)  # runs started by one scheduler at once
    lease_timeout: float = Field(default=60.0, ge=1)  # a run or lease without a heartbeat this long is dead
    misfire_grace: float = Field(default=60.0, ge=1)  # a slot later than this counts as missed (catchup)
    in_serve: bool = True  # `flowforge serve` runs a scheduler too


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
    # object_store keys for an s3:// lakehouse (aws_endpoint, aws_region, aws_access_key_id,
    # aws_secret_access_key, aws_allow_http, aws_conditional_put); secrets kept as SecretStr.
    # Credentials left out come from AWS_* variables or the standard AWS chain.
    storage: dict[str, str | SecretStr] = Field(default_factory=dict)
    # only one process ever writes this lakehouse: allows stores without conditional writes
    single_writer: bool = False
    # single tables placed outside the root: {layer: {table: "s3://bucket/prefix" or a path}}
    table_locations: dict[str, dict[str, str]] = Field(default_factory=dict)
    # the only local folders that files and sqlite connections may read (relative to the project);
    # the state folder and the lakehouse are never readable through a connection, whatever is here
    data_roots: list[str] = Field(default_factory=lambda: ["data"])
    # web sessions: signed out after this long without a request, and this long after signing in
    session_idle_minutes: float = Field(30, gt=0)
    session_max_hours: float = Field(12, gt=0)
    # session cookies carry the Secure flag: 'auto' when the request came over https (or a proxy says so)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # origins (scheme://host:port) allowed to send cookie-authenticated changes besides the server's own
    allowed_origins: list[str] = Field(default_factory=list)
    # the largest request body the server parses; larger ones get 413 before anything reads them
    max_request_bytes: int = Field(1_048_576, ge=1024)
    # where jobs run: "local" (this process) or a distributed executor ("celery": workers started
    # with `flowforge worker`); its options, e.g. {broker_url: "amqp://...", queue: flowforge}
    executor: str = "local"
    executor_options: dict[str, str | int | float | bool | SecretStr] = Field(default_factory=dict)
    scheduler: SchedulerSettings = SchedulerSettings()
    # alert destinations defined in this file (spec/alerts.py); secrets as ${VAR}
    alert_channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # /metrics without a token (only on a network where everyone may see workflow names and counts)
    metrics_public: bool = False
    # OpenLineage events of every job run (lineage/config.py): none by default, http or file
    openlineage: OpenLineageSettings = Field(default_factory=lambda: OpenLineageSettings.model_validate({}))

    @field_validator("executor_options", mode="before")
    @classmethod
    def _executor_secrets(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: SecretStr(str(v)) if _secret_option(k) and not isinstance(v, SecretStr) else v
                for k, v in value.items()}
    # automatic compaction / checkpoints / vacuum after CDC and file-stream jobs (spec/maintenance.py)
    maintenance: MaintenancePolicy = Field(default_factory=lambda: MaintenancePolicy.model_validate({}))

    @field_validator("storage", mode="before")
    @classmethod
    def _storage_keys(cls, value: Any) -> Any:
        from flowforge.storage.options import SECRET_KEYS, normalize_options

        if not isinstance(value, dict):
            return value
        try:
            options = normalize_options(value)
        except FlowForgeError as exc:
            raise ValueError(exc.message) from None
        return {k: SecretStr(v) if k in SECRET_KEYS else v for k, v in options.items()}

    @field_validator("table_locations")
    @classmethod
    def _layers(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from flowforge.storage.delta import LAYERS

        unknown = sorted(set(value) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown layer(s) {', '.join(unknown)}; use {', '.join(LAYERS)}")
        return value

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
        # from twelve-factor tools. The project's .env also holds plain variables that
        # flowforge.yml references as ${VAR} (secrets kept out of the file): only FLOWFORGE_*
        # entries there are settings.
        if isinstance(dotenv_settings, DotEnvSettingsSource):
            dotenv_settings = _SettingsDotEnv(settings_cls, dotenv_settings.env_file)
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
    def storage_options(self) -> dict[str, str]:
        """The object-store options as delta-rs and obstore take them (secrets in clear: never log this)."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self.storage.items()}

    @property
    def lakehouse_locations(self) -> dict[str, dict[str, str]]:
        return {layer: {t: self.resolve_path(loc) for t, loc in tables.items()}
                for layer, tables in self.table_locations.items()}

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
            from flowforge.spec.problems import describe

            raise ConfigError(
                f"{file}: {describe(exc, cls)}",
                hint="See 'flowforge init' for a valid flowforge.yml.",
            ) from None


class _SettingsDotEnv(DotEnvSettingsSource):
    """The .env source, reading only FLOWFORGE_* entries (the rest are for ${VAR} references)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        prefix = (self.env_prefix or "").lower()
        return {k: v for k, v in super()._load_env_vars().items() if k.lower().startswith(prefix)}


def _secret_option(key: str) -> bool:
    return any(part in key.lower() for part in ("url", "password", "secret", "token"))


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

"""Connections: from ``flowforge.yml`` or stored in the metadata store with encrypted secrets.

Secret fields (every ``SecretStr`` of a connection's config: passwords, URLs with
credentials, cloud keys) are encrypted together as one Fernet token; the other options are
stored in clear so listings need no key. Nothing here returns a plaintext secret except to
the connector that needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.connectors.base import ColumnInfo, ConnectionTest, TableInfo
    from flowforge.connectors.config import ConnectionConfig
    from flowforge.core.context import Context
    from flowforge.secrets import Keyring

URL_SCHEMES = {
    "postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql",
    "mssql": "sqlserver", "sqlserver": "sqlserver", "sqlite": "sqlite",
}


@dataclass(frozen=True)
class ConnectionSummary:
    """What may be shown about a connection: kind and where it points, never credentials."""

    name: str
    kind: str
    where: str
    source: str  # "flowforge.yml" or "store"


@dataclass(frozen=True)
class ConnectionDetails:
    """Where a connection points, split for display. ``host``/``database``/``path`` are all a viewer
    may see; ``options`` (non-secret settings such as user or schema) are for editors. Never secrets."""

    name: str
    kind: str
    source: str
    where: str
    host: str | None
    port: int | None
    database: str | None
    path: str | None
    options: dict[str, Any]


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(name: str) -> str:
    """A connection name: letters, digits and underscores, starting with a letter (as workflow names)."""
    if not _NAME.match(name):
        raise ConfigError(f"{name[:80]!r} is not a valid connection name.",
                          hint="Use letters, digits and underscores, starting with a letter (at most 128).")
    return name


def check_source_name(name: str) -> str:
    """A source table or file name as a user types it: printable, at most 512 characters."""
    if not name or len(name) > 512 or _CONTROL.search(name):
        raise ConfigError(f"{name[:80]!r} is not a valid table or file name.",
                          hint="Give schema.table as the source database names it, or a file (pattern) of a "
                               "files connection.")
    return name


def split_secrets(config: ConnectionConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options in clear, secrets) of a validated config."""
    options: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    dumped = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, field in type(config).model_fields.items():
        key = field.alias or name
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            secrets[key] = value.get_secret_value()
        elif isinstance(value, dict) and any(isinstance(v, SecretStr) for v in value.values()):
            # a secret inside a mapping (a 'storage' key): stored encrypted, never as '**********'
            secrets[key] = {k: v.get_secret_value() for k, v in value.items() if isinstance(v, SecretStr)}
            options[key] = {k: dumped[key][k] for k, v in value.items() if not isinstance(v, SecretStr)}
        elif key in dumped:
            options[key] = dumped[key]
    return options, secrets


def merge_secrets(options: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    """The connection mapping back from its clear options and decrypted secrets."""
    data = dict(options)
    for key, value in secrets.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def config_from_url(url: str) -> dict[str, Any]:
    """A connection mapping from a URL given on the command line (``flowforge ingest --from``)."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    kind = URL_SCHEMES.get(scheme)
    if kind is None:
        raise ConfigError(f"Cannot tell the database kind of '{urlsplit(url).scheme}://...'.",
                          hint=f"Use one of: {', '.join(sorted(URL_SCHEMES))}, or a stored connection name.")
    if kind == "sqlite":
        return {"type": "sqlite", "path": url.split("://", 1)[1][1:]}  # sqlite:///rel.db, sqlite:////abs.db
    return {"type": kind, "url": url}


class ConnectionService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def keyring(self, create: bool = False) -> Keyring:
        from flowforge.secrets import Keyring

        return Keyring.load(self.ctx.settings.state_dir, create=create)

    def parse(self, name: str, data: dict[str, Any], where: str) -> ConnectionConfig:
        """A validated config; local paths resolved and confined to the data roots (see core.roots)."""
        from flowforge.connectors.config import parse_connection
        from flowforge.core.roots import check_connection

        if "path" in data and isinstance(data["path"], str):
            data = {**data, "path": self.ctx.settings.resolve_path(data["path"])}
        try:
            config = parse_connection(data)
        except ValidationError as exc:
            from flowforge.connectors.config import config_models
            from flowforge.spec.problems import describe

            model = config_models().get(str(data.get("type")))
            raise ConfigError(f"Connection '{name}' ({where}): {describe(exc, model)}",
                              hint="Fix the connection's settings.") from None
        return check_connection(self.ctx.settings, name, config)

    def save(self, name: str, data: dict[str, Any]) -> ConnectionConfig:
        """Store a connection (editors); its secret fields are encrypted and never read back."""
        self.ctx.require("editor")
        check_name(name)
        if name in self.ctx.settings.connections:
            raise ConfigError(f"Connection '{name}' is defined in flowforge.yml; edit it there.")
        config = self.parse(name, data, "new connection")
        options, secrets = split_secrets(config)
        token = self.keyring(create=True).encrypt(secrets) if secrets else None
        self.ctx.metadata.save_connection(name, config.type, options, token, self.ctx.actor)
        self.ctx.forget_connector(name)
        return config

    def stored(self, name: str) -> ConnectionConfig | None:
        record = self.ctx.metadata.get_connection(name)
        if record is None:
            return None
        secrets = self.keyring().decrypt(record.secret, f"connection '{name}'") if record.secret else {}
        return self.parse(name, merge_secrets(record.options, secrets), "stored connection")

    def summaries(self) -> list[ConnectionSummary]:
        self.ctx.require("viewer")
        out = [ConnectionSummary(n, str(raw.get("type")), self._where_yml(n), "flowforge.yml")
               for n, raw in sorted(self.ctx.settings.connections.items())]
        for rec in self.ctx.metadata.list_connections():
            if rec.name not in self.ctx.settings.connections:
                try:
                    config = self.stored(rec.name)
                    where = config.describe() if config else ""
                except ConfigError:  # no key here: show what the clear options tell
                    where = _where_options(rec.kind, rec.options)
                out.append(ConnectionSummary(rec.name, rec.kind, where, "store"))
        return out

    def _where_yml(self, name: str) -> str:
        try:
            return self.ctx.connection_config(name).describe()
        except ConfigError as exc:
            return f"(invalid: {exc.message})"

    def remove(self, name: str) -> None:
        self.ctx.require("editor")
        if name in self.ctx.settings.connections:
            raise ConfigError(f"Connection '{name}' is defined in flowforge.yml; remove it there.")
        if not self.ctx.metadata.delete_connection(name, self.ctx.actor):
            raise ConfigError(f"No stored connection named '{name}'.", hint="See 'flowforge connections list'.")
        self.ctx.forget_connector(name)

    def details(self) -> list[ConnectionDetails]:
        """Every connection with host, port, database or path pulled out; never a secret. Non-secret
        options (user, schema...) only for editors."""
        editor = self.ctx.require("viewer").can("editor")
        out = []
        for summary in self.summaries():
            try:
                options, secrets = split_secrets(self.ctx.connection_config(summary.name))
            except ConfigError:
                options, secrets = {}, {}
            url = next((v for v in secrets.values() if isinstance(v, str) and "://" in v), None)
            host, port, database = options.get("host"), options.get("port"), options.get("database")
            if url:  # a URL replaces the host/port/database fields (which then hold defaults)
                parts = urlsplit(url)
                try:
                    host, port = parts.hostname, parts.port
                except ValueError:
                    host, port = parts.hostname, None
                database = parts.path.lstrip("/") or None
            out.append(ConnectionDetails(
                name=summary.name, kind=summary.kind, source=summary.source, where=summary.where,
                host=host, port=int(port) if port else None, database=database, path=options.get("path"),
                options={k: v for k, v in options.items()
                         if editor and k not in ("type", "host", "port", "database", "path")}))
        return out

    def detail(self, name: str) -> ConnectionDetails:
        from flowforge.errors import NotFoundError

        for item in self.details():
            if item.name == name:
                return item
        raise NotFoundError(f"No connection named '{name}'.", hint="List connections with GET /api/v1/connections.")

    def check(self, name: str, data: dict[str, Any]) -> ConnectionTest:
        """Test a connection before it is saved."""
        from flowforge.connectors import open_connector

        self.ctx.require("editor")
        check_name(name)
        with open_connector(name, self.parse(name, data, "new connection")) as conn:
            return conn.test()

    def test(self, name: str) -> ConnectionTest:
        """Connect and report server version and latency; a failure raises a ConnectorError saying why."""
        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.test()

    def tables(self, name: str) -> list[TableInfo]:
        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.list_tables()

    def schema(self, name: str, table: str) -> list[ColumnInfo]:
        from flowforge.connectors.base import ReadRequest

        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.columns(ReadRequest(table=check_source_name(table)))

    def dialect(self, name: str, table: str) -> dict[str, Any] | None:
        """For a text file: the dialect sniffed from it beside the options it is read with."""
        from flowforge.connectors.base import ReadRequest

        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.dialect(ReadRequest(table=check_source_name(table)))

    def row_count(self, name: str, table: str) -> int:
        from flowforge.connectors.base import ReadRequest

        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.row_count(ReadRequest(table=check_source_name(table)))

    def preview_table(self, name: str, table: str, limit: int = 10) -> Any:
        """The first ``limit`` rows as an Arrow table (for the CLI)."""
        from flowforge.connectors.base import ReadRequest

        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return conn.preview(ReadRequest(table=check_source_name(table)), limit)

    def preview(self, name: str, table: str, limit: int = 10) -> list[dict[str, Any]]:
        """The first ``limit`` rows as JSON-safe dicts."""
        from flowforge.connectors.base import ReadRequest
        from flowforge.core.catalog import sample_rows

        self.ctx.require("editor")
        with self.ctx.connector(name) as conn:
            return sample_rows(conn.preview(ReadRequest(table=check_source_name(table)), limit))

    # -- editing and usage (the Connections page) -------------------------------------------------
    def create(self, name: str, data: dict[str, Any]) -> ConnectionConfig:
        """A new stored connection; an existing name is refused (``save`` would replace it, secrets and all)."""
        from flowforge.errors import ConflictError

        self.ctx.require("editor")
        if name in self.ctx.settings.connections or self.ctx.metadata.get_connection(name) is not None:
            raise ConflictError(f"A connection named '{name}' exists already.",
                                hint="Pick another name, or edit the existing connection.")
        return self.save(name, data)

    def editable(self, name: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
        """(kind, non-secret options, names of the secret fields that hold a value) of a stored
        connection, to fill an edit form (editors). The secrets themselves never leave."""
        from flowforge.errors import NotFoundError

        self.ctx.require("editor")
        if name in self.ctx.settings.connections:
            raise ConfigError(f"Connection '{name}' is defined in flowforge.yml; edit it there.")
        record = self.ctx.metadata.get_connection(name)
        if record is None:
            raise NotFoundError(f"No stored connection named '{name}'.", hint="See the Connections page.")
        options, secrets = split_secrets(self.stored(name) or self.parse(name, record.options, "stored connection"))
        return record.kind, options, tuple(sorted(_secret_keys(secrets)))

    def update(self, name: str, data: dict[str, Any]) -> ConnectionConfig:
        """Save a stored connection again. A secret field left out or empty keeps its stored value,
        but only while the connection still points at the same place (kind, host, port, path, URL):
        a changed address needs the secret typed again, so an editor cannot send the stored
        password to a server of their choosing."""
        return self.save(name, self._with_stored_secrets(name, data))

    def check_update(self, name: str, data: dict[str, Any]) -> ConnectionTest:
        """Test an edit before saving it, with the stored secrets kept as ``update`` would keep them."""
        from flowforge.connectors import open_connector

        merged = self._with_stored_secrets(name, data)
        with open_connector(name, self.parse(name, merged, "edited connection")) as conn:
            return conn.test()

    def _with_stored_secrets(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        from flowforge.errors import NotFoundError

        self.ctx.require("editor")
        check_name(name)
        if self.ctx.metadata.get_connection(name) is None:
            raise NotFoundError(f"No stored connection named '{name}'.", hint="Create it instead.")
        old = self.stored(name)
        data = {k: v for k, v in data.items() if v not in ("", None)}
        if old is None:
            return data
        old_options, old_secrets = split_secrets(old)
        same_place = data.get("type") == old.type and all(
            str(data.get(k, "")) == str(old_options.get(k, "")) for k in _ADDRESS if k in data or k in old_options)
        for key, value in old_secrets.items():
            if key in data and not (isinstance(value, dict) and isinstance(data[key], dict)):
                continue
            if isinstance(value, dict):  # a 'storage' mapping: keep each secret key left out
                value = {**value, **data.get(key, {})}
                if value == data.get(key):
                    continue
            if not same_place:
                raise ConfigError(f"Connection '{name}' now points elsewhere; type its {key} again.",
                                  hint="A stored secret is kept only while the address stays the same.")
            data[key] = value
        return data

    def usage(self) -> dict[str, list[tuple[str, str]]]:
        """{connection: [(workflow, job or 'trigger'), ...]} for every registered workflow."""
        self.ctx.require("viewer")
        used: dict[str, list[tuple[str, str]]] = {}
        for summary in self.ctx.workflows.list():
            if summary.id is None:
                continue
            detail = self.ctx.workflows.get(summary.name)
            for job in detail.jobs:
                for ref in sorted(_references(job.spec)):
                    used.setdefault(ref, []).append((summary.name, job.name))
            for trigger in detail.spec.get("triggers") or []:
                if isinstance(trigger, dict) and isinstance(trigger.get("files"), str):
                    used.setdefault(trigger["files"], []).append((summary.name, "trigger"))
        return used

    def rotate_key(self) -> int:
        """Re-encrypt every stored secret with a new key; the key file then holds only it."""
        from flowforge.secrets import KEY_FILE, Keyring, new_key, write_key_file

        self.ctx.require("admin")
        old = self.keyring(create=True)
        path = self.ctx.settings.state_dir / KEY_FILE
        if old.source != str(path):
            raise ConfigError(
                "The key comes from FLOWFORGE_SECRET_KEY, which FlowForge cannot change.",
                hint="Set FLOWFORGE_SECRET_KEY='<new>,<old>', run rotate-key, then set it to '<new>' alone.")
        ring = Keyring([new_key(), *old.keys], str(path))
        write_key_file(path, ring.keys)  # both keys until every secret is re-encrypted
        count = self.ctx.metadata.reencrypt_connections(ring.rotate, self.ctx.actor)
        count += self.ctx.metadata.alerts.reencrypt(ring.rotate)  # alert channels share the key
        write_key_file(path, ring.keys[:1])
        return count


_ADDRESS = ("host", "port", "path", "database", "aws_endpoint")


def _secret_keys(secrets: dict[str, Any]) -> list[str]:
    keys = []
    for key, value in secrets.items():
        keys += [f"{key}.{k}" for k in value] if isinstance(value, dict) else [key]
    return keys


def _references(spec: Any) -> set[str]:
    """Connection names a job spec refers to: every ``connection:`` value, at any depth (ingest,
    cdc, publish and embedding targets), and an export job's ``source``."""
    found: set[str] = set()
    if isinstance(spec, dict):
        for key, value in spec.items():
            export_source = key == "source" and spec.get("kind") == "export" and "://" not in str(value)
            if isinstance(value, str) and (key == "connection" or export_source):
                found.add(value)
            else:
                found |= _references(value)
    elif isinstance(spec, list):
        for item in spec:
            found |= _references(item)
    return found


def _where_options(kind: str, options: dict[str, Any]) -> str:
    """Host and database (or path) from clear options; a URL-only connection shows its kind."""
    if "host" in options:
        port = f":{options['port']}" if options.get("port") else ""
        return f"{kind}://{options['host']}{port}/{options.get('database', '')}"
    if "path" in options:
        return f"{kind}: {options['path']}"
    return f"{kind} (address stored encrypted)"

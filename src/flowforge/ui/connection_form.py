"""The database connection form: fields or a connection string, authentication type,
Test Connection with a clear result, then a table picker with schema and a 10-row preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import run, ui

from flowforge.ui import services
from flowforge.ui.layout import error_message, load, table

AUTH_TYPES = {"password": "User and password", "trust": "No password (trust / peer / certificate)"}
DEFAULT_PORTS = {"postgres": 5432, "sqlserver": 1433, "mysql": 3306}


class ConnectionForm:
    """Holds the form's values; ``data()`` is the connection mapping the services validate."""

    def __init__(self, user: services.UiUser, on_columns: Callable[[list[str]], None] | None = None,
                 connection: str = "", table: str | None = None) -> None:
        self.user = user
        self.values: dict[str, Any] = {
            "mode": "saved", "saved": "", "name": "", "kind": "postgres", "entry": "fields", "host": "localhost",
            "port": 5432, "database": "", "user": "", "auth": "password", "password": "", "url": "",
            "path": "", "schema": "", "table": table}
        self.on_columns = on_columns or (lambda cols: None)
        self.tested = False
        self.columns: list[str] = []
        self.initial = connection

    # -- what the services get ---------------------------------------------------------------
    def source(self) -> dict[str, Any] | str:
        v = self.values
        if v["mode"] == "saved":
            return str(v["saved"])
        if v["kind"] == "sqlite":
            return {"type": "sqlite", "path": v["path"]}
        if v["entry"] == "string":
            data: dict[str, Any] = {"type": v["kind"], "url": v["url"]}
        else:
            data = {"type": v["kind"], "host": v["host"], "port": int(v["port"] or 0) or None,
                    "database": v["database"] or None, "user": v["user"] or None}
            if v["auth"] == "password" and v["password"]:
                data["password"] = v["password"]
        if v["schema"]:
            data["schema"] = v["schema"]
        return {k: val for k, val in data.items() if val is not None}

    def connection_name(self) -> str:
        return str(self.values["saved"] if self.values["mode"] == "saved" else self.values["name"])

    # -- the widgets ---------------------------------------------------------------------------
    async def render(self) -> None:
        v = self.values
        saved = [c.name for c in await load(services.connection_summaries, self.user) if c.kind != "files"]
        kinds = [k for k in services.connection_kinds() if k not in ("files",)]
        v["saved"] = self.initial if self.initial in saved else (saved[0] if saved else "")
        v["mode"] = "saved" if saved else "new"
        ui.toggle({"saved": "Saved connection", "new": "New connection"}).bind_value(v, "mode").props(
            "data-testid=connection-mode")
        with ui.column().bind_visibility_from(v, "mode", value="saved").classes("w-full"):
            ui.select(saved, label="Connection").bind_value(v, "saved").classes("w-96")
        with ui.column().bind_visibility_from(v, "mode", value="new").classes("w-full gap-1"):
            with ui.row().classes("gap-4"):
                ui.input("Connection name", placeholder="core_banking").bind_value(v, "name").props(
                    "data-testid=conn-name")
                ui.select(kinds, label="Database type", on_change=self._kind_changed).bind_value(v, "kind").classes(
                    "w-40").props("data-testid=conn-kind")
            with ui.column().bind_visibility_from(v, "kind", backward=lambda k: k != "sqlite").classes("gap-1"):
                ui.toggle({"fields": "Individual fields", "string": "Connection string"}).bind_value(v, "entry")
                with ui.column().bind_visibility_from(v, "entry", value="fields").classes("gap-1"):
                    with ui.row().classes("gap-4"):
                        ui.input("Host").bind_value(v, "host").props("data-testid=conn-host")
                        ui.number("Port", format="%d").bind_value(v, "port").props("data-testid=conn-port")
                        ui.input("Database").bind_value(v, "database").props("data-testid=conn-database")
                    with ui.row().classes("gap-4"):
                        ui.select(AUTH_TYPES, label="Authentication").bind_value(v, "auth").classes("w-80").props(
                            "data-testid=conn-auth")
                        ui.input("User").bind_value(v, "user").props("data-testid=conn-user")
                        ui.input("Password", password=True, password_toggle_button=True).bind_value(
                            v, "password").bind_visibility_from(v, "auth", value="password").props(
                            "data-testid=conn-password autocomplete=new-password")
                ui.input("Connection string", password=True, placeholder="postgresql://user:pass@host:5432/db"
                         ).bind_value(v, "url").bind_visibility_from(v, "entry", value="string").classes("w-[560px]")
                ui.input("Schema (optional)").bind_value(v, "schema")
            ui.input("Database file").bind_value(v, "path").bind_visibility_from(v, "kind", value="sqlite")
        with ui.row().classes("items-center gap-4"):
            ui.button("Test connection", icon="cable", on_click=self.test).props("data-testid=test-connection")
            self.result = ui.label().props("data-testid=connection-result")
        self.picker = ui.column().classes("w-full")

    def _kind_changed(self, e: Any) -> None:
        self.values["port"] = DEFAULT_PORTS.get(str(e.value), self.values["port"])

    async def test(self) -> None:
        self.result.classes(remove="text-positive text-negative")
        self.result.text = "Testing…"
        try:
            message = await run.io_bound(services.test_connection, self.user, self.source())
            names = await run.io_bound(services.source_tables, self.user, self.source()) or []
        except Exception as exc:
            self.tested = False
            self.result.text = f"Connection failed: {error_message(exc)}"
            self.result.classes("text-negative")
            return
        self.tested = True
        self.result.text = f"✔ {message}"
        self.result.classes("text-positive")
        self.picker.clear()
        with self.picker:
            ui.select(names, label=f"Table ({len(names)} found)", with_input=True,
                      on_change=self.pick).bind_value(self.values, "table").classes("w-96").props(
                "data-testid=table-picker")
            self.preview = ui.column().classes("w-full")

    async def pick(self, e: Any) -> None:
        if not e.value:
            return
        self.preview.clear()
        try:
            found = await run.io_bound(services.table_preview, self.user, self.source(), str(e.value))
        except Exception as exc:
            with self.preview:
                ui.label(error_message(exc)).classes("text-negative")
            return
        cols, rows = found or ([], [])
        self.columns = [c for c, _, _, _ in cols]
        self.on_columns(self.columns)
        with self.preview, ui.row().classes("w-full gap-4 no-wrap"):
            with ui.column().classes("w-1/3"):
                ui.label("Schema").classes("font-medium")
                table([{"column": c, "type": t, "key": "yes" if pk else "", "default": d or ""}
                       for c, t, pk, d in cols])
            with ui.column().classes("w-2/3"):
                ui.label(f"Sample ({len(rows)} rows)").classes("font-medium")
                table(rows).props("data-testid=table-preview").classes("max-h-96")


async def read_only_summary(user: services.UiUser, name: str) -> None:
    """What a viewer may see of a connection: its kind, host and database, never credentials."""
    found = next((c for c in await load(services.connection_summaries, user) if c.name == name), None)
    ui.label(f"Connection {name}: {found.kind} · {found.where}" if found else f"Connection {name}").classes(
        "text-gray-700")


# -- the Connections page's create/edit form (database and files connections) ---------------------
EDIT_KINDS = {"postgres": "PostgreSQL", "mysql": "MySQL / MariaDB", "sqlserver": "SQL Server", "sqlite": "SQLite file",
              "files": "Files (CSV, JSON, Parquet; folder or s3://)"}
FILE_FORMATS = ("csv", "json", "parquet")
KEEP = "stored — leave empty to keep"


class ConnectionEditor:
    """Fields of a stored connection. Secret fields start empty: on an edit an empty secret keeps
    the stored one (the service decides, and asks again when the address changed)."""

    def __init__(self, name: str = "", kind: str = "postgres", options: dict[str, Any] | None = None,
                 secrets_set: tuple[str, ...] = ()) -> None:
        o = dict(options or {})
        self.editing = bool(name)
        self.secrets_set = set(secrets_set)
        self.values: dict[str, Any] = {
            "name": name, "kind": kind if kind in EDIT_KINDS else "postgres",
            "entry": "string" if "url" in self.secrets_set else "fields",
            "host": o.get("host", "localhost"), "port": o.get("port", DEFAULT_PORTS.get(kind, 5432)),
            "database": o.get("database", ""), "user": o.get("user", ""), "password": "", "url": "",
            "schema": o.get("schema", ""), "path": o.get("path", ""), "format": o.get("format", "csv"),
            "delimiter": o.get("delimiter", ","), "header": bool(o.get("header", True)),
            "aws_endpoint": o.get("aws_endpoint", ""), "aws_region": o.get("aws_region", ""),
            "aws_access_key_id": o.get("aws_access_key_id", ""), "aws_secret_access_key": "",
            "aws_allow_http": bool(o.get("aws_allow_http", False))}

    def data(self) -> dict[str, Any]:
        v = self.values
        kind = str(v["kind"])
        if kind == "sqlite":
            return {"type": "sqlite", "path": v["path"]}
        if kind == "files":
            data: dict[str, Any] = {"type": "files", "path": v["path"], "format": v["format"]}
            if v["format"] == "csv":
                data |= {"delimiter": v["delimiter"] or ",", "header": bool(v["header"])}
            for key in ("aws_endpoint", "aws_region", "aws_access_key_id", "aws_secret_access_key"):
                if v[key]:
                    data[key] = v[key]
            if v["aws_allow_http"]:
                data["aws_allow_http"] = True
            return data
        if v["entry"] == "string":
            data = {"type": kind, "url": v["url"]}
        else:
            data = {"type": kind, "host": v["host"], "port": int(v["port"] or 0) or None,
                    "database": v["database"] or None, "user": v["user"] or None, "password": v["password"]}
        if v["schema"]:
            data["schema"] = v["schema"]
        return {k: val for k, val in data.items() if val not in (None, "")}

    def _secret_label(self, label: str, key: str) -> str:
        return f"{label} ({KEEP})" if self.editing and key in self.secrets_set else label

    def render(self) -> None:
        v = self.values
        with ui.row().classes("gap-4 items-center"):
            name = ui.input("Connection name", placeholder="core_banking").bind_value(v, "name").props(
                "data-testid=edit-conn-name")
            if self.editing:
                name.props("readonly")
            ui.select(EDIT_KINDS, label="Kind", on_change=self._kind_changed).bind_value(v, "kind").classes(
                "w-72").props("data-testid=edit-conn-kind")
        databases = ("postgres", "mysql", "sqlserver")
        with ui.column().bind_visibility_from(v, "kind", backward=lambda k: k in databases).classes("gap-1"):
            ui.toggle({"fields": "Individual fields", "string": "Connection string"}).bind_value(v, "entry")
            with ui.column().bind_visibility_from(v, "entry", value="fields").classes("gap-1"):
                with ui.row().classes("gap-4"):
                    ui.input("Host").bind_value(v, "host").props("data-testid=edit-conn-host")
                    ui.number("Port", format="%d").bind_value(v, "port").props("data-testid=edit-conn-port")
                    ui.input("Database").bind_value(v, "database").props("data-testid=edit-conn-database")
                with ui.row().classes("gap-4"):
                    ui.input("User").bind_value(v, "user").props("data-testid=edit-conn-user")
                    ui.input(self._secret_label("Password", "password"), password=True,
                             password_toggle_button=True).bind_value(v, "password").classes("w-96").props(
                        "data-testid=edit-conn-password autocomplete=new-password")
            ui.input(self._secret_label("Connection string", "url"), password=True,
                     placeholder="postgresql://user:pass@host:5432/db").bind_value(v, "url").bind_visibility_from(
                v, "entry", value="string").classes("w-[560px]").props("autocomplete=off")
            ui.input("Schema (optional)").bind_value(v, "schema")
        with ui.column().bind_visibility_from(v, "kind", value="sqlite"):
            ui.input("Database file (under the project's data folders)").bind_value(v, "path").classes(
                "w-96").props("data-testid=edit-conn-sqlite-path")
        with ui.column().bind_visibility_from(v, "kind", value="files").classes("gap-1"):
            with ui.row().classes("gap-4 items-center"):
                ui.input("Folder or s3://bucket/prefix").bind_value(v, "path").classes("w-96").props(
                    "data-testid=edit-conn-path")
                ui.select(list(FILE_FORMATS), label="Format").bind_value(v, "format").classes("w-32").props(
                    "data-testid=edit-conn-format")
                ui.input("Delimiter").bind_value(v, "delimiter").bind_visibility_from(v, "format", value="csv").classes(
                    "w-24")
                ui.checkbox("Header row").bind_value(v, "header").bind_visibility_from(v, "format", value="csv")
            with ui.row().classes("gap-4 items-center"):
                ui.input("S3 endpoint (optional)").bind_value(v, "aws_endpoint")
                ui.input("Region").bind_value(v, "aws_region").classes("w-32")
                ui.input("Access key id").bind_value(v, "aws_access_key_id")
                ui.input(self._secret_label("Secret access key", "aws_secret_access_key"), password=True).bind_value(
                    v, "aws_secret_access_key").classes("w-80").props("autocomplete=new-password")
                ui.checkbox("Allow http").bind_value(v, "aws_allow_http")

    def _kind_changed(self, e: Any) -> None:
        self.values["port"] = DEFAULT_PORTS.get(str(e.value), self.values["port"])

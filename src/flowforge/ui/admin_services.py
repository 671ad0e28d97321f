"""What the Connections, Users, My account, SQL console and Catalog pages call: each function
acts as the signed-in ``UiUser`` (``services.acting``, the session checked again) and the service
behind it checks the role itself, exactly as for the API. No secret ever comes back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowforge.ui.services import UiUser, acting

if TYPE_CHECKING:
    from flowforge.core.catalog_docs import CatalogTable, SearchHit
    from flowforge.core.connections import ConnectionDetails
    from flowforge.core.sql_console import ConsoleResult, SchemaTable
    from flowforge.core.users import TokenInfo, User
    from flowforge.metadata.console import HistoryRecord


# -- connections --------------------------------------------------------------------------------
def connections(user: UiUser) -> tuple[list[ConnectionDetails], dict[str, list[tuple[str, str]]]]:
    """Every connection (no secrets) and, by name, the (workflow, job) pairs that use it."""
    with acting(user) as c:
        return c.connections.details(), c.connections.usage()


def editable_connection(user: UiUser, name: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    with acting(user) as c:
        return c.connections.editable(name)


def create_connection(user: UiUser, name: str, data: dict[str, Any]) -> None:
    with acting(user) as c:
        c.connections.create(name, data)


def update_connection(user: UiUser, name: str, data: dict[str, Any]) -> None:
    with acting(user) as c:
        c.connections.update(name, data)


def delete_connection(user: UiUser, name: str) -> None:
    with acting(user) as c:
        c.connections.remove(name)


def test_saved_connection(user: UiUser, name: str) -> str:
    with acting(user) as c:
        result = c.connections.test(name)
    return f"Connected ({result.server_version}, {result.latency_ms:.0f} ms)"


def test_new_connection(user: UiUser, name: str, data: dict[str, Any], editing: bool = False) -> str:
    """Test the form's values; an edit's empty secrets are taken from the stored connection."""
    with acting(user) as c:
        if editing:
            result = c.connections.check_update(name, data)
        else:
            result = c.connections.check(name or "new_connection", data)
    return f"Connected ({result.server_version}, {result.latency_ms:.0f} ms)"


# -- users and my account ------------------------------------------------------------------------
def users(user: UiUser) -> list[User]:
    with acting(user) as c:
        return c.users.list_users()


def create_user(user: UiUser, username: str, password: str, role: str) -> None:
    with acting(user) as c:
        c.users.create_user(username, password, role)  # type: ignore[arg-type]


def set_role(user: UiUser, username: str, role: str) -> None:
    with acting(user) as c:
        c.users.set_role(username, role)  # type: ignore[arg-type]


def set_disabled(user: UiUser, username: str, disabled: bool) -> None:
    with acting(user) as c:
        c.users.disable(username, disabled)


def reset_password(user: UiUser, username: str, password: str) -> None:
    with acting(user) as c:
        c.users.set_password(username, password)


def change_my_password(user: UiUser, current: str, new: str) -> None:
    with acting(user) as c:
        c.users.set_password(user.name, new, current=current)


def tokens(user: UiUser, username: str) -> list[TokenInfo]:
    with acting(user) as c:
        return c.users.list_tokens(username)


def create_token(user: UiUser, username: str, name: str) -> str:
    with acting(user) as c:
        return c.users.create_token(username, name)


def revoke_token(user: UiUser, username: str, token_id: int) -> None:
    with acting(user) as c:
        c.users.revoke_token(username, token_id)


# -- SQL console ----------------------------------------------------------------------------------
def run_query(user: UiUser, sql: str, limit: int) -> ConsoleResult:
    with acting(user) as c:
        return c.console.run(sql, limit)


def query_history(user: UiUser, limit: int = 50) -> list[HistoryRecord]:
    with acting(user) as c:
        return c.console.history(limit)


def clear_history(user: UiUser) -> int:
    with acting(user) as c:
        return c.console.clear_history()


def schema(user: UiUser) -> list[SchemaTable]:
    with acting(user) as c:
        return c.console.schema()


# -- catalog -----------------------------------------------------------------------------------------
def catalog_tables(user: UiUser) -> list[CatalogTable]:
    with acting(user) as c:
        return c.catalog.tables()


def catalog_table(user: UiUser, name: str) -> CatalogTable:
    with acting(user) as c:
        return c.catalog.table(name)


def catalog_search(user: UiUser, text: str) -> list[SearchHit]:
    with acting(user) as c:
        return c.catalog.search(text)


def describe_table(user: UiUser, name: str, description: str | None, comments: dict[str, str]) -> None:
    with acting(user) as c:
        c.catalog.describe(name, description, comments)

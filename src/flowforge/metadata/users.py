"""Users and API tokens in the metadata store. Hashes are made by ``flowforge.core.users``;
this module stores and finds them and never sees a password or a plaintext token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, RowMapping, func, insert, select, update

from flowforge.errors import ConflictError, NotFoundError
from flowforge.metadata import queries as q
from flowforge.metadata.generation import UNSHOWN
from flowforge.metadata.tables import api_tokens, users

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore

Role = Literal["admin", "editor", "viewer"]
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    role: Role
    created_at: datetime
    disabled: bool
    password_hash: str  # for verification only; never shown or returned by the API


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    user_id: int
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class UserStore:
    """Example::

        store.users.add("alice", "scrypt$...", "admin", actor="setup")
        store.users.get("alice").role  # 'admin'
    """

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def count(self) -> int:
        with self._store._read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def add(self, username: str, password_hash: str, role: Role, actor: str) -> UserRecord:
        q.check(role, Role, "role")
        with self._store._begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.username == username)).first():
                raise ConflictError(f"User '{username}' already exists.", hint="Pick another name.")
            conn.execute(insert(users).values(username=username, password_hash=password_hash, role=role,
                                              created_at=q.now(), disabled=False))
            q.write_audit(conn, actor, "user.create", "user", username, None, {"role": role})
            return self._one(conn, username)

    def get(self, username: str) -> UserRecord | None:
        with self._store._read() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return UserRecord(**row._mapping) if row else None

    def get_by_id(self, user_id: int) -> UserRecord | None:
        with self._store._read() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return UserRecord(**row._mapping) if row else None

    def all(self) -> list[UserRecord]:
        with self._store._read() as conn:
            return [UserRecord(**r._mapping) for r in conn.execute(select(users).order_by(users.c.username))]

    def change(self, username: str, actor: str, *, role: Role | None = None, disabled: bool | None = None,
               password_hash: str | None = None) -> UserRecord:
        values: dict[str, object] = {}
        if role is not None:
            q.check(role, Role, "role")
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self._store._begin() as conn:
            old = self._one(conn, username)
            if password_hash is not None:
                values["password_hash"] = password_hash
            if values:
                conn.execute(update(users).where(users.c.id == old.id).values(**values))
            public = {k: v for k, v in values.items() if k != "password_hash"}
            if password_hash is not None:
                public["password"] = "changed"
            q.write_audit(conn, actor, "user.update", "user", username,
                          {k: getattr(old, k) for k in public if k != "password"}, public)
            return self._one(conn, username)

    # -- tokens ----------------------------------------------------------------------------

    def add_token(self, username: str, name: str, token_hash: str, actor: str) -> TokenRecord:
        with self._store._begin() as conn:
            user = self._one(conn, username)
            token_id = conn.execute(insert(api_tokens).values(
                token_hash=token_hash, name=name, user_id=user.id, created_at=q.now(), revoked=False,
            ).returning(api_tokens.c.id)).scalar_one()
            q.write_audit(conn, actor, "token.create", "user", username, None, {"token": name, "id": token_id})
            return self._token(conn, token_id)

    def user_for_token(self, token_hash: str) -> UserRecord | None:
        """The user a live token belongs to; marks the token used (at most once a minute, so a busy
        client does not turn every read into a write)."""
        with self._store._read() as conn:
            row = conn.execute(select(api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == token_hash, api_tokens.c.revoked.is_(False))).first()
            if row is None:
                return None
            found = conn.execute(select(users).where(users.c.id == row.user_id)).first()
        now = q.now()
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            with self._store._begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
                             .execution_options(**{UNSHOWN: True}))  # no kept answer shows it
        return UserRecord(**found._mapping) if found else None

    def tokens(self, username: str) -> list[TokenRecord]:
        with self._store._begin() as conn:
            user = self._one(conn, username)
            rows = conn.execute(select(api_tokens).where(api_tokens.c.user_id == user.id)
                                .order_by(api_tokens.c.id)).all()
        return [_token_record(r._mapping) for r in rows]

    def revoke_token(self, username: str, token_id: int, actor: str) -> None:
        with self._store._begin() as conn:
            user = self._one(conn, username)
            result = conn.execute(update(api_tokens).where(api_tokens.c.id == token_id,
                                                           api_tokens.c.user_id == user.id).values(revoked=True))
            if result.rowcount == 0:
                raise NotFoundError(f"User '{username}' has no token {token_id}.")
            q.write_audit(conn, actor, "token.revoke", "user", username, None, {"id": token_id})

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _one(conn: Connection, username: str) -> UserRecord:
        row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"No user named '{username}'.", hint="List users with 'flowforge users list'.")
        return UserRecord(**row._mapping)

    @staticmethod
    def _token(conn: Connection, token_id: int) -> TokenRecord:
        return _token_record(conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()._mapping)


def _token_record(row: RowMapping) -> TokenRecord:
    data = dict(row)
    data.pop("token_hash", None)
    return TokenRecord(**data)

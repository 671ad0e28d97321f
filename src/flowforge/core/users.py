"""Users, roles, API tokens and UI sessions.

Passwords are hashed with scrypt (stdlib) and salted; API tokens are 32 random bytes shown
once and stored as their sha256; UI sessions are cookies signed with HMAC-SHA256 under a
server secret kept 0600 in ``.flowforge/session.key``. There is no default user or password.

Example::

    ctx.users.create_user("alice", "a long passphrase", role="admin", actor="setup")
    token = ctx.users.create_token("alice", "ci")     # printed once
    ctx.users.verify_token(token).role                 # 'admin'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from flowforge.errors import AccessDenied, ConfigError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata.users import Role, TokenRecord, UserRecord

ROLES: Final = ("viewer", "editor", "admin")  # each may do what the ones before it may
SESSION_COOKIE: Final = "flowforge_session"
SESSION_SECONDS: Final = 12 * 3600
SESSION_KEY_FILE: Final = "session.key"
MIN_PASSWORD: Final = 8
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    """A user as callers see it: no password hash."""

    id: int
    username: str
    role: Role
    created_at: datetime
    disabled: bool

    def can(self, role: Role) -> bool:
        """True when this user's role includes ``role`` (admin > editor > viewer)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got, _unb64(digest))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- users ---------------------------------------------------------------------------------
    def has_users(self) -> bool:
        return self.ctx.metadata.users.count() > 0

    def create_user(self, username: str, password: str, role: Role = "viewer", actor: str | None = None) -> User:
        if not _USERNAME.match(username):
            raise ConfigError(f"'{username}' is not a valid user name.",
                              hint="Use letters, digits and . _ - @ (at most 64).")
        _check_role(role)
        _check_password(password)
        rec = self.ctx.metadata.users.add(username, hash_password(password), role, actor or self.ctx.settings.actor)
        return _public(rec)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is right and the account enabled, else None."""
        rec = self.ctx.metadata.users.get(username)
        if rec is None:
            check_password(password, _DUMMY_HASH)  # same work either way: no user-name probing by timing
            return None
        if not check_password(password, rec.password_hash) or rec.disabled:
            return None
        return _public(rec)

    def get(self, username: str) -> User:
        from flowforge.errors import NotFoundError

        rec = self.ctx.metadata.users.get(username)
        if rec is None:
            raise NotFoundError(f"No user named '{username}'.")
        return _public(rec)

    def list_users(self) -> list[User]:
        return [_public(r) for r in self.ctx.metadata.users.all()]

    def set_role(self, username: str, role: Role, actor: str | None = None) -> User:
        _check_role(role)
        return _public(self.ctx.metadata.users.change(username, actor or self.ctx.settings.actor, role=role))

    def disable(self, username: str, actor: str | None = None, disabled: bool = True) -> User:
        return _public(self.ctx.metadata.users.change(username, actor or self.ctx.settings.actor, disabled=disabled))

    def set_password(self, username: str, password: str, actor: str | None = None) -> User:
        _check_password(password)
        return _public(self.ctx.metadata.users.change(username, actor or self.ctx.settings.actor,
                                                      password_hash=hash_password(password)))

    # -- API tokens ----------------------------------------------------------------------------
    def create_token(self, username: str, name: str = "api", actor: str | None = None) -> str:
        """A new token for ``username``; the only time it is ever available in clear."""
        token = "ff_" + secrets.token_urlsafe(32)
        self.ctx.metadata.users.add_token(username, name, token_hash(token), actor or self.ctx.settings.actor)
        return token

    def verify_token(self, token: str) -> User | None:
        rec = self.ctx.metadata.users.user_for_token(token_hash(token))
        return None if rec is None or rec.disabled else _public(rec)

    def list_tokens(self, username: str) -> list[TokenInfo]:
        return [_token(t) for t in self.ctx.metadata.users.tokens(username)]

    def revoke_token(self, username: str, token_id: int, actor: str | None = None) -> None:
        self.ctx.metadata.users.revoke_token(username, token_id, actor or self.ctx.settings.actor)

    # -- UI sessions -----------------------------------------------------------------------------
    def issue_session(self, user: User, seconds: int = SESSION_SECONDS) -> str:
        """A signed cookie value naming the user and its expiry."""
        body = _b64(json.dumps({"u": user.id, "exp": int(time.time()) + seconds,
                                "n": secrets.token_hex(4)}).encode())
        return f"{body}.{self._sign(body)}"

    def verify_session(self, cookie: str) -> User | None:
        """The user of a valid, unexpired session cookie whose account is still enabled."""
        body, _, sig = cookie.partition(".")
        if not body or not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            user_id, expires = int(data["u"]), int(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time():
            return None
        rec = self.ctx.metadata.users.get_by_id(user_id)
        return None if rec is None or rec.disabled else _public(rec)

    def require(self, user: User | None, role: Role) -> User:
        if user is None:
            raise AccessDenied("Sign in or send an API token.")
        if not user.can(role):
            raise AccessDenied(f"User '{user.username}' ({user.role}) may not do this; it needs the {role} role.")
        return user

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret(), body.encode(), hashlib.sha256).digest())

    def _secret(self) -> bytes:
        cached: bytes | None = self.__dict__.get("_session_secret")
        if cached is not None:
            return cached
        path = self.ctx.settings.state_dir / SESSION_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        secret = bytes.fromhex(path.read_text().strip())
        self.__dict__["_session_secret"] = secret
        return secret


# A well-formed hash no password matches, checked when the user does not exist.
_DUMMY_HASH: Final = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${'A' * 22}${'A' * 43}"


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"Unknown role '{role}'.", hint=f"Roles: {', '.join(ROLES)}.")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"The password is too short (at least {MIN_PASSWORD} characters).")


def _public(rec: UserRecord) -> User:
    return User(rec.id, rec.username, rec.role, rec.created_at, rec.disabled)


def _token(rec: TokenRecord) -> TokenInfo:
    return TokenInfo(rec.id, rec.name, rec.created_at, rec.last_used_at, rec.revoked)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

"""Users, roles, API tokens and UI sessions.

Passwords are hashed with scrypt (stdlib) and salted; API tokens are 32 random bytes shown
once and stored as their sha256; UI sessions are server-side rows keyed by the sha256 of a
random cookie value, ended by sign-out, a password change, a disabled account, an idle limit or
an absolute one. Sign-in failures are throttled per user name and per client address, with
growing lock-outs. There is no default user or password.

Example::

    ctx.users.create_user("alice", "a long passphrase", role="admin")   # ctx acting as an admin
    token = ctx.users.create_token("alice", "ci")     # printed once
    ctx.users.verify_token(token).role                 # 'admin'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from flowforge.errors import AccessDenied, ConfigError, ConflictError, NotSignedIn, TooManyAttempts

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata.users import Role, TokenRecord, UserRecord

ROLES: Final = ("viewer", "editor", "admin")  # each may do what the ones before it may
SESSION_COOKIE: Final = "flowforge_session"
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
    session_id: int | None = None  # the session this user signed in with (None for tokens)
    local: bool = False  # the command line's own user, not an account in the store

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
    """Every method checks the acting user (``ctx.principal``) itself: admins manage users; anyone
    signed in manages their own password and tokens."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- users ---------------------------------------------------------------------------------
    def has_users(self) -> bool:
        return self.ctx.metadata.users.count() > 0

    def create_user(self, username: str, password: str, role: Role = "viewer") -> User:
        actor = self.ctx.require("admin")
        if not _USERNAME.match(username):
            raise ConfigError(f"'{username}' is not a valid user name.",
                              hint="Use letters, digits and . _ - @ (at most 64).")
        _check_role(role)
        _check_password(password)
        rec = self.ctx.metadata.users.add(username, hash_password(password), role, actor.username)
        return _public(rec)

    def get(self, username: str) -> User:
        from flowforge.errors import NotFoundError

        self._self_or_admin(username)
        rec = self.ctx.metadata.users.get(username)
        if rec is None:
            raise NotFoundError(f"No user named '{username}'.")
        return _public(rec)

    def list_users(self) -> list[User]:
        self.ctx.require("admin")
        return [_public(r) for r in self.ctx.metadata.users.all()]

    def set_role(self, username: str, role: Role) -> User:
        actor = self.ctx.require("admin")
        _check_role(role)
        if role != "admin":
            self._keep_an_admin(username)
        return _public(self.ctx.metadata.users.change(username, actor.username, role=role))

    def disable(self, username: str, disabled: bool = True) -> User:
        """Disable (or enable again) an account; its open sessions end at once."""
        actor = self.ctx.require("admin")
        if disabled:
            self._keep_an_admin(username)
        rec = self.ctx.metadata.users.change(username, actor.username, disabled=disabled)
        if disabled:
            self.ctx.metadata.sessions.end_all(rec.id, "account disabled")
        return _public(rec)

    def set_password(self, username: str, password: str, current: str | None = None) -> User:
        """An admin resets anyone's password; a user changes their own, giving the current one.
        Every session of that user ends, except the one making the change."""
        actor = self._self_or_admin(username)
        own = actor.username == username
        if own and not actor.local:
            stored = self.ctx.metadata.users.get(username)
            if current is None or stored is None or not check_password(current, stored.password_hash):
                raise AccessDenied("The current password is wrong.", hint="Give your current password to change it.")
        _check_password(password)
        rec = self.ctx.metadata.users.change(username, actor.username, password_hash=hash_password(password))
        self.ctx.metadata.sessions.end_all(rec.id, "password changed", keep=actor.session_id if own else None)
        self.ctx.metadata.sessions.clear(f"user:{username}")  # a reset lifts a lock-out
        return _public(rec)

    # -- API tokens ----------------------------------------------------------------------------
    def create_token(self, username: str, name: str = "api") -> str:
        """A new token for ``username``; the only time it is ever available in clear."""
        actor = self._self_or_admin(username)
        token = "ff_" + secrets.token_urlsafe(32)
        self.ctx.metadata.users.add_token(username, name, token_hash(token), actor.username)
        return token

    def list_tokens(self, username: str) -> list[TokenInfo]:
        self._self_or_admin(username)
        return [_token(t) for t in self.ctx.metadata.users.tokens(username)]

    def revoke_token(self, username: str, token_id: int) -> None:
        actor = self._self_or_admin(username)
        self.ctx.metadata.users.revoke_token(username, token_id, actor.username)

    # -- signing in (no signed-in user needed) --------------------------------------------------
    def authenticate(self, username: str, password: str, client: str | None = None) -> User:
        """The user when the password is right and the account enabled; else NotSignedIn, or
        TooManyAttempts while the user name or the client address is locked out after failures.
        Every failure is in the audit log."""
        store = self.ctx.metadata.sessions
        keys = [f"user:{username[:64]}", *([f"client:{client}"] if client else [])]
        locked = store.locked_until(keys)
        if locked is not None:
            self._audit_failure(username, client, "locked out")
            raise _too_many(locked)
        rec = self.ctx.metadata.users.get(username)
        ok = check_password(password, rec.password_hash if rec else _DUMMY_HASH)  # same work either way
        if rec is not None and ok and not rec.disabled:
            store.clear(keys[0])
            return _public(rec)
        self._audit_failure(username, client, "disabled" if rec is not None and ok else "wrong user or password")
        until = None
        for key in keys:
            free = CLIENT_FREE_FAILURES if key.startswith("client:") else USER_FREE_FAILURES
            _, locked_key = store.fail(key, FAILURES_FORGOTTEN_AFTER, lambda n, f=free: _lockout(n, f))
            until = max(filter(None, (until, locked_key)), default=None)
        if until is not None:
            raise _too_many(until)
        raise NotSignedIn("Wrong user name or password.")

    def verify_token(self, token: str) -> User | None:
        rec = self.ctx.metadata.users.user_for_token(token_hash(token))
        return None if rec is None or rec.disabled else _public(rec)

    def issue_session(self, user: User) -> str:
        """A new server-side session for ``user``; returns the cookie value (shown only to the browser)."""
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(hours=self.ctx.settings.session_max_hours)
        self.ctx.metadata.sessions.create(user.id, token_hash(token), lifetime)
        return token

    def verify_session(self, cookie: str, touch: bool = True) -> User | None:
        """The user of a live session (not ended, within its idle and absolute limits, account enabled);
        ``touch=False`` checks without counting as activity."""
        if not cookie or len(cookie) > 200:
            return None
        found = self.ctx.metadata.sessions.user_for(token_hash(cookie),
                                                      timedelta(minutes=self.ctx.settings.session_idle_minutes), touch)
        if found is None:
            return None
        rec, info = found
        return _public(rec, session_id=info.id)

    def end_session(self, cookie: str) -> bool:
        """Sign out: the session ends for every page and process at once."""
        return bool(cookie) and self.ctx.metadata.sessions.end(token_hash(cookie), "signed out")

    # -- plumbing --------------------------------------------------------------------------------
    def _self_or_admin(self, username: str) -> User:
        actor = self.ctx.require("viewer")
        if actor.username != username and not actor.can("admin"):
            raise AccessDenied(f"User '{actor.username}' may manage only their own account; this needs the "
                               "admin role.")
        return actor

    def _keep_an_admin(self, username: str) -> None:
        admins = [u for u in self.ctx.metadata.users.all() if u.role == "admin" and not u.disabled]
        if [u.username for u in admins] == [username]:
            raise ConflictError(f"'{username}' is the only enabled admin.",
                                hint="Make another user admin first, so someone can still manage users.")

    def _audit_failure(self, username: str, client: str | None, why: str) -> None:
        shown = username if _USERNAME.match(username) else "(invalid user name)"
        self.ctx.metadata.audit(shown, "auth.login_failed", "user", shown, None,
                                {"reason": why, "client": client or "unknown"})


# Sign-in throttling: the first failures are free, then each further one locks the user name (or
# the client address, which gets more room for shared NAT) for twice as long, up to 15 minutes.
USER_FREE_FAILURES: Final = 4
CLIENT_FREE_FAILURES: Final = 20
MAX_LOCKOUT: Final = timedelta(minutes=15)
FAILURES_FORGOTTEN_AFTER: Final = timedelta(hours=1)


def _lockout(failures: int, free: int) -> timedelta | None:
    if failures <= free:
        return None
    return min(timedelta(seconds=2 ** min(failures - free, 20)), MAX_LOCKOUT)


def _too_many(until: datetime) -> TooManyAttempts:
    wait = max(1, int((until - datetime.now(UTC)).total_seconds() + 0.999))
    return TooManyAttempts(f"Too many failed sign-ins; try again in {wait} s.", retry_after=wait,
                           hint="An admin can reset the password with 'flowforge users passwd'.")


def local_user(name: str) -> User:
    """The person at the project's command line: they hold its files and keys, so they act as admin."""
    return User(0, name, "admin", datetime.now(UTC), False, local=True)


# A well-formed hash no password matches, checked when the user does not exist.
_DUMMY_HASH: Final = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${'A' * 22}${'A' * 43}"


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"Unknown role '{role}'.", hint=f"Roles: {', '.join(ROLES)}.")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"The password is too short (at least {MIN_PASSWORD} characters).")


def _public(rec: UserRecord, session_id: int | None = None) -> User:
    return User(rec.id, rec.username, rec.role, rec.created_at, rec.disabled, session_id)


def _token(rec: TokenRecord) -> TokenInfo:
    return TokenInfo(rec.id, rec.name, rec.created_at, rec.last_used_at, rec.revoked)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

"""Server-side sessions and failed-login counters in the metadata store.

A session row is keyed by the sha256 of the cookie's random value; ending a row (logout, a
password change, a disabled account, a timeout) makes the cookie worthless at once, in every
server process that shares the metadata store. Hashes are made by ``flowforge.core.users``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from flowforge.metadata import queries as q
from flowforge.metadata.generation import UNSHOWN
from flowforge.metadata.tables import login_failures, sessions, users
from flowforge.metadata.users import UserRecord

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore

_TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class SessionStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- sessions ---------------------------------------------------------------------------
    def create(self, user_id: int, token_hash: str, lifetime: timedelta) -> SessionInfo:
        now = q.now()
        with self._store._begin() as conn:
            sid = conn.execute(insert(sessions).values(
                token_hash=token_hash, user_id=user_id, created_at=now, last_seen_at=now,
                expires_at=now + lifetime).returning(sessions.c.id)).scalar_one()
            # ended and expired rows are kept a day for the record, then dropped
            conn.execute(delete(sessions).where(sessions.c.expires_at < now - timedelta(days=1)))
        return SessionInfo(sid, user_id, now, now, now + lifetime)

    def user_for(self, token_hash: str, idle: timedelta, touch: bool = True) -> tuple[UserRecord, SessionInfo] | None:
        """The enabled user of a live session (not ended, not past its absolute or idle limit);
        with ``touch``, marks it seen (at most every 30 s, so a busy page does not turn reads into
        writes). A page polling whether it is still signed in does not touch: idling still ends it."""
        now = q.now()
        # Checked in a read-only transaction; the rare write (ending or touching it) goes apart.
        with self._store._read() as conn:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == token_hash,
                                                      sessions.c.ended_at.is_(None))).first()
            if row is None:
                return None
            found = conn.execute(select(users).where(users.c.id == row.user_id)).first()
        why = ("expired" if row.expires_at <= now else
               "idle timeout" if row.last_seen_at + idle <= now else None)
        if why is None and (found is None or found.disabled):
            why = "disabled"
        if why is not None:
            with self._store._begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id == row.id, sessions.c.ended_at.is_(None))
                             .values(ended_at=now, ended_why=why))
            return None
        if touch and now - row.last_seen_at > _TOUCH_EVERY:
            with self._store._begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id == row.id).values(last_seen_at=now)
                             .execution_options(**{UNSHOWN: True}))  # no kept answer shows it
        assert found is not None
        info = SessionInfo(row.id, row.user_id, row.created_at, now if touch else row.last_seen_at, row.expires_at)
        return UserRecord(**found._mapping), info

    def end(self, token_hash: str, why: str) -> bool:
        with self._store._begin() as conn:
            result = conn.execute(update(sessions).where(sessions.c.token_hash == token_hash,
                                                         sessions.c.ended_at.is_(None))
                                  .values(ended_at=q.now(), ended_why=why))
        return bool(result.rowcount)

    def end_all(self, user_id: int, why: str, keep: int | None = None) -> int:
        """End every open session of a user (but session ``keep``); how many were open."""
        where = [sessions.c.user_id == user_id, sessions.c.ended_at.is_(None)]
        if keep is not None:
            where.append(sessions.c.id != keep)
        with self._store._begin() as conn:
            result = conn.execute(update(sessions).where(*where).values(ended_at=q.now(), ended_why=why))
        return int(result.rowcount)

    def open_count(self, user_id: int) -> int:
        now = q.now()
        with self._store._read() as conn:
            rows = conn.execute(select(sessions.c.id).where(sessions.c.user_id == user_id,
                                                            sessions.c.ended_at.is_(None),
                                                            sessions.c.expires_at > now)).all()
        return len(rows)

    # -- failed logins ------------------------------------------------------------------------
    def locked_until(self, keys: list[str]) -> datetime | None:
        """The latest lock-out end among ``keys`` that is still in the future."""
        now = q.now()
        with self._store._read() as conn:
            rows = conn.execute(select(login_failures.c.locked_until).where(
                login_failures.c.key.in_(keys), login_failures.c.locked_until > now)).all()
        return max((r.locked_until for r in rows), default=None)

    def fail(self, key: str, forget_after: timedelta, lock_for: object) -> tuple[int, datetime | None]:
        """Count one more failure for ``key`` (starting over after ``forget_after`` without one);
        ``lock_for(failures)`` gives the lock-out as a timedelta or None. Returns (failures, locked until)."""
        now = q.now()
        with self._store._begin() as conn:
            row = conn.execute(select(login_failures).where(login_failures.c.key == key)).first()
            failures = 1 if row is None or now - row.last_at > forget_after else row.failures + 1
            lock = lock_for(failures)  # type: ignore[operator]
            until = now + lock if lock else None
            values = {"failures": failures, "last_at": now, "locked_until": until}
            if row is None:
                conn.execute(insert(login_failures).values(key=key, **values))
            else:
                conn.execute(update(login_failures).where(login_failures.c.key == key).values(**values))
        return failures, until

    def clear(self, key: str) -> None:
        with self._store._begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key == key))

"""Alert channels (secrets arrive already encrypted) and the alerts sent for each run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowforge.metadata import queries as q
from flowforge.metadata.tables import alert_channels, run_alerts

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    id: int
    name: str
    kind: str
    options: dict[str, Any]
    secret: str | None  # Fernet token; never shown
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class RunAlertRecord:
    id: int
    run_id: int
    channel: str
    event: str
    status: str  # sending | sent | failed
    detail: str | None
    at: datetime


class AlertStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- channels ------------------------------------------------------------------------------------
    def save_channel(self, name: str, kind: str, options: dict[str, Any], secret: str | None,
                     actor: str) -> ChannelRecord:
        """Insert or replace; the audit row records the options only, never the secret."""
        with self._store._begin() as conn:
            old = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).first()
            now = q.now()
            values = {"kind": kind, "options": q.jsonable(options), "secret": secret, "updated_at": now,
                      "updated_by": actor}
            if old is None:
                conn.execute(insert(alert_channels).values(name=name, created_at=now, **values))
            else:
                conn.execute(update(alert_channels).where(alert_channels.c.name == name).values(**values))
            q.write_audit(conn, actor, "alert_channel.update" if old else "alert_channel.create", "alert_channel",
                          name, {"kind": old.kind, "options": old.options} if old else None,
                          {"kind": kind, "options": options})
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).one()
        return ChannelRecord(**row._mapping)

    def get_channel(self, name: str) -> ChannelRecord | None:
        with self._store._begin() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).first()
        return None if row is None else ChannelRecord(**row._mapping)

    def list_channels(self) -> list[ChannelRecord]:
        with self._store._begin() as conn:
            rows = conn.execute(select(alert_channels).order_by(alert_channels.c.name)).all()
        return [ChannelRecord(**row._mapping) for row in rows]

    def delete_channel(self, name: str, actor: str) -> bool:
        with self._store._begin() as conn:
            old = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).first()
            if old is None:
                return False
            conn.execute(delete(alert_channels).where(alert_channels.c.name == name))
            q.write_audit(conn, actor, "alert_channel.delete", "alert_channel", name,
                          {"kind": old.kind, "options": old.options}, None)
        return True

    def reencrypt(self, rotate: Any) -> int:
        """Replace every channel secret with ``rotate(token)`` (key rotation)."""
        with self._store._begin() as conn:
            rows = conn.execute(select(alert_channels.c.name, alert_channels.c.secret)).all()
            for name, token in rows:
                if token:
                    conn.execute(update(alert_channels).where(alert_channels.c.name == name)
                                 .values(secret=rotate(token)))
        return sum(1 for _, token in rows if token)

    # -- alerts of runs ------------------------------------------------------------------------------
    def claim(self, run_id: int, channel: str, event: str) -> bool:
        """Reserve the one alert of (run, channel, event); False when it was already sent or is being sent."""
        try:
            with self._store._begin() as conn:
                conn.execute(insert(run_alerts).values(run_id=run_id, channel=channel, event=event,
                                                       status="sending", at=q.now()))
        except IntegrityError:
            return False
        return True

    def record(self, run_id: int, channel: str, event: str, status: str, detail: str | None) -> None:
        with self._store._begin() as conn:
            conn.execute(update(run_alerts).where(run_alerts.c.run_id == run_id, run_alerts.c.channel == channel,
                                                  run_alerts.c.event == event)
                         .values(status=status, detail=detail, at=q.now()))

    def for_run(self, run_id: int) -> list[RunAlertRecord]:
        with self._store._begin() as conn:
            rows = conn.execute(select(run_alerts).where(run_alerts.c.run_id == run_id)
                                .order_by(run_alerts.c.id)).all()
        return [RunAlertRecord(**row._mapping) for row in rows]

"""Leases in the metadata store, and the liveness and cancel flags of runs.

A lease is a row: ``workflow:<name>`` (one run at a time) or ``table:<name>`` (one writer per
table). Its holder renews it with heartbeats; a lease past ``expires_at`` (or whose holder is known
dead on this host) is taken over by the next one who asks, counted in ``takeovers``. Taking over a
workflow lease marks the dead holder's run ``failed`` with reason ``abandoned``. All of it happens
in one transaction per call: rows locked with ``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite, so two processes never both think they hold one lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from flowforge.metadata import queries as q
from flowforge.metadata.generation import UNSHOWN
from flowforge.metadata.tables import job_runs, leases, runs

if TYPE_CHECKING:
    from flowforge.metadata.records import JobRunRecord
    from flowforge.metadata.store import MetadataStore

IsDead = Callable[[str | None], bool]
LIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    name: str
    holder: str | None
    run_id: int | None
    job_name: str | None
    acquired_at: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    takeovers: int


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    acquired: bool
    blocker: LeaseRecord | None = None  # who holds it, when not acquired
    took_over: tuple[LeaseRecord, ...] = ()  # dead holders replaced (their state before)


class LeaseStore:
    """Example::

        grant = store.leases.acquire(["workflow:daily"], holder, timeout=60, run_id=7, is_dead=is_dead)
        store.leases.renew(holder, ["workflow:daily"], [7], timeout=60)
        store.leases.release(["workflow:daily"], holder)
    """

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- leases ------------------------------------------------------------------------------------
    def acquire(self, names: Sequence[str], holder: str, *, timeout: float, is_dead: IsDead,
                run_id: int | None = None, job: str | None = None, abandon: bool = False,
                now: datetime | None = None) -> LeaseGrant:
        """All of ``names`` or none. A lease already held by ``holder`` is renewed (re-entrant)."""
        now = now or q.now()
        wanted = sorted(set(names))
        with self._store._begin() as conn:
            _ensure_rows(conn, wanted)
            rows = conn.execute(select(leases).where(leases.c.name.in_(wanted)).order_by(leases.c.name)
                                .with_for_update()).all()
            current = [LeaseRecord(**row._mapping) for row in rows]
            took: list[LeaseRecord] = []
            for lease in current:
                if lease.holder is None or lease.holder == holder:
                    continue
                if (lease.expires_at is not None and lease.expires_at <= now) or is_dead(lease.holder):
                    took.append(lease)
                    continue
                return LeaseGrant(False, blocker=lease)
            expires = now + timedelta(seconds=timeout)
            for lease in current:
                values: dict[str, Any] = {"holder": holder, "run_id": run_id, "job_name": job, "heartbeat_at": now,
                                          "expires_at": expires}
                if lease.holder != holder:
                    values["acquired_at"] = now
                if lease in took:
                    values["takeovers"] = leases.c.takeovers + 1
                conn.execute(update(leases).where(leases.c.name == lease.name).values(**values))
            if abandon:
                for lease in took:
                    if lease.run_id is not None:
                        abandon_run(conn, lease.run_id, lease.heartbeat_at, lease.holder, now)
            return LeaseGrant(True, took_over=tuple(took))

    def renew(self, holder: str, names: Iterable[str], run_ids: Iterable[int], *, timeout: float,
              now: datetime | None = None) -> set[str]:
        """Heartbeat: extend ``holder``'s leases and runs; returns the names it no longer holds."""
        now = now or q.now()
        names, run_ids = sorted(set(names)), sorted(set(run_ids))
        expires = now + timedelta(seconds=timeout)
        with self._store._begin() as conn:
            if names:
                conn.execute(update(leases).where(leases.c.name.in_(names), leases.c.holder == holder)
                             .values(heartbeat_at=now, expires_at=expires).execution_options(**{UNSHOWN: True}))
                held = set(conn.execute(select(leases.c.name).where(leases.c.name.in_(names),
                                                                    leases.c.holder == holder)).scalars())
            else:
                held = set()
            if run_ids:  # only a live run's own pages show a heartbeat, and those are never kept
                conn.execute(update(runs).where(runs.c.id.in_(run_ids), runs.c.status.in_(LIVE))
                             .values(heartbeat_at=now, expires_at=expires).execution_options(**{UNSHOWN: True}))
        return set(names) - held

    def release(self, names: Iterable[str], holder: str) -> None:
        names = sorted(set(names))
        if not names:
            return
        with self._store._begin() as conn:
            conn.execute(update(leases).where(leases.c.name.in_(names), leases.c.holder == holder)
                         .values(holder=None, run_id=None, job_name=None, expires_at=None))

    def bind(self, name: str, holder: str, run_id: int) -> None:
        """Record which run a held lease is for (a takeover abandons that run)."""
        with self._store._begin() as conn:
            conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder).values(run_id=run_id))

    def get(self, name: str) -> LeaseRecord | None:
        with self._store._begin() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).first()
        return None if row is None else LeaseRecord(**row._mapping)

    def held(self, prefix: str = "") -> list[LeaseRecord]:
        """Leases someone holds now (maybe expired), by name."""
        query = select(leases).where(leases.c.holder.is_not(None)).order_by(leases.c.name)
        if prefix:
            query = query.where(leases.c.name.startswith(prefix, autoescape=True))
        with self._store._begin() as conn:
            return [LeaseRecord(**row._mapping) for row in conn.execute(query)]

    def takeovers(self) -> int:
        with self._store._begin() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(leases.c.takeovers), 0))).scalar_one())

    # -- runs: liveness, cancel, status ------------------------------------------------------------
    def reap(self, is_dead: IsDead, now: datetime | None = None) -> list[int]:
        """Mark every queued or running run whose process is gone ``failed`` (``abandoned``): its lease
        expired, its process is known dead on this host, or it predates run owners. Returns their ids."""
        now = now or q.now()
        done: list[int] = []
        live = select(runs.c.id, runs.c.owner, runs.c.heartbeat_at, runs.c.expires_at).where(runs.c.status.in_(LIVE))

        def dead(owner: str | None, expires: datetime | None) -> bool:
            return owner is None or (expires is not None and expires <= now) or is_dead(owner)

        # Looked at without a write lock first (every run listing calls this): most calls find nothing to do.
        with self._store._read() as conn:
            if not any(dead(owner, expires) for _, owner, _, expires in conn.execute(live)):
                return done
        with self._store._begin() as conn:
            rows = conn.execute(live).all()
            for run_id, owner, seen, expires in rows:
                if dead(owner, expires) and abandon_run(conn, run_id, seen, owner, now):
                    done.append(run_id)
        return done

    def any_live(self) -> bool:
        """True while some run is queued or running (one index lookup)."""
        with self._store._read() as conn:
            return conn.execute(select(runs.c.id).where(runs.c.status.in_(LIVE)).limit(1)).first() is not None

    def request_cancel(self, run_id: int, actor: str) -> bool:
        """Ask the run to stop at its next safe point; False when it is not queued or running."""
        with self._store._begin() as conn:
            result = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.in_(LIVE))
                                  .values(cancel_requested=True))
            if result.rowcount:
                q.write_audit(conn, actor, "run.cancel", "run", str(run_id), None, {"cancel_requested": True})
            return bool(result.rowcount)

    def run_flags(self, run_id: int) -> tuple[str, bool]:
        """(status, cancel requested) of a run, cheaply."""
        with self._store._begin() as conn:
            row = conn.execute(select(runs.c.status, runs.c.cancel_requested).where(runs.c.id == run_id)).first()
        if row is None:
            raise q.unknown_run(run_id)
        return str(row[0]), bool(row[1])

    def set_running(self, run_id: int) -> bool:
        """queued → running once the workflow's lease is held."""
        with self._store._begin() as conn:
            return bool(conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == "queued")
                                     .values(status="running", started_at=q.now())).rowcount)

    # -- job runs: worker hand-over and live logs ---------------------------------------------------
    def job_run_for(self, run_id: int, job_name: str) -> tuple[int, str, str | None] | None:
        """(id, status, worker) of the newest job run of ``job_name`` in the run."""
        with self._store._begin() as conn:
            row = conn.execute(select(job_runs.c.id, job_runs.c.status, job_runs.c.worker)
                               .where(job_runs.c.run_id == run_id, job_runs.c.job_name == job_name)
                               .order_by(job_runs.c.id.desc()).limit(1)).first()
        return None if row is None else (int(row[0]), str(row[1]), row[2])

    def job_run(self, job_run_id: int) -> JobRunRecord | None:
        with self._store._begin() as conn:
            found = q.load_job_runs(conn, job_runs.c.id == job_run_id)
        return found[0] if found else None

    def skip_if_queued(self, job_run_id: int, reason: str) -> bool:
        """A queued job run no worker has started yet is skipped (its run stopped)."""
        with self._store._begin() as conn:
            return bool(conn.execute(update(job_runs).where(job_runs.c.id == job_run_id, job_runs.c.status == "queued")
                                     .values(status="skipped", ended_at=q.now(), error=reason)).rowcount)

    def start_job_run(self, job_run_id: int, worker: str, note: str | None = None) -> None:
        """A queued (or abandoned-by-its-worker) job run starts on ``worker``."""
        with self._store._begin() as conn:
            conn.execute(update(job_runs).where(job_runs.c.id == job_run_id)
                         .values(status="running", worker=worker, started_at=q.now(), log=note))

    def write_log(self, job_run_id: int, text: str) -> None:
        """The job's log so far, while it runs (the UI shows it live)."""
        with self._store._begin() as conn:
            conn.execute(update(job_runs).where(job_runs.c.id == job_run_id, job_runs.c.status == "running")
                         .values(log=text))


def abandon_run(conn: Connection, run_id: int, last_seen: datetime | None, owner: str | None,
                now: datetime) -> bool:
    """``failed`` with reason ``abandoned``, naming the process and when it was last seen; its
    unfinished job runs fail (running) or are skipped (queued) with it."""
    from flowforge.runner.owner import worker_label

    if last_seen is None:
        last_seen = conn.execute(
            select(func.max(func.coalesce(job_runs.c.ended_at, job_runs.c.started_at)))
            .where(job_runs.c.run_id == run_id)).scalar() or conn.execute(
            select(runs.c.started_at).where(runs.c.id == run_id)).scalar()
    when = f"{last_seen:%Y-%m-%d %H:%M:%S} UTC" if last_seen else "unknown"
    who = f"its process ({worker_label(owner)}) stopped" if owner else \
        "it was started by a FlowForge version that did not record run owners"
    message = f"abandoned: {who}; last seen at {when}"
    result = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.in_(LIVE)).values(
        status="failed", reason="abandoned", ended_at=now, error=message, heartbeat_at=last_seen))
    if not result.rowcount:
        return False
    conn.execute(update(job_runs).where(job_runs.c.run_id == run_id, job_runs.c.status == "running")
                 .values(status="failed", ended_at=now, error=message))
    conn.execute(update(job_runs).where(job_runs.c.run_id == run_id, job_runs.c.status == "queued")
                 .values(status="skipped", ended_at=now, error="run abandoned"))
    q.write_audit(conn, "flowforge", "run.abandoned", "run", str(run_id), None,
                  {"last_seen": when, "owner": worker_label(owner) if owner else None})
    return True


def _ensure_rows(conn: Connection, names: list[str]) -> None:
    dialect_insert = q.dialect_insert(conn)
    stmt = dialect_insert(leases).values([{"name": n, "takeovers": 0} for n in names])
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))

"""Trigger cursors and fires: how schedulers agree on what fired.

Each trigger of a workflow has a cursor row (``trigger_state``): how far it has fired. A scheduler
advances it with compare-and-set on ``version`` and, in the same transaction, inserts the fire it
claims; ``fires`` is unique on (workflow, trigger, slot), so two schedulers (processes or machines on
one PostgreSQL store) never fire a slot twice: the loser's transaction changes nothing. A claimed
fire is ``pending`` until a scheduler takes it to start the run (``started``, with the run id), or
ends ``skipped``/``refused`` (busy workflow, paused, invalid). Backfills are pending fires anyone
may take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from flowforge.metadata import queries as q
from flowforge.metadata.tables import fires, job_runs, runs, trigger_state, workflows

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore


@dataclass(frozen=True, slots=True)
class TriggerState:
    workflow_id: int
    trigger_key: str
    kind: str
    armed_at: datetime
    cursor: dict[str, Any] | None
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FireIn:
    kind: str  # schedule | after | files | backfill
    slot_key: str
    slot: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class FireRecord:
    id: int
    workflow_id: int
    workflow_name: str
    trigger_key: str
    kind: str
    slot_key: str
    slot: datetime | None
    status: str
    claimed_by: str | None
    claimed_at: datetime
    started_at: datetime | None
    run_id: int | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class WorkflowTriggers:
    """A registered workflow as the scheduler polls it (the spec is fetched only when it changed)."""

    id: int
    name: str
    status: str
    updated_at: datetime


class FireStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- workflows, polled every tick --------------------------------------------------------------
    def workflows(self) -> list[WorkflowTriggers]:
        w = workflows.c
        with self._store._begin() as conn:
            rows = conn.execute(select(w.id, w.name, w.status, w.updated_at).order_by(w.name)).all()
        return [WorkflowTriggers(*row) for row in rows]

    def specs(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        with self._store._begin() as conn:
            rows = conn.execute(select(workflows.c.id, workflows.c.spec).where(workflows.c.id.in_(ids))).all()
        return {int(i): dict(spec) for i, spec in rows}

    # -- cursors -------------------------------------------------------------------------------------
    def states(self) -> dict[tuple[int, str], TriggerState]:
        with self._store._begin() as conn:
            rows = conn.execute(select(trigger_state)).all()
        return {(row.workflow_id, row.trigger_key): TriggerState(**row._mapping) for row in rows}

    def arm(self, workflow_id: int, key: str, kind: str, cursor: dict[str, Any] | None,
            now: datetime | None = None) -> TriggerState:
        """The trigger's cursor row, created at ``now`` with ``cursor`` if it does not exist yet."""
        now = now or q.now()
        with self._store._begin() as conn:
            dialect_insert = q.dialect_insert(conn)
            conn.execute(dialect_insert(trigger_state).values(
                workflow_id=workflow_id, trigger_key=key, kind=kind, armed_at=now, cursor=q.jsonable(cursor),
                version=0, updated_at=now).on_conflict_do_nothing(index_elements=["workflow_id", "trigger_key"]))
            row = conn.execute(select(trigger_state).where(trigger_state.c.workflow_id == workflow_id,
                                                           trigger_state.c.trigger_key == key)).one()
        return TriggerState(**row._mapping)

    def advance(self, state: TriggerState, cursor: dict[str, Any] | None, fire: FireIn | None, owner: str,
                now: datetime | None = None) -> tuple[bool, FireRecord | None]:
        """Move the cursor from ``state`` (compare-and-set on its version) and claim ``fire`` with it.
        (False, None) when another scheduler moved it first or already claimed that slot."""
        now = now or q.now()
        with self._store._begin() as conn:
            moved = conn.execute(update(trigger_state).where(
                trigger_state.c.workflow_id == state.workflow_id, trigger_state.c.trigger_key == state.trigger_key,
                trigger_state.c.version == state.version).values(
                cursor=q.jsonable(cursor), version=state.version + 1, updated_at=now)).rowcount
            if not moved or fire is None:
                return bool(moved), None
            dialect_insert = q.dialect_insert(conn)
            fire_id = conn.execute(dialect_insert(fires).values(
                workflow_id=state.workflow_id, trigger_key=state.trigger_key, kind=fire.kind,
                slot_key=fire.slot_key, slot=fire.slot, status="pending", claimed_by=owner, claimed_at=now,
                detail=fire.detail).on_conflict_do_nothing(
                index_elements=["workflow_id", "trigger_key", "slot_key"]).returning(fires.c.id)).scalar()
            # a slot fired already (by a backfill) moves the cursor past it without a second fire
            return True, None if fire_id is None else _load(conn, fires.c.id == fire_id)[0]

    # -- fires ----------------------------------------------------------------------------------------
    def add_pending(self, workflow_id: int, key: str, items: list[FireIn],
                    now: datetime | None = None) -> tuple[list[FireRecord], list[FireIn]]:
        """Pending fires anyone may take (a backfill); slots already fired are returned as skipped."""
        now = now or q.now()
        added, skipped = [], []
        for item in items:
            try:
                with self._store._begin() as conn:
                    fire_id = conn.execute(insert(fires).values(
                        workflow_id=workflow_id, trigger_key=key, kind=item.kind, slot_key=item.slot_key,
                        slot=item.slot, status="pending", claimed_by=None, claimed_at=now,
                        detail=item.detail).returning(fires.c.id)).scalar_one()
                    added.append(_load(conn, fires.c.id == fire_id)[0])
            except IntegrityError:
                skipped.append(item)
        return added, skipped

    def get(self, fire_id: int) -> FireRecord | None:
        with self._store._begin() as conn:
            found = _load(conn, fires.c.id == fire_id)
        return found[0] if found else None

    def pending(self, limit: int) -> list[FireRecord]:
        """Pending fires, oldest slot first."""
        with self._store._begin() as conn:
            return _load(conn, fires.c.status == "pending", order=(func.coalesce(fires.c.slot, fires.c.claimed_at),
                                                                   fires.c.id), limit=limit)

    def take(self, fire_id: int, owner: str, stale_before: datetime, now: datetime | None = None) -> bool:
        """Claim a pending fire to start its run: our own, an unowned one, or one whose claimer went quiet."""
        now = now or q.now()
        with self._store._begin() as conn:
            return bool(conn.execute(update(fires).where(
                fires.c.id == fire_id, fires.c.status == "pending",
                or_(fires.c.claimed_by == owner, fires.c.claimed_by.is_(None), fires.c.claimed_at < stale_before))
                .values(status="started", claimed_by=owner, started_at=now)).rowcount)

    def link(self, fire_id: int, run_id: int) -> None:
        with self._store._begin() as conn:
            conn.execute(update(fires).where(fires.c.id == fire_id).values(run_id=run_id))

    def finish(self, fire_id: int, status: str, detail: str | None) -> None:
        with self._store._begin() as conn:
            conn.execute(update(fires).where(fires.c.id == fire_id).values(status=status, detail=detail))

    def busy_workflows(self) -> set[int]:
        """Workflows with a fire not yet started or a queued run: no new fire is claimed for them."""
        with self._store._begin() as conn:
            pending = set(conn.execute(select(fires.c.workflow_id).where(fires.c.status == "pending")).scalars())
            queued = set(conn.execute(select(runs.c.workflow_id).where(runs.c.status == "queued")).scalars())
        return pending | queued

    def queued_workflows(self) -> set[int]:
        with self._store._begin() as conn:
            return set(conn.execute(select(runs.c.workflow_id).where(runs.c.status == "queued")).scalars())

    def recent(self, workflow_id: int | None = None, limit: int = 20) -> list[FireRecord]:
        with self._store._begin() as conn:
            where = None if workflow_id is None else fires.c.workflow_id == workflow_id
            return _load(conn, where, order=(fires.c.id.desc(),), limit=limit)

    def finished_runs(self, workflow_id: int, after_id: int, statuses: tuple[str, ...]) -> list[tuple[int, datetime]]:
        """(id, ended_at) of the workflow's runs after ``after_id`` that ended with one of ``statuses``."""
        with self._store._begin() as conn:
            rows = conn.execute(select(runs.c.id, runs.c.ended_at).where(
                runs.c.workflow_id == workflow_id, runs.c.id > after_id, runs.c.status.in_(statuses),
                runs.c.ended_at.is_not(None)).order_by(runs.c.id)).all()
        return [(int(i), e) for i, e in rows]

    def last_run_id(self, workflow_id: int) -> int:
        with self._store._begin() as conn:
            return int(conn.execute(select(func.coalesce(func.max(runs.c.id), 0))
                                    .where(runs.c.workflow_id == workflow_id)).scalar_one())

    def lags(self, limit: int = 1000) -> list[float]:
        """Seconds from slot to the first job's start, for the newest ``limit`` scheduled fires that ran."""
        first_job = (select(job_runs.c.run_id, func.min(job_runs.c.started_at).label("first"))
                     .group_by(job_runs.c.run_id).subquery())
        query = (select(fires.c.slot, first_job.c.first).join(first_job, first_job.c.run_id == fires.c.run_id)
                 .where(and_(fires.c.kind == "schedule", fires.c.slot.is_not(None)))
                 .order_by(fires.c.id.desc()).limit(limit))
        with self._store._begin() as conn:
            rows = conn.execute(query).all()
        return [max(0.0, (_aware(first) - _aware(slot)).total_seconds()) for slot, first in rows]


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _load(conn: Any, where: Any, *, order: tuple[Any, ...] = (fires.c.id,),
          limit: int | None = None) -> list[FireRecord]:
    query = (select(fires, workflows.c.name.label("workflow_name"))
             .join(workflows, workflows.c.id == fires.c.workflow_id).order_by(*order).limit(limit))
    if where is not None:
        query = query.where(where)
    return [FireRecord(**row._mapping) for row in conn.execute(query)]

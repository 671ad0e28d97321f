"""Jobs on worker processes through Celery (``executor: celery`` in flowforge.yml).

```yaml
executor: celery
executor_options:
  broker_url: "amqp://flowforge:${RABBITMQ_PASSWORD}@mq.bank.internal:5672/flowforge"   # or redis://
  queue: flowforge          # one queue per project (or per environment)
```

Why Celery on RabbitMQ: it is the task queue platform teams already run (Airflow's CeleryExecutor,
Superset, most Django estates), its broker is ordinary, monitored infrastructure (RabbitMQ with
quorum queues, TLS and vhost permissions, or Redis), and it gives the delivery guarantee a pipeline
needs: with late acknowledgement a job's message stays on the broker until the job has ended, so a
worker killed mid-job (kill -9, OOM, a lost machine) gets its job redelivered to another worker.
Dask distributed and Ray schedule computations from a live driver: a task vanishes with a lost
scheduler, there is no durable queue to inspect, and Ray adds a cluster (GCS, object store) to run.
FlowForge needs none of their data-parallel machinery: its jobs already scale inside DuckDB.

How it fits the guarantees: the process that runs the workflow (CLI, scheduler, API) keeps the run
and its workflow lease and hands each job whose upstream jobs succeeded to the queue (independent
jobs run in parallel on different workers). A worker takes the leases of the job's tables, runs it
and records the job run in the metadata store, which is where the coordinator sees it end (no
result backend). A redelivered job waits for the dead worker's table leases to expire, takes them
over and runs the job again: a bronze commit carries its watermark, so nothing is lost or loaded
twice. Messages carry only names and ids (no SQL, no secrets): a worker reads the workflow's spec
from the metadata store and refuses to run if it changed since the run began. Use RabbitMQ's
``consumer_timeout`` above your longest job (it closes a channel holding an unacknowledged message
longer, 30 minutes by default), and JSON only (pickle is never accepted). Redis works as a broker
too, but it redelivers a dead worker's job only after its ``visibility_timeout`` (an hour by default),
and every job still running by then is delivered a second time (the second delivery waits for the
first one's table leases and then finds the job done); RabbitMQ redelivers when the worker's
connection drops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from flowforge.errors import ConfigError, MissingDependencyError
from flowforge.runner.dispatchers import register_run_executor
from flowforge.runner.jobs import JobEvent

if TYPE_CHECKING:
    from celery import Celery

    from flowforge.core.context import Context
    from flowforge.runner.executor import Dispatch, RunPlan
    from flowforge.settings import Settings

log = logging.getLogger("flowforge.celery")
TASK = "flowforge.run_job"
POLL_SECONDS = 0.2
TERMINAL = ("success", "failed", "skipped", "cancelled")


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _options(settings: Settings) -> tuple[str, str]:
    opts = settings.executor_options
    broker = opts.get("broker_url")
    if broker is None:
        raise ConfigError("executor: celery needs executor_options.broker_url in flowforge.yml.",
                          hint="For example amqp://user:${RABBITMQ_PASSWORD}@mq-host:5672/vhost or redis://host:6379/0.")
    url = broker.get_secret_value() if isinstance(broker, SecretStr) else str(broker)
    return url, str(opts.get("queue", "flowforge"))


@cache
def _app(broker: str, queue: str) -> Celery:
    try:
        from celery import Celery
    except ModuleNotFoundError:
        raise MissingDependencyError("executor: celery needs Celery.",
                                     hint="pip install 'flowforge[workers]'") from None
    app = Celery("flowforge", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue, task_acks_late=True, task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True, worker_prefetch_multiplier=1, task_serializer="json",
        accept_content=["json"], task_ignore_result=True, broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False, worker_enable_remote_control=False, worker_send_task_events=False,
        broker_transport_options={"confirm_publish": True}, task_track_started=False)
    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)(_run_job)
    return app


def celery_app(settings: Settings) -> Celery:
    return _app(*_options(settings))


# -- the coordinator's side --------------------------------------------------------------------------------
@register_run_executor("celery")
def celery_dispatch(ctx: Context) -> Dispatch:
    app = celery_app(ctx.settings)
    _, queue = _options(ctx.settings)

    def dispatch(plan: RunPlan) -> list[JobEvent]:
        return _Coordinator(plan, app, queue).run()

    return dispatch


class _Coordinator:
    """Hands each ready job of one run to the queue and follows the job runs in the metadata store."""

    def __init__(self, plan: RunPlan, app: Celery, queue: str) -> None:
        from flowforge.core.dag import upstream

        self.plan, self.app, self.queue = plan, app, queue
        order = set(plan.order)
        self.deps = {n: ups & order for n, ups in upstream(plan.workflow).items() if n in order}
        record = plan.env.metadata.get_workflow(plan.workflow.name)
        self.digest = spec_digest(record.spec if record else {})

    def run(self) -> list[JobEvent]:
        plan = self.plan
        metadata = plan.env.metadata
        waiting = list(plan.order)
        running: dict[str, int] = {}
        done: dict[str, JobEvent] = {}
        total = len(plan.order)
        index = {name: i for i, name in enumerate(plan.order, start=1)}
        while waiting or running:
            stop = plan.stop_reason()
            for name in list(waiting):
                bad = [d for d in self.deps[name] if d in done and done[d].status != "success"]
                if stop is not None or bad:
                    reason = stop or f"upstream job '{bad[0]}' {done[bad[0]].status}"
                    waiting.remove(name)
                    done[name] = plan.skip(name, index[name], reason)
                elif self.deps[name] <= {d for d, e in done.items() if e.status == "success"}:
                    waiting.remove(name)
                    running[name] = self._send(name, index[name], total)
            if stop is not None:
                for job_run_id in running.values():  # not picked up yet: never will be
                    metadata.leases.skip_if_queued(job_run_id, stop)
            for name, job_run_id in list(running.items()):
                event = self._ended(name, job_run_id, index[name], total)
                if event is not None:
                    del running[name]
                    done[name] = event
                    plan.emit(event)
            if running:
                time.sleep(POLL_SECONDS)
        return [done[name] for name in plan.order]

    def _send(self, name: str, index: int, total: int) -> int:
        plan = self.plan
        job_run = plan.env.metadata.start_job_run(plan.run_id, name, status="queued")
        payload = {"workflow": plan.workflow.name, "digest": self.digest, "run_id": plan.run_id, "job": name,
                   "job_run_id": job_run.id, "batch_id": plan.batch_id, "index": index, "total": total,
                   "refresh": sorted(plan.refresh.tables), "force": plan.refresh.force}
        self.app.send_task(TASK, args=[payload], queue=self.queue)
        plan.emit(JobEvent(name, plan.workflow.job(name).kind, "start", index, total))
        return job_run.id

    def _ended(self, name: str, job_run_id: int, index: int, total: int) -> JobEvent | None:
        from flowforge.layers.base import JobResult, TableResult
        from flowforge.runner.owner import worker_label

        record = self.plan.env.metadata.leases.job_run(job_run_id)
        if record is None or record.status not in TERMINAL:
            return None
        job = self.plan.workflow.job(name)
        seconds = (record.ended_at - record.started_at).total_seconds() if record.ended_at else 0.0
        result = JobResult((TableResult(", ".join(job.outputs()), str(job.layer), record.rows_read,
                                        record.rows_written, bytes_written=record.bytes_written,
                                        note=f"on {worker_label(record.worker)}"),)) \
            if record.status == "success" else None
        return JobEvent(name, job.kind, record.status, index, total, seconds, result, record.error)


# -- the worker's side ------------------------------------------------------------------------------------------
_worker: dict[str, Any] = {}
_local = threading.local()


def _context() -> Context:
    from flowforge.core.context import Context

    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = Context(_worker["settings"])
    return ctx


def _run_job(payload: dict[str, Any]) -> None:
    """One job, on a worker; the job run in the metadata store says how it ended."""
    from flowforge.errors import FlowForgeError
    from flowforge.layers.base import Refresh
    from flowforge.runner.control import RunControl
    from flowforge.runner.executor import MetadataMirror
    from flowforge.runner.jobs import JobEnv, execute_job
    from flowforge.runner.leases import LeaseKeeper
    from flowforge.spec.workflow import Workflow

    ctx = _context()
    metadata = ctx.metadata
    run_id, name, job_run_id = int(payload["run_id"]), str(payload["job"]), int(payload["job_run_id"])
    status, _ = metadata.leases.run_flags(run_id)
    if status not in ("queued", "running"):
        metadata.leases.skip_if_queued(job_run_id, f"run {run_id} is {status}")
        return
    record = metadata.get_workflow(str(payload["workflow"]))
    if record is None or spec_digest(record.spec) != payload["digest"]:
        metadata.finish_job_run(job_run_id, status="failed", error="the workflow changed (or was deleted) after the "
                                "run started; nothing was run", log=None)
        return
    keeper = LeaseKeeper(metadata, timeout=ctx.settings.scheduler.lease_timeout)
    control = RunControl(metadata, run_id, keeper)
    workflow = Workflow.model_validate(record.spec)
    env = JobEnv(metadata, ctx.store, ctx.connector, MetadataMirror(metadata, ctx.store, workflow.name, run_id),
                 settings=ctx.settings)
    try:
        event = execute_job(env, workflow, name, run_id=run_id, batch_id=str(payload["batch_id"]),
                            index=int(payload["index"]), total=int(payload["total"]), keeper=keeper,
                            control=control, job_run_id=job_run_id,
                            refresh=Refresh(frozenset(payload.get("refresh") or ()), bool(payload.get("force"))))
        log.info("job %s of run %s: %s", name, run_id, event.status)
    except FlowForgeError as exc:
        log.error("job %s of run %s could not run: %s", name, run_id, exc.message)
        metadata.finish_job_run(job_run_id, status="failed", error=exc.message)
    finally:
        keeper.close()
        control.close()


def start_worker(ctx: Context, *, concurrency: int = 1, name: str | None = None) -> None:
    """Consume the project's queue until stopped (SIGTERM finishes the jobs in progress first)."""
    import os

    from flowforge.runner.owner import host

    broker, queue = _options(ctx.settings)
    _worker["settings"] = ctx.settings
    app = _app(broker, queue)
    log.info("worker for queue %s", queue)
    app.worker_main(argv=["worker", f"--concurrency={max(1, concurrency)}", "--pool=threads", f"--queues={queue}",
                          "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
                          f"--hostname={name or f'flowforge@{host()}-{os.getpid()}'}"])

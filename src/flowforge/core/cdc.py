"""CDC jobs as a service: reset a job's position so its next run takes a new snapshot.

The way out when a source can no longer serve changes after the committed position (the
replication slot was dropped, the binlog purged) or when a user wants silver rebuilt from the
source. The reset is a bronze commit whose ``flowforge.cdc_state`` says ``reset``; the source
releases what it holds for the job (PostgreSQL: the slot is dropped unless a session streams
from it). The next run creates a new slot and snapshot; the snapshot replaces what silver holds
(``layers/cdc_resync``), so rows deleted while nothing was captured disappear too.

Example::

    result = ctx.cdc.reset("shop_cdc", "products_cdc")   # ctx acting as an editor
    print(result.message)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.spec.cdc import CdcJob


@dataclass(frozen=True)
class CdcReset:
    workflow: str
    job: str
    target: str
    previous: dict[str, Any] | None  # the position the job had
    source: str                      # what the source released
    version: int | None              # bronze version of the reset commit (None: no bronze yet)

    @property
    def message(self) -> str:
        was = f" (it was at {_describe(self.previous)})" if self.previous else ""
        return (f"CDC job '{self.job}' of workflow '{self.workflow}' reset{was}; {self.source}. "
                f"The next run takes a new snapshot: flowforge run {self.workflow}")


def _describe(state: dict[str, Any]) -> str:
    for key in ("lsn", "file", "offsets"):
        if key in state:
            return f"{key} {state[key]}" + (f":{state['pos']}" if key == "file" else "")
    return "a stored position"


class CdcService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def job(self, workflow: str, job: str) -> CdcJob:
        from flowforge.spec.cdc import CdcJob

        wf = self.ctx.load_workflow(workflow)
        for j in wf.jobs:
            if j.name == job:
                if not isinstance(j, CdcJob):
                    raise ConfigError(f"Job '{job}' of workflow '{wf.name}' is a {j.kind} job, not a cdc job; "
                                      "only cdc jobs keep a source position to reset.")
                return j
        raise NotFoundError(f"Workflow '{wf.name}' has no job '{job}'.",
                            hint=f"Jobs: {', '.join(j.name for j in wf.jobs)}.")

    def reset(self, workflow: str, job: str) -> CdcReset:
        """Forget the job's source position (one bronze commit, audited) and release the source's hold
        (editors)."""
        import pyarrow as pa

        from flowforge.layers.cdc import CDC_STATE, stored_state

        self.ctx.require("editor")
        spec = self.job(workflow, job)
        wf_name = self.ctx.load_workflow(workflow).name
        actor = self.ctx.actor
        store = self.ctx.store
        previous = stored_state(store, spec.target)
        with self.ctx.connector(spec.connection) as connector:
            if not connector.capabilities.cdc:
                raise ConfigError(f"{connector.describe()} cannot do CDC (job {job}).")
            released = connector.reset_cdc()
        marker = {"reset": {"by": actor, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}}
        bronze = store.open("bronze", spec.target)
        version = None
        if bronze is not None:
            empty = pa.schema(bronze.schema().to_arrow()).empty_table()
            version = store.append("bronze", spec.target, empty,
                                   {CDC_STATE: marker, "cdc_reset": marker["reset"], "job": spec.name}).version
            self.ctx.metadata.set_watermark(spec.target, spec.name, marker, version)
        result = CdcReset(wf_name, spec.name, spec.target, previous, released, version)
        self.ctx.metadata.audit(actor, "cdc.reset", "job", f"{wf_name}.{spec.name}",
                                before={"position": previous}, after={"source": released, "bronze_version": version})
        return result

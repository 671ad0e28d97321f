"""The workflow page offers a CDC reset for each cdc job: confirm, and the job's position is gone
(the next run takes a new snapshot), with the action in the audit log under the signed-in user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.browser.conftest import shot
from tests.integration.test_cdc_debezium_edges import event


def test_reset_a_cdc_job_from_the_workflow_page(admin_page: Any, server: str, ui_project: Path) -> None:
    from flowforge.core.context import Context
    from flowforge.layers.cdc import stored_state

    events = ui_project / "data" / "cdc_events"  # under the project's data root
    events.mkdir(exist_ok=True)
    (events / "a.jsonl").write_text(event("c", 1, None, {"id": 1, "name": "a", "notes": None}) + "\n")
    wf = {"name": "cdc_demo", "jobs": [{"name": "events_cdc", "kind": "cdc", "connection": "cdc_events",
                                        "files": "*.jsonl", "target": "bronze_cdc_demo",
                                        "tables": [{"target": "silver_cdc_demo", "keys": ["id"]}]}]}
    (ui_project / "workflows" / "cdc_demo.yml").write_text(yaml.safe_dump(wf))
    with Context.open(ui_project) as ctx:
        ctx.connections.save("cdc_events", {"type": "debezium", "path": str(events)})
        assert ctx.run("cdc_demo").status == "success"
        assert stored_state(ctx.store, "bronze_cdc_demo") is not None

    page = admin_page
    page.goto(server + "/ui/workflows/cdc_demo")
    page.click("[data-testid=cdc-reset-events_cdc]")
    page.get_by_text("Reset CDC job 'events_cdc'?").wait_for()
    shot(page, "20_cdc_reset_confirmation")
    page.click("[data-testid=confirm-cdc-reset-events_cdc]")
    page.get_by_text("of workflow 'cdc_demo' reset").wait_for()

    with Context.open(ui_project) as ctx:
        assert stored_state(ctx.store, "bronze_cdc_demo") is None, "the position is forgotten"
        audit = ctx.audit_log(10, action="cdc.reset")
        assert [(a.actor, a.object_id) for a in audit] == [("admin", "cdc_demo.events_cdc")]

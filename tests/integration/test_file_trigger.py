"""A files trigger on a local folder and on an S3 prefix (moto on 127.0.0.1): nothing fires while the
folder is empty, a new file fires one run once it has been quiet, the run loads it, and the next new
file fires the next run."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.lakes import Lake, write_project
from tests.waiting import eventually

from flowforge.core.context import Context
from flowforge.runner.scheduler import Scheduler

WORKFLOW = {
    "name": "landing_orders",
    "jobs": [{"name": "land", "kind": "ingest", "connection": "landing",
              "tables": [{"files": "orders_*.csv", "target": "bronze_orders"}]}],
    "triggers": [{"files": "landing", "pattern": "orders_*.csv", "quiet": "1s", "poll": "1s"}],
}


def csv_bytes(start: int, count: int) -> bytes:
    return ("order_id,amount\n" + "".join(f"{i},{i % 7}\n" for i in range(start, start + count))).encode()


def test_new_files_fire_runs_that_load_them(lake: Lake, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", lake, {"landing": lake.files_connection("csv")})
    if lake.kind == "local":
        Path(lake.landing).mkdir(parents=True)
    (project / "workflows" / "landing_orders.yml").write_text(yaml.safe_dump(WORKFLOW, sort_keys=False))
    with Context.open(project) as ctx:
        ctx.validate("landing_orders")
        scheduler = Scheduler(ctx, tick=0.05)
        try:
            def fires() -> list[str]:
                scheduler.tick()
                return [f.status for f in ctx.schedules.fires("landing_orders")]

            for _ in range(3):
                assert fires() == []  # an empty folder fires nothing
            lake.put("orders_1.csv", csv_bytes(0, 40))
            lake.put("notes.txt", b"not matched")
            assert eventually(fires, lambda found: found == ["started"], attempts=300)
            done = eventually(lambda: ctx.runs("landing_orders", 5), lambda r: r and r[0].status == "success")
            assert [r.trigger for r in done] == ["files"] and done[0].rows_written == 40
            fired = ctx.schedules.fires("landing_orders")[0]
            assert fired.kind == "files" and fired.detail == "1 new file(s): orders_1.csv"
            for _ in range(3):
                assert len(fires()) == 1  # nothing new: no second run
            lake.put("orders_2.csv", csv_bytes(40, 25))
            assert eventually(fires, lambda found: len(found) == 2, attempts=300)
            runs = eventually(lambda: ctx.runs("landing_orders", 5),
                              lambda r: len(r) == 2 and all(x.status == "success" for x in r))
            assert [r.rows_written for r in runs] == [25, 40]
        finally:
            scheduler.close()
        assert ctx.query("SELECT count(DISTINCT order_id) AS n FROM bronze_orders").column("n")[0].as_py() == 65

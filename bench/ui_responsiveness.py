"""Web UI responsiveness: how long user B's page takes while user A's page waits on a slow call.

    python bench/ui_responsiveness.py                              # main (git archive) against this checkout
    python bench/ui_responsiveness.py --server before=/tmp/old/src --server now=src --hold 5 --repeat 7

Each ``--server LABEL=SRC`` is ``flowforge serve`` of the demo project (metadata in a fresh PostgreSQL
database, scheduler off) running FlowForge from SRC (put first on PYTHONPATH; ``@REF`` = that git
ref's ``src`` extracted with ``git archive``). Two users sign in over HTTP: the admin (A) and a viewer
(B). Per round and server:

* *alone*: B's ``GET /ui/connections`` with nothing else going on (the anchor);
* *beside a slow page*: another connection locks the ``audit_log`` table (as a migration, VACUUM FULL
  or a purge of old entries does), A asks for ``/ui/audit`` (the Audit log page, which waits on it),
  and once PostgreSQL shows A's query waiting, B asks for ``/ui/connections``; the lock is let go
  ``--hold`` seconds after it was taken. B's time is measured from its request to the whole page.

B's page must show the connection ``core_banking`` in both cases, or the round counts as failed.
Servers are driven in turns, round after round, so they share the machine's load alike; results
print as a table (medians) and go to bench/results/ui_responsiveness.json with the commit and load
average. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, load_average, machine
from measure import format_table, write_json

PG_URL = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_PASSWORD = "bench-admin-pw-1"
VIEWER, VIEWER_PASSWORD = "bea", "bea-Viewer-Pass-01"
PAGE_B = "/ui/connections"
PAGE_A = "/ui/audit"


def source_of(spec: str, scratch: Path) -> str:
    """SRC of a ``--server``: a folder, or ``@REF`` (that ref's ``src`` extracted from git)."""
    if not spec.startswith("@"):
        return str(Path(spec).resolve())
    target = scratch / f"src-{spec[1:].replace('/', '_')}"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", spec[1:], "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return str(target / "src")


def fresh_database() -> str:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"flowforge_bench_ui_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    p = conninfo_to_dict(PG_URL)
    return f"postgresql://{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


class Server:
    """One ``flowforge serve`` of its own demo project and metadata database, with A and B signed in."""

    def __init__(self, label: str, src: str, scratch: Path) -> None:
        import socket

        from flowforge.core.project import setup_demo_project

        self.label, self.database = label, fresh_database()
        self.project = scratch / label / "project"
        setup_demo_project(self.project, scale=0.02)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
               "FLOWFORGE_METADATA_URL": self.database, "FLOWFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "FLOWFORGE_SCHEDULER__IN_SERVE": "false"}
        self.log = (scratch / label / "server.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(self.project), "serve", "--host",
                                      "127.0.0.1", "--port", str(port)], cwd=self.project, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_up()
        self._add_viewer()
        self.a, self.b = self._sign_in("admin", ADMIN_PASSWORD), self._sign_in(VIEWER, VIEWER_PASSWORD)

    def _wait_up(self) -> None:
        import httpx

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + "/ui/login", timeout=2)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        raise SystemExit(f"server {self.label} did not start; see {self.log.name}")

    def _add_viewer(self) -> None:
        from flowforge.core.context import Context
        from flowforge.settings import Settings

        settings = Settings.load(self.project).model_copy(update={"actor": "bench", "metadata_url": self.database})
        ctx = Context(settings)
        try:
            ctx.users.create_user(VIEWER, VIEWER_PASSWORD, "viewer")
        finally:
            ctx.close()

    def _sign_in(self, username: str, password: str) -> Any:
        import httpx

        client = httpx.Client(base_url=self.base, timeout=120)
        answer = client.post("/ui/auth/login", data={"username": username, "password": password, "next": ""})
        if answer.status_code != 303 or "/login" in answer.headers.get("location", ""):
            raise SystemExit(f"{username} could not sign in on {self.label}")
        return client

    def page_b(self) -> float | None:
        """Seconds for B's whole page; None when it did not show the connection."""
        started = time.perf_counter()
        answer = self.b.get(PAGE_B)
        took = time.perf_counter() - started
        return took if answer.status_code == 200 and "core_banking" in answer.text else None

    def beside_slow_page(self, hold: float) -> float | None:
        """B's page while A's Audit log page waits on a lock of the audit log held ``hold`` seconds."""
        import psycopg

        holder = psycopg.connect(self.database)
        watcher = psycopg.connect(self.database, autocommit=True)
        try:
            holder.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
            locked = time.monotonic()
            release = threading.Timer(hold, holder.rollback)
            release.start()
            a = threading.Thread(target=lambda: self.a.get(PAGE_A))
            a.start()
            while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'").fetchone()[0]:  # type: ignore[index]
                if time.monotonic() - locked > hold:
                    raise SystemExit(f"{self.label}: A's page never waited on the audit log")
                time.sleep(0.02)
            took = self.page_b()
            a.join(120)
            release.join()
            return took
        finally:
            holder.close()
            watcher.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.a.close()
        self.b.close()
        self.log.close()
        drop_database(self.database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", metavar="LABEL=SRC",
                        help="a FlowForge to serve (default: main=@main now=src)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the audit log stays locked")
    args = parser.parse_args()
    specs = args.server or ["main=@main", "now=src"]
    started_load = load_average()
    with tempfile.TemporaryDirectory(prefix="ff-ui-bench-") as tmp:
        scratch = Path(tmp)
        servers = [Server(label, source_of(src, scratch), scratch)
                   for label, _, src in (s.partition("=") for s in specs)]
        alone: dict[str, list[float | None]] = {s.label: [] for s in servers}
        beside: dict[str, list[float | None]] = {s.label: [] for s in servers}
        try:
            for s in servers:  # warm-up: imports, first page builds
                s.page_b()
            for _ in range(args.repeat):
                for s in servers:
                    alone[s.label].append(s.page_b())
                    beside[s.label].append(s.beside_slow_page(args.hold))
        finally:
            for s in servers:
                s.stop()
    rows, results = [], {}
    for label in alone:
        ok_alone = [t for t in alone[label] if t is not None]
        ok_beside = [t for t in beside[label] if t is not None]
        a = statistics.median(ok_alone) if ok_alone else None
        b = statistics.median(ok_beside) if ok_beside else None
        failed = len(alone[label]) - len(ok_alone) + len(beside[label]) - len(ok_beside)
        ratio = b / a if a and b else None
        rows.append([label, a and a * 1000, b and b * 1000, ratio, failed])
        results[label] = {"alone_s": alone[label], "beside_slow_page_s": beside[label], "median_alone_s": a,
                          "median_beside_s": b, "ratio": ratio, "failed_rounds": failed}
    print(format_table(["server", "B alone ms", f"B beside A's {args.hold:g} s wait ms", "ratio", "failed"], rows,
                       title=f"B's {PAGE_B} while A's {PAGE_A} waits on a locked audit log (median of {args.repeat})"))
    print(f"load average: start {started_load}, end {load_average()}")
    path = write_json(RESULTS / "ui_responsiveness.json", {
        "machine": machine(), "load_average_at_end": load_average(), "hold_s": args.hold, "repeat": args.repeat,
        "servers": dict(s.partition("=")[::2] for s in specs), "results": results})
    print(f"written to {path}")


if __name__ == "__main__":
    main()

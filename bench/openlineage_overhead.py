"""What OpenLineage events cost a run: the BFSI demo's four jobs with ``openlineage.transport`` none,
file, http to a recording server on 127.0.0.1, http to a server that never answers (every post times
out) and http to a closed port; plus the time to compute the workflow's column lineage.

    python bench/openlineage_overhead.py [--scale 1] [--repeat 3]

Each repetition builds a fresh demo project per mode (same seed, same data) and times ``Context.run``
alone; modes take turns so drift hits them alike. Prints the median run time per mode and its ratio
to ``none``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


class _Recorder(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).count += 1
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _silent_server() -> tuple[socket.socket, int]:
    """Accepts connections and never answers: every request waits for its timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, sock.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SPENT: list[float] = []  # seconds the run's thread spent in OpenLineage calls (snapshot and hand-off)


def _timed_emit() -> None:
    from flowforge.lineage.openlineage import JobLineage

    emit = JobLineage._emit

    def timed(self: Any, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        try:
            emit(self, *args, **kwargs)
        finally:
            SPENT.append(time.perf_counter() - start)

    JobLineage._emit = timed  # type: ignore[method-assign]


def _run(scale: float, settings: dict[str, Any] | None) -> tuple[float, float]:
    from flowforge.core.context import Context
    from flowforge.core.project import setup_demo_project
    from flowforge.lineage import openlineage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        setup_demo_project(root, scale=scale, seed=42)
        if settings:
            with (root / "flowforge.yml").open("a") as f:
                f.write("\nopenlineage: " + json.dumps(settings) + "\n")
        with Context.open(root) as ctx:
            SPENT.clear()
            start = time.perf_counter()
            summary = ctx.run("bfsi_customer_360")
            seconds = time.perf_counter() - start
            spent = sum(SPENT)
        assert summary.status == "success", summary
        openlineage.flush(30)  # the queue drains after the timing, as it does after a CLI run
        return seconds, spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent, silent_port = _silent_server()
    modes: dict[str, dict[str, Any] | None] = {
        "none": None,
        "file": {"transport": "file", "path": "ol.jsonl"},
        "http (recording server)": {"transport": "http", "url": f"http://127.0.0.1:{server.server_address[1]}"},
        "http (never answers, 2 s timeout)": {"transport": "http", "url": f"http://127.0.0.1:{silent_port}",
                                              "timeout": 2},
        "http (closed port)": {"transport": "http", "url": f"http://127.0.0.1:{_closed_port()}"},
    }
    _timed_emit()
    _run(0.1, None)  # warm imports and caches
    times: dict[str, list[float]] = {m: [] for m in modes}
    spent: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode, settings in modes.items():
            seconds, inside = _run(args.scale, settings)
            times[mode].append(seconds)
            spent[mode].append(inside)
    base = statistics.median(times["none"])
    print(f"BFSI demo, scale {args.scale:g}, median of {args.repeat} runs (run only, data generation excluded)")
    print(f"{'openlineage transport':40} {'run':>8} {'ratio to none':>14} {'in the run thread':>18}")
    for mode, values in times.items():
        median = statistics.median(values)
        inside = statistics.median(spent[mode])
        print(f"{mode:40} {median:7.2f}s {median / base:13.2f}x {inside * 1000:12.0f} ms ({inside / median:.1%})")
    print(f"events received by the recording server: {_Recorder.count}")

    from flowforge.lineage.columns import workflow_column_edges
    from flowforge.spec.loader import parse_workflow
    from flowforge.templates.registry import get_template

    wf = parse_workflow(get_template("bfsi_customer_360").render())
    schemas = _demo_schemas()
    workflow_column_edges(wf, schemas.get)  # sqlglot's first parse warms its caches
    start = time.perf_counter()
    edges = workflow_column_edges(wf, schemas.get)
    print(f"column lineage of bfsi_customer_360: {len(edges)} edges in {(time.perf_counter() - start) * 1000:.0f} ms")
    silent.close()
    server.shutdown()


def _demo_schemas() -> dict[str, list[str]]:
    from flowforge.core.context import Context
    from flowforge.core.project import setup_demo_project

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        setup_demo_project(root, scale=0.1, seed=42)
        with Context.open(root) as ctx:
            ctx.run("bfsi_customer_360")
            return {a.table_name: [str(c["name"]) for c in a.schema] for a in ctx.metadata.list_assets()}


if __name__ == "__main__":
    main()

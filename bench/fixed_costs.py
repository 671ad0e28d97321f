"""Fixed costs a user waits for on every command: ``--help``, a one-row ingest, a run with nothing
new to read, the demo's gold job (skipped, and forced to compute) — for one or more FlowForge
source trees, side by side.

    python bench/fixed_costs.py                                         # the installed FlowForge
    python bench/fixed_costs.py --src before=/tmp/old/src --src now=src --repeat 7

Every command is a fresh ``python -m flowforge`` process, timed from spawn to exit (wall) with the
CPU it used (user + system, from ``wait4``): on a shared machine the CPU seconds are the steadier
figure, the wall seconds what a user sees. Bytecode is cached (in the work folder) as an install
has it; ``PYTHONDONTWRITEBYTECODE`` would otherwise make every run compile FlowForge again. The
trees run in turns, round after round, after one unmeasured warm-up each. Two floors put the
figures in proportion: the bare interpreter, and importing the libraries a run cannot do without
(pyarrow, deltalake, duckdb, sqlalchemy). The gold job's own seconds come from its line in the run
output. Rows marked "daemon" run the same command with ``flowforge daemon`` started for that tree
(skipped for trees without it): their CPU column is the caller's alone (the work happens in the
daemon's child), so compare their wall seconds. Results print as a table and go to
bench/results/fixed_costs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
WORKFLOW = "bfsi_customer_360"
GOLD_JOB = "build_gold_customer_360"
LIBRARIES = "import pyarrow, deltalake, duckdb, sqlalchemy"
DAEMON_ROWS = ("ingest one row (SQLite)", "demo run, nothing new", "gold job, forced", "onboard 11 tables")
# the Chinook sample database's eleven tables and row counts (issue 17: "onboarding 11 Chinook tables
# one `ingest` at a time took 21 s"), with generated rows of a few columns each
CHINOOK = {"album": 347, "artist": 275, "customer": 59, "employee": 8, "genre": 25, "invoice": 412,
           "invoice_line": 2240, "media_type": 5, "playlist": 18, "playlist_track": 8715, "track": 3503}


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{out[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "output": out}


def env_for(src: str | None, work: Path, daemon: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "FLOWFORGE_NO_DAEMON")}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if daemon is None:
        env["FLOWFORGE_NO_DAEMON"] = "1"
    else:
        env["FLOWFORGE_RUNTIME_DIR"] = str(daemon)
    env["COLUMNS"] = "160"
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(src).resolve()), os.environ.get("PYTHONPATH")) if p)
    return env


def gold_seconds(output: str) -> float | None:
    found = re.search(rf"OK gold {GOLD_JOB} .*? in ([0-9.]+)s\]", output)
    return float(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=SRC",
                        help="a FlowForge source tree to measure (repeatable; '-' = the installed one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    trees = [(label, None if src in ("", "-") else src) for label, _, src in (t.partition("=") for t in args.src)]
    trees = trees or [("flowforge", None)]
    py = sys.executable

    samples: dict[str, dict[str, list[dict[str, Any]]]] = {label: {} for label, _ in trees}
    with tempfile.TemporaryDirectory(prefix="ff-fixed-", dir=args.workdir) as tmp:
        work = Path(tmp)
        # each tree gets a demo project it made itself: trees differ in their metadata schema revision
        commands: dict[str, dict[str, list[str]]] = {}
        daemons: dict[str, Path] = {}
        for index, (label, src) in enumerate(trees):
            demo = work / f"demo{index}"
            timed([py, "-m", "flowforge", "demo", "--dir", str(demo)], env_for(src, work), work)
            commands[label] = _commands(py, demo)
            if (Path(src or Path(__file__).parents[1] / "src") / "flowforge" / "cli" / "daemon.py").exists():
                daemons[label] = work / f"rt{index}"
                daemons[label].mkdir(mode=0o700)
                timed([py, "-m", "flowforge", "daemon", "start"], env_for(src, work, daemons[label]), work)
        names = list(commands[trees[0][0]]) + [f"{name}, daemon" for name in DAEMON_ROWS]
        try:
            for round_ in range(args.repeat + 1):  # round 0: warm-up (bytecode, page cache)
                for name in names:
                    for label, src in trees:
                        command, daemon, _ = name.partition(", daemon")
                        if daemon and label not in daemons:
                            continue
                        env = env_for(src, work, daemons[label] if daemon else None)
                        sample = timed(commands[label][command], env, work)
                        if round_:
                            samples[label].setdefault(name, []).append(sample)
        finally:
            for label, src in trees:
                if label in daemons:
                    timed([py, "-m", "flowforge", "daemon", "stop"], env_for(src, work, daemons[label]), work)
        shutil.rmtree(work / "pycache", ignore_errors=True)

    report: dict[str, Any] = {}
    first = trees[0][0]
    print(f"\nFixed costs, median of {args.repeat} rounds (load average now {os.getloadavg()[0]:.1f})")
    print(f"{'tree':10} {'command':34} {'wall s':>8} {'CPU s':>8} {'gold job s':>10} {'CPU vs first':>12}")
    for label, _ in trees:
        report[label] = {}
        for name, runs in samples[label].items():
            wall = statistics.median(r["wall"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            golds = [g for g in (gold_seconds(r["output"]) for r in runs) if g is not None]
            gold = statistics.median(golds) if golds else None
            base = statistics.median(r["cpu"] for r in samples[first].get(name, runs))
            report[label][name] = {"wall_s": wall, "cpu_s": cpu, "gold_job_s": gold, "cpu_vs_first": cpu / base,
                                   "walls": [r["wall"] for r in runs], "cpus": [r["cpu"] for r in runs]}
            print(f"{label:10} {name:34} {wall:8.3f} {cpu:8.3f} {gold if gold is not None else '':>10} "
                  f"{cpu / base:12.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "fixed_costs.json"
    out.write_text(json.dumps({"commit": _commit(), "repeat": args.repeat, "load_average": os.getloadavg(),
                               "trees": dict(trees), "results": report}, indent=2))
    print(f"\nwritten to {out}")


def _commands(py: str, demo: Path) -> dict[str, list[str]]:
    one = demo / "data" / "one_row.db"
    with sqlite3.connect(one) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, balance REAL)")
        db.execute("INSERT INTO accounts VALUES (1, 'Ada', 120.5)")
    chinook = demo / "data" / "chinook.db"
    with sqlite3.connect(chinook) as db:
        for table, rows in CHINOOK.items():
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, amount REAL, created TEXT)")
            db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
                           [(i, f"{table} {i}", i * 0.99, f"2026-01-{1 + i % 28:02d}") for i in range(1, rows + 1)])
    ingests = " && ".join(f"{py} -m flowforge -p {demo} ingest --from sqlite:///{chinook} --table {table} >/dev/null"
                          for table in CHINOOK)
    return {
        "python (floor)": [py, "-c", "pass"],
        "libraries (floor)": [py, "-c", LIBRARIES],
        "flowforge --help": [py, "-m", "flowforge", "--help"],
        "ingest one row (SQLite)": [py, "-m", "flowforge", "-p", str(demo), "ingest", "--from", f"sqlite:///{one}",
                                    "--table", "accounts"],
        "demo run, nothing new": [py, "-m", "flowforge", "-p", str(demo), "run", WORKFLOW],
        "gold job alone": [py, "-m", "flowforge", "-p", str(demo), "run", WORKFLOW, "--job", GOLD_JOB],
        # its inputs are unchanged, so only --force makes it compute (the row above times the skip)
        "gold job, forced": [py, "-m", "flowforge", "-p", str(demo), "run", WORKFLOW, "--job", GOLD_JOB, "--force"],
        "onboard 11 tables": ["sh", "-c", ingests],  # one ingest after the other, as a user onboards
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    main()

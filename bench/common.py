"""What every benchmark shares: where things are, how children are started, machine facts."""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from measure import Sample, run_child

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
CHILD = BENCH_DIR / "child.py"
CHILD_TIMEOUT = 3 * 3600.0
PACKAGES = ("flowforge", "deltalake", "pyarrow", "duckdb", "adbc-driver-postgresql", "psycopg",
            "connectorx", "pandas", "sqlalchemy", "dlt", "mysqlclient", "PyMySQL")


@dataclass(frozen=True)
class Options:
    """Settings every benchmark reads."""

    python: str
    workdir: Path
    repeat: int
    full: bool
    keep: bool


def child(opts: Options, command: str, *args: str, timeout: float = CHILD_TIMEOUT) -> Sample:
    """``python bench/child.py <command> ...`` in its own process."""
    return run_child([opts.python, str(CHILD), command, *args], timeout=timeout)


def flowforge_cli(opts: Options, *args: str) -> list[str]:
    return [opts.python, "-m", cli_module(opts.python), *args]


@functools.cache
def cli_module(python: str) -> str:
    """``flowforge`` (its ``__main__``) where the package has one, else ``flowforge.cli.main``.
    Asked of a child, so the harness itself never imports FlowForge."""
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('flowforge.__main__') else 1)"
    found = subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False)
    return "flowforge" if found.returncode == 0 else "flowforge.cli.main"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("COLUMNS", "160")
    return env


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def machine() -> dict[str, Any]:
    """Facts a reader needs to compare figures across machines (no heavy imports)."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "commit": _commit(),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or None
    return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def python_default() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def mb(nbytes: float | None) -> float | None:
    return None if nbytes is None else nbytes / 1024 / 1024


def per_second(amount: float | None, seconds: float | None) -> float | None:
    if amount is None or not seconds:
        return None
    return amount / seconds


_FINISHED = re.compile(r"Finished run \d+ of '[^']*': \d+ jobs? in ([0-9.]+)s")


def run_seconds(stdout: str) -> float | None:
    """The pipeline's own seconds, from the CLI's "Finished run N of 'wf': J jobs in S s." line
    of that very run (the run records of earlier runs are gone with their projects)."""
    found = _FINISHED.search(stdout)
    return float(found.group(1)) if found else None


def rows_per_second(rows: int | None, seconds: float | None) -> int | None:
    rate = per_second(rows, seconds)
    return None if rate is None else round(rate)

"""Run a command in a child process and measure its wall time and peak RSS.

Peak RSS comes from ``os.wait4``: the kernel's ``ru_maxrss`` of that one child (and of any
children it waited for). It is the same counter ``getrusage(RUSAGE_CHILDREN)`` reports, but
scoped to one process — ``RUSAGE_CHILDREN`` is a running *maximum* over all children, so a
small child measured after a big one would show no delta at all.

One caveat, measured on Linux: a child starts from its parent's memory (vfork/fork), and
``ru_maxrss`` keeps the high-water mark across ``exec``, so every child reports *at least* the
parent's RSS. The harness therefore imports nothing heavy (no pyarrow, pandas, psycopg):
every query, load and inspection runs in a child. ``harness_rss_mb()`` is that floor.

Standard library only, by design.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """One child run."""

    seconds: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system of the child and its own children (from ``wait4``)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_json(self) -> dict[str, Any]:
        """The last stdout line that parses as a JSON object (children report that way)."""
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    return value
        return {}

    def failure(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-6:]
        return f"exit {self.returncode}: " + " | ".join(tail)


@dataclass
class Timing:
    """Best-of-N summary of one contestant: fastest wall time, highest peak RSS seen."""

    samples: list[Sample] = field(default_factory=list)
    warmup: Sample | None = None

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.ok for s in self.samples)

    @property
    def best(self) -> Sample:
        return min(self.samples, key=lambda s: s.seconds)

    @property
    def seconds(self) -> float:
        return self.best.seconds

    @property
    def peak_rss_bytes(self) -> int:
        return max(s.peak_rss_bytes for s in self.samples)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "best_seconds": round(self.seconds, 3) if self.samples else None,
            "all_seconds": [round(s.seconds, 3) for s in self.samples],
            "warmup_seconds": round(self.warmup.seconds, 3) if self.warmup else None,
            "peak_rss_mb": round(self.peak_rss_bytes / MB, 1) if self.samples else None,
            "cpu_seconds_of_best": round(self.best.cpu_seconds, 3) if self.samples else None,
        }


def run_child(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float | None = None) -> Sample:
    """Run ``cmd`` to completion; wall time from spawn to exit, peak RSS from ``wait4``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err)
        killer = _killer(proc, timeout)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if killer is not None:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Sample(seconds, usage.ru_maxrss * 1024, proc.returncode, out.read(), err.read(),
                      usage.ru_utime + usage.ru_stime)


def _killer(proc: subprocess.Popen[bytes], timeout: float | None) -> threading.Timer | None:
    if timeout is None:
        return None
    timer = threading.Timer(timeout, proc.kill)
    timer.daemon = True
    timer.start()
    return timer


def interleave(cases: dict[str, Callable[[int], Sample]], *, repeat: int, warmup: bool = True,
               on_round: Callable[[int, dict[str, Sample]], None] | None = None) -> dict[str, Timing]:
    """One unmeasured warm-up run of every case (page cache, imports), then ``repeat`` rounds
    that run every case once, in turn. Interleaving spreads whatever else the machine is doing
    over all cases alike, instead of penalising whichever case ran during a busy minute.
    A case stops at its first failed run: a failure is reported, not averaged."""
    timings = {name: Timing() for name in cases}
    if warmup:
        for name, run_once in cases.items():
            sample = run_once(0)
            timings[name].warmup = sample
            if not sample.ok:
                timings[name].samples.append(sample)
        if on_round is not None:
            on_round(0, {n: t.warmup for n, t in timings.items() if t.warmup is not None})
    for index in range(1, repeat + 1):
        done: dict[str, Sample] = {}
        for name, run_once in cases.items():
            if timings[name].samples and not timings[name].samples[-1].ok:
                continue
            done[name] = run_once(index)
            timings[name].samples.append(done[name])
        if on_round is not None:
            on_round(index, done)
    return timings


def print_round(index: int, samples: dict[str, Sample]) -> None:
    """Progress: one line per round, ``name seconds/peak MB`` for each case."""
    head = "  warm-up " if index == 0 else f"  round {index} "
    parts = [f"{name} {s.seconds:.2f}s/{s.peak_rss_bytes / MB:,.0f}MB" if s.ok else f"{name} FAILED"
             for name, s in samples.items()]
    print(head + "  ".join(parts), flush=True)


def harness_rss_mb() -> float:
    """This process's peak RSS: the floor under every child's reported peak RSS."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A plain fixed-width table; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows if row[i] not in (None, "")) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path

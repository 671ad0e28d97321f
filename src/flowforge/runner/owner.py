"""Who holds a lease or runs a run: ``host:pid:start:token``.

``start`` is the process's start time in clock ticks since boot (``/proc/<pid>/stat``), so a
recycled pid is not mistaken for the holder. On the same host a holder whose process is gone is
known dead at once; on another host only the lease's expiry can tell.
"""

from __future__ import annotations

import os
import socket
import uuid
from functools import cache


@cache
def host() -> str:
    return socket.gethostname().replace(":", "_")


def _stat(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first); empty if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    # the command name (2nd field) may contain spaces and parentheses; fields after it are fixed
    return text.rsplit(")", 1)[-1].split() if ")" in text else []


def _start_ticks(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def process_id() -> str:
    pid = os.getpid()
    return f"{host()}:{pid}:{_start_ticks(pid) or '0'}"


def new_holder() -> str:
    """A holder name unique to one caller in this process (two threads never share one)."""
    return f"{process_id()}:{uuid.uuid4().hex[:8]}"


def worker_label(holder: str | None) -> str:
    """``host pid N`` for messages (no token)."""
    if not holder:
        return "an unknown process"
    parts = holder.split(":")
    return f"{parts[0]} pid {parts[1]}" if len(parts) > 1 else holder


def is_dead(holder: str | None) -> bool:
    """True only when ``holder`` ran on this host and its process is gone (or its pid was reused)."""
    if not holder:
        return False
    parts = holder.split(":")
    if len(parts) < 3 or parts[0] != host() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    started = fields[19] if len(fields) > 19 else ""
    return bool(started and parts[2] not in ("0", started))

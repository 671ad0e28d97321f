"""The scheduler as operators start it: inside ``flowforge serve`` and alone as ``flowforge scheduler``;
either one runs a due workflow, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cli_helpers import init_project
from tests.waiting import eventually

from flowforge.core.context import Context
from flowforge.errors import ConfigError

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "p")
    with (project / "workflows" / "example.yml").open("a") as fh:
        fh.write("triggers:\n  - {every: 2s}\n")
    return project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["serve", "--no-ui", "--log-level", "warning"], ["scheduler"]])
def test_a_due_workflow_runs_under_serve_and_under_the_scheduler_command(tmp_path: Path, command: list[str]) -> None:
    project = _project(tmp_path)
    args = [*command, "--port", str(_free_port())] if command[0] == "serve" else command
    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": "first-Admin-Pw1"}
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with Context.open(project) as ctx:
            def scheduled() -> list[Any]:
                try:
                    return [r for r in ctx.runs("example", 10) if r.trigger == "schedule"]
                except ConfigError:  # not registered yet: the scheduler registers workflow files
                    return []

            runs = eventually(scheduled, lambda found: any(r.status == "success" for r in found), attempts=600)
            assert any(r.status == "success" and r.slot is not None for r in runs)
            assert runs[0].actor == "flowforge scheduler"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode in (0, -signal.SIGTERM), output
    with Context.open(project) as ctx:
        assert all(r.status != "running" for r in ctx.runs("example", 50))

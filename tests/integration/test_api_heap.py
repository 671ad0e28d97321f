"""``flowforge serve`` settles its heap before the first request (``api/heap.py``): what start-up made is
frozen out of the cycle collector's walks, and the read routes import nothing more once it has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli_helpers import init_project

pytestmark = pytest.mark.slow

_SERVE = r"""
import gc, sys
from pathlib import Path
from fastapi.testclient import TestClient
from flowforge.api import create_app
from flowforge.core.context import Context
from flowforge.settings import Settings

settings = Settings.load(Path(sys.argv[1]))
setup = Context(settings.model_copy(update={"actor": "setup"}))
setup.users.create_user("viewer", "a-long-viewer-password", "viewer")
token = setup.users.create_token("viewer", "heap")
run_id = setup.run("example").run_id
setup.close()
with TestClient(create_app(settings, settle=True)) as client:
    frozen = gc.get_freeze_count()
    loaded = set(sys.modules)
    for path in ("/workflows", "/workflows/example", "/workflows/example/lineage", "/runs", f"/runs/{run_id}",
                 f"/runs/{run_id}/jobs"):
        answer = client.get("/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, (path, answer.text)
    gc.collect()
    print(frozen, len(gc.get_objects()))
    print(" ".join(sorted(m for m in set(sys.modules) - loaded if not m.startswith("encodings."))))
"""


def test_a_served_process_freezes_its_start_up_and_its_read_routes_import_nothing_more(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    found = subprocess.run([sys.executable, "-c", _SERVE, str(project)], capture_output=True, text=True, timeout=600,
                           check=False)
    assert found.returncode == 0, found.stderr
    counts, imported = [*found.stdout.splitlines(), ""][:2]
    frozen, walked = (int(n) for n in counts.split())
    assert frozen > 50_000  # modules, classes, functions: walked by no collection from now on
    assert walked < frozen // 4  # what a full collection still walks after serving every read route once
    assert imported.split() == []

"""Each job kind's executor is found by its kind alone: a job imports only its own layer."""

from __future__ import annotations

import ast
import subprocess
import sys

import flowforge.spec.workflow  # noqa: F401  (registers every job kind)
from flowforge.layers.base import executor_for
from flowforge.spec.jobs import JOB_KINDS


def test_every_job_kind_has_an_executor() -> None:
    assert JOB_KINDS
    for kind in JOB_KINDS:
        assert callable(executor_for(kind)), kind


def test_an_ingest_job_loads_no_other_layer() -> None:
    code = ("import sys; from flowforge.layers.base import executor_for; executor_for('ingest'); "
            "print(sorted(m for m in sys.modules if m.startswith('flowforge.layers.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "flowforge.layers.bronze" in out
    assert not {"flowforge.layers.silver", "flowforge.layers.gold", "flowforge.layers.cdc",
                "flowforge.layers.export", "flowforge.layers.embed"} & set(ast.literal_eval(out))

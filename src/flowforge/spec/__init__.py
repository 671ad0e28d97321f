"""The YAML spec of workflows and jobs: pydantic models with no I/O beyond parsing."""

from flowforge.spec.loader import load_workflow_file, parse_workflow
from flowforge.spec.workflow import Workflow

__all__ = ["Workflow", "load_workflow_file", "parse_workflow"]

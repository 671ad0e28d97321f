"""Running the ``flowforge`` command in-process, as the CLI tests do."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowforge.cli.main import app

runner = CliRunner()


def invoke(project: Path, *args: str) -> tuple[int, str]:
    """``flowforge -p <project> <args>``: exit code and everything it printed."""
    result = runner.invoke(app, ["-p", str(project), *args])
    return result.exit_code, result.output


def init_project(folder: Path) -> Path:
    """``flowforge init <folder>``; the scaffolded project."""
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    return folder

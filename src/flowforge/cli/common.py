"""What every command shares: opening the project and turning errors into one clear line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.settings import Settings

_state: dict[str, Any] = {"debug": False, "project": None}

ProjectOpt = Annotated[Path | None, typer.Option("--project", "-p", help="Project directory (default: "
                                                 "nearest folder with flowforge.yml).")]


@contextmanager
def _context(project: Path | None = None, settings: Settings | None = None) -> Iterator[Context]:
    """Open the project and turn every FlowForge error into one clear line (exit 1)."""
    from flowforge.core.context import Context
    from flowforge.errors import FlowForgeError

    try:
        with (Context(settings) if settings else Context.open(project or _state["project"])) as ctx:
            yield ctx
    except FlowForgeError as exc:
        _fail(exc)


def _fail(exc: BaseException) -> None:
    from flowforge.cli import output

    if _state["debug"]:
        raise exc
    output.error(str(exc))
    raise typer.Exit(1)


def _guard(fn: Callable[[], Any]) -> Any:
    from flowforge.errors import FlowForgeError

    try:
        return fn()
    except FlowForgeError as exc:
        _fail(exc)



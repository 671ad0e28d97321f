"""Run executors by name: where a run's jobs execute. ``local`` (the default) runs them in the
process that runs the workflow; others hand them to workers through a distributed task system and
register here, as ``celery`` does in runner/celery_executor.py:

    @register_run_executor("celery")
    def celery_dispatch(ctx: Context) -> Dispatch: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.runner.executor import Dispatch

Factory = Callable[["Context"], "Dispatch"]
RUN_EXECUTORS: dict[str, Factory] = {}
F = TypeVar("F", bound=Factory)
_BUILTIN = {"celery": "flowforge.runner.celery_executor"}


def register_run_executor(name: str) -> Callable[[F], F]:
    def deco(factory: F) -> F:
        RUN_EXECUTORS[name] = factory
        return factory

    return deco


def dispatch_for(ctx: Context) -> Dispatch | None:
    """The project's executor (``executor:`` in flowforge.yml); None for ``local``."""
    import importlib

    name = ctx.settings.executor
    if name == "local":
        return None
    if name not in RUN_EXECUTORS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in RUN_EXECUTORS:
        raise ConfigError(f"Unknown executor '{name}' in flowforge.yml.",
                          hint=f"Use local or one of: {', '.join(sorted({*RUN_EXECUTORS, *_BUILTIN}))}.")
    return RUN_EXECUTORS[name](ctx)

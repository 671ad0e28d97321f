"""The application each process of ``flowforge serve --workers N`` builds.

uvicorn starts the worker processes fresh (spawned, not forked) and imports ``app`` here by
name; the project comes from the environment ``flowforge serve`` sets before starting them.
Workers never run the scheduler: the serving process runs the only one (``cli/serve.py``), so
N workers make one scheduler, not N. Sign-in sessions live in the metadata store, so a cookie
issued by one worker is honoured by all of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from fastapi import FastAPI

PROJECT_ENV: Final = "FLOWFORGE_SERVE_PROJECT"


def app() -> FastAPI:
    """uvicorn's app factory (``flowforge.api.workers:app``)."""
    from flowforge.api.app import create_app
    from flowforge.settings import Settings

    project = os.environ.get(PROJECT_ENV)
    if not project:
        raise RuntimeError(f"{PROJECT_ENV} is not set: worker processes are started by 'flowforge serve --workers N'.")
    return create_app(Settings.load(project), scheduler=False, settle=True)

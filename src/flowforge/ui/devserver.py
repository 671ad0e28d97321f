"""Serve the UI alone (FastAPI + ``mount``) for development and the browser tests:
``python -m flowforge.ui.devserver --project DIR --port 8080``."""

from __future__ import annotations

import argparse
from pathlib import Path

from fastapi import FastAPI


def create_app(project_dir: Path) -> FastAPI:
    from flowforge.settings import Settings
    from flowforge.ui import mount

    settings = Settings.load(project_dir)
    _bootstrap_admin(settings)
    app = FastAPI(title="FlowForge")
    mount(app, settings)
    return app


def _bootstrap_admin(settings: object) -> None:
    """Create user 'admin' from FLOWFORGE_ADMIN_PASSWORD when the project has no user yet."""
    import os

    from flowforge.core.context import Context

    password = os.environ.get("FLOWFORGE_ADMIN_PASSWORD")
    if not password:
        return
    with Context(settings) as ctx:  # type: ignore[arg-type]
        if not ctx.users.has_users():
            ctx.users.create_user("admin", password, role="admin")


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(create_app(args.project), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

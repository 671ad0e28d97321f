"""The project's state folder is private: 0700, and the metadata database (with its WAL and
shared-memory files) and key files 0600, so other accounts on the server read none of them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from flowforge.settings import Settings

PRIVATE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")


def private_state_dir(settings: Settings) -> Path:
    """Create (or tighten) ``.flowforge/`` to 0700; pre-create the SQLite metadata database 0600
    (SQLite gives its -wal and -shm files the database's mode) and tighten files already there."""
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    _chmod(state, 0o700)
    url = settings.metadata_database_url
    if url.startswith("sqlite:///") and settings.metadata_url is None:
        db = Path(url.removeprefix("sqlite:///"))
        if not db.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for suffix in PRIVATE_SUFFIXES:
            _chmod(Path(f"{db}{suffix}"), 0o600)
    for child in state.iterdir():
        if child.is_file() and child.suffix in (".key", ".db"):
            _chmod(child, 0o600)
    return state


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)

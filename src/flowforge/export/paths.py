"""Where an export may write: the one check for user-given output folders.

A workflow file, the API or the CLI names the folder; it is user input. ``output_location`` is
the single function every caller goes through, so one policy (today: stay out of the project's
``.flowforge`` state folder and the lakehouse, and no ``..`` climbing out of the project for a
relative path) can become "inside a configured data root" in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from flowforge.errors import ConfigError
from flowforge.storage.options import is_remote

if TYPE_CHECKING:
    from flowforge.settings import Settings


def output_location(target: str, settings: Settings) -> str:
    """``target`` as an absolute local path or an ``s3://`` URI, refused where writing would harm the project.

    Relative paths are resolved against the project folder and must stay inside it; no path may
    reach the metadata and key folder (``.flowforge``) or the lakehouse's own tables.
    """
    text = str(target).strip()
    if not text:
        raise ConfigError("The export target is empty.", hint="Give a folder or an s3://bucket/prefix.")
    if is_remote(text):
        if not text.startswith("s3://"):
            raise ConfigError(f"Export target {text!r}: only local folders and s3:// locations are supported.")
        lake = settings.lakehouse_root.rstrip("/")
        if is_remote(lake) and _inside_uri(text, lake):
            raise ConfigError(f"Export target {text!r} is inside the lakehouse ({lake}).",
                              hint="Write snapshots to another prefix; the lakehouse holds only Delta tables.")
        return text.rstrip("/")
    if "\x00" in text:
        raise ConfigError("The export target contains a NUL character.")
    project = settings.project_dir.resolve()
    raw = Path(text).expanduser()
    path = (raw if raw.is_absolute() else project / raw).resolve()
    if not raw.is_absolute() and not _inside(path, project):
        raise ConfigError(f"Export target {text!r} leaves the project folder ({project}).",
                          hint="Give a folder inside the project, or an absolute path.")
    forbidden = [settings.state_dir]
    if not is_remote(settings.lakehouse_root):
        forbidden.append(Path(settings.lakehouse_root))
    for place in forbidden:
        place = place.resolve()
        if _inside(path, place) or _inside(place, path):
            raise ConfigError(f"Export target {text!r} resolves to {path}, which overlaps {place}.",
                              hint="FlowForge keeps its metadata, keys and Delta tables there; pick another folder.")
    return os.fspath(path)


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _inside_uri(uri: str, parent: str) -> bool:
    return uri.rstrip("/") == parent or uri.startswith(parent + "/") or parent.startswith(uri.rstrip("/") + "/")

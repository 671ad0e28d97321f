"""Where an export may write: the one check for user-given output folders.

A workflow file, the API or the CLI names the folder; it is user input. ``output_location`` is
the single function every caller goes through: a local folder must lie under one of the
project's ``data_roots`` (default ``data``) and never reach the ``.flowforge`` state folder or the
lakehouse (``flowforge.core.roots``, symlinks followed); an ``s3://`` prefix must not be inside
an object-store lakehouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.errors import ConfigError
from flowforge.storage.options import is_remote

if TYPE_CHECKING:
    from flowforge.settings import Settings


def output_location(target: str, settings: Settings) -> str:
    """``target`` as an absolute local path under a data root, or an ``s3://`` URI; else ConfigError."""
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
    from flowforge.core.roots import confine

    # local files FlowForge touches live under the project's data roots, never in its state or lakehouse
    return confine(settings, text, "Export target")


def _inside_uri(uri: str, parent: str) -> bool:
    return uri.rstrip("/") == parent or uri.startswith(parent + "/") or parent.startswith(uri.rstrip("/") + "/")

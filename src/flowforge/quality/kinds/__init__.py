"""Test kinds: one module per kind, each registering its model with ``@register_test``.
Importing this package imports every module in it, so a new kind is a new file here."""

from __future__ import annotations

import importlib
import pkgutil


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_load_all()

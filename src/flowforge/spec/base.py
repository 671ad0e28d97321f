"""Shared bits of the spec models."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class SpecModel(BaseModel):
    """Frozen, strict: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(
            f"'{value}' is not a valid name: use letters, digits and underscores, starting with a letter"
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]

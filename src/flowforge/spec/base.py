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


def _sql_type(value: str) -> str:
    from flowforge.engine.sandbox import check_type

    check_type(value, "type")  # UnsafeSQL is a ValueError: pydantic reports it at the field
    return value


def _sql_expression(value: str) -> str:
    from flowforge.engine.sandbox import check_expression

    return check_expression(value, "expression")


# A column type for CAST (``decimal(12,2)``): parsed as a type and nothing else.
SqlType = Annotated[str, AfterValidator(_sql_type)]
# One SQL expression over a row (a derived column, a condition), inside the user-SQL sandbox.
SqlExpression = Annotated[str, AfterValidator(_sql_expression)]

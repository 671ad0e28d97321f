"""Validation problems in plain words, for the UI, the API and the CLI alike.

pydantic says "Tuple should have at least 1 item after validation" or "Input should be a valid
string"; a FlowForge user reads "tables: needs at least one entry" and "tags: must be a list". These
are pure functions over pydantic's error dicts (``ValidationError.errors()``), so every place
that shows a spec problem words it the same way: ``spec/problems.py`` (all problems of a file, with
close matches and allowed fields) words each one with ``plain_message``.

Example::

    try:
        Workflow.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            print(field_path(err["loc"]), plain_message(err))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_KIND_WORDS = {
    "string_type": "must be text", "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number", "float_parsing": "must be a number",
    "decimal_parsing": "must be a number", "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list", "tuple_type": "must be a list", "set_type": "must be a list",
    "dict_type": "must be a mapping (key: value lines)", "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)", "none_required": "must be left out",
    "datetime_type": "must be a date and time such as 2026-01-31T06:00:00",
    "datetime_parsing": "must be a date and time such as 2026-01-31T06:00:00",
    "datetime_from_date_parsing": "must be a date and time such as 2026-01-31T06:00:00",
    "date_type": "must be a date such as 2026-01-31", "date_parsing": "must be a date such as 2026-01-31",
    "date_from_datetime_parsing": "must be a date such as 2026-01-31",
    "url_parsing": "must be a URL such as https://host/path", "url_type": "must be a URL such as https://host/path",
    "frozen_instance": "cannot be changed", "frozen_field": "cannot be changed",
}


def _name(loc: Sequence[Any]) -> str:
    named = [p for p in loc if isinstance(p, str)]
    return named[-1] if named else "this value"


def _items(n: Any) -> str:
    return "one entry" if n == 1 else f"{n} entries"


def _choices(expected: str) -> str:
    return expected.replace(" or ", ", ")


def plain_message(err: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in plain words; the field path is
    not included (see ``field_path``)."""
    kind = str(err.get("type", ""))
    loc = tuple(err.get("loc") or ())
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    name = _name(loc)
    got = err.get("input")
    if kind == "missing":
        return f"missing required field '{name}'"
    if kind == "extra_forbidden":
        return f"unknown field '{name}'; check its spelling, or remove it"
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        if kind == "string_too_short":
            return "must not be empty" if least == 1 else f"must be at least {least} characters"
        return f"needs at least {_items(least)}"
    if kind in ("too_long", "string_too_long"):
        most = ctx.get("max_length")
        return f"must be at most {most} characters" if kind == "string_too_long" else f"takes at most {_items(most)}"
    if kind == "literal_error":
        return f"must be one of {_choices(str(ctx.get('expected', '')))}" + (
            f" (not {got!r})" if isinstance(got, str | int | float) else "")
    if kind == "enum":
        return f"must be one of {_choices(str(ctx.get('expected', '')))}"
    if kind == "union_tag_invalid":
        return (f"{ctx.get('discriminator', 'kind').strip(chr(39))} {ctx.get('tag')!r} is not known; use one of "
                f"{_choices(str(ctx.get('expected_tags', '')))}")
    if kind == "union_tag_not_found":
        return f"missing required field {ctx.get('discriminator', 'kind')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                 "less_than": "less than"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"must be {words} {bound}"
    if kind == "string_pattern_mismatch":
        return f"{got!r} is not in the expected form" if isinstance(got, str) else "is not in the expected form"
    if kind in _KIND_WORDS:
        return _KIND_WORDS[kind]
    if kind in ("value_error", "assertion_error"):
        return str(err.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(err.get("msg", "is not valid"))


def field_path(loc: Sequence[Any], tags: Sequence[str] = ()) -> str:
    """``("jobs", 0, "ingest", "tables")`` as ``jobs.0.tables``: the names of union members (``tags``) left out."""
    kept = [p for i, p in enumerate(loc) if not (i and isinstance(loc[i - 1], int) and p in tags)]
    return ".".join(str(p) for p in kept)


def relevant(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The errors worth showing: pydantic adds "at least 1 item" for a list whose items all failed,
    which only repeats what the items' own errors say."""
    def inside(outer: tuple[Any, ...], e: Mapping[str, Any]) -> bool:
        loc = tuple(e.get("loc") or ())
        return len(loc) > len(outer) and loc[:len(outer)] == outer

    return [e for e in errors if not (e.get("type") == "too_short" and any(
        inside(tuple(e.get("loc") or ()), other) for other in errors))]


def plain_messages(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every relevant error as ``field: message``, in the order pydantic found them."""
    return [f"{field_path(e.get('loc') or ()) or '(top level)'}: {plain_message(e)}" for e in relevant(errors)]

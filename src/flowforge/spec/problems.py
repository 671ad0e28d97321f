"""Every problem pydantic found in a spec, in words: where, what, and the fields that would be accepted.

Validation reports all problems at once (a user fixing a file one error per run is a user lost), merges
"unknown field 'conection'" with "missing required field 'connection'" into one "did you mean" line, and
lists the fields a model allows when a key is unknown.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc      # without the tags discriminated unions add
    message: str

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc) or "(top level)"


def _leaves(annotation: Any) -> list[Any]:
    """The types an annotation can hold, through Annotated, unions, containers and forward refs."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _children(candidate: Any, part: str | int) -> list[Any]:
    """What ``candidate`` holds at ``part``: a field of a model, an item of a sequence, a value of a mapping."""
    origin = get_origin(candidate)
    if isinstance(part, int):
        if origin in (tuple, list, set, frozenset) or (origin is not None and str(origin).endswith("Sequence'>")):
            args = [a for a in get_args(candidate) if a is not Ellipsis]
            return [leaf for a in args for leaf in _leaves(a)]
        return []
    if origin is dict:
        pair = get_args(candidate)
        return _leaves(pair[1]) if len(pair) == 2 else []
    if isinstance(candidate, type) and issubclass(candidate, BaseModel):
        for name, info in candidate.model_fields.items():
            if part in (name, info.alias):
                return _leaves(info.annotation)
    return []


def _tagged(candidates: list[Any], tag: str) -> list[Any]:
    """The union members a discriminator tag (``ingest``, ``cron``) selects."""
    chosen = []
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            for info in c.model_fields.values():
                if get_origin(info.annotation) is Literal and tag in get_args(info.annotation):
                    chosen.append(c)
                    break
            else:
                if tag in c.model_fields:  # tagged by a key (a trigger's ``cron:``)
                    chosen.append(c)
    return chosen


def allowed_fields(root: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The field names the model at ``loc`` (a pydantic loc, tags included) accepts; ``root`` is a model or a
    union of models."""
    candidates: list[Any] = _leaves(root)
    for part in loc:
        nxt = [child for c in candidates for child in _children(c, part)]
        if not nxt and isinstance(part, str):
            nxt = _tagged(candidates, part)
        candidates = nxt
        if not candidates:
            return []
    names: set[str] = set()
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            names.update(info.alias or name for name, info in c.model_fields.items())
    return sorted(names)


def _message(err: Any) -> str:
    """One problem in plain words (the wording lives in ``spec/messages.py``, shared with the UI and API)."""
    from flowforge.spec.messages import plain_message

    return plain_message(err)


def describe(exc: ValidationError, root: Any, strip: Any = None) -> str:
    """Every problem on one line: ``tables.0.delimitr: unknown field 'delimitr' …; keys: must be a list``."""
    return "; ".join(f"{p.field}: {p.message}" for p in problems(exc, root, strip))


def problems(exc: ValidationError, root: Any, strip: Any = None) -> list[Problem]:
    """Every error of ``exc`` in words; ``strip`` drops discriminator tags from a location."""
    errors = exc.errors()
    found: list[Problem] = []
    missing = {(tuple(e["loc"][:-1]), e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"]}
    suggested: set[tuple[Loc, Any]] = set()
    for err in errors:
        raw = tuple(err["loc"])
        loc = strip(raw) if strip else raw
        if err["type"] == "extra_forbidden" and raw:
            parent, key = raw[:-1], str(raw[-1])
            allowed = allowed_fields(root, parent)
            wanted = [m for p, m in missing if p == parent]
            close = difflib.get_close_matches(key, [str(m) for m in wanted] or allowed, n=1, cutoff=0.6)
            text = f"unknown field '{key}'"
            if close:
                text += f" (did you mean '{close[0]}'?)"
                suggested.add((parent, close[0]))
            if allowed:
                text += f"; allowed: {', '.join(allowed)}"
            found.append(Problem(loc, text))
    deeper = [tuple(e["loc"]) for e in errors]
    for err in errors:
        raw = tuple(err["loc"])
        if err["type"] == "extra_forbidden" or (err["type"] == "missing" and (raw[:-1], raw[-1]) in suggested):
            continue
        if err["type"] == "too_short" and any(len(d) > len(raw) and d[:len(raw)] == raw for d in deeper):
            continue  # the list is short only because its failing items were dropped: they are reported
        message = _message(err)
        if raw and isinstance(raw[-1], str):
            message = message.removeprefix(f"{raw[-1]}: ")  # a validator that already named its field
        found.append(Problem(strip(raw) if strip else raw, message))
    return found

"""Spec text helpers shared by the workflow service and templates: YAML out, validation issues in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError


@dataclass(frozen=True)
class ValidationIssue:
    """One problem for an inline message: the field path, its line in the YAML given, what is wrong."""

    field: str
    line: int | None
    message: str


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)
_CDumper: Any = None
if hasattr(yaml, "CSafeDumper"):  # PyYAML built with libyaml: five times faster
    class _CDumper(yaml.CSafeDumper):  # type: ignore[misc,no-redef]
        pass

    _CDumper.add_representer(str, _str_presenter)

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # beyond the Basic Multilingual Plane (an emoji)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML for a spec mapping: keys in order, multi-line SQL as ``|`` blocks.

    Written by libyaml, unless a text holds a character beyond the Basic Multilingual Plane (an
    emoji), which libyaml would write as an escape (``"\\U0001F600"``): PyYAML's own emitter writes
    it as it is. For printable text the two write the same bytes, but that libyaml ends a document
    whose last value keeps its trailing blank lines (``|+``) with ``...``; libyaml also quotes the
    line-break characters NEL, LS and PS, which PyYAML's emitter writes in a form that does not load
    back (``tests/unit/test_spec_text.py``)."""
    mapping = dict(data)
    dumper = _CDumper if _CDumper is not None and _bmp_only(mapping) else _Dumper
    text: str = yaml.dump(mapping, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text


def _bmp_only(value: Any) -> bool:
    if isinstance(value, str):
        return _ASTRAL.search(value) is None
    if isinstance(value, Mapping):
        return all(_bmp_only(k) and _bmp_only(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_bmp_only(v) for v in value)
    return True


def validation_issues(exc: ValidationError, loaded: Any, prefix: tuple[str | int, ...]) -> list[ValidationIssue]:
    """Every problem of a workflow's validation in plain words (close matches and allowed fields for an
    unknown one), with its line; locations inside ``prefix`` (one job) are given relative to it."""
    from flowforge.spec.loader import line_for, strip_tags
    from flowforge.spec.problems import problems
    from flowforge.spec.workflow import Workflow

    out = []
    for problem in problems(exc, Workflow, strip_tags):
        loc, msg = problem.loc, problem.message
        inside = loc[len(prefix):] if loc[:len(prefix)] == prefix else None
        if inside is None:
            out.append(ValidationIssue(".".join(map(str, loc)) or "(workflow)", None, msg))
        else:
            out.append(ValidationIssue(".".join(map(str, inside)) or "(job)", line_for(loaded, inside), msg))
    return out

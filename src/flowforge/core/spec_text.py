"""Spec text helpers shared by the workflow service and templates: YAML out, validation issues in."""

from __future__ import annotations

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


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML for a spec mapping: keys in order, multi-line SQL as ``|`` blocks."""
    text: str = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text


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

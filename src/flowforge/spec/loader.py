"""YAML loading that remembers where every value came from, so errors say file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from flowforge.errors import SpecError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedYaml:
    data: Any
    lines: dict[Loc, int]
    file: str


_MAX_VALUES = 200_000  # a spec has thousands; aliases that multiply (a "billion laughs") stop here


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], inside: set[int], count: list[int]) -> None:
    """Record each value's line; refuses an alias that contains itself and aliases that multiply."""
    count[0] += 1
    if count[0] > _MAX_VALUES:
        raise SpecError(f"the YAML expands to more than {_MAX_VALUES:,} values",
                        hint="Write the values out instead of repeating anchors (&name / *name).")
    if id(node) in inside:
        raise SpecError("a YAML alias refers to the value that contains it", line=node.start_mark.line + 1,
                        hint="Remove the alias (*name) or point it at another anchor.")
    lines[loc] = node.start_mark.line + 1
    inside.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            lines[(*loc, k)] = key.start_mark.line + 1
            _walk(value, (*loc, k), lines, inside, count)
            # the key's own line is more useful than the value's for "unknown field"
            lines[(*loc, k)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, inside, count)
    inside.discard(id(node))


# libyaml's parser where PyYAML was built with it (the wheels are): a run reads flowforge.yml and
# its workflow file, and the pure-Python parser spent ~40 ms on the demo's two.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its values, from one parse (``yaml.safe_load`` is
    this same construction from the same nodes)."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str) -> LoadedYaml:
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise SpecError(f"invalid YAML: {exc.problem or exc}", file=file, line=line,
                        hint="Check indentation and quoting around that line.") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        try:
            _walk(node, (), lines, set(), [0])
        except SpecError as exc:
            raise SpecError(exc.message, file=file, line=exc.line, hint=exc.hint) from None
    return LoadedYaml(data=data, lines=lines, file=file)


def load_yaml(path: Path) -> LoadedYaml:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", file=str(path), hint="Check the path.") from None
    return load_yaml_text(text, str(path))


def line_for(loaded: LoadedYaml, loc: Loc) -> int | None:
    """The line of the deepest part of ``loc`` that exists in the file."""
    parts = list(loc)
    while parts:
        if tuple(parts) in loaded.lines:
            return loaded.lines[tuple(parts)]
        parts.pop()
    return loaded.lines.get(())


def strip_tags(loc: tuple[str | int, ...]) -> Loc:
    """The location without the tags discriminated unions add after a list index
    (``("jobs", 0, "ingest", "tables")``, ``("triggers", 0, "every", "every")``)."""
    from flowforge.spec.jobs import JOB_KINDS
    from flowforge.spec.triggers import TRIGGER_KEYS

    tags = {*JOB_KINDS, *TRIGGER_KEYS}
    return tuple(p for i, p in enumerate(loc) if not (i and isinstance(loc[i - 1], int) and p in tags))


def spec_error_from(exc: ValidationError, loaded: LoadedYaml, root: type[BaseModel] | None = None) -> SpecError:
    """Every pydantic error as one SpecError: the first problem's line, and each problem with its own line."""
    from flowforge.spec.problems import problems

    if root is None:
        from flowforge.spec.workflow import Workflow

        root = Workflow
    found = sorted(problems(exc, root, strip_tags), key=lambda p: line_for(loaded, p.loc) or 0)
    first = found[0]
    hint = "Fix the field and run 'flowforge validate'." if len(found) == 1 else \
        "Fix these fields and run 'flowforge validate'."
    if len(found) == 1:
        return SpecError(f"{first.field}: {first.message}", file=loaded.file, line=line_for(loaded, first.loc),
                         hint=hint)
    listed = "\n".join(f"  line {line_for(loaded, p.loc) or '?'}: {p.field}: {p.message}" for p in found)
    return SpecError(f"{len(found)} problems:\n{listed}", file=loaded.file, line=line_for(loaded, first.loc),
                     hint=hint)


def parse_workflow(text: str, file: str = "<string>") -> Any:
    from flowforge.spec.workflow import Workflow

    loaded = load_yaml_text(text, file)
    if not isinstance(loaded.data, dict):
        raise SpecError("a workflow file must be a mapping with 'name' and 'jobs'", file=file, line=1)
    try:
        wf = Workflow.model_validate(loaded.data)
    except ValidationError as exc:
        raise spec_error_from(exc, loaded) from None
    except SpecError as exc:
        raise SpecError(exc.message, file=file, line=exc.line, hint=exc.hint) from None
    return wf


def load_workflow_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("workflow file not found", file=str(path),
                        hint="List workflows with 'flowforge workflows list'.") from None
    return parse_workflow(text, str(path))

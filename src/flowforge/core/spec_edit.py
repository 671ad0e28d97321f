"""Edit workflow YAML in place: a change keeps the file's comments, key order and layout.

The UI and API change a workflow as plain data (a job from the editor, new tags); ``merge_text``
applies such a change to the file's text, touching only the values that differ, so every comment
on what stayed the same survives. A job given as YAML text brings its own comments
(``job_node``), and ``job_text`` shows one job of a file with its comments.

Example::

    text = merge_text(path.read_text(), {**spec, "tags": ["bfsi", "pilot"]})
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from flowforge.errors import SpecError

_IDENTITY = ("name", "target", "table")  # how list items are matched between the old and the new list


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long SQL or descriptions
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load(text: str, file: str = "workflow") -> Any:
    """The round-trip document of ``text`` (comments attached); SpecError with the line when it does not parse."""
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"not valid YAML: {problem}", file=file,
                        line=mark.line + 1 if mark is not None else None) from None


def dump(node: Any) -> str:
    out = io.StringIO()
    _yaml().dump(node, out)
    return out.getvalue()


def _fresh(value: Any) -> Any:
    """Plain data as round-trip nodes (multi-line strings as ``|`` blocks)."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _fresh(v)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([_fresh(v) for v in value])
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


def _identity(item: Any) -> Any:
    if isinstance(item, Mapping):
        for key in _IDENTITY:
            if isinstance(item.get(key), str):
                return (key, item[key])
    return None


def merge(old: Any, new: Any) -> Any:
    """``new`` (plain data) laid over the round-trip node ``old``: equal parts keep their node (and comments)."""
    if isinstance(old, CommentedMap) and isinstance(new, Mapping):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = merge(old[key], value) if key in old else _fresh(value)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list | tuple):
        return _merge_seq(old, list(new))
    if _plain(old) == new and type(_plain(old)) is type(new):
        return old  # same value: keep its quoting and style
    return _fresh(new)


def _merge_seq(old: CommentedSeq, new: list[Any]) -> CommentedSeq:
    """Items matched by identity (a job's name, a table's target), else by position when the old item
    at that position is not wanted elsewhere; matched items keep their node, style and comments."""
    keys_old = [_identity(x) for x in old]
    keys_new = [_identity(x) for x in new]
    where = {k: j for j, k in enumerate(keys_old) if k is not None and keys_old.count(k) == 1}
    match: list[int | None] = []
    used: set[int] = set()
    for k in keys_new:
        j = where.get(k) if k is not None else None
        match.append(j if j is not None and j not in used else None)
        if j is not None:
            used.add(j)
    for i, j in enumerate(match):
        if j is None and i < len(old) and i not in used and (keys_old[i] is None or keys_old[i] not in keys_new):
            match[i] = i
            used.add(i)
    taken = [j for j in match if j is not None]
    if taken != sorted(taken):  # reordered: rebuilt (comments between items may move)
        items = [merge(old[j], v) if j is not None else _fresh(v) for j, v in zip(match, new, strict=True)]
        del old[:]
        old.extend(items)
        return old
    for j in reversed(range(len(old))):
        if j not in used:
            del old[j]
    for i, (j, value) in enumerate(zip(match, new, strict=True)):
        if j is None:
            old.insert(i, _fresh(value))
        else:
            old[i] = merge(old[i], value)
    return old


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def plain(node: Any) -> Any:
    """Round-trip nodes as plain dicts, lists and scalars."""
    return _plain(node)


def merge_text(text: str, new: Mapping[str, Any], file: str = "workflow") -> str:
    """``text`` changed to say ``new``, keeping every comment on what did not change. When only jobs
    changed (edited, added or removed), the other lines of the file stay exactly as they were."""
    doc = load(text, file) if text.strip() else None
    if not isinstance(doc, CommentedMap):
        return dump(_fresh(new))
    if _plain(doc) == new:
        return text
    spliced = _splice_jobs(text, doc, new)
    if spliced is not None:
        return spliced
    return dump(merge(doc, new))


def _splice_jobs(text: str, doc: CommentedMap, new: Mapping[str, Any]) -> str | None:
    """Rewrite only the lines of the jobs that changed; None when more than jobs changed."""
    old_jobs, new_jobs = doc.get("jobs"), new.get("jobs")
    if not isinstance(old_jobs, CommentedSeq) or not isinstance(new_jobs, list | tuple) or not old_jobs:
        return None
    if {k: _plain(v) for k, v in doc.items() if k != "jobs"} != {k: v for k, v in new.items() if k != "jobs"}:
        return None
    if list(doc) != [k for k in new if k in doc] or not all(isinstance(j, CommentedMap) for j in old_jobs):
        return None
    old_names = [j.get("name") for j in old_jobs]
    new_names = [j.get("name") if isinstance(j, Mapping) else None for j in new_jobs]
    lines = text.splitlines(keepends=True)
    starts = [j.lc.line for j in old_jobs]
    end = _jobs_end(doc, lines)
    ranges = [(a, b) for a, b in zip(starts, [*starts[1:], end], strict=True)]
    column = old_jobs[0].lc.col - 2  # where the "- " of a job stands
    if column < 0 or any(j.lc.col - 2 != column for j in old_jobs):
        return None
    if old_names == new_names[:len(old_names)]:  # jobs changed, and perhaps some added at the end
        if len(new_names) > len(old_names):
            b = ranges[-1][1]
            tail = "" if lines[b - 1].endswith("\n") else "\n"
            lines[b:b] = [tail + "".join(_job_lines(_fresh(j), column) for j in new_jobs[len(old_names):])]
        for i in reversed(range(len(old_jobs))):
            if _plain(old_jobs[i]) != new_jobs[i]:
                a, b = ranges[i]
                lines[a:b] = [_job_lines(merge(old_jobs[i], new_jobs[i]), column)]
    elif [n for n in old_names if n in new_names] == new_names and len(set(old_names)) == len(old_names):
        floor = doc.lc.key("jobs")[0] + 1
        above = []  # a removed job takes the comment lines just above it along, and leaves the next one's
        for i, start in enumerate(starts):
            lowest = max(floor, starts[i - 1] + 1 if i else floor)
            while start - 1 >= lowest and lines[start - 1].lstrip().startswith("#"):
                start -= 1
            above.append(start)
        for i in reversed(range(len(old_jobs))):  # jobs removed
            if old_names[i] not in new_names:
                del lines[above[i]:(above[i + 1] if i + 1 < len(above) else end)]
            elif _plain(old_jobs[i]) != new_jobs[new_names.index(old_names[i])]:
                return None
    else:
        return None
    out = "".join(lines)
    try:
        return out if _reads_as(out) == new else None
    except SpecError:
        return None


def _reads_as(text: str) -> Any:
    """What ``text`` says, read by PyYAML's C loader (a fast check that a splice says what was meant)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a safe loader (C or Python)
    except yaml.YAMLError:
        return None


def _jobs_end(doc: CommentedMap, lines: list[str]) -> int:
    """The line after the jobs list: the next top-level key's line, or the end of the file."""
    keys = list(doc)
    after = keys[keys.index("jobs") + 1:]
    if not after:
        return len(lines)
    line: int = doc.lc.key(after[0])[0]
    while line > 0 and lines[line - 1].lstrip().startswith("#"):  # a comment above the next key stays with it
        line -= 1
    return line


def _job_lines(node: Any, column: int) -> str:
    body = dump(CommentedSeq([node]))
    rows = body.splitlines(keepends=True)
    indent = min(len(r) - len(r.lstrip(" ")) for r in rows if r.strip())
    pad = " " * column
    return "".join(pad + r[indent:] if r.strip() else r for r in rows)


def _job_spans(doc: CommentedMap, lines: list[str]) -> list[tuple[int, int]] | None:
    """Each job's lines: from its ``- `` line to the comment lines above the next job (or the end of
    the list), trailing blank lines left out. None when the jobs are not a block list of mappings."""
    jobs = doc.get("jobs")
    if not isinstance(jobs, CommentedSeq) or not jobs or not all(isinstance(j, CommentedMap) for j in jobs):
        return None
    if any(j.lc.col < 2 or j.lc.col != jobs[0].lc.col for j in jobs):
        return None
    starts = [j.lc.line for j in jobs]
    end = _jobs_end(doc, lines)
    floor = doc.lc.key("jobs")[0] + 1
    spans = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else end
        while stop - 1 > start and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")) \
                and (i + 1 < len(starts) or not lines[stop - 1].strip()):
            stop -= 1
        spans.append((max(start, floor), stop))
    return spans


def job_text(text: str, index: int) -> str:
    """The YAML of the workflow's ``index``-th job as the file writes it, comments included."""
    doc = load(text)
    lines = text.splitlines(keepends=True)
    spans = _job_spans(doc, lines)
    if spans is None:
        return dump(doc["jobs"][index])
    a, b = spans[index]
    cut = doc["jobs"][index].lc.col
    out = "".join(r[cut:] if r[:cut].strip() in ("", "-") else r.lstrip() for r in lines[a:b])
    return out if out.endswith("\n") else out + "\n"


def job_node(text: str, file: str = "job") -> Any:
    """A job given as YAML text, as a round-trip node (its comments kept)."""
    return load(text, file)


def replace_job(text: str, index: int | None, job_yaml: str) -> str:
    """``text`` with job ``index`` replaced by the job written as ``job_yaml`` (appended when ``index``
    is None): the job's lines are put in as the user wrote them, the rest of the file stays as it was."""
    doc = load(text)
    node = job_node(job_yaml)
    jobs = doc["jobs"]
    if index is not None and job_text(text, index) == job_yaml:
        return text
    lines = text.splitlines(keepends=True)
    spans = _job_spans(doc, lines)
    if spans is not None:
        column = jobs[0].lc.col - 2
        body = _as_item(job_yaml, column)
        if index is None:
            end = _jobs_end(doc, lines)
            lines[end:end] = ["" if not lines or lines[end - 1].endswith("\n") else "\n", body]
        else:
            a, b = spans[index]
            lines[a:b] = [body]
        out = "".join(lines)
        expected = [*_plain(jobs)]
        if index is None:
            expected.append(_plain(node))
        else:
            expected[index] = _plain(node)
        try:
            if (_reads_as(out) or {}).get("jobs") == expected:
                return out
        except SpecError:
            pass
    if index is None:
        jobs.append(node)
    else:
        jobs[index] = node
    return dump(doc)


def _as_item(job_yaml: str, column: int) -> str:
    """A job's own YAML (a mapping at column 0) as an item of the jobs list at ``column``."""
    rows = job_yaml.splitlines(keepends=True)
    while rows and not rows[-1].strip():
        rows.pop()
    first = next((i for i, r in enumerate(rows) if r.strip() and not r.lstrip().startswith("#")), 0)
    pad = " " * max(column, 0)
    out = []
    for i, r in enumerate(rows):
        if not r.strip():
            out.append(r if r.endswith("\n") else r + "\n")
            continue
        line = pad + ("- " if i == first else "  ") + r
        out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)

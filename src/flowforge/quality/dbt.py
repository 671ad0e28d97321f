"""``flowforge import dbt-tests models/schema.yml``: dbt's schema tests as FlowForge tests.

| dbt | FlowForge |
|---|---|
| ``unique``, ``not_null`` | ``unique``, ``not_null`` |
| ``accepted_values: {values}`` | ``accepted_values`` |
| ``dbt_utils.not_accepted_values: {values}`` | ``not_accepted_values`` |
| ``relationships: {to: ref('m'), field}`` | ``relationships: {to: <table of m>, field}`` |
| ``dbt_utils.expression_is_true`` (model or column) | ``expression`` |
| ``dbt_utils.unique_combination_of_columns`` | ``unique_combination`` |
| ``dbt_utils.accepted_range`` | ``range`` |
| ``dbt_utils.not_null_proportion: {at_least}`` | ``not_null`` with ``mostly`` |
| ``dbt_utils.recency: {datepart, field, interval}`` | ``freshness`` |
| ``dbt_utils.equal_rowcount: {compare_model}`` | ``reconcile`` of ``count(*)`` |
| ``dbt_utils.at_least_one`` | ``row_count: {min: 1}`` where the column is not null |
| ``dbt_expectations.expect_column_values_to_match_regex`` | ``regex`` |
| ``dbt_expectations.expect_column_values_to_be_between`` | ``range`` |
| ``dbt_expectations.expect_table_row_count_to_be_between`` | ``row_count`` |
| ``dbt_expectations.expect_column_{min,max,mean,median,sum,stdev}_to_be_between`` | ``aggregate`` |

``config: {severity: warn}`` becomes ``severity: warn`` (dbt's ``error`` is FlowForge's ``fail``),
``config: {where: ...}`` becomes ``where``. A test that cannot be translated (a custom generic
test, Jinja in an argument) is listed with the reason, never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flowforge.engine.sql import quote
from flowforge.errors import ConfigError, SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context

_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$""")
_SOURCE = re.compile(r"""^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$""")
_DATEPART = {"minute": "m", "hour": "h", "day": "d", "week": "w"}
_AGGREGATES = {"expect_column_min_to_be_between": "min", "expect_column_max_to_be_between": "max",
               "expect_column_mean_to_be_between": "avg", "expect_column_median_to_be_between": "median",
               "expect_column_sum_to_be_between": "sum", "expect_column_stdev_to_be_between": "stddev_samp"}


@dataclass(frozen=True)
class Skipped:
    model: str
    column: str | None
    test: str
    reason: str


@dataclass(frozen=True)
class DbtImport:
    """Translated tests by FlowForge table, in YAML's compact form; what could not be translated."""

    tables: dict[str, list[dict[str, Any]]]
    skipped: tuple[Skipped, ...] = ()
    written: str | None = None  # the workflow file written, if any
    added: int = 0  # tests added to it (those already there are not repeated)
    models: dict[str, str] = field(default_factory=dict)  # dbt model → table

    @property
    def count(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def yaml(self) -> str:
        from flowforge.core.spec_text import dump_yaml

        parts = []
        for table, tests in self.tables.items():
            parts.append(f"# {table}\n" + dump_yaml({"tests": tests}))
        return "\n".join(parts)


def read_schema(source: Path | str, tables: dict[str, str]) -> DbtImport:
    """Translate every model and source table of a dbt schema.yml: a file (``Path``) or its text (``str``)."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read the dbt schema file: {exc.strerror}", file=str(source)) from None
        where = str(source)
    else:
        text, where = source, "schema.yml"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=where) from None
    if not isinstance(doc, dict) or not (doc.get("models") or doc.get("sources")):
        raise SpecError("a dbt schema file has 'models:' (or 'sources:') with columns and tests", file=where,
                        hint="Give the schema.yml of your dbt models, e.g. models/schema.yml.")
    entities: list[tuple[str, dict[str, Any]]] = [(str(m.get("name")), m) for m in doc.get("models") or []
                                                  if isinstance(m, dict)]
    for src in doc.get("sources") or []:
        for t in (src.get("tables") or []) if isinstance(src, dict) else []:
            if isinstance(t, dict):
                entities.append((str(t.get("name")), t))
    out: dict[str, list[dict[str, Any]]] = {}
    skipped: list[Skipped] = []
    models = {}
    for name, entity in entities:
        table = tables.get(name, name)
        models[name] = table
        found: list[dict[str, Any]] = []
        for col in entity.get("columns") or []:
            if isinstance(col, dict):
                for test in _tests_of(col):
                    _add(found, skipped, name, str(col.get("name")), test, tables)
        for test in _tests_of(entity):
            _add(found, skipped, name, None, test, tables)
        if found:
            out.setdefault(table, []).extend(found)
    return DbtImport(out, tuple(skipped), models=models)


def _tests_of(node: dict[str, Any]) -> list[Any]:
    return list(node.get("data_tests") or []) + list(node.get("tests") or [])


def _add(found: list[dict[str, Any]], skipped: list[Skipped], model: str, column: str | None, test: Any,
         tables: dict[str, str]) -> None:
    from pydantic import TypeAdapter, ValidationError

    from flowforge.quality.spec import Tests

    name, args = (test, {}) if isinstance(test, str) else next(iter(test.items())) if isinstance(test, dict) and \
        len(test) == 1 else (str(test), None)
    if args is None or not isinstance(args, dict):
        skipped.append(Skipped(model, column, str(name), "not a dbt test entry"))
        return
    try:
        spec = _translate(str(name), dict(args), column, tables)
    except ValueError as exc:
        skipped.append(Skipped(model, column, str(name), str(exc)))
        return
    try:
        parsed = TypeAdapter(Tests).validate_python([spec])[0]
    except ValidationError as exc:
        skipped.append(Skipped(model, column, str(name), exc.errors()[0]["msg"]))
        return
    compact = _compact(parsed.model_dump(mode="json", exclude_defaults=True))
    if compact not in found:
        found.append(compact)


def _translate(name: str, args: dict[str, Any], column: str | None, tables: dict[str, str]) -> dict[str, Any]:
    config = dict(args.pop("config", None) or {})
    for key in ("severity", "where", "name"):
        if key in args:
            config.setdefault(key, args.pop(key))
    args.pop("column_name", None)
    if "{{" in repr(args) or "{{" in str(config.get("where", "")):
        raise ValueError("Jinja in a test argument cannot be translated")
    kind = name.split(".")[-1]
    col = args.pop("column", column)
    spec: dict[str, Any]
    if kind in ("unique", "not_null"):
        spec = {"test": kind, "column": _need(col, kind)}
    elif kind == "accepted_values":
        spec = {"test": "accepted_values", "column": _need(col, kind), "values": list(args.pop("values", []))}
        args.pop("quote", None)
    elif kind == "not_accepted_values":
        spec = {"test": "not_accepted_values", "column": _need(col, kind), "values": list(args.pop("values", []))}
        args.pop("quote", None)
    elif kind == "relationships":
        spec = {"test": "relationships", "column": _need(col, kind), "to": _model(args.pop("to", ""), tables),
                "field": args.pop("field", None)}
    elif kind == "expression_is_true":
        expr = str(args.pop("expression", ""))
        spec = {"test": "expression", "sql": f"{quote(col)} {expr}" if col else expr}
    elif kind == "unique_combination_of_columns":
        spec = {"test": "unique_combination", "columns": list(args.pop("combination_of_columns", []))}
        args.pop("quote_columns", None)
    elif kind in ("accepted_range", "expect_column_values_to_be_between"):
        inclusive = bool(args.pop("inclusive", True))
        strictly = bool(args.pop("strictly", False))
        spec = {"test": "range", "column": _need(col, kind), "min": args.pop("min_value", None),
                "max": args.pop("max_value", None), "strict_min": not inclusive or strictly,
                "strict_max": not inclusive or strictly}
    elif kind == "not_null_proportion":
        spec = {"test": "not_null", "column": _need(col, kind), "mostly": args.pop("at_least", None)}
    elif kind == "recency":
        part = str(args.pop("datepart", "day")).lower()
        if part not in _DATEPART:
            raise ValueError(f"recency in '{part}' units cannot be translated (minute, hour, day or week)")
        spec = {"test": "freshness", "column": args.pop("field", col),
                "max_age": f"{args.pop('interval', 1)}{_DATEPART[part]}"}
    elif kind == "equal_rowcount":
        spec = {"test": "reconcile", "expression": "count(*)", "against": _model(args.pop("compare_model", ""),
                                                                                tables)}
    elif kind == "at_least_one":
        spec = {"test": "row_count", "min": 1, "where": f"{quote(_need(col, kind))} IS NOT NULL",
                "name": f"at_least_one({col})"}
    elif kind == "expect_column_values_to_match_regex":
        spec = {"test": "regex", "column": _need(col, kind), "pattern": args.pop("regex", "")}
        args.pop("is_raw", None)
    elif kind in _AGGREGATES:
        spec = {"test": "aggregate", "sql": f"{_AGGREGATES[kind]}({quote(_need(col, kind))})",
                "min": args.pop("min_value", None), "max": args.pop("max_value", None),
                "strict_min": bool(args.pop("strict_min", False)), "strict_max": bool(args.pop("strict_max", False))}
    elif kind == "expect_table_row_count_to_be_between":
        spec = {"test": "row_count", "min": args.pop("min_value", None), "max": args.pop("max_value", None)}
    else:
        raise ValueError("no FlowForge equivalent (a custom or unsupported generic test)")
    left = {k: v for k, v in args.items() if v is not None}
    if left:
        raise ValueError(f"argument(s) {', '.join(sorted(left))} cannot be translated")
    severity = str(config.get("severity", "")).lower()
    if severity:
        spec["severity"] = "warn" if severity == "warn" else "fail"
    if config.get("where"):
        spec["where"] = str(config["where"])
    if config.get("name"):
        spec["name"] = str(config["name"])
    return {k: v for k, v in spec.items() if v is not None}


def _need(column: Any, kind: str) -> str:
    if not column:
        raise ValueError(f"'{kind}' needs a column")
    return str(column)


def _model(ref: Any, tables: dict[str, str]) -> str:
    text = str(ref)
    m = _REF.match(text)
    if m:
        name = m.group(2) or m.group(1)
    else:
        s = _SOURCE.match(text)
        if not s:
            raise ValueError(f"'{text}' is not ref('model') or source('source', 'table')")
        name = s.group(2)
    return tables.get(name, name)


def _compact(spec: dict[str, Any]) -> dict[str, Any]:
    """``{test: unique, column: id}`` → ``{unique: id}``; otherwise ``{kind: {arguments}}``."""
    from flowforge.quality.base import TEST_KINDS

    kind = spec.pop("test")
    shorthand = TEST_KINDS[kind].shorthand
    if shorthand and set(spec) == {shorthand}:
        return {kind: spec[shorthand]}
    return {kind: spec}


def write_into(ctx: Context, imported: DbtImport, workflow: str) -> DbtImport:
    """Add the tests next to their tables in ``workflow``'s file (validated, audited); a table the
    workflow does not write is an error naming the tables it does."""
    path = ctx.workflow_path(workflow)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = {}
    for job in data.get("jobs") or []:
        for entry in (job.get("tables") or []) if isinstance(job, dict) else []:
            if isinstance(entry, dict) and entry.get("target"):
                entries[str(entry["target"])] = entry
    renamed: dict[str, list[dict[str, Any]]] = {}
    for table, tests in imported.tables.items():
        target = table if table in entries else _suffix_match(table, entries)
        if target is None:
            raise ConfigError(f"Workflow '{workflow}' writes no table '{table}' (tables: {', '.join(entries)}).",
                              hint="Map dbt models to tables with --table model=table.")
        renamed.setdefault(target, []).extend(tests)
    added = 0
    for target, tests in renamed.items():
        have = list(entries[target].get("tests") or [])
        for t in tests:
            if t not in have:
                have.append(t)
                added += 1
        entries[target]["tests"] = have
    ctx.workflows.update(data.get("name") or path.stem, data)
    return replace(imported, tables=renamed, written=str(path), added=added)


def _suffix_match(model: str, entries: dict[str, Any]) -> str | None:
    """``customers`` → the one table named ``<prefix>_customers`` (silver_customers), if exactly one."""
    hits = [t for t in entries if t.endswith("_" + model)]
    return hits[0] if len(hits) == 1 else None

"""Child commands of the ``ecommerce`` benchmark (one per process; heavy imports happen here).

    python bench/ecommerce_child.py generate --url URL --scale S
    python bench/ecommerce_child.py csv --scale S --dir D                  # the generator's rows as CSV files
    python bench/ecommerce_child.py copy-script --dir D --schema S --out F [--keys]   # psql script: COPY FROM
    python bench/ecommerce_child.py export-script --dir D --schema S --out F          # psql script: \\copy TO
    python bench/ecommerce_child.py project --url URL --dir D              # a project with connection 'shop'

Every command prints one JSON object as its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _generate(args: argparse.Namespace) -> dict[str, object]:
    from flowforge.demo.ecommerce_load import load_postgres

    started = time.perf_counter()
    summary = load_postgres(args.url, scale=args.scale, seed=42, schema=args.schema)
    return {"rows": summary.total, "seconds": time.perf_counter() - started, "tables": summary.rows}


def _csv(args: argparse.Namespace) -> dict[str, object]:
    import pyarrow.csv as pacsv

    from flowforge.demo.ecommerce import iter_tables

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for name, table in iter_tables(args.scale, 42):
        pacsv.write_csv(table, out / f"{name}.csv", pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        rows += table.num_rows
    return {"rows": rows}


def _copy_script(args: argparse.Namespace) -> dict[str, object]:
    """The floor: the same tables created and filled by psql's \\copy (and, with --keys, the same
    keys and indexes the generator adds), in one transaction like the generator's."""
    from flowforge.demo.ecommerce_load import _key_clauses, index_columns
    from flowforge.demo.ecommerce_schema import ECOMMERCE_DDL, TABLES
    from flowforge.demo.loaders import create_table_sql, postgres_type

    s = args.schema
    lines = ["\\set ON_ERROR_STOP on", "BEGIN;", f'CREATE SCHEMA IF NOT EXISTS "{s}";',
             "DROP TABLE IF EXISTS " + ", ".join(f'"{s}"."{t}"' for t in reversed(TABLES)) + ";"]
    for name in TABLES:
        lines.append(create_table_sql(ECOMMERCE_DDL[name], f'"{s}"."{name}"', constraints=False,
                                      type_map=postgres_type) + ";")
        lines.append(f"\\copy \"{s}\".\"{name}\" FROM '{Path(args.dir) / (name + '.csv')}' WITH (FORMAT csv)")
    if args.keys:
        for name in TABLES:
            keys = ", ".join(f"ADD {c}" for c in _key_clauses(name, f'"{s}".'))
            lines.append(f'ALTER TABLE "{s}"."{name}" {keys};')
            lines += [f'CREATE INDEX "ix_{name}_{c}" ON "{s}"."{name}" ("{c}");' for c in index_columns(name)]
        lines += [f'ANALYZE "{s}"."{name}";' for name in TABLES]
    lines.append("COMMIT;")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"statements": len(lines)}


def _export_script(args: argparse.Namespace) -> dict[str, object]:
    from flowforge.demo.ecommerce_schema import TABLES

    lines = ["\\set ON_ERROR_STOP on"] + [
        f"\\copy \"{args.schema}\".\"{t}\" TO '{Path(args.dir) / (t + '.csv')}' WITH (FORMAT csv, HEADER)"
        for t in TABLES]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"tables": len(TABLES)}


def _project(args: argparse.Namespace) -> dict[str, object]:
    import yaml

    root = Path(args.dir)
    (root / ".flowforge").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", "connections": {
        "shop": {"type": "postgres", "url": args.url, "schema": args.schema}}}), encoding="utf-8")
    from flowforge.core.context import Context

    with Context.open(root) as ctx:  # create the metadata database now, not inside a measured run
        ctx.metadata.list_audit(1)
    return {"project": str(root)}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=("generate", "csv", "copy-script", "export-script", "project"))
    p.add_argument("--url")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--schema", default="ecommerce")
    p.add_argument("--dir")
    p.add_argument("--out")
    p.add_argument("--keys", action="store_true")
    args = p.parse_args(argv)
    work = {"generate": _generate, "csv": _csv, "copy-script": _copy_script, "export-script": _export_script,
            "project": _project}[args.command]
    print(json.dumps(work(args), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

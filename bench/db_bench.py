"""``pg_bronze`` and ``mysql_bronze``: one database table to a bronze Delta table with FlowForge,
against the tools users reach for, each contestant in its own child process, all writing to the
same disk. The two benchmarks differ only in their ``Source``: the server, its table generator,
its contestants and its floor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from common import (
    Options,
    child,
    child_env,
    cli_module,
    flowforge_cli,
    mb,
    per_second,
    remove,
    rows_per_second,
    run_seconds,
)
from measure import Sample, Timing, format_table, interleave, print_round, run_child

DATABASE = "flowforge_bench"
WORKFLOW = "bronze_bench"
CONNECTION = "bench"
BRONZE = "bronze_bench"
PANDAS_MAX_ROWS = 1_000_000  # pandas needs ~1.5 GB per million rows; above this only with --full


@dataclass(frozen=True)
class Contestant:
    name: str
    label: str
    output: str | None  # "delta", "parquet", "parquet_dir" or None (a floor writes nothing)
    partitions: int = 1

    @property
    def is_flowforge(self) -> bool:
        return self.name.startswith("flowforge")

    @property
    def command(self) -> str:
        """The child.py command that runs it (partitioned variants share their tool's)."""
        return self.name.removesuffix("_p2")


@dataclass(frozen=True)
class Source:
    """What one benchmark reads from."""

    benchmark: str  # "pg_bronze"
    product: str  # "PostgreSQL"
    connection_type: str  # the FlowForge connection type
    prepare: str  # the child.py command that creates the table
    contestants: tuple[Contestant, ...]
    floor: str | None  # the contestant that only reads (the source's own rate)

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.contestants if not c.is_flowforge and c.name != self.floor)

    def contestant(self, name: str) -> Contestant:
        return next(c for c in self.contestants if c.name == name)


FLOWFORGE = (Contestant("flowforge", "FlowForge run (ingest → bronze Delta)", "delta"),
             Contestant("flowforge_p2", "FlowForge run, read_partitions: 2", "delta", 2))
DLT = Contestant("dlt", "dlt sql_database (pyarrow backend) → Parquet", "parquet_dir")
POSTGRES = Source("pg_bronze", "PostgreSQL", "postgres", "prepare", (
    *FLOWFORGE,
    Contestant("connectorx", "connectorx → Parquet", "parquet"),
    Contestant("connectorx_p2", "connectorx 2 partitions → Parquet", "parquet", 2),
    Contestant("pandas", "pandas.read_sql → to_parquet", "parquet"),
    DLT,
    Contestant("adbc", "ADBC → ParquetWriter (no type fixes)", "parquet"),
    Contestant("copy", "COPY binary → /dev/null (floor)", None),
), floor="copy")
MYSQL = Source("mysql_bronze", "MariaDB", "mysql", "prepare-mysql", (
    *FLOWFORGE,
    Contestant("connectorx", "connectorx → Parquet", "parquet"),
    Contestant("connectorx_p2", "connectorx 2 partitions → Parquet", "parquet", 2),
    Contestant("pandas", "pandas.read_sql → to_parquet", "parquet"),
    DLT,
    Contestant("mysql_client", "mariadb --quick client → /dev/null (floor)", None),
), floor="mysql_client")
SOURCES = {s.benchmark: s for s in (POSTGRES, MYSQL)}


@dataclass(frozen=True)
class Setup:
    source: Source
    server: str
    rows: int

    @property
    def table(self) -> str:
        return f"ff_bench_{self.rows}"

    @property
    def url(self) -> str:
        return f"{self.server.rstrip('/')}/{DATABASE}"


class Unreachable(Exception):
    """The server could not be reached or prepared; the message says why."""


# -- the source table ----------------------------------------------------------------------

def prepare(opts: Options, setup: Setup) -> dict[str, Any]:
    print(f"preparing {setup.source.product} {DATABASE}.{setup.table} ({setup.rows:,} rows) ...", flush=True)
    sample = child(opts, setup.source.prepare, "--server", setup.server, "--db", DATABASE, "--table", setup.table,
                   "--rows", str(setup.rows))
    facts = sample.last_json()
    if not sample.ok or "error" in facts:
        raise Unreachable(facts.get("error") or sample.failure())
    what = f"generated in {facts['create_seconds']:.1f}s" if facts["created"] else "already there"
    print(f"  {facts['rows']:,} rows, {facts['table_bytes'] / 1e6:,.0f} MB on disk ({what}); "
          f"{setup.source.product} {facts['server_version']}")
    return facts


# -- contestants ---------------------------------------------------------------------------

def project_files(project: Path, setup: Setup, partitions: int) -> None:
    """A FlowForge project with one connection to the source and one ingest job."""
    (project / "workflows").mkdir(parents=True, exist_ok=True)
    extra = f", read_partitions: {partitions}" if partitions > 1 else ""
    (project / "flowforge.yml").write_text(
        "lakehouse: lakehouse\nconnections:\n"
        f'  {CONNECTION}: {{type: {setup.source.connection_type}, url: "{setup.url}"{extra}}}\n', encoding="utf-8")
    (project / "workflows" / f"{WORKFLOW}.yml").write_text(
        f"name: {WORKFLOW}\njobs:\n  - name: land\n    kind: ingest\n    connection: {CONNECTION}\n"
        f"    tables:\n      - {{table: {setup.table}, target: {BRONZE}}}\n", encoding="utf-8")


def fresh_project(opts: Options, setup: Setup, contestant: Contestant) -> Path:
    """An empty project whose metadata database is already migrated (a one-time cost users
    pay at their first command, not at every load)."""
    project = opts.workdir / contestant.name
    remove(project)
    project_files(project, setup, contestant.partitions)
    warm = run_child(flowforge_cli(opts, "-p", str(project), "runs"), env=child_env())
    if not warm.ok:
        raise RuntimeError(f"flowforge runs failed in {project}: {warm.failure()}")
    return project


def run_command(opts: Options, setup: Setup, contestant: Contestant) -> tuple[Callable[[], list[str]], Path]:
    """How to run one attempt, and where its output lands."""
    if contestant.is_flowforge:
        project = opts.workdir / contestant.name

        def flowforge() -> list[str]:
            fresh_project(opts, setup, contestant)
            return flowforge_cli(opts, "-p", str(project), "run", WORKFLOW)

        return flowforge, project / "lakehouse" / "bronze" / BRONZE
    out = opts.workdir / f"{contestant.name}.parquet"
    if contestant.output == "parquet_dir":
        out = opts.workdir / contestant.name
    args = [opts.python, str(Path(__file__).with_name("child.py")), contestant.command,
            "--url", setup.url, "--table", setup.table, "--partitions", str(contestant.partitions),
            "--workdir", str(opts.workdir)]
    if contestant.output:
        args += ["--out", str(out)]

    def other() -> list[str]:
        remove(out)
        return args

    return other, out


def measure_all(opts: Options, setup: Setup, contestants: list[Contestant]) -> dict[str, dict[str, Any]]:
    """Every contestant, interleaved round by round (see measure.interleave); then each
    contestant's last output is inspected and removed."""
    commands = {c.name: run_command(opts, setup, c) for c in contestants}

    def case(make: Callable[[], list[str]]) -> Callable[[int], Sample]:
        def once(_: int) -> Sample:
            try:
                cmd = make()
            except RuntimeError as exc:  # the unmeasured project setup failed
                return Sample(0.0, 0, 1, "", str(exc))
            return run_child(cmd, env=child_env())

        return once

    timings = interleave({name: case(make) for name, (make, _) in commands.items()}, repeat=opts.repeat,
                         on_round=print_round)
    results = {}
    for c in contestants:
        output = commands[c.name][1]
        facts = _inspect(opts, c, output, setup.table) if timings[c.name].ok else {}
        if not opts.keep:
            remove(output.parent.parent.parent if c.is_flowforge else output)
        results[c.name] = _result(setup, c, timings[c.name], facts)
    return results


def _inspect(opts: Options, contestant: Contestant, output: Path, table: str) -> dict[str, Any]:
    if contestant.output is None:
        return {}
    args = ["--kind", contestant.output, "--path", str(output), "--table", table]
    if contestant.is_flowforge:
        args += ["--project", str(output.parent.parent.parent)]
    return child(opts, "inspect", *args).last_json()


def _result(setup: Setup, contestant: Contestant, timing: Timing, facts: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"name": contestant.name, "label": contestant.label, "ok": timing.ok,
                            "timing": timing.summary()}
    if not timing.ok:
        return {**base, "error": timing.samples[-1].failure()}
    problem = _output_problem(setup, contestant, facts)
    if problem:
        # A run that exits 0 without writing the table must not count as a fast run.
        return {**base, "ok": False, "error": problem}
    own = timing.best.last_json()
    written = facts.get("bytes") if contestant.output else own.get("bytes")
    rows = facts.get("rows", setup.rows if contestant.output is None else None)
    inner = (run_seconds(timing.best.stdout) or facts.get("run", {}).get("seconds")) if contestant.is_flowforge \
        else own.get("work_seconds")
    return {**base, "seconds": timing.seconds, "inner_seconds": inner, "rows": rows,
            "rows_per_second": rows_per_second(rows, timing.seconds), "bytes": written,
            "mb_per_second": per_second(mb(written), timing.seconds),
            "bytes_are": "read stream" if contestant.output is None else f"{contestant.output} files",
            "peak_rss_mb": mb(timing.peak_rss_bytes), "codec": facts.get("codec"),
            "files": facts.get("files"), "row_groups": facts.get("row_groups"),
            "schema": facts.get("schema"), "sums": facts.get("sums"), "run": facts.get("run")}


def _output_problem(setup: Setup, contestant: Contestant, facts: dict[str, Any]) -> str | None:
    if contestant.output is None:
        return None
    if "rows" not in facts:
        return f"exited 0 but its output could not be read: {facts.get('error', 'no output')}"
    if contestant.is_flowforge and facts["rows"] != setup.rows:
        return f"wrote {facts['rows']:,} rows, expected {setup.rows:,}"
    return None


# -- reporting -----------------------------------------------------------------------------

def ratios(source: Source, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """speed = peer_seconds / flowforge_seconds; memory = peer_rss / flowforge_rss (>1: FlowForge
    is faster / smaller). ``vs_floor`` = flowforge_seconds / floor_seconds (1.0 is the floor)."""
    out: dict[str, dict[str, Any]] = {}
    floor = results.get(source.floor or "")
    for ff_name in ("flowforge", "flowforge_p2"):
        ff = results.get(ff_name)
        if not ff or not ff["ok"]:
            continue
        entry: dict[str, Any] = {}
        for peer in source.peers:
            other = results.get(peer)
            if other and other["ok"]:
                entry[peer] = {"speed": other["seconds"] / ff["seconds"],
                               "memory": other["peak_rss_mb"] / ff["peak_rss_mb"]}
        if floor and floor["ok"]:
            entry["vs_floor"] = ff["seconds"] / floor["seconds"]
        out[ff_name] = entry
    return out


def checks(facts: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Row counts and column sums of every output against the source's own."""
    rows = []
    for name, result in results.items():
        if not result["ok"] or result.get("sums") is None:
            continue
        row: dict[str, Any] = {"name": name, "rows": result["rows"], "rows_ok": result["rows"] == facts["rows"]}
        types = dict(result.get("schema") or [])
        for column, expected in facts["checks"].items():
            row[column] = _compare(expected, result["sums"].get(column), types.get(column, ""))
        rows.append(row)
    return rows


def _compare(expected: str, got: str | None, type_: str) -> str:
    if got is None:
        return f"n/a ({type_ or 'not numeric'})"[:40]
    try:
        want, have = Decimal(expected), Decimal(got)
    except InvalidOperation:
        return f"? {got}"
    lossy = " (as double)" if type_ in ("double", "float") else ""
    if want == have:
        return "exact" + lossy
    rel = abs(want - have) / max(abs(want), Decimal(1))
    return f"off by {float(rel):.1e} (relative){lossy}"


def print_report(setup: Setup, results: dict[str, dict[str, Any]], facts: dict[str, Any],
                 ratio: dict[str, dict[str, Any]], repeat_n: int) -> None:
    ok = [r for r in results.values() if r["ok"]]
    print(format_table(
        ["contestant", "wall s", "inner s", "rows/s", "MB written", "MB/s", "peak RSS MB", "codec"],
        [[r["name"], r["seconds"], r["inner_seconds"], r["rows_per_second"], mb(r["bytes"]), r["mb_per_second"],
          r["peak_rss_mb"], r["codec"]] for r in ok],
        title=f"\n{setup.source.benchmark}: {setup.rows:,} rows x 12 columns, best of {repeat_n} after a warm-up "
              f"run (MB/s = bytes written ÷ wall s; for the floor, bytes the server sent)"))
    for r in results.values():
        if not r["ok"]:
            print(f"  {r['name']}: FAILED {r.get('error')}")
    for ff_name, entry in ratio.items():
        rows = [[peer, v["speed"], v["memory"]] for peer, v in entry.items() if peer != "vs_floor"]
        print(format_table(["peer", "speed ratio", "memory ratio"], rows,
                           title=f"\n{ff_name} vs peers (peer ÷ {ff_name}: >1 means {ff_name} is faster / "
                                 f"smaller)"))
        if "vs_floor" in entry:
            print(f"{ff_name} takes {entry['vs_floor']:.2f}x the floor's time ({setup.source.floor})")
    _print_types(setup, facts, results)
    check_rows = checks(facts, results)
    print(format_table(["output", "rows", "rows ok", *facts["checks"]],
                       [[c["name"], c["rows"], c["rows_ok"], *(c[k] for k in facts["checks"])] for c in check_rows],
                       title=f"\nRow count and column sums against {setup.source.product}'s own"))


def _print_types(setup: Setup, facts: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    shown = [n for n in ("flowforge", "connectorx", "pandas", "dlt", "adbc") if results.get(n, {}).get("schema")]
    types = {n: dict(results[n]["schema"]) for n in shown}
    rows = [[col, declared, *(types[n].get(col, "—") for n in shown)] for col, declared in facts["declared"]]
    print(format_table(["column", setup.source.product, *shown], rows,
                       title="\nArrow types written (Parquet schema)"))


# -- entry points --------------------------------------------------------------------------

def selected(source: Source, names: list[str] | None, rows: int, full: bool) -> list[Contestant]:
    chosen = [source.contestant(n) for n in names] if names else list(source.contestants)
    if rows > PANDAS_MAX_ROWS and not full and not names:
        print(f"  (pandas skipped above {PANDAS_MAX_ROWS:,} rows without --full: it needs ~1.5 GB per "
              f"million rows)")
        chosen = [c for c in chosen if c.name != "pandas"]
    return chosen


def run_bronze(opts: Options, source: Source, server: str, rows: int, names: list[str] | None) -> dict[str, Any]:
    setup = Setup(source, server, rows)
    facts = prepare(opts, setup)
    print(f"contestants (warm-up, then {opts.repeat} rounds; wall s / peak RSS):")
    results = measure_all(opts, setup, selected(source, names, rows, opts.full))
    ratio = ratios(source, results)
    print_report(setup, results, facts, ratio, opts.repeat)
    return {"benchmark": source.benchmark, "rows": rows, "table": f"{DATABASE}.{setup.table}",
            "repeat": opts.repeat, "source": facts, "results": list(results.values()), "ratios": ratio,
            "checks": checks(facts, results)}


def run_sweep(opts: Options, source: Source, server: str, sizes: list[int]) -> dict[str, Any]:
    """FlowForge alone at several table sizes: peak RSS must stay flat."""
    out = []
    for rows in sizes:
        setup = Setup(source, server, rows)
        prepare(opts, setup)
        out.append({"rows": rows, **measure_all(opts, setup, [source.contestant("flowforge")])["flowforge"]})
    table = [[r["rows"], r.get("seconds"), r.get("rows_per_second"), r.get("peak_rss_mb"), r.get("files"),
              r.get("row_groups")] for r in out]
    print(format_table(["rows", "wall s", "rows/s", "peak RSS MB", "files", "row groups"], table,
                       title=f"\nFlowForge peak RSS by table size (best of {opts.repeat})"))
    good = [r for r in out if r["ok"]]
    if len(good) > 1:
        growth = good[-1]["peak_rss_mb"] / good[0]["peak_rss_mb"]
        print(f"rows x{good[-1]['rows'] / good[0]['rows']:.1f} → peak RSS x{growth:.2f}")
    return {"benchmark": f"{source.benchmark}_sweep", "sizes": sizes, "repeat": opts.repeat, "results": out}


def run_profile(opts: Options, server: str, rows: int) -> dict[str, Any]:
    """One FlowForge run under cProfile, and its PostgreSQL read path in stages (see child.breakdown)."""
    setup = Setup(POSTGRES, server, rows)
    contestant = POSTGRES.contestant("flowforge")
    project = fresh_project(opts, setup, contestant)
    prof = opts.workdir / "flowforge.prof"
    cmd = [opts.python, "-m", "cProfile", "-o", str(prof), "-m", cli_module(opts.python), "-p", str(project),
           "run", WORKFLOW]
    sample = run_child(cmd, env=child_env())
    if run_seconds(sample.stdout) is None:
        print(f"\nFlowForge under cProfile did not run the workflow: {sample.failure()}")
    print(f"\nFlowForge under cProfile: {sample.seconds:.2f}s (profiler overhead included)")
    report = child(opts, "profile-report", "--file", str(prof), "--top", "25")
    print("\n".join(line for line in report.stdout.splitlines() if not line.startswith("{")))
    stages = child(opts, "breakdown", "--project", str(project), "--connection", CONNECTION,
                   "--table", setup.table, "--out", str(opts.workdir))
    parts = stages.last_json()
    print(format_table(["stage", "seconds"], [[k, v] for k, v in parts.items() if k.endswith("seconds")],
                       title="\nFlowForge read path in stages (same process, one pass each)"))
    if not opts.keep:
        remove(project)
        remove(opts.workdir / "breakdown.parquet")
    return {"benchmark": "pg_bronze_profile", "rows": rows, "profiled_seconds": sample.seconds,
            "stages": parts, "profile_file": str(prof), "profile_text": report.stdout[-20000:]}

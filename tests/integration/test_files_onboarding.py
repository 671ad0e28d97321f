"""Onboarding outside files as a new user does, through the CLI and ``Context`` on a real project:
a ``;`` bank export refused under the default delimiter and read right once ``delimiter: ";"`` is
set (nothing deleted by hand), changed read options landing the files again as a new bronze
version (crash-safe), files explored and ingested from the command line, errors naming file,
line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable
from tests.cli_helpers import init_project, invoke
from tests.lakes import Lake, write_project

from flowforge.core.context import Context
from flowforge.testing import at_point

WORKFLOW = """\
name: bank
jobs:
  - name: land
    kind: ingest
    connection: bank_files
    tables:
      - {files: "accounts_*.csv", target: bronze_accounts}
  - name: clean
    kind: silver
    tables:
      - {target: silver_accounts, source: bronze_accounts, keys: [account_id], order_by: updated_at}
"""

EXPORT_1 = """account_id;holder;balance;updated_at
1;Ana Lima;1200.50;2026-01-05 10:00:00
2;Bo Berg;?;2026-01-05 11:00:00
3;"Cy; Jr";-15.25;2026-01-06 09:30:00
"""
EXPORT_2 = """account_id;holder;balance;updated_at
4;Dee;0.10;2026-01-07 08:00:00
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    (folder / "data" / "bank").mkdir()
    (folder / "data" / "bank" / "accounts_2026_01.csv").write_text(EXPORT_1)
    (folder / "workflows" / "bank.yml").write_text(WORKFLOW)
    set_connection(folder, {"type": "files", "path": "data/bank"})
    return folder


def set_connection(project: Path, options: dict[str, Any]) -> None:
    path = project / "flowforge.yml"
    data = yaml.safe_load(path.read_text())
    data["connections"]["bank_files"] = options
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def bronze(project: Path, version: int | None = None) -> list[dict[str, Any]]:
    table = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_accounts"), version=version)
    return sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: (r["_source_file"], r["account_id"]))


def silver(project: Path) -> dict[int, tuple[str, str | None]]:
    rows = DeltaTable(str(project / "lakehouse" / "silver" / "silver_accounts")).to_pyarrow_table().to_pylist()
    return {r["account_id"]: (r["holder"], None if r["balance"] is None else str(r["balance"])) for r in rows}


def test_a_semicolon_export_is_refused_then_read_once_the_delimiter_is_set(project: Path) -> None:
    code, out = invoke(project, "run", "bank")
    assert code == 1
    assert "accounts_2026_01.csv reads as one column with delimiter ','" in out
    assert "with ';' it has 4 columns: account_id, holder, balance, updated_at" in out
    assert 'delimiter: ";"' in out
    assert not (project / "lakehouse" / "bronze" / "bronze_accounts").exists()  # nothing landed

    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";", "null_values": ["?"]})
    code, out = invoke(project, "run", "bank")
    assert code == 0, out
    assert [(r["account_id"], r["holder"], None if r["balance"] is None else str(r["balance"]))
            for r in bronze(project)] == [(1, "Ana Lima", "1200.50"), (2, "Bo Berg", None), (3, "Cy; Jr", "-15.25")]
    assert silver(project) == {1: ("Ana Lima", "1200.50"), 2: ("Bo Berg", None), 3: ("Cy; Jr", "-15.25")}
    code, out = invoke(project, "run", "bank")
    assert code == 0 and "up to date" in out


def test_a_changed_read_option_lands_the_files_again_as_a_new_version(project: Path) -> None:
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";"})
    assert invoke(project, "run", "bank")[0] == 0
    first = bronze(project)
    assert [r["balance"] for r in first] == ["1200.50", "?", "-15.25"]  # '?' is text: the column reads as text

    # a second export arrives and the user declares '?' a null token and the balance's type
    (project / "data" / "bank" / "accounts_2026_02.csv").write_text(EXPORT_2)
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";", "null_values": ["?"],
                             "columns": {"balance": "decimal(14,2)"}})
    code, out = invoke(project, "run", "bank")
    assert code == 0, out
    now = bronze(project)
    assert [(r["_source_file"], r["account_id"], None if r["balance"] is None else str(r["balance"])) for r in now] == [
        ("accounts_2026_01.csv", 1, "1200.50"), ("accounts_2026_01.csv", 2, None),
        ("accounts_2026_01.csv", 3, "-15.25"), ("accounts_2026_02.csv", 4, "0.10")]
    table = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_accounts"))
    assert str(table.to_pyarrow_table().schema.field("balance").type) == "decimal128(14, 2)"
    assert bronze(project, version=0) == first  # time travel still shows what was read before
    assert silver(project) == {1: ("Ana Lima", "1200.50"), 2: ("Bo Berg", None), 3: ("Cy; Jr", "-15.25"),
                               4: ("Dee", "0.10")}
    code, out = invoke(project, "run", "bank")
    assert code == 0 and "up to date" in out


def test_an_option_for_one_pattern_replaces_only_that_files_rows(project: Path) -> None:
    (project / "data" / "bank" / "accounts_2026_02.csv").write_text(EXPORT_2)
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";"})
    assert invoke(project, "run", "bank")[0] == 0
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";",
                             "patterns": {"accounts_2026_01.csv": {"null_values": ["?"]}}})
    with Context.open(project) as ctx:
        assert ctx.run("bank").status == "success"
    rows = bronze(project)
    assert [(r["account_id"], r["balance"]) for r in rows] == [(1, "1200.50"), (2, None), (3, "-15.25"), (4, "0.10")]
    batches = {r["_source_file"]: r["_batch_id"] for r in rows}
    assert batches["accounts_2026_01.csv"] != batches["accounts_2026_02.csv"]  # the other file was not read again
    last = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_accounts")).history(1)[0]
    assert last["flowforge.replaces"] == '["accounts_2026_01.csv"]'  # consumers can tell a replacing commit


def test_a_crash_while_reading_files_again_leaves_the_old_rows_and_position(project: Path) -> None:
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";"})
    assert invoke(project, "run", "bank")[0] == 0
    before = bronze(project)
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";", "null_values": ["?"]})

    def crash() -> None:
        raise RuntimeError("killed while writing")

    with Context.open(project) as ctx:
        with at_point("bronze.batch", crash):
            assert ctx.run("bank").status == "failed"
        assert bronze(project) == before  # no half-replaced table, no position ahead of the data
        assert ctx.run("bank").status == "success"
    assert [r["balance"] for r in bronze(project)] == ["1200.50", None, "-15.25"]


def test_files_are_explored_and_ingested_from_the_command_line(project: Path) -> None:
    bank = project / "data" / "bank"
    (bank / "legacy.asc").write_bytes("id;name\n1;Zoë\n".encode("latin-1"))
    (bank / "notes.txt").write_text("id|note\n1|hello\n")
    (bank / "fx.tsv").write_text("ccy\trate\nEUR\t1.0850\n")
    code, out = invoke(project, "connections", "tables", "bank_files")
    assert code == 0
    for name in ("accounts_2026_01.csv", "fx.tsv", "legacy.asc", "notes.txt"):
        assert name in out

    code, out = invoke(project, "connections", "schema", "bank_files", "notes.txt")
    assert code == 1  # read as one column with ',': refused, after the sniffed dialect is shown
    assert "Dialect of notes.txt" in out and "differs" in out and "with '|' it has 2 columns" in out
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";",
                             "patterns": {"*.txt": {"delimiter": "|"}, "*.asc": {"encoding": "latin-1"},
                                          "*.tsv": {"delimiter": "tab"}}})
    code, out = invoke(project, "connections", "schema", "bank_files", "notes.txt")
    assert code == 0 and "note" in out and "int64" in out
    code, out = invoke(project, "connections", "preview", "bank_files", "legacy.asc", "--count")
    assert code == 0 and "Zoë" in out and "1 rows" in out and "iso8859-1" in out

    code, out = invoke(project, "ingest", "--from", "bank_files", "--files", "accounts_*.csv")
    assert code == 0, out
    landed = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_accounts")).to_pyarrow_table()
    assert sorted(landed.column("holder").to_pylist()) == ["Ana Lima", "Bo Berg", "Cy; Jr"]
    code, out = invoke(project, "ingest", "--from", "bank_files", "--files", "fx.tsv")
    assert code == 0, out
    fx = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_fx")).to_pyarrow_table().to_pylist()
    assert [(r["ccy"], str(r["rate"])) for r in fx] == [("EUR", "1.0850")]


def test_file_errors_name_the_file_line_and_column_in_a_run(project: Path) -> None:
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";",
                             "columns": {"balance": "decimal(14,2)"}})
    (project / "data" / "bank" / "accounts_2026_02.csv").write_text(EXPORT_2 + "5;Eve;12,50;2026-01-08 08:00:00\n")
    (project / "data" / "bank" / "accounts_2026_01.csv").write_bytes(EXPORT_1.replace("?", "0").encode()
                                                                      .replace(b"Bo Berg", b"B\xf6 Berg"))
    code, out = invoke(project, "run", "bank")
    assert code == 1
    assert "accounts_2026_01.csv: line 3 (byte" in out and "not valid utf-8" in out and "encoding: latin-1" in out
    set_connection(project, {"type": "files", "path": "data/bank", "delimiter": ";", "encoding": "latin-1",
                             "columns": {"balance": "decimal(14,2)"}})
    code, out = invoke(project, "run", "bank")
    assert code == 1
    assert "accounts_2026_02.csv, line 3, column 'balance': '12,50' is not a valid decimal128(14, 2)" in out
    assert not list((project / "lakehouse" / "bronze").glob("bronze_accounts/_delta_log/*.json"))  # no commit


def test_the_semicolon_scenario_on_each_lakehouse_backend(tmp_path: Path, lake: Lake) -> None:
    """Files and lakehouse in object storage too: refused, read once told, read again when an option changes."""
    lake.put("bank/accounts_2026_01.csv", EXPORT_1.encode())
    landing = {**lake.files_connection(), "path": lake.landing.rstrip("/") + "/bank"}
    project = write_project(tmp_path / "p", lake, {"bank_files": landing})
    (project / "workflows" / "bank.yml").write_text(WORKFLOW)
    with Context.open(project) as ctx:
        failed = ctx.run("bank")
        assert failed.status == "failed"
        assert any("with ';' it has 4 columns" in (e.error or "") for e in failed.events)
    write_project(project, lake, {"bank_files": {**landing, "delimiter": ";"}})
    with Context.open(project) as ctx:
        assert ctx.run("bank").status == "success"
        assert ctx.query("SELECT balance FROM bronze_accounts ORDER BY account_id").column(0).to_pylist() == [
            "1200.50", "?", "-15.25"]
    write_project(project, lake, {"bank_files": {**landing, "delimiter": ";", "null_values": ["?"],
                                                 "columns": {"balance": "decimal(14,2)"}}})
    with Context.open(project) as ctx:
        assert ctx.run("bank").status == "success"
        got = ctx.query("SELECT account_id, balance FROM bronze_accounts ORDER BY account_id").to_pylist()
        assert [(r["account_id"], None if r["balance"] is None else str(r["balance"])) for r in got] == [
            (1, "1200.50"), (2, None), (3, "-15.25")]
        assert ctx.store.open("bronze", "bronze_accounts").version() == 1  # type: ignore[union-attr]

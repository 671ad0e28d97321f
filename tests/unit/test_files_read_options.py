"""Files connector without guessing: read options per connection, pattern and table, a one-column
misread refused, the sniffed dialect, files explored like tables, and errors that name the file,
the line and the column."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flowforge.connectors.base import ReadRequest
from flowforge.connectors.files.config import FilesConfig
from flowforge.connectors.files.connector import FilesConnector
from flowforge.connectors.files.options import ReadOptions, fingerprint, resolve
from flowforge.errors import SourceSchemaError
from flowforge.spec.jobs import IngestTable

BANK = "id;name;amount;updated_at\n1;Ana;12.50;2026-01-05 10:00:00\n2;Bo;?;2026-01-06 11:00:00\n3;Cy;;2026-01-07\n"


def connector(folder: Path, **options: Any) -> FilesConnector:
    return FilesConnector("bank", FilesConfig(path=str(folder), **options))


def rows(conn: FilesConnector, files: str, state: dict[str, Any] | None = None,
         read: ReadOptions | None = None) -> list[dict[str, Any]]:
    plan = conn.plan(ReadRequest(files=files, read_options=read), state)
    return [r for part in conn.read(plan) for b in part.batches for r in b.to_pylist()]


def test_a_semicolon_file_under_the_default_delimiter_is_refused_naming_the_delimiter(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(BANK)
    with pytest.raises(SourceSchemaError) as err:
        connector(tmp_path).plan(ReadRequest(files="*.csv"), None)
    assert "accounts.csv" in err.value.message
    assert "with ';' it has 4 columns: id, name, amount, updated_at" in err.value.message
    assert 'delimiter: ";"' in (err.value.hint or "")
    got = rows(connector(tmp_path, delimiter=";"), "*.csv")
    assert [(r["id"], r["name"], r["amount"]) for r in got] == [(1, "Ana", "12.50"), (2, "Bo", "?"), (3, "Cy", None)]
    typed = rows(connector(tmp_path, delimiter=";", null_values=["?"]), "*.csv")
    assert [str(r["amount"]) if r["amount"] is not None else None for r in typed] == ["12.50", None, None]


def test_a_real_one_column_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("id\n1\n2\n3\n")
    assert [r["id"] for r in rows(connector(tmp_path), "ids.txt")] == [1, 2, 3]
    # a comma inside a quoted single column is not another delimiter's evidence either
    (tmp_path / "names.txt").write_text('name\n"Smith; John"\n"Doe; Jane"\n')
    assert [r["name"] for r in rows(connector(tmp_path), "names.txt")] == ["Smith; John", "Doe; Jane"]
    # free text that a ';' happens to split on every line: refused, unless the user says it is one column
    (tmp_path / "notes.txt").write_text("name; title\nSmith; Dr\nDoe; Ms\n")
    with pytest.raises(SourceSchemaError, match="single_column: true"):
        rows(connector(tmp_path), "notes.txt")
    one = rows(connector(tmp_path, patterns={"notes.txt": ReadOptions(single_column=True)}), "notes.txt")
    assert [r["name; title"] for r in one] == ["Smith; Dr", "Doe; Ms"]


def test_a_tsv_file_reads_with_tab_unless_told_otherwise(tmp_path: Path) -> None:
    (tmp_path / "fx.tsv").write_text("ccy\trate\nEUR\t1.0850\n")
    assert rows(connector(tmp_path), "fx.tsv")[0]["ccy"] == "EUR"
    with pytest.raises(SourceSchemaError, match="with 'tab' it has 2 columns"):
        rows(connector(tmp_path, delimiter=","), "fx.tsv")


def test_null_values_add_to_the_defaults_unless_replace_is_asked(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,code,note\n1,?,x\n2,,y\n3,NULL,\n")
    added = rows(connector(tmp_path, null_values=["?"]), "a.csv")
    assert [(r["code"], r["note"]) for r in added] == [(None, "x"), (None, "y"), (None, None)]
    replaced = rows(connector(tmp_path, null_values=["?"], null_values_replace=True), "a.csv")
    assert [(r["code"], r["note"]) for r in replaced] == [(None, "x"), ("", "y"), ("NULL", "")]


def test_options_layer_connection_then_patterns_then_the_table(tmp_path: Path) -> None:
    config = FilesConfig(path=str(tmp_path), delimiter=";", null_values=["?"], columns={"amount": "decimal(12,2)"},
                         patterns={"legacy/*.asc": ReadOptions(encoding="latin-1", header=False),
                                   "fx_*.csv": ReadOptions(delimiter=",", columns={"rate": "decimal(18,8)"})})
    plain = resolve(config, "accounts.csv", None)
    assert (plain.delimiter, plain.encoding, plain.header) == (";", "utf-8", True)
    assert plain.null_values == ("", "NULL", "null", "?")
    legacy = resolve(config, "legacy/a.asc", None)
    assert (legacy.delimiter, legacy.encoding, legacy.header) == (";", "iso8859-1", False)
    fx = resolve(config, "fx_2026.csv", ReadOptions(quote="'"))
    assert (fx.delimiter, fx.quote) == (",", "'")
    assert fx.columns == {"amount": "decimal(12,2)", "rate": "decimal(18,8)"}
    assert fx.required == ("rate",)  # the connection's own columns apply only where a file has them
    assert fingerprint(plain) != fingerprint(resolve(config, "accounts.csv", ReadOptions(null_values=["-"])))
    assert fingerprint(plain) == fingerprint(resolve(config, "accounts.csv", ReadOptions(max_line_size=1 << 24)))


def test_connection_columns_apply_to_the_files_that_have_them(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("id,amount\n1,5.5\n")
    (tmp_path / "customers.csv").write_text("id,name\n1,Ana\n")
    conn = connector(tmp_path, columns={"amount": "decimal(12,2)"})
    assert rows(conn, "customers.csv") == [{"id": 1, "name": "Ana"}]
    assert str(rows(conn, "orders.csv")[0]["amount"]) == "5.50"
    with pytest.raises(SourceSchemaError, match=r"customers.csv has no column\(s\) balance"):
        rows(conn, "customers.csv", read=ReadOptions(columns={"balance": "decimal(12,2)"}))


def test_an_ingest_table_takes_read_options_and_validates_them() -> None:
    table = IngestTable.model_validate({"files": "a*.asc", "target": "bronze_a",
                                        "read": {"delimiter": "tab", "columns": {"x": "decimal(5,2)"}}})
    assert table.read is not None and table.read.delimiter == "\t"
    for bad in ({"delimiter": ";;"}, {"encoding": "klingon"}, {"columns": {"x": "money"}}, {"delimitter": ";"}):
        with pytest.raises(ValidationError):
            IngestTable.model_validate({"files": "a.csv", "target": "bronze_a", "read": bad})
    with pytest.raises(ValidationError, match="'read' sets how 'files' are read"):
        IngestTable.model_validate({"table": "t", "target": "bronze_a", "read": {"delimiter": ";"}})


def test_a_changed_option_plans_the_files_read_before_again_and_alone(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,code\n1,?\n")
    (tmp_path / "b.csv").write_text("id,code\n2,x\n")
    before = connector(tmp_path)
    first = before.plan(ReadRequest(files="*.csv"), None)
    assert [f.path.rsplit("/", 1)[-1] for f in first.files] == ["a.csv", "b.csv"] and not first.replaces
    assert not before.plan(ReadRequest(files="*.csv"), first.new_state).has_data
    (tmp_path / "c.csv").write_text("id,code\n3,?\n")
    after = FilesConnector("bank", FilesConfig(path=str(tmp_path), patterns={"a.csv": ReadOptions(null_values=["?"])}))
    again = after.plan(ReadRequest(files="*.csv"), first.new_state)
    assert again.replaces == ("a.csv",) and not again.replaces_all
    assert "null_values" in again.description and "a.csv" in again.description
    following = after.plan(ReadRequest(files="*.csv"), again.new_state)
    assert [f.path.rsplit("/", 1)[-1] for f in following.files] == ["c.csv"] and not following.replaces
    assert not after.plan(ReadRequest(files="*.csv"), following.new_state).has_data
    # state written before read options were recorded keeps its files as read (no surprise re-read)
    legacy = {"files": first.new_state["files"]} if first.new_state else None
    assert not before.plan(ReadRequest(files="[ab].csv"), legacy).has_data


def test_tables_list_every_readable_file_whatever_its_extension(tmp_path: Path) -> None:
    for name in ("a.csv", "b.asc", "c.txt", "d.tsv", "sub/e.dat", "x.parquet", ".hidden.csv", "f.zip"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("id\n1\n")
    assert [t.name for t in connector(tmp_path).list_tables()] == ["a.csv", "b.asc", "c.txt", "d.tsv", "sub/e.dat"]
    assert [t.name for t in connector(tmp_path, format="parquet").list_tables()] == ["x.parquet"]


def test_schema_preview_and_dialect_work_on_a_file(tmp_path: Path) -> None:
    (tmp_path / "accounts.asc").write_bytes("id;name;balance\n1;Zoë;10.50\n2;?;-\n".encode("cp1252"))
    conn = connector(tmp_path, delimiter=";", encoding="cp1252")
    cols = conn.columns(ReadRequest(table="accounts.asc"))
    assert [(c.name, str(c.arrow_type)) for c in cols] == [("id", "int64"), ("name", "string"),
                                                          ("balance", "string")]
    assert conn.preview(ReadRequest(table="accounts.asc"), 1).to_pylist() == [{"id": 1, "name": "Zoë",
                                                                               "balance": "10.50"}]
    found = connector(tmp_path).dialect(ReadRequest(table="accounts.asc"))
    assert found is not None
    assert found["sniffed"] == {"delimiter": ";", "quote": '"', "header": True, "encoding": "cp1252",
                                "null_values": ["-", "?"]}
    assert found["configured"]["delimiter"] == "," and found["columns"] == 3


def test_bad_utf8_names_the_file_the_line_the_byte_and_the_option(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_bytes(b"id,name\n1,ok\n2,caf\xe9\n")
    with pytest.raises(SourceSchemaError) as err:
        rows(connector(tmp_path), "people.csv")
    assert "people.csv: line 3 (byte 18) is not valid utf-8" in err.value.message
    assert "encoding: latin-1" in (err.value.hint or "")
    # past the sampled rows, the error still names the line
    body = b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(1, 50)) + b"50,caf\xe9\n"
    (tmp_path / "late.csv").write_bytes(body)
    with pytest.raises(SourceSchemaError, match=r"late.csv: line 51 \(byte \d+\) is not valid utf-8"):
        rows(connector(tmp_path, infer_rows=5), "late.csv")
    assert [r["name"] for r in rows(connector(tmp_path, encoding="latin-1"), "people.csv")] == ["ok", "café"]
    (tmp_path / "wide.csv").write_bytes("id,name\n1,Zoë\n2,Ana\n".encode("utf-16"))
    with pytest.raises(SourceSchemaError) as err:
        rows(connector(tmp_path), "wide.csv")
    assert "wide.csv: line 1 (byte 0) is not valid utf-8" in err.value.message
    assert "encoding: utf-16" in (err.value.hint or "")
    assert rows(connector(tmp_path, encoding="utf-16"), "wide.csv") == [{"id": 1, "name": "Zoë"},
                                                                       {"id": 2, "name": "Ana"}]


def test_conversion_errors_name_the_column_the_file_and_the_line(tmp_path: Path) -> None:
    lines = ["id,customer,city,amount"] + [f"{i},c{i},x,{i}.25" for i in range(1, 30)] + ["30,c30,x,12,5"]
    (tmp_path / "orders.csv").write_text("\n".join(lines).replace("12,5", '"12,5"') + "\n")
    with pytest.raises(SourceSchemaError) as err:
        rows(connector(tmp_path, columns={"amount": "decimal(12,2)"}), "orders.csv")
    assert "orders.csv, line 31, column 'amount': '12,5' is not a valid decimal128(12, 2)" in err.value.message
    assert "#" not in err.value.message


SCRIPT = textwrap.dedent("""
    import sys
    from flowforge.connectors.base import ReadRequest
    from flowforge.connectors.files.config import FilesConfig
    from flowforge.connectors.files.connector import FilesConnector
    from flowforge.errors import SourceSchemaError
    conn = FilesConnector("raw", FilesConfig(path=sys.argv[1]))
    try:
        plan = conn.plan(ReadRequest(files="blob.csv"), None)
        for part in conn.read(plan):
            for _ in part.batches:
                pass
        print("READ")
    except SourceSchemaError as exc:
        print(exc.message)
    # VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork and exec)
    print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) * 1024)
""")


def test_a_file_without_line_breaks_fails_in_bounded_memory(tmp_path: Path) -> None:
    size = 256 << 20
    with (tmp_path / "blob.csv").open("wb") as fh:
        fh.write(b"a,b\n")
        for _ in range(size >> 20):
            fh.write(b"x" * (1 << 20))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                         check=True).stdout.splitlines()
    assert "blob.csv: line 2 (from byte 4) is longer than max_line_size (4,194,304 bytes)" in out[0]
    assert int(out[1]) < size  # the 256 MiB line was never held in memory


def test_max_line_size_lets_long_lines_through(tmp_path: Path) -> None:
    (tmp_path / "wide.csv").write_text("id,doc\n1," + "y" * (5 << 20) + "\n")
    with pytest.raises(SourceSchemaError, match="longer than max_line_size"):
        rows(connector(tmp_path), "wide.csv")
    assert len(rows(connector(tmp_path, max_line_size=8 << 20), "wide.csv")[0]["doc"]) == 5 << 20


def test_hostile_file_names_and_options_are_refused(tmp_path: Path) -> None:
    from flowforge.errors import ConfigError, SourceNotFound

    (tmp_path / "data").mkdir()
    (tmp_path / "secret.csv").write_text("token\nabc\n")
    (tmp_path / "data" / "a.csv").write_text("id\n1\n")
    conn = connector(tmp_path / "data")
    for name in ("../secret.csv", "/etc/passwd", "**/../../secret.csv"):
        with pytest.raises(SourceNotFound):
            conn.columns(ReadRequest(table=name))
        with pytest.raises(SourceNotFound):
            conn.preview(ReadRequest(table=name))
    with pytest.raises(ConfigError, match="delimiter and quote are the same character"):
        rows(connector(tmp_path / "data", delimiter="'", quote="'"), "a.csv")
    with pytest.raises(ConfigError, match="reads 'files', not a table or query"):
        conn.columns(ReadRequest(query="SELECT 1"))

"""Every Debezium fixture of ../shared/conformance/debezium (README section 2), read in place.

Each test builds a project whose debezium connection points *at the fixture folder* and whose
cdc job picks the fixture file(s) with its ``files`` pattern; runs apply files cumulatively.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable

from flowforge.connectors.cdc.debezium.decode import DecodeStats, decode_document, decode_lines
from flowforge.connectors.cdc.events import event_schema
from flowforge.core.context import Context
from flowforge.core.project import init_project, write_project_file

DBZ = "debezium"


class Project:
    """A FlowForge project with one cdc job over a fixture folder."""

    def __init__(self, root: Path, folder: Path, tables: list[dict[str, Any]]) -> None:
        self.root = root
        init_project(root)
        (root / "workflows" / "example.yml").unlink()
        write_project_file(root, {"events": {"type": "debezium", "path": str(folder)}}, data_roots=[str(folder)])
        self.tables = tables

    def run(self, files: str, ok: bool = True) -> str:
        wf = {"name": "cdc", "jobs": [{"name": "apply", "kind": "cdc", "connection": "events", "files": files,
                                       "target": "bronze_events", "tables": self.tables}]}
        (self.root / "workflows" / "cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
        with Context.open(self.root) as ctx:
            summary = ctx.run("cdc")
        errors = "\n".join(e.error or "" for e in summary.failed)
        assert (summary.status == "success") == ok, errors or "expected the run to fail"
        return errors

    def dt(self, layer: str, table: str) -> DeltaTable:
        return DeltaTable(str(self.root / "lakehouse" / layer / table))

    def rows(self, table: str, layer: str = "silver") -> list[dict[str, Any]]:
        return self.dt(layer, table).to_pyarrow_table().to_pylist()

    def exists(self, table: str) -> bool:
        return (self.root / "lakehouse" / "silver" / table / "_delta_log").is_dir()


def _data(row: dict[str, Any]) -> dict[str, Any]:
    meta = {"_op", "_position", "_source_ts", "_silver_updated_at", "_is_deleted", "_event_id", "valid_from",
            "valid_to", "is_current", "is_deleted", "_valid_to_position"}
    return {k: v for k, v in row.items() if k not in meta}


def _lsn(position: str | None) -> str:
    return str(int(position.split(":")[1])) if position else ""


def _ms(ts: dt.datetime | None) -> str:
    return str(int(ts.timestamp() * 1000)) if ts else ""


# -- 2a. Flink real captures (PostgreSQL) ----------------------------------------------

@pytest.fixture
def flink(conformance_dir: Path, tmp_path: Path) -> tuple[Project, Path]:
    folder = conformance_dir / DBZ / "flink_real_captures"
    tables = [{"target": "products", "strategy": "scd1", "keys": ["id"]},
              {"target": "products_history", "strategy": "scd2", "keys": ["id"]}]
    return Project(tmp_path / "p", folder, tables), conformance_dir / DBZ / "expected"


def test_flink_final_state_and_scd2_history(flink: tuple[Project, Path]) -> None:
    project, expected = flink
    project.run("debezium-postgres-data-schema-exclude.txt")
    with open(expected / "flink_pg_products_final_state.csv", newline="") as fh:
        want = sorted(csv.DictReader(fh), key=lambda r: int(r["id"]))
    got = sorted(project.rows("products"), key=lambda r: int(r["id"]))
    assert [{k: str(v) for k, v in _data(r).items()} for r in got] == want
    assert all(r["_op"] in "rcu" for r in got) and "111" not in {r["id"] for r in got}

    with open(expected / "flink_pg_products_scd2_history.csv", newline="") as fh:
        want_h = [{k: v for k, v in r.items() if k != "event_seq"} for r in csv.DictReader(fh)]
    hist = project.rows("products_history")
    got_h = [{**{k: str(v) for k, v in _data(r).items()}, "op": r["_op"], "valid_from_lsn": _lsn(r["_position"]),
              "valid_from_ts_ms": _ms(r["valid_from"]), "valid_to_lsn": _lsn(r["_valid_to_position"]),
              "valid_to_ts_ms": _ms(r["valid_to"]), "is_current": str(r["is_current"]),
              "is_deleted": str(r["is_deleted"])} for r in hist]
    key = lambda r: (int(r["id"]), int(r["valid_from_lsn"]))  # noqa: E731
    assert sorted(got_h, key=key) == sorted(want_h, key=key)

    # Flink's asserted changelog, derived from the SCD2 versions in source order
    changes: list[tuple[str, int, int, str]] = []
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(hist, key=lambda r: (r["_position"], int(r["id"]))):
        by_key.setdefault(r["id"], []).append(r)
    for versions in by_key.values():
        for i, v in enumerate(versions):
            text = ",".join(str(x) for x in _data(v).values())
            if i:
                prev = ",".join(str(x) for x in _data(versions[i - 1]).values())
                changes += [(v["_position"], int(v["id"]), 0, f"-U({prev})"), (v["_position"], int(v["id"]), 1,
                                                                                 f"+U({text})")]
            else:
                changes.append((v["_position"], int(v["id"]), 0, f"+I({text})"))
            if v["is_deleted"]:
                changes.append((v["_valid_to_position"], int(v["id"]), 0, f"-D({text})"))
    want_log = (expected / "flink_expected_changelog.txt").read_text().split("\n")
    assert [c[3] for c in sorted(changes)] == [line for line in want_log if line.strip()]


def test_flink_replica_identity_default_fails_clearly(flink: tuple[Project, Path]) -> None:
    project, _ = flink
    error = project.run("debezium-postgres-data-replica-identity.txt", ok=False)
    assert "no before image" in error and "REPLICA IDENTITY FULL" in error and "pg:" in error
    assert len(project.rows("bronze_events", "bronze")) == 16, "bronze keeps every event"
    assert not project.exists("products") and not project.exists("products_history"), "nothing merged"


# -- 2b. Paimon real captures (MySQL) --------------------------------------------------

@pytest.fixture
def paimon(conformance_dir: Path) -> tuple[Path, dict[str, Any]]:
    expected = json.loads((conformance_dir / DBZ / "expected" / "paimon_schemaevolution_expected.json").read_text())
    return conformance_dir / DBZ / "paimon_real_captures", expected


def _table(project: Project, name: str) -> tuple[list[str], list[list[Any]]]:
    dtable = project.dt("silver", name)
    cols = [f.name for f in pa.schema(dtable.schema().to_arrow()) if f.name in _data({f.name: 1})]
    rows = sorted(([r[c] for c in cols] for r in project.rows(name)), key=lambda r: int(r[0]))
    return cols, rows


def test_paimon_payload_only_schema_evolution(paimon: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, expected = paimon
    steps = next(v for k, v in expected.items() if k.startswith("payload_only"))
    project = Project(tmp_path / "p", folder, [{"target": "product", "keys": ["id"]}])
    for n, (label, want) in zip("123", steps.items(), strict=True):
        project.run(f"schemaevolution__debezium-data-[1-{n}].jsonl")
        cols, rows = _table(project, "product")
        assert cols == want["columns"], label
        assert rows == want["rows"], label


def test_paimon_schema_included_evolution_and_incompatible_change(paimon: tuple[Path, dict[str, Any]],
                                                                  tmp_path: Path) -> None:
    folder, expected = paimon
    steps = next(v for k, v in expected.items() if k.startswith("schema_included"))
    project = Project(tmp_path / "p", folder, [{"target": "product", "keys": ["id"]}])
    # Paimon's own expected types: INT stays int32 until the source widens it to BIGINT, then the
    # silver column is int64 and a narrowing back keeps it there
    families = {"INT NOT NULL": "int32", "INT": "int32", "BIGINT": "int64", "STRING": "string", "DOUBLE": "double"}
    for n in "1234":
        label = next(k for k in steps if k.startswith(f"after_file_{n}"))
        project.run(f"schema__schemaevolution__debezium-data-[1-{n}].jsonl")
        cols, rows = _table(project, "product")
        want = steps[label]
        assert rows == want["rows"], label
        types = {f.name: str(f.type) for f in pa.schema(project.dt("silver", "product").schema().to_arrow())}
        assert [types[c] for c in cols] == [families[t] for t in want["types"]], label
    before = project.dt("silver", "product").version()
    error = project.run("schema__schemaevolution__debezium-data-[1-5].jsonl", ok=False)
    assert "column 'age' changes type from BIGINT to VARCHAR" in error and "nothing was committed" in error
    assert project.dt("silver", "product").version() == before
    assert _table(project, "product")[1] == steps[next(k for k in steps if k.startswith("after_file_4"))]["rows"]


def test_paimon_schema_null_envelope_delete(paimon: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, _ = paimon
    project = Project(tmp_path / "p", folder, [{"target": "product", "keys": ["id"]}])
    project.run("schema__schemaevolution__debezium-data-[1-4].jsonl")
    assert 101 in {r["id"] for r in project.rows("product")}
    project.run("schema__schemaevolution__debezium-data-[1-4w]*.jsonl")
    assert {r["id"] for r in project.rows("product")} == {103, 104, 105}


def test_paimon_nullvalue_and_nestedtype(paimon: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, _ = paimon
    project = Project(tmp_path / "p", folder, [{"target": "t", "keys": ["id"], "source_table": "test"},
                                                {"target": "nested", "keys": ["id"], "source_table": "product"}])
    project.run("n*__debezium-data-*.jsonl")
    assert sorted((r["id"], r["value"]) for r in project.rows("t")) == [("1", "A"), ("2", "B")]
    nested = project.rows("nested")
    assert len(nested) == 1 and json.loads(nested[0]["row"]) == {"row_key": "value"}
    lines = (folder / "nullvalue__debezium-data-1.jsonl").read_bytes().splitlines()
    assert sum(b.num_rows for b in decode_lines(lines)) == 1


def test_paimon_alltype_decoded_values(paimon: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, _ = paimon
    want = json.loads((folder / "schema__alltype__expected_decoded.json").read_text())["expected"]
    project = Project(tmp_path / "p", folder, [{"target": "alltype", "keys": ["_id"]}])
    project.run("schema__alltype__debezium-data-1.jsonl")
    [row] = project.rows("alltype")
    plain = {k: v for k, v in want.items() if " " not in v and not k.startswith(("_bit", "_date", "_time"))}
    lossy = {"_fixed", "_fixed_unsigned", "_fixed_unsigned_zerofill", "_big_decimal"}
    for col, text in plain.items():
        value = row[col]
        if col in lossy:
            # the capture has these as JSON doubles (1.2345678987654322e+32): digits beyond a double's
            # precision are not in the file, so the value agrees to a double's 15 significant digits
            assert abs(Decimal(str(value)) - Decimal(text)) / Decimal(text) < Decimal("1e-15"), col
        elif isinstance(value, bool):
            assert value == (text == "true"), col
        elif isinstance(value, Decimal | int | float):
            assert Decimal(str(value)) == Decimal(text), col
        elif isinstance(value, dt.datetime):
            assert value.replace(tzinfo=None) == dt.datetime.fromisoformat(text), col
        elif col == "_json":
            assert json.loads(value) == json.loads(text)
        elif col in ("_point",):
            continue
        else:
            assert value == text, col
    assert row["_bit1"] is True
    assert int.from_bytes(row["_bit"], "little") == 0b11111000111  # Connect Bits are little-endian
    assert row["_date"] == dt.date(2023, 3, 23)
    assert row["_timestamp"] == dt.datetime(2023, 3, 23, 22, 0, 10, 123456, tzinfo=dt.UTC)
    assert row["_timestamp0"] == dt.datetime(2023, 3, 23, 7, 10, tzinfo=dt.UTC)
    assert row["_time"] == "10:13:23.000000"
    assert row["_bin"] == b"bytes\x00\x00\x00\x00\x00" and row["_varbin"] == b"more bytes"
    assert row["_longblob"] == b"LONGBLOB  bytes test data"
    point = json.loads(row["_point"])
    assert (point["x"], point["y"]) == (1.0, 1.0)
    assert row["pt"] == Decimal("1.1") and row["_numeric"] == Decimal("12345.110")
    assert row["_big_decimal"] is not None and row["_year"] == 2023


# -- 2c. debezium/debezium test resources (MySQL customers 1004) ------------------------

def test_debezium_serde_resources(conformance_dir: Path, tmp_path: Path) -> None:
    folder = conformance_dir / DBZ / "debezium_test_resources"
    project = Project(tmp_path / "p", folder, [{"target": "customers", "keys": ["id"]}])
    project.run("serde-with-schema.json")
    [row] = project.rows("customers")
    assert (row["id"], row["first_name"], row["email"]) == (1004, "Anne", "annek@noanswer.org")
    project.run("serde-with*.json")  # payload-only create of the same row: same state
    assert len(project.rows("customers")) == 1
    # the fixtures share one binlog position, so each is applied in a run of its own (arrival order)
    update = json.loads((folder / "serde-update.json").read_text())
    project.run("serde-update.json")
    [row] = project.rows("customers")
    assert _data(row) == update["after"]
    project.run("serde-unknown-property.json")  # middle_name appears in before/after
    [row] = project.rows("customers")
    assert row["middle_name"] == "L", "a new column appearing in before/after is added"
    project.run("serde-unwrapped.json")  # the ExtractNewRecordState-flattened row: an upsert
    [row] = project.rows("customers")
    assert {k: row[k] for k in ("id", "first_name", "last_name", "email")} == \
        json.loads((folder / "serde-unwrapped.json").read_text())
    for name in ("serde-with-schema.json", "serde-without-schema.json", "serde-update.json",
                 "serde-unknown-property.json", "serde-unwrapped.json"):
        [batch] = list(decode_document((folder / name).read_bytes()))
        assert batch.num_rows == 1 and batch.schema.equals(event_schema())


# -- 2d. docs examples per connector ------------------------------------------------------

@pytest.mark.parametrize("connector", ["postgresql", "mysql", "sqlserver"])
def test_docs_examples_create_update_delete(conformance_dir: Path, tmp_path: Path, connector: str) -> None:
    folder = conformance_dir / DBZ / "docs_examples"
    project = Project(tmp_path / "p", folder, [{"target": "customers", "keys": ["id"]},
                                                {"target": "customers_h", "strategy": "scd2", "keys": ["id"]}])
    docs = {op: json.loads((folder / f"{connector}_{op}_schema+payload.json").read_text())["payload"]
            for op in ("create_c", "update_u", "delete_d")}
    project.run(f"{connector}_create_c_schema+payload.json")
    [row] = project.rows("customers")
    assert _data(row) == docs["create_c"]["after"]
    project.run(f"{connector}_[cu]*_schema+payload.json")
    [row] = project.rows("customers")
    assert _data(row) == docs["update_u"]["after"]
    project.run(f"{connector}_[cud]*_schema+payload.json")
    assert project.rows("customers") == []
    hist = sorted(project.rows("customers_h"), key=lambda r: (r["_position"], r["is_current"] or r["is_deleted"]))
    assert [r["_op"] for r in hist] == ["c", "u"] and hist[-1]["is_deleted"] and not hist[-1]["is_current"]
    bronze = sorted(project.rows("bronze_events", "bronze"), key=lambda r: (r["_source_position"],
                                                                           r["_ingestion_time"]))
    assert [r["_op"] for r in bronze] == ["c", "u", "d"], "positions sort in source order"
    want_snapshot = ["true" if docs[op]["source"]["snapshot"] else "false" for op in docs]
    assert [r["_snapshot"] for r in bronze] == want_snapshot, "a JSON boolean snapshot flag becomes text"


@pytest.mark.parametrize("connector", ["postgresql", "mysql"])
def test_docs_examples_truncate_empties_the_table(conformance_dir: Path, tmp_path: Path, connector: str) -> None:
    folder = conformance_dir / DBZ / "docs_examples"
    project = Project(tmp_path / "p", folder, [{"target": "customers", "keys": ["id"]},
                                                {"target": "customers_h", "strategy": "scd2", "keys": ["id"]}])
    project.run(f"{connector}_[cu]*_schema+payload.json")
    assert len(project.rows("customers")) == 1
    project.run(f"{connector}_[cut][!e]*.json")  # + truncate_t_payload.json
    assert project.rows("customers") == []
    hist = project.rows("customers_h")
    assert hist and not any(r["is_current"] for r in hist)
    assert any(r["is_deleted"] for r in hist), "the truncate closes the current version"


def test_docs_examples_non_row_records_are_metadata_only(conformance_dir: Path) -> None:
    folder = conformance_dir / DBZ / "docs_examples"
    index = json.loads((folder / "INDEX.json").read_text())
    rows = {"create_c": 1, "update_u": 1, "delete_d": 1, "truncate_t": 1, "source_elided": 1}
    for entry in index:
        name = entry["file"]
        stats = DecodeStats()
        lines = [json.dumps(json.loads((folder / name).read_text())).encode()]
        n = sum(b.num_rows for b in decode_lines(lines, stats=stats))
        expect = next((v for k, v in rows.items() if k in name), 0)
        assert n == expect, name
        if "_transaction_BEGIN" in name or "_transaction_END" in name:
            assert stats.transactions == 1, name
        elif "logical_message" in name:
            assert stats.messages == 1, name
        elif "schemachange" in name:
            assert stats.schema_changes + stats.keys == 1, name
        elif name.endswith("_key.json"):
            assert stats.keys == 1, name
    assert len(index) == len([p for p in folder.iterdir() if p.name != "INDEX.json"])


def test_docs_examples_sqlserver_positions(conformance_dir: Path) -> None:
    folder = conformance_dir / DBZ / "docs_examples"
    pos = {}
    for op in ("create_c", "update_u", "delete_d"):
        [batch] = list(decode_document((folder / f"sqlserver_{op}_schema+payload.json").read_bytes()))
        pos[op] = batch.column("_source_position")[0].as_py()
    assert pos["create_c"] < pos["update_u"] < pos["delete_d"]
    assert pos["update_u"] == "mssql:00000027:00000ac0:0007:00000027:00000ac0:0002:00000000000000000002"
    elided = next(decode_document((folder / "postgresql_event_with_transaction_block_source_elided.json")
                                  .read_bytes())).to_pylist()[0]
    assert elided["_op"] == "c" and json.loads(elided["_after"]) == {"pk": "2", "aa": "1"}


# -- 2e. constructed Kafka records with a tombstone ---------------------------------------

def test_constructed_sqlserver_tombstone(conformance_dir: Path, tmp_path: Path) -> None:
    folder = conformance_dir / DBZ / "constructed"
    project = Project(tmp_path / "p", folder, [{"target": "customers"}])  # keys from the Kafka key
    project.run("sqlserver_customers_1005_c_u_d_tombstone.kafka.jsonl")
    assert project.rows("customers") == []
    assert [r["_op"] for r in sorted(project.rows("bronze_events", "bronze"),
                                     key=lambda r: r["_source_position"])] == ["c", "u", "d"]
    stats = DecodeStats()
    lines = (folder / "sqlserver_customers_1005_c_u_d_tombstone.kafka.jsonl").read_bytes().splitlines()
    assert sum(b.num_rows for b in decode_lines(lines, stats=stats)) == 3 and stats.tombstones == 1


def test_base64_decimal_is_exact() -> None:
    from flowforge.connectors.cdc.debezium.decode import decimal_text

    assert decimal_text(base64.b64encode((-12345).to_bytes(2, "big", signed=True)).decode(), 2) == "-123.45"


def test_vectorised_decoder_agrees_on_every_line_fixture(conformance_dir: Path) -> None:
    from flowforge.connectors.cdc.debezium.fast import decode_fast

    checked = 0
    for path in sorted((conformance_dir / DBZ).rglob("*")):
        if path.suffix not in (".jsonl", ".txt") or "expected" in path.parts or "LICENSE" in path.name:
            continue
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        fast = decode_fast(pa.array(lines))
        slow = pa.Table.from_batches(list(decode_lines([ln.encode() for ln in lines])), schema=event_schema())
        if fast is not None:
            assert fast.equals(slow), path.name
            checked += 1
    assert checked >= 10, "most line fixtures take the vectorised path"

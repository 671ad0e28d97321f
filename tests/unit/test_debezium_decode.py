"""Decoding Debezium JSON into normalized change events, and the event helpers the sources share."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest
import yaml

from flowforge.connectors.cdc.debezium.decode import DecodeStats, decimal_text, decode_lines, row_schema
from flowforge.connectors.cdc.events import (
    UNAVAILABLE,
    ChangeEvent,
    event_schema,
    kafka_position,
    mysql_position,
    normalize_snapshot,
    pg_position,
    sqlserver_position,
    to_batch,
)
from flowforge.errors import SourceSchemaError


def _pg(op: str, lsn: int, before: object, after: object, snapshot: object = "false") -> bytes:
    source = {"connector": "postgresql", "ts_ms": 1700000000123, "snapshot": snapshot, "db": "shop",
              "schema": "public", "table": "products", "txId": 7, "lsn": lsn}
    return json.dumps({"before": before, "after": after, "source": source, "op": op, "ts_ms": 1}).encode()


def _rows(*lines: bytes, stats: DecodeStats | None = None) -> list[dict[str, object]]:
    return [r for b in decode_lines(list(lines), stats=stats) for r in b.to_pylist()]


@pytest.mark.parametrize(("value", "want"), [(True, "true"), (False, "false"), ("true", "true"),
                                             ("false", "false"), ("last", "last"), ("LAST", "last"), (None, None)])
def test_snapshot_flag_from_bool_or_text(value: object, want: str | None) -> None:
    assert normalize_snapshot(value) == want
    [row] = _rows(_pg("r", 10, None, {"id": 1}, snapshot=value))
    assert row["_snapshot"] == want


def test_positions_sort_in_source_order() -> None:
    assert pg_position(9) < pg_position(10) < pg_position(10_000_000_000)
    assert mysql_position("mysql-bin.000003", 999, 5) < mysql_position("mysql-bin.000003", 1000, 0) \
        < mysql_position("mysql-bin.000004", 4, 0)
    a = sqlserver_position("00000027:00000758:0005", "00000027:00000758:0003", "1")
    b = sqlserver_position("00000027:00000758:0005", "00000027:00000758:0003", 2)
    c = sqlserver_position("00000027:00000ac0:0007", None, 1)
    assert a < b < c and c.endswith(":00000000:00000000:0000:00000000000000000001")
    assert kafka_position("t", 0, 99) < kafka_position("t", 0, 100)


def test_event_id_is_stable_across_replays_and_unique_per_event() -> None:
    line = _pg("u", 42, {"id": 1}, {"id": 1, "name": "a"})
    first, again = _rows(line)[0], _rows(line)[0]
    assert first["_event_id"] == again["_event_id"]
    other = _rows(_pg("u", 43, {"id": 1}, {"id": 1, "name": "b"}))[0]
    assert other["_event_id"] != first["_event_id"]
    snap = _rows(_pg("r", 5, None, {"id": 1}), _pg("r", 5, None, {"id": 2}))
    assert snap[0]["_event_id"] != snap[1]["_event_id"], "snapshot reads share an LSN but not an id"


def test_event_fields() -> None:
    [row] = _rows(_pg("u", 42, None, {"id": 1, "body": UNAVAILABLE}))
    assert row["_op"] == "u" and row["_table"] == "public.products" and row["_source_position"] == pg_position(42)
    assert row["_source_ts"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC)
    assert json.loads(str(row["_after"])) == {"id": 1, "body": UNAVAILABLE}, "TOAST placeholder kept for silver"
    assert row["_before"] is None


def test_kafka_records_tombstones_and_non_row_records() -> None:
    value = json.loads(_pg("d", 50, {"id": 3}, None))
    records = [
        {"topic": "shop.public.products", "partition": 2, "offset": 17, "key": {"id": 3}, "value": value},
        {"topic": "shop.public.products", "partition": 2, "offset": 18, "key": {"id": 3}, "value": None},
        {"status": "BEGIN", "id": "571:53195829", "ts_ms": 1, "event_count": None},
        {"source": {"connector": "postgresql", "lsn": 1}, "op": "m", "message": {"prefix": "x"}},
    ]
    stats = DecodeStats()
    rows = _rows(*(json.dumps(r).encode() for r in records), stats=stats)
    assert len(rows) == 1 and rows[0]["_source_position"] == kafka_position("shop.public.products", 2, 17)
    assert json.loads(str(rows[0]["_key"])) == {"id": 3}
    assert (stats.tombstones, stats.transactions, stats.messages) == (1, 1, 1)


def test_connect_logical_types_are_normalized() -> None:
    schema = {"type": "struct", "fields": [
        {"field": "before", "type": "struct", "optional": True, "fields": []},
        {"field": "after", "type": "struct", "optional": True, "fields": [
            {"field": "price", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
             "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
            {"field": "day", "type": "int32", "name": "io.debezium.time.Date"},
            {"field": "at", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
            {"field": "t", "type": "int64", "name": "io.debezium.time.MicroTime"},
            {"field": "n", "type": "int32"}]}]}
    rs = row_schema(schema)
    assert rs is not None and rs.types == {"price": "decimal(10,2)", "day": "date", "at": "timestamp",
                                           "t": "time", "n": "int32"}
    price = base64.b64encode((12345).to_bytes(2, "big", signed=True)).decode()
    assert rs.convert({"price": price, "day": 19439, "at": 1679581805123456, "t": 36803000000, "n": 1}) == {
        "price": "123.45", "day": "2023-03-23", "at": "2023-03-23T14:30:05.123456", "t": "10:13:23.000000", "n": 1}
    assert rs.convert({"price": UNAVAILABLE})["price"] == UNAVAILABLE  # type: ignore[index]
    assert decimal_text(12345.11, 3) == "12345.11" and decimal_text("-1", 0) == "-1"


def test_bad_json_names_the_line() -> None:
    with pytest.raises(SourceSchemaError, match=r"events.jsonl, line 2: not valid JSON"):
        list(decode_lines([_pg("c", 1, None, {"id": 1}), b"{oops"], where="events.jsonl"))


def test_change_event_batches() -> None:
    batch = to_batch([ChangeEvent("c", "public.t", pg_position(1), key={"id": 1}, after={"id": 1}, snapshot=True)])
    assert batch.schema.equals(event_schema()) and batch.to_pylist()[0]["_snapshot"] == "true"
    with pytest.raises(ValueError, match="op 'x'"):
        ChangeEvent("x", "t", "p")


def test_docstring_examples_load() -> None:
    from flowforge.connectors.cdc.debezium.config import DebeziumConfig
    from flowforge.spec.cdc import CdcJob

    def example(doc: str | None) -> object:
        m = re.search(r"```yaml\n(.*?)```", doc or "", re.S)
        assert m is not None
        return yaml.safe_load(m.group(1))

    job = CdcJob.model_validate(example(CdcJob.__doc__)[0])  # type: ignore[index]
    assert job.outputs() == ("bronze_product_cdc", "silver_product", "silver_product_history")
    conf = example(DebeziumConfig.__doc__)
    assert DebeziumConfig.model_validate(conf["product_events"]).path.startswith("s3://")  # type: ignore[index]


def test_vectorised_decoder_matches_the_per_record_one() -> None:
    import pyarrow as pa

    from flowforge.connectors.cdc.debezium.fast import decode_fast
    from flowforge.connectors.cdc.debezium.synthetic import ProductStream

    lines = list(ProductStream(keys=50, seed=1, toast_every=3).lines(500))
    snap = [_pg("r", 5, None, {"id": i, "w": 1.0 + i / 8}, snapshot=s).decode()
            for i, s in enumerate([True, "true", "last", False])]
    for sample in (lines, snap):
        fast = decode_fast(pa.array(sample))
        slow = pa.Table.from_batches(list(decode_lines([s.encode() for s in sample])))
        assert fast is not None and fast.equals(slow)
    kafka = json.dumps({"topic": "t", "key": {"id": 1}, "value": None})
    assert decode_fast(pa.array([lines[0], kafka])) is None, "Kafka records go to the per-record decoder"

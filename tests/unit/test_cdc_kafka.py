"""The kafka source without a broker: offset ranges, the state and what gets committed when,
positions, tombstones and Debezium decoding of message values. A live round trip runs only
when FLOWFORGE_TEST_KAFKA names a broker (host:port)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from flowforge.connectors import connector_class
from flowforge.connectors.cdc.debezium.decode import DecodeStats
from flowforge.connectors.cdc.kafka import offsets
from flowforge.connectors.config import parse_connection
from flowforge.errors import SourceSchemaError

TOPIC = "cord.ConcordDb.dbo.Product"


def _value(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bytes:
    source = {"connector": "sqlserver", "schema": "dbo", "table": "Product", "ts_ms": 1760799407000,
              "commit_lsn": "00000027:00000758:0003", "change_lsn": "00000027:00000758:0002"}
    return json.dumps({"schema": None, "payload": {"op": op, "before": before, "after": after,
                                                    "source": source, "ts_ms": 1760799407100}}).encode()


def test_first_plan_reads_from_the_low_watermark_to_the_high_one() -> None:
    marks = {(TOPIC, 0): (0, 5), (TOPIC, 1): (3, 3)}
    ranges = offsets.plan_ranges({}, marks, "earliest", "c")
    assert ranges == [offsets.Range(TOPIC, 0, 0, 5), offsets.Range(TOPIC, 1, 3, 3)]
    assert offsets.next_state(ranges, {}) == {"offsets": {f"{TOPIC}:0": 5, f"{TOPIC}:1": 3}}
    assert offsets.plan_ranges({}, marks, "latest", "c")[0] == offsets.Range(TOPIC, 0, 5, 5)


def test_later_plans_start_at_the_stored_offsets_and_keep_unlisted_partitions() -> None:
    stored = offsets.stored_offsets({"offsets": {f"{TOPIC}:0": 5, "other.topic:2": 9}})
    ranges = offsets.plan_ranges(stored, {(TOPIC, 0): (0, 8)}, "earliest", "c")
    assert ranges == [offsets.Range(TOPIC, 0, 5, 8)]
    assert offsets.next_state(ranges, stored) == {"offsets": {f"{TOPIC}:0": 8, "other.topic:2": 9}}


def test_retention_gap_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(SourceSchemaError, match=r"messages 5\.\.9 were deleted by retention"):
        offsets.plan_ranges({(TOPIC, 0): 5}, {(TOPIC, 0): (10, 20)}, "earliest", "Connection 'k'")


def test_commits_follow_bronze_not_reads() -> None:
    """What the next plan commits to the group is the *stored* state: a plan whose rows never
    reached bronze (a crash) commits nothing new, and the re-plan covers the same messages."""
    state0 = {"offsets": {f"{TOPIC}:0": 5}}
    marks = {(TOPIC, 0): (0, 8)}
    plan1 = offsets.next_state(offsets.plan_ranges(offsets.stored_offsets(state0), marks, "earliest", "c"),
                               offsets.stored_offsets(state0))
    # crash: state0 is still what bronze holds
    assert offsets.commit_list(state0) == [(TOPIC, 0, 5)]
    replan = offsets.plan_ranges(offsets.stored_offsets(state0), marks, "earliest", "c")
    assert replan == [offsets.Range(TOPIC, 0, 5, 8)]
    # after the bronze commit of plan1's state, the next plan commits 8 and starts there
    assert offsets.commit_list(plan1) == [(TOPIC, 0, 8)]
    assert offsets.plan_ranges(offsets.stored_offsets(plan1), {(TOPIC, 0): (0, 8)}, "earliest", "c") == [
        offsets.Range(TOPIC, 0, 8, 8)]


def test_message_becomes_event_at_its_zero_padded_kafka_position() -> None:
    stats = DecodeStats()
    key = json.dumps({"schema": None, "payload": {"ID": 7}}).encode()
    e9 = offsets.decode_message(TOPIC, 0, 9, key, _value("c", None, {"ID": 7, "Name": "Pen"}), 1, stats)
    e10 = offsets.decode_message(TOPIC, 0, 10, key, _value("u", {"ID": 7, "Name": "Pen"},
                                                            {"ID": 7, "Name": "Fountain pen"}), 2, stats)
    assert e9 is not None and e10 is not None
    assert e9.position == f"kafka:{TOPIC}:0000000000:00000000000000000009"
    assert e9.position < e10.position  # offset 9 before 10 as strings too
    r = e10.row()
    assert (r["_op"], r["_table"], json.loads(r["_key"])) == ("u", "dbo.Product", {"ID": 7})
    assert json.loads(r["_after"])["Name"] == "Fountain pen"
    again = offsets.decode_message(TOPIC, 0, 10, key, _value("u", {"ID": 7, "Name": "Pen"},
                                                              {"ID": 7, "Name": "Fountain pen"}), 5, DecodeStats())
    assert again is not None and again.row()["_event_id"] == r["_event_id"]  # a replay dedups


def test_tombstone_after_delete_is_skipped() -> None:
    stats = DecodeStats()
    key = b'{"ID": 7}'
    delete = offsets.decode_message(TOPIC, 0, 11, key, _value("d", {"ID": 7, "Name": "x"}, None), 1, stats)
    tomb = offsets.decode_message(TOPIC, 0, 12, key, None, 2, stats)
    assert delete is not None and delete.op == "d" and tomb is None
    assert stats.tombstones == 1


def test_non_json_value_names_the_message() -> None:
    with pytest.raises(SourceSchemaError, match=rf"{TOPIC}\[0\]@3: the message value is not JSON"):
        offsets.decode_message(TOPIC, 0, 3, None, b"\x00\x00\x00\x01avro", 1, DecodeStats())


def test_config_keeps_the_password_out_of_describe() -> None:
    config = parse_connection({"type": "kafka", "bootstrap_servers": "b1:9092,b2:9092", "topics": [TOPIC],
                               "password": "s3cret", "options": {"security.protocol": "SASL_SSL"}})
    assert "s3cret" not in config.describe() and "s3cret" not in repr(config)
    client = config.client_config()  # type: ignore[attr-defined]
    assert client["sasl.password"] == "s3cret" and client["enable.auto.commit"] == "false"
    assert connector_class("kafka").capabilities.cdc


@pytest.mark.skipif(not os.environ.get("FLOWFORGE_TEST_KAFKA"),
                    reason="no Kafka broker here: set FLOWFORGE_TEST_KAFKA=host:port to run against one")
def test_live_round_trip() -> None:  # pragma: no cover - needs a broker
    import confluent_kafka
    import pyarrow as pa
    from confluent_kafka.admin import AdminClient, NewTopic

    from flowforge.connectors import open_connector
    from flowforge.connectors.base import ReadRequest

    broker = os.environ["FLOWFORGE_TEST_KAFKA"]
    topic = f"ff_test_{uuid.uuid4().hex[:8]}"
    AdminClient({"bootstrap.servers": broker}).create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = confluent_kafka.Producer({"bootstrap.servers": broker})

    def send(n: int, op: str) -> None:
        producer.produce(topic, key=json.dumps({"ID": n}).encode(), value=_value(op, None, {"ID": n}))
        producer.flush(10)

    conn = open_connector("live", parse_connection({"type": "kafka", "bootstrap_servers": broker,
                                                    "topics": [topic], "group_id": topic}))

    def read(state: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        plan = conn.plan(ReadRequest(), state)
        rows = [r for part in conn.read(plan) for b in part.batches for r in pa.Table.from_batches([b]).to_pylist()]
        return rows, plan.new_state

    send(1, "c")
    send(2, "c")
    first, state = read(None)
    assert [json.loads(r["_key"])["ID"] for r in first] == [1, 2]
    send(3, "c")
    crashed, _ = read(state)
    again, committed = read(state)
    assert [r["_event_id"] for r in again] == [r["_event_id"] for r in crashed]
    assert read(committed)[0] == []

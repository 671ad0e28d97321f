"""Kafka source of Debezium JSON change events (confluent-kafka).

Offsets and commits
-------------------
``plan`` first commits to the consumer group the offsets of the *stored* state — they were
written to bronze in the same Delta commit as their rows — then fixes, per partition, the range
``[stored next offset, high watermark)``. ``read`` assigns those partitions at those offsets and
stops each at its planned end; it never commits. A crash after ``read`` leaves the group and the
state where they were, so the next run re-reads the same messages (same positions, same event
ids); after the bronze commit, the next ``plan`` commits and moves on. The group's committed
offsets are for monitoring (lag) and never ahead of bronze; the state is the source of truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors import register_connector
from flowforge.connectors.base import (
    ColumnInfo,
    ConnectionTest,
    Connector,
    ConnectorCapabilities,
    ReadPlan,
    ReadRequest,
    SourcePart,
    TableInfo,
)
from flowforge.connectors.cdc.debezium.decode import DecodeStats
from flowforge.connectors.cdc.events import ChangeEvent, event_schema, to_batch
from flowforge.connectors.cdc.kafka import offsets
from flowforge.errors import ConnectionFailed, ConnectorError, MissingDependencyError, SourceNotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.cdc.kafka.config import KafkaConfig

_INSTALL = "pip install 'flowforge[cdc]'"


def _client() -> Any:
    try:
        import confluent_kafka
    except ImportError as exc:
        raise MissingDependencyError(f"The kafka connector needs confluent-kafka: {_INSTALL}") from exc
    return confluent_kafka


@register_connector("kafka")
class KafkaConnector(Connector):
    """Debezium change events from Kafka topics; offsets advance only with bronze commits.

    ```yaml
    connections:
      cord_kafka: {type: kafka, bootstrap_servers: "localhost:9092", topics: [cord.ConcordDb.dbo.Product]}
    jobs:
      - name: product_cdc
        kind: cdc
        source: {connection: cord_kafka}
    ```
    """

    capabilities = ConnectorCapabilities(tables=True, cdc=True)
    config: KafkaConfig

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    def _consumer(self) -> Any:
        kafka = _client()
        try:
            return kafka.Consumer(self.config.client_config())
        except kafka.KafkaException as exc:
            raise ConnectorError(f"{self.describe()}: invalid client settings: {exc}",
                                 hint="Check the 'options' of this connection (librdkafka names).") from None

    def _fail(self, action: str, exc: BaseException) -> ConnectorError:
        return ConnectionFailed(f"{self.describe()}: {action}: {exc}",
                                hint="Check that the brokers are reachable (bootstrap_servers, firewall, "
                                     "security settings); the run will be retried.")

    def _watermarks(self, consumer: Any) -> dict[tuple[str, int], tuple[int, int]]:
        kafka = _client()
        timeout = self.config.timeout_s
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in self.config.topics:
            try:
                meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            except kafka.KafkaException as exc:
                raise self._fail(f"could not read the metadata of topic {topic!r}", exc) from None
            if meta is None or meta.error is not None or not meta.partitions:
                raise SourceNotFound(f"{self.describe()}: topic {topic!r} does not exist.",
                                     hint="Check the topic name (the Debezium connector's topic.prefix + table).")
            for partition in sorted(meta.partitions):
                low, high = consumer.get_watermark_offsets(kafka.TopicPartition(topic, partition), timeout=timeout)
                out[(topic, partition)] = (int(low), int(high))
        return out

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        consumer = self._consumer()
        try:
            self._watermarks(consumer)
        finally:
            consumer.close()
        return ConnectionTest(ok=True, server_version="Kafka", latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        return [TableInfo(name=t) for t in self.config.topics]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, str(f.type), f.type, f.nullable) for f in event_schema()]

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        kafka = _client()
        stored = offsets.stored_offsets(state)
        consumer = self._consumer()
        try:
            commits = offsets.commit_list(state)
            if commits:  # bronze holds these: only now does the group move
                try:
                    consumer.commit(offsets=[kafka.TopicPartition(t, p, o) for t, p, o in commits],
                                    asynchronous=False)
                except kafka.KafkaException as exc:
                    raise self._fail("could not commit the consumer group's offsets", exc) from None
            ranges = offsets.plan_ranges(stored, self._watermarks(consumer), self.config.start, self.describe())
        finally:
            consumer.close()
        new_state = offsets.next_state(ranges, stored)
        pending = sum(r.end - r.start for r in ranges)
        return ReadPlan(
            request=request, schema=event_schema(), new_state=new_state, has_data=pending > 0,
            description=f"{pending} messages of {', '.join(self.config.topics)}",
            bounds=({r.name: r.start for r in ranges}, {r.name: r.end for r in ranges}))

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if not plan.has_data or plan.bounds is None:
            return
        starts, ends = plan.bounds
        ranges = [offsets.Range(name.rpartition(":")[0], int(name.rpartition(":")[2]), int(starts[name]),
                                int(ends[name])) for name in sorted(ends) if int(ends[name]) > int(starts[name])]
        yield SourcePart(name=",".join(self.config.topics), modified_time=None,
                         batches=self._consume(ranges, plan.request.batch_size))

    def _consume(self, ranges: list[offsets.Range], size: int) -> Iterator[pa.RecordBatch]:
        kafka = _client()
        consumer = self._consumer()
        ends = {(r.topic, r.partition): r.end for r in ranges}
        stats = DecodeStats()
        chunk: list[ChangeEvent] = []
        seq = 0
        try:
            consumer.assign([kafka.TopicPartition(r.topic, r.partition, r.start) for r in ranges])
            deadline = time.monotonic() + self.config.timeout_s
            while ends:
                msg = consumer.poll(1.0)
                if msg is None:
                    # Transaction markers take offsets but are never delivered: position says we are past them.
                    for tp in consumer.position([kafka.TopicPartition(t, p) for t, p in ends]):
                        if tp.offset >= ends.get((tp.topic, tp.partition), 0):
                            ends.pop((tp.topic, tp.partition), None)
                    if ends and time.monotonic() > deadline:
                        raise ConnectionFailed(f"{self.describe()}: planned messages did not arrive within "
                                               f"{self.config.timeout_s:g} s ({len(ends)} partitions unfinished).",
                                               hint="Check the brokers; the run will be retried from the same offsets.")
                    continue
                if msg.error() is not None:
                    if msg.error().code() == kafka.KafkaError._PARTITION_EOF:
                        continue
                    raise self._fail("could not consume", kafka.KafkaException(msg.error()))
                deadline = time.monotonic() + self.config.timeout_s
                tp = (msg.topic(), msg.partition())
                end = ends.get(tp)
                if end is None or msg.offset() >= end:
                    continue  # past this plan's bound: the next plan reads it
                seq += 1
                event = offsets.decode_message(tp[0], tp[1], msg.offset(), msg.key(), msg.value(), seq, stats)
                if event is not None:
                    chunk.append(event)
                if msg.offset() >= end - 1:
                    ends.pop(tp)
                if len(chunk) >= size:
                    yield to_batch(chunk)
                    chunk = []
            if chunk:
                yield to_batch(chunk)
        finally:
            consumer.close()

"""The pure part of the Kafka source: which offsets a plan covers, the state it commits, and the
decoding of one message. No client here, so all of it is unit-tested without a broker.

State: ``{"offsets": {"<topic>:<partition>": next_offset}}`` — Kafka's own convention (the
offset of the next message to read), so the same numbers are committed to the consumer group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowforge.connectors.cdc.debezium.decode import DecodeStats, decode_record
from flowforge.connectors.cdc.events import ChangeEvent
from flowforge.errors import SourceSchemaError

# Kafka's "no offset" markers (OFFSET_BEGINNING / OFFSET_END / OFFSET_INVALID) are negative.


@dataclass(frozen=True, order=True)
class Range:
    """Messages ``[start, end)`` of one partition; ``end`` is the high watermark at plan time."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def name(self) -> str:
        return f"{self.topic}:{self.partition}"


def stored_offsets(state: Mapping[str, Any] | None) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for name, offset in ((state or {}).get("offsets") or {}).items():
        topic, _, partition = str(name).rpartition(":")
        out[(topic, int(partition))] = int(offset)
    return out


def plan_ranges(stored: Mapping[tuple[str, int], int], watermarks: Mapping[tuple[str, int], tuple[int, int]],
                start: str, where: str) -> list[Range]:
    """One range per partition: from the stored next offset (or the low/high watermark on a first
    run, by ``start``) up to the high watermark fixed now. A stored offset below the low watermark
    means retention deleted messages bronze never saw: an error, not a silent gap."""
    ranges = []
    for (topic, partition), (low, high) in sorted(watermarks.items()):
        begin = stored.get((topic, partition))
        if begin is None:
            begin = low if start == "earliest" else high
        elif begin < low:
            raise SourceSchemaError(
                f"{where}: {topic}[{partition}] starts at offset {low}, but bronze stopped at {begin}; "
                f"messages {begin}..{low - 1} were deleted by retention before they were read.",
                hint="Raise the topic's retention or run the job more often, then reset the job's CDC state "
                     "(and re-snapshot the source connector).")
        ranges.append(Range(topic, partition, begin, max(high, begin)))
    return ranges


def next_state(ranges: list[Range], stored: Mapping[tuple[str, int], int]) -> dict[str, Any]:
    """The state a plan commits: every partition's end (and partitions not planned keep theirs)."""
    offsets = {f"{t}:{p}": o for (t, p), o in stored.items()}
    offsets.update({r.name: r.end for r in ranges})
    return {"offsets": dict(sorted(offsets.items()))}


def commit_list(state: Mapping[str, Any] | None) -> list[tuple[str, int, int]]:
    """(topic, partition, next offset) to commit to the consumer group: what bronze holds."""
    return [(t, p, o) for (t, p), o in sorted(stored_offsets(state).items())]


def _json(data: bytes | None, what: str, where: str) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SourceSchemaError(
            f"{where}: the message {what} is not JSON ({exc}).",
            hint="The topic must carry Debezium JSON (JsonConverter), not Avro or Protobuf.") from None


def decode_message(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                   seq: int, stats: DecodeStats) -> ChangeEvent | None:
    """One Kafka message → an event at ``kafka:<topic>:<partition>:<offset>``; None for a tombstone
    (it only tells compaction to drop the key, after the delete event that preceded it)."""
    where = f"{topic}[{partition}]@{offset}"
    record = {"topic": topic, "partition": partition, "offset": offset, "key": _json(key, "key", where),
              "value": _json(value, "value", where)}
    return decode_record(record, seq, stats, value or b"")

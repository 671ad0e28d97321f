"""Concurrent writers never lose a commit, on disk and in object storage.

Eight writers append fifty times each to one table at once. Every acknowledged append must be
in the table exactly once, every refused one absent, and the table's version must count the
acknowledged commits. Where the store cannot keep two writers apart (conditional writes off or
ignored) writing stops with a clear error unless the user declared a single writer.
"""

from __future__ import annotations

import threading
from collections import Counter

import pyarrow as pa
import pytest
from tests.lakes import Lake
from tests.s3_server import IgnoresConditionalWrites, S3Server

from flowforge.errors import StorageError
from flowforge.storage import CommitConflict, LakehouseStore

WRITERS = 8
APPENDS = 50
SCHEMA = pa.schema([("writer", pa.int32()), ("seq", pa.int32()), ("row", pa.int32())])


def _batch(writer: int, seq: int) -> pa.Table:
    n = seq % 5 + 1
    return pa.table({"writer": [writer] * n, "seq": [seq] * n, "row": list(range(n))}, schema=SCHEMA)


def test_eight_writers_lose_no_commit(lake: Lake) -> None:
    lake.store().append("bronze", "events", SCHEMA.empty_table(), {})  # version 0: the empty table
    acked: list[tuple[int, int, int, int]] = []  # writer, seq, rows, version
    refused: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(w: int) -> None:
        store = lake.store()  # each writer its own client, as separate processes would have
        start.wait()
        for seq in range(APPENDS):
            try:
                result = store.append("bronze", "events", _batch(w, seq), {"writer": w, "seq": seq})
            except CommitConflict:
                with lock:
                    refused.append((w, seq))
                continue
            with lock:
                acked.append((w, seq, result.rows_written, result.version))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(acked) + len(refused) == WRITERS * APPENDS
    assert len(acked) >= WRITERS * APPENDS // 2, f"most appends should commit ({len(refused)} refused)"
    dt = lake.store().open("bronze", "events")
    assert dt is not None
    assert dt.version() == len(acked), "one table version per acknowledged commit (plus version 0)"
    assert sorted(v for *_, v in acked) == list(range(1, len(acked) + 1)), "each commit got its own version"
    rows = dt.to_pyarrow_table()
    assert rows.num_rows == sum(n for _, _, n, _ in acked)
    landed = Counter(zip(rows.column("writer").to_pylist(), rows.column("seq").to_pylist(), strict=True))
    assert landed == Counter({(w, s): n for w, s, n, _ in acked}), "acknowledged rows exactly once, refused none"


@pytest.mark.s3
def test_conditional_put_disabled_is_refused_unless_single_writer(s3_server: S3Server, s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/lake"
    options = {**s3_server.options(), "aws_conditional_put": "disabled"}
    with pytest.raises(StorageError) as err:
        LakehouseStore(root, options).append("bronze", "t", pa.table({"a": [1]}), {})
    message = str(err.value)
    assert f"{root}/bronze/t" in message and "aws_conditional_put is 'disabled'" in message
    assert "single_writer" in message
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0, "nothing was written"

    store = LakehouseStore(root, options, single_writer=True)
    store.append("bronze", "t", pa.table({"a": [1]}), {})
    assert store.append("bronze", "t", pa.table({"a": [2]}), {}).version == 1


@pytest.mark.s3
def test_store_ignoring_conditional_writes_is_refused_unless_single_writer(s3_server: S3Server,
                                                                          s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/lake"
    with IgnoresConditionalWrites(s3_server) as proxy:
        with pytest.raises(StorageError) as err:
            LakehouseStore(root, proxy.options()).append("bronze", "t", pa.table({"a": [1]}), {})
        message = str(err.value)
        assert f"{root}/bronze/t" in message and "does not enforce conditional writes" in message
        assert proxy.options()["aws_secret_access_key"] not in message
        listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="lake/bronze/t/_delta_log/")
        assert listed.get("KeyCount") == 0, "no table was started"

        store = LakehouseStore(root, proxy.options(), single_writer=True)
        store.append("bronze", "t", pa.table({"a": [1]}), {})
        assert store.append("bronze", "t", pa.table({"a": [2]}), {}).version == 1
    # the same bucket straight on the server (which enforces them) is fine without the opt-in
    assert LakehouseStore(root, s3_server.options()).append("bronze", "t", pa.table({"a": [3]}), {}).version == 2

"""A record-batch stream that stops at a cancel (or a lost lease) between batches.

Raising inside the stream makes the Delta write fail before its commit, so the table stays at its
previous version. delta-rs reports the failure as its own write error; :meth:`Checked.reraise`
raises the original (``RunCancelled``, ``LeaseLost``) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from flowforge.errors import FlowForgeError
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa


class Checked:
    def __init__(self, source: pa.RecordBatchReader, checkpoint: Callable[[], None], point: str) -> None:
        self.source = source
        self.checkpoint = checkpoint
        self.point = point
        self.failure: FlowForgeError | None = None

    def reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.source.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self.source:
                self.checkpoint()
                yield batch
                fault_point(self.point)
        except FlowForgeError as exc:
            self.failure = exc
            raise

    def reraise(self) -> None:
        if self.failure is not None:
            raise self.failure from None

"""When FlowForge maintains a table on its own: compaction, checkpoints and vacuum.

Micro-batches (``--follow``, CDC, new files every few minutes) write one small Parquet file
and a few commits each; without maintenance, reads slow down and storage grows without bound.
After a CDC job, or an ingest job reading a files connection, each table it wrote is checked:

```yaml
maintenance:                 # in flowforge.yml (every table), or on a cdc job (its tables)
  auto: true                 # false: only 'flowforge optimize' / 'flowforge vacuum' do it
  optimize_every: 50         # compact after this many commits since the last compaction...
  max_small_files: 20        # ...or as soon as this many files are smaller than small_file_mb
  small_file_mb: 16
  target_file_mb: 128        # compacted file size
  vacuum_retention: 7d       # then delete files no version newer than this references (h, d, w)
  vacuum: true               # false: compact and checkpoint, never delete
```

A bronze table is compacted only once every table that reads it has processed its rows, so a
compaction is never mistaken for new data.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import Field, field_validator

from flowforge.spec.base import SpecModel

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|w|min|minutes?|hours?|days?|weeks?)\s*$", re.I)
MIN_RETENTION = dt.timedelta(hours=1)


def parse_retention(text: str) -> dt.timedelta:
    """``36h``, ``7d``, ``2w`` → a timedelta of at least one hour (files a running job is
    writing must never look abandoned)."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"retention {text!r} is not a duration such as 36h, 7d or 2w")
    amount, unit = float(match.group(1)), match.group(2)[0].lower()
    value = dt.timedelta(hours=amount * {"m": 1 / 60, "h": 1, "d": 24, "w": 168}[unit])
    if value < MIN_RETENTION:
        raise ValueError(f"retention {text!r} is below the minimum of 1h: a run in progress may still be "
                         "writing younger files")
    return value


class MaintenancePolicy(SpecModel):
    """Automatic table maintenance after micro-batch jobs (see the module docstring)."""

    auto: bool = True
    optimize_every: int = Field(50, ge=1)
    max_small_files: int = Field(20, ge=2)
    small_file_mb: float = Field(16, gt=0)
    target_file_mb: float = Field(128, gt=0)
    vacuum_retention: str = "7d"
    vacuum: bool = True

    @field_validator("vacuum_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        parse_retention(value)
        return value

    @property
    def retention(self) -> dt.timedelta:
        return parse_retention(self.vacuum_retention)

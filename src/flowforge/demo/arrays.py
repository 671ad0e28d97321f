"""Vectorised building blocks of the demo generators: seeded streams, exact shares, exact decimals,
Arrow text columns and integer splits that add up, all with numpy and pyarrow (no per-row Python).

Example::

    rng = rng_for(42, "orders")
    exact_labels(rng, 10, (70, 30))              # seven 0s and three 1s, shuffled
    decimal_array(np.array([150]), pa.decimal128(15, 2))   # [1.50]
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowforge.demo.bfsi import exact_counts

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per stream, so changing one table's rules leaves the others alone."""
    import numpy as np

    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, zlib.crc32(stream.encode())]))


def exact_labels(rng: np.random.Generator, n: int, weights: Sequence[float]) -> np.ndarray:
    """Label indexes whose counts are exactly proportional to ``weights`` (largest remainder), shuffled."""
    import numpy as np

    labels = np.repeat(np.arange(len(weights)), exact_counts(n, list(weights)))
    return rng.permutation(labels)


def decimal_array(units: np.ndarray, type_: pa.DataType) -> pa.Array:
    """Integers in the type's smallest unit (cents for scale 2) as an exact ``decimal128`` array."""
    import numpy as np
    import pyarrow as pa

    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, 0] = units
    words[:, 1] = units >> 63  # sign extension into the high 64 bits
    return pa.Array.from_buffers(type_, len(units), [None, pa.py_buffer(words)])


def timestamps(us: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    import pyarrow as pa

    mask = None if valid is None else ~valid
    return pa.array(us.astype("int64"), type=pa.timestamp("us"), mask=mask)


def dates(days: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(days.astype("int32"), type=pa.date32())


def text(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays and constants."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [p if isinstance(p, pa.Array | pa.ChunkedArray) else pa.scalar(str(p)) for p in parts]
    result = pc.binary_join_element_wise(*arrays, "")
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def padded(numbers: np.ndarray, width: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")


def pick(words: Sequence[str], index: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(list(words), pa.string()).take(pa.array(index))


def epoch_us(year: int, month: int = 1, day: int = 1) -> int:
    import numpy as np

    return int(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "us").astype(np.int64))


def fit_counts(rng: np.random.Generator, n: int, total: int, weights: Sequence[float], high: int) -> np.ndarray:
    """``n`` counts in ``1..high`` drawn from ``weights`` and nudged one at a time until they sum to
    ``total`` exactly (the shape stays the drawn one)."""
    import numpy as np

    if not n <= total <= high * n:
        raise ValueError(f"cannot split {total} items over {n} orders with 1..{high} each")
    counts = rng.choice(np.arange(1, len(weights) + 1), size=n, p=np.asarray(weights) / sum(weights))
    while (diff := total - int(counts.sum())) != 0:
        room = np.flatnonzero(counts < high) if diff > 0 else np.flatnonzero(counts > 1)
        chosen = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        counts[chosen] += 1 if diff > 0 else -1
    return counts


def distinct_per_group(rng: np.random.Generator, group: np.ndarray, values: np.ndarray, modulo: int) -> np.ndarray:
    """``values`` changed (``+1 mod modulo``) until no group holds a value twice."""
    import numpy as np

    values = values.copy()
    while True:
        order = np.lexsort((values, group))
        g, v = group[order], values[order]
        dup = np.flatnonzero((g[1:] == g[:-1]) & (v[1:] == v[:-1])) + 1
        if len(dup) == 0:
            return values
        values[order[dup]] = (v[dup] + 1 + rng.integers(0, 3, len(dup))) % modulo


def round_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """Integer division rounding halves away from zero (amounts here are never negative)."""
    return (numerator * 2 + denominator) // (2 * denominator)


def shares(weights: Sequence[float]) -> np.ndarray:
    import numpy as np

    w: np.ndarray = np.asarray(weights, dtype=float)
    shares: np.ndarray = w / w.sum()
    return shares

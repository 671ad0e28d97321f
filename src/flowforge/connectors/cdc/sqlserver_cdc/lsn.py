"""SQL Server log sequence numbers: ``binary(10)`` values, their text form and arithmetic.

An LSN is 10 bytes: VLF sequence (4), log block offset (4), slot (2). Its text form is the one
Debezium prints, ``0000002f:000001e8:0002`` (fixed-width lower-case hex), so string order is LSN order.
"""

from __future__ import annotations

from flowforge.connectors.cdc.events import sqlserver_position

LSN_BYTES = 10
ZERO = bytes(LSN_BYTES)


def to_text(lsn: bytes) -> str:
    if len(lsn) != LSN_BYTES:
        raise ValueError(f"an LSN has {LSN_BYTES} bytes, got {len(lsn)}")
    h = lsn.hex()
    return f"{h[:8]}:{h[8:16]}:{h[16:]}"


def from_text(text: str) -> bytes:
    parts = text.replace("0x", "").split(":")
    if len(parts) == 1 and len(parts[0]) == 2 * LSN_BYTES:
        return bytes.fromhex(parts[0])
    if [len(p) for p in parts] != [8, 8, 4]:
        raise ValueError(f"{text!r} is not an LSN like 0000002f:000001e8:0002")
    return bytes.fromhex("".join(parts))


def to_int(lsn: bytes) -> int:
    return int.from_bytes(lsn, "big")


def from_int(value: int) -> bytes:
    return value.to_bytes(LSN_BYTES, "big")


def increment(lsn: bytes) -> bytes:
    """The next LSN, like ``sys.fn_cdc_increment_lsn``."""
    return from_int(to_int(lsn) + 1)


def decrement(lsn: bytes) -> bytes:
    """The previous LSN, like ``sys.fn_cdc_decrement_lsn``."""
    return from_int(max(to_int(lsn) - 1, 0))


def position(start_lsn: bytes, seqval: bytes | None, serial: int) -> str:
    """``_source_position`` of a change row: commit LSN, change LSN (seqval), event serial number."""
    return sqlserver_position(to_text(start_lsn), to_text(seqval) if seqval else None, serial)


def snapshot_position(upper: bytes) -> str:
    """Snapshot rows sort before every change committed after ``upper``."""
    return sqlserver_position(to_text(upper), None, 0)

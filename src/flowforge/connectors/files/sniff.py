"""Look at the head of a text file without trusting it: lines read with a size limit (a file
with no newline fails fast, in bounded memory), bad bytes located by line and offset, the
dialect sniffed (delimiter, quote, header, encoding, null tokens), and a file that reads as
one column under its delimiter but as several under another one refused."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from flowforge.connectors.files.options import DEFAULT_NULLS, FileRead
from flowforge.errors import SourceSchemaError

CANDIDATES = (",", ";", "\t", "|")
SAMPLE_BYTES = 32 << 20  # text sampled to infer types, at most
NULL_TOKENS = ("", "NULL", "null", "NA", "N/A", "n/a", "?", "-", "\\N", "None", "NaN", "nan")
_SHOW = {"\t": "tab"}


def show_delimiter(value: str) -> str:
    return _SHOW.get(value, value)


def yaml_delimiter(value: str) -> str:
    return "tab" if value == "\t" else f'"{value}"'


class LineTooLong(SourceSchemaError):
    pass


def long_line(label: str, limit: int, line: int | None = None, offset: int | None = None) -> LineTooLong:
    where = f"line {line} (from byte {offset:,})" if line is not None and offset is not None else "a line"
    return LineTooLong(
        f"{label}: {where} is longer than max_line_size ({limit:,} bytes); FlowForge stopped reading there",
        hint="Check that the file is a text file with line breaks, or raise 'max_line_size' of the connection "
             "(or of the file's pattern) if its lines really are that long.")


def bounded_lines(raw: IO[bytes], label: str, limit: int) -> Iterator[bytes]:
    """Lines as bytes, each at most ``limit`` bytes (or the error saying where it was longer)."""
    number, offset = 0, 0
    while True:
        line = raw.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            raise long_line(label, limit, number, offset)
        offset += len(line)
        yield line


def bad_bytes(label: str, encoding: str, line: int, offset: int, reason: str,
              head: bytes = b"") -> SourceSchemaError:
    other = "latin-1" if codecs.lookup(encoding).name == "utf-8" else "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        other = "utf-16"  # the file starts with a UTF-16 byte order mark
    return SourceSchemaError(
        f"{label}: line {line} (byte {offset:,}) is not valid {encoding}: {reason}",
        hint=f"Set 'encoding' of the connection (or of the file's pattern, or the job's 'read') to the file's "
             f"encoding, for example encoding: {other}.")


def decoded_lines(raw: IO[bytes], label: str, read: FileRead) -> Iterator[str]:
    """Text lines decoded with the file's encoding (split after decoding, so UTF-16 works too);
    a bad byte raises an error naming the line and the byte."""
    decoder = codecs.getincrementaldecoder(read.encoding)()
    pending, offset, number = "", 0, 0
    for chunk in bounded_lines(raw, label, read.max_line_size):
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = number + 1 + pending.count("\n")
            raise bad_bytes(label, read.encoding, line, offset + max(exc.start, 0), exc.reason,
                            chunk if offset == 0 else b"") from None
        offset += len(chunk)
        while (cut := pending.find("\n")) >= 0:
            text, pending = pending[:cut + 1], pending[cut + 1:]
            number += 1
            yield text[1:] if number == 1 and text.startswith("\ufeff") else text
        if len(pending) > read.max_line_size:
            raise long_line(label, read.max_line_size, number + 1, offset)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending[1:] if number == 0 and pending.startswith("\ufeff") else pending


def locate_bad_bytes(raw: IO[bytes], label: str, encoding: str) -> SourceSchemaError | None:
    """Find the first byte the encoding cannot decode, streaming in blocks (bounded memory)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line = 0, 1
    while block := raw.read(1 << 20):
        pending = len(decoder.getstate()[0])  # bytes of a character cut at the previous block's end
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            at = max(exc.start - pending, 0)
            return bad_bytes(label, encoding, line + block.count(b"\n", 0, at), offset + at, exc.reason)
        offset += len(block)
        line += block.count(b"\n")
    return None


def sample_rows(raw: IO[bytes], label: str, read: FileRead, limit: int) -> list[list[str]]:
    """Up to ``limit`` parsed records (the header is the first), read line by line within limits,
    and no more than ``SAMPLE_BYTES`` of text (a few thousand long lines would not fit in memory)."""
    budget = [SAMPLE_BYTES]

    def counted() -> Iterator[str]:
        for line in decoded_lines(raw, label, read):
            budget[0] -= len(line)
            yield line

    reader = csv_reader(counted(), read, read.delimiter)
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= limit or (budget[0] < 0 and len(rows) > 1):
                break
    except csv.Error as exc:
        raise SourceSchemaError(f"{label}: line {reader.line_num}: {exc}",
                                hint="Check 'quote' and 'delimiter' of the connection.") from None
    return rows


def csv_reader(lines: Iterable[str], read: FileRead, delimiter: str) -> Any:
    csv.field_size_limit(max(csv.field_size_limit(), read.max_line_size))
    return csv.reader(lines, delimiter=delimiter, quotechar=read.quote or None,
                      quoting=csv.QUOTE_MINIMAL if read.quote else csv.QUOTE_NONE,
                      escapechar=read.escape or None, doublequote=bool(read.quote), strict=False)


def split_lines(lines: list[str], read: FileRead, delimiter: str) -> list[list[str]]:
    try:
        return list(csv_reader(io.StringIO("".join(lines)), read, delimiter))
    except csv.Error:
        return []


def better_delimiter(lines: list[str], read: FileRead) -> tuple[str, list[str]] | None:
    """Another delimiter that splits every sampled line into the same number (> 1) of fields."""
    best: tuple[str, list[str]] | None = None
    for cand in CANDIDATES:
        if cand == read.delimiter:
            continue
        rows = [r for r in split_lines(lines, read, cand) if r]
        if not rows or len(rows[0]) < 2 or any(len(r) != len(rows[0]) for r in rows):
            continue
        if best is None or len(rows[0]) > len(best[1]):
            best = (cand, rows[0])
    return best


def check_split(raw: IO[bytes], label: str, read: FileRead) -> None:
    """Refuse a file that reads as one column with its delimiter when another one gives several
    (unless ``single_column`` says it really has one)."""
    if read.single_column:
        return
    lines: list[str] = []
    for line in decoded_lines(raw, label, read):
        lines.append(line)
        if len(lines) >= 50:
            break
    rows = [r for r in split_lines(lines, read, read.delimiter) if r]
    if not rows or any(len(r) > 1 for r in rows):
        return
    found = better_delimiter(lines, read)
    if found is None:
        return
    delim, fields = found
    shown = ", ".join(fields[:8]) + (", ..." if len(fields) > 8 else "")
    what = "columns" if read.header else "fields, for example"
    raise SourceSchemaError(
        f"{label} reads as one column with delimiter {show_delimiter(read.delimiter)!r} (the first line is "
        f"{lines[0].rstrip()[:80]!r}), but with {show_delimiter(delim)!r} it has {len(fields)} {what}: {shown}. "
        "Nothing was loaded.",
        hint=f"Set delimiter: {yaml_delimiter(delim)} on the connection, under its 'patterns' for this file, or "
             "under 'read' of the job's table; the next run reads it with that delimiter. If the file really has one "
             "column, set single_column: true.")


@dataclass(frozen=True)
class Dialect:
    """What the head of a file looks like, as FlowForge would read it (shown, never applied)."""

    file: str
    encoding: str
    delimiter: str
    quote: str
    header: bool
    null_tokens: tuple[str, ...]
    columns: int

    def as_options(self) -> dict[str, object]:
        return {"delimiter": show_delimiter(self.delimiter), "quote": self.quote or "none",
                "header": self.header, "encoding": self.encoding, "null_values": list(self.null_tokens)}


def sniff(raw: IO[bytes], label: str, file: str, read: FileRead, size: int = 1 << 16) -> Dialect:
    """Guess the dialect from the first ``size`` bytes (for display: the read uses the options)."""
    head = raw.read(size)
    encoding = _encoding(head, read.encoding)
    text = head.decode(encoding, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if len(head) == size and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    quote = "'" if text.count("'") > 2 * text.count('"') and text.count("'") >= 2 else '"'
    probe = FileRead(format="csv", delimiter=",", quote=quote, escape="", header=True, encoding=encoding,
                     null_values=DEFAULT_NULLS, max_line_size=read.max_line_size)
    delimiter, width = read.delimiter, 1
    for cand in CANDIDATES:
        rows = [r for r in split_lines(lines[:50], probe, cand) if r]
        if rows and len(rows[0]) > width and all(len(r) == len(rows[0]) for r in rows):
            delimiter, width = cand, len(rows[0])
    rows = [r for r in split_lines(lines, probe, delimiter) if r]
    header = _has_header(rows)
    body = rows[1:] if header else rows
    tokens = sorted({v for r in body for v in r if v.strip() in NULL_TOKENS and v.strip() != ""} |
                    ({""} if any("" in r for r in body) else set()))
    return Dialect(file=file, encoding=encoding, delimiter=delimiter, quote=quote, header=header,
                   null_tokens=tuple(tokens), columns=width)


def _encoding(head: bytes, configured: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode(configured)
        return configured
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut at the end of the sample
            return configured
    for name in ("utf-8", "cp1252"):
        try:
            head.decode(name)
            return name
        except UnicodeDecodeError:
            continue
    return "latin-1"


def _has_header(rows: list[list[str]]) -> bool:
    """A first row of names over rows with numbers or dates in some of those columns, or a
    first row whose values are all text and all different."""
    from flowforge.connectors.files.types import infer_type

    if len(rows) < 2:
        return True
    first, body = rows[0], rows[1:]
    typed_below = 0
    for i, name in enumerate(first):
        below = infer_type([r[i] for r in body if i < len(r)])
        if str(below) != "string":
            if str(infer_type([name])) != "string":
                return False  # the first row has a number where numbers are: it is data
            typed_below += 1
    return typed_below > 0 or len(set(first)) == len(first)

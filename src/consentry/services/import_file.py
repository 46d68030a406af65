"""Reading an import file: streamed line by line, never whole, with errors that name the line.

Each physical line is decoded on its own, so a byte that is invalid in the declared encoding is
reported with its line number; the decoded lines feed ``csv.reader``, which joins the lines of a
quoted cell that spans several of them. Memory stays flat in the file's size.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from consentry.domain.imports import (
    ADDRESS_FIELD,
    FIELDS,
    ImportEncoding,
    ImportHeader,
    ImportTooLarge,
)
from consentry.domain.model import Channel

# Header spellings recognised without a mapping (compared lower-cased, spaces and dashes as _).
ALIASES: dict[str, str] = {
    "email": "email", "e_mail": "email", "email_address": "email", "e_mail_address": "email",
    "mail": "email",
    "phone": "phone", "phone_number": "phone", "mobile": "phone", "mobile_phone": "phone",
    "cell": "phone", "sms": "phone", "whatsapp": "whatsapp", "whatsapp_number": "whatsapp",
    "name": "name", "full_name": "name", "country": "country", "locale": "locale",
    "language": "locale", "time_zone": "time_zone", "timezone": "time_zone", "tz": "time_zone",
    "external_ref": "external_ref", "customer_id": "external_ref", "id": "external_ref",
    "signup_at": "signup_at", "signup_time": "signup_at", "signed_up_at": "signup_at",
    "opt_in_at": "signup_at", "optin_time": "signup_at", "subscribed_at": "signup_at",
    "signup_ip": "signup_ip", "ip": "signup_ip", "ip_address": "signup_ip",
    "opt_in_ip": "signup_ip",
}  # fmt: skip

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
MAX_CELL_CHARS = 10_000  # csv's own limit is 128 KiB; no contact field is anywhere near this


def _key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class Columns:
    """Which CSV column feeds which field, and the columns left out."""

    index: dict[str, int]  # field -> column position
    ignored: tuple[str, ...]
    width: int


def map_columns(header: list[str], mapping: Mapping[str, str], channel: Channel) -> Columns:
    """Match the header to fields: the explicit ``mapping`` (field -> column name) first, then
    the known spellings. Raises ImportHeader for a missing header or required column."""
    cleaned = [h.strip() for h in header]
    if not any(cleaned):
        raise ImportHeader("line 1 is empty: the file needs a header line naming its columns")
    known = any(_key(c) in ALIASES or c in mapping.values() for c in cleaned)
    if not known and any("@" in c or c[:1].isdigit() or c[:1] == "+" for c in cleaned):
        raise ImportHeader(
            "line 1 looks like data, not a header: add a header line naming the columns"
        )
    for name in mapping:
        if name not in FIELDS:
            raise ImportHeader(
                f"the mapping names an unknown field {name!r}; fields: {', '.join(FIELDS)}",
                field="mapping",
            )
    index: dict[str, int] = {}
    for name, column in mapping.items():
        if column not in cleaned:
            raise ImportHeader(
                f"the mapping names column {column!r}, which is not in the header", field=name
            )
        index[name] = cleaned.index(column)
    mapped = set(index.values())
    for position, column in enumerate(cleaned):
        field = ALIASES.get(_key(column))
        if position not in mapped and field is not None and field not in index:
            index[field] = position
            mapped.add(position)
    required = ADDRESS_FIELD[channel]
    if channel is Channel.WHATSAPP and required not in index and "phone" in index:
        required = "phone"  # WhatsApp numbers are often kept as the phone column
    if required not in index:
        raise ImportHeader(
            f"no {required} column: name it in the header or map it (--map {required}=COLUMN)",
            field=required,
        )
    ignored = tuple(c for i, c in enumerate(cleaned) if i not in mapped)
    return Columns(index, ignored, len(cleaned))


def decoded_lines(stream: Iterable[bytes], encoding: str, max_bytes: int) -> Iterator[str]:
    """The file's lines as text; raises ImportEncoding naming the first bad line and
    ImportTooLarge past ``max_bytes``."""
    try:
        decoder_name = codecs.lookup(encoding).name
    except LookupError as exc:
        raise ImportEncoding(f"unknown encoding {encoding!r}", field="encoding") from exc
    seen = 0
    for number, chunk in enumerate(stream, 1):
        raw = chunk
        seen += len(raw)
        if seen > max_bytes:
            raise ImportTooLarge(
                f"the file is larger than the limit of {max_bytes:,} bytes; split it",
                field="file",
            )
        if number == 1:
            if raw.startswith(_UTF16_BOMS):
                raise ImportEncoding(
                    "the file is UTF-16; save it as UTF-8 (CSV UTF-8 in spreadsheet programs)",
                    field="encoding",
                )
            if raw.startswith(codecs.BOM_UTF8) and decoder_name == "utf-8":
                raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode(decoder_name)
        except UnicodeDecodeError as exc:
            raise ImportEncoding(
                f"line {number} is not valid {encoding} (byte 0x{raw[exc.start]:02x} at "
                f"position {exc.start + 1}); save the file as UTF-8 or name its encoding",
                field="encoding",
            ) from exc


class RawRow(NamedTuple):
    """A data row as read, with the line it starts on (a named tuple: a million are made, and
    sent to the helper processes, in a large import)."""

    line: int
    cells: list[str]


def csv_rows(lines: Iterable[str]) -> tuple[list[str], Iterator[RawRow]]:
    """The header and an iterator of data rows with the line each starts on; blank lines are
    skipped. Raises ImportHeader for an empty file."""
    tracker = _LineCounter(lines)
    reader = csv.reader(tracker, strict=False)
    header = next(reader, None)
    if header is None:
        raise ImportHeader("the file is empty: it needs a header line and rows")

    def rows() -> Iterator[RawRow]:
        while True:
            start = tracker.count + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportHeader(f"line {start}: {exc}", field="file") from exc
            if "".join(cells).strip():  # not a blank line
                yield RawRow(start, cells)

    return header, rows()


class _LineCounter:
    """Counts the lines csv.reader pulls, so each row knows the line it started on."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        return line


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """What a first pass over the file found: its hash, size, rows and columns."""

    sha256: str
    size: int
    rows: int
    header: list[str]
    columns: Columns


class _Hashing:
    """Iterates a binary stream's lines while hashing every byte."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for raw in self._stream:
            self.digest.update(raw)
            self.size += len(raw)
            yield raw


def scan(
    stream: BinaryIO,
    *,
    channel: Channel,
    mapping: Mapping[str, str],
    encoding: str = "utf-8",
    max_bytes: int,
) -> ScannedFile:
    """Read the whole file once, writing nothing: SHA-256, size, decoding of every line, the
    header and its mapping, and the number of rows (for progress)."""
    hashing = _Hashing(stream)
    header, rows = csv_rows(decoded_lines(hashing, encoding, max_bytes))
    columns = map_columns(header, mapping, channel)
    count = sum(1 for _ in rows)
    return ScannedFile(hashing.digest.hexdigest(), hashing.size, count, header, columns)

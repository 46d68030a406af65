"""Hash chains over canonical, PII-free records (ARCHITECTURE.md guarantee 3).

Each record's hash covers the previous record's hash and a canonical JSON rendering of its fields.
Personal data never enters the chain in clear: callers pass keyed digests instead, so erasing the
personal data later leaves every link verifiable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GENESIS = "0" * 64

Canonical = Mapping[str, str | int | bool | None]


def canonical_json(fields: Canonical) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link_hash(prev_hash: str, fields: Canonical) -> str:
    return link_hash_of(prev_hash, canonical_json(fields))


def link_hash_of(prev_hash: str, canonical: bytes) -> str:
    """``link_hash`` of fields already rendered by ``canonical_json``."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One stored link as read back: its position, claimed hashes and recomputable fields."""

    seq: int
    record_id: str
    prev_hash: str
    hash: str
    fields: Canonical


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    record_id: str
    problem: str


def verify_chain(links: Iterable[ChainLink]) -> tuple[int, ChainBreak | None]:
    """Walk links in sequence order; return how many verified and the first break, if any."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for link in links:
        if link.seq != expected_seq:
            return count, ChainBreak(
                link.seq, link.record_id, f"sequence gap: expected {expected_seq}"
            )
        if link.prev_hash != expected_prev:
            return count, ChainBreak(link.seq, link.record_id, "previous-hash link does not match")
        if link_hash(link.prev_hash, link.fields) != link.hash:
            return count, ChainBreak(link.seq, link.record_id, "content does not match its hash")
        expected_prev = link.hash
        expected_seq += 1
        count += 1
    return count, None

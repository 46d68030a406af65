"""Hash chains: link hashes and chain verification."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from consentry.domain.chain import (
    GENESIS,
    Canonical,
    ChainBreak,
    ChainLink,
    canonical_json,
    link_hash,
    verify_chain,
)

FIELDS: dict[str, str | int | bool | None] = {
    "id": "0193a1f2-0000-7000-8000-000000000001",
    "seq": 1,
    "action": "granted",
    "confirmed": True,
    "expires_at": None,
    "note": "hmac:1a2b",
}


def test_link_hash_is_a_sha256_hex_digest() -> None:
    digest = link_hash(GENESIS, FIELDS)

    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == link_hash(GENESIS, dict(FIELDS))


def test_link_hash_is_stable_across_releases() -> None:
    """Stored chains are verified years later: the canonical form must never drift."""
    expected_json = (
        b'{"action":"granted","confirmed":true,"expires_at":null,'
        b'"id":"0193a1f2-0000-7000-8000-000000000001","note":"hmac:1a2b","seq":1}'
    )

    assert canonical_json(FIELDS) == expected_json
    assert link_hash(GENESIS, FIELDS) == (
        hashlib.sha256(GENESIS.encode() + b"\n" + expected_json).hexdigest()
    )


def test_canonical_json_escapes_non_ascii() -> None:
    assert canonical_json({"name": "Zoë"}) == b'{"name":"Zo\\u00eb"}'


def test_field_order_does_not_matter() -> None:
    reordered = dict(reversed(list(FIELDS.items())))

    assert link_hash(GENESIS, reordered) == link_hash(GENESIS, FIELDS)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "0193a1f2-0000-7000-8000-000000000002"),
        ("seq", 2),
        ("seq", "1"),  # the same figure as text is a different record
        ("action", "withdrawn"),
        ("confirmed", False),
        ("expires_at", ""),
        ("note", None),
    ],
)
def test_every_field_changes_the_hash(name: str, value: str | int | bool | None) -> None:
    assert link_hash(GENESIS, {**FIELDS, name: value}) != link_hash(GENESIS, FIELDS)


def test_an_added_or_removed_field_changes_the_hash() -> None:
    without_note = {k: v for k, v in FIELDS.items() if k != "note"}

    assert link_hash(GENESIS, without_note) != link_hash(GENESIS, FIELDS)
    assert link_hash(GENESIS, {**FIELDS, "extra": None}) != link_hash(GENESIS, FIELDS)


def test_the_previous_hash_changes_the_hash() -> None:
    assert link_hash("1" * 64, FIELDS) != link_hash(GENESIS, FIELDS)
    assert link_hash(GENESIS[:-1] + "1", FIELDS) != link_hash(GENESIS, FIELDS)


# --- verification -----------------------------------------------------------------------------


def record(seq: int) -> Canonical:
    return {"id": f"r{seq}", "seq": seq, "action": "granted" if seq % 2 else "withdrawn"}


def build_chain(length: int) -> list[ChainLink]:
    links: list[ChainLink] = []
    prev = GENESIS
    for seq in range(1, length + 1):
        fields = record(seq)
        digest = link_hash(prev, fields)
        links.append(ChainLink(seq, f"r{seq}", prev, digest, fields))
        prev = digest
    return links


def relink(links: list[ChainLink], start: int) -> list[ChainLink]:
    """Recompute every hash from position ``start`` on, as a careful forger would."""
    out = list(links[:start])
    prev = out[-1].hash if out else GENESIS
    for link in links[start:]:
        digest = link_hash(prev, link.fields)
        out.append(replace(link, prev_hash=prev, hash=digest))
        prev = digest
    return out


def test_a_good_chain_verifies() -> None:
    assert verify_chain(build_chain(5)) == (5, None)


def test_an_empty_chain_verifies() -> None:
    assert verify_chain([]) == (0, None)


def test_verify_chain_accepts_any_iterable() -> None:
    assert verify_chain(iter(build_chain(3))) == (3, None)


def test_the_first_link_must_follow_genesis() -> None:
    links = build_chain(3)
    links[0] = replace(links[0], prev_hash="f" * 64, hash=link_hash("f" * 64, links[0].fields))

    count, problem = verify_chain(links)

    assert count == 0
    assert problem == ChainBreak(1, "r1", "previous-hash link does not match")


def test_a_changed_field_breaks_its_own_link() -> None:
    links = build_chain(5)
    links[2] = replace(links[2], fields={**links[2].fields, "action": "granted-by-forger"})

    count, problem = verify_chain(links)

    assert count == 2
    assert problem == ChainBreak(3, "r3", "content does not match its hash")


def test_a_changed_field_with_a_recomputed_hash_breaks_the_next_link() -> None:
    links = build_chain(5)
    forged = replace(links[2], fields={**links[2].fields, "action": "granted-by-forger"})
    links[2] = replace(forged, hash=link_hash(forged.prev_hash, forged.fields))

    count, problem = verify_chain(links)

    assert count == 3
    assert problem == ChainBreak(4, "r4", "previous-hash link does not match")


def test_a_forged_hash_alone_is_caught() -> None:
    links = build_chain(4)
    links[1] = replace(links[1], hash="a" * 64)

    count, problem = verify_chain(links)

    assert count == 1
    assert problem == ChainBreak(2, "r2", "content does not match its hash")


def test_a_missing_link_is_a_sequence_gap() -> None:
    links = build_chain(5)
    del links[2]

    count, problem = verify_chain(links)

    assert count == 2
    assert problem == ChainBreak(4, "r4", "sequence gap: expected 3")


def test_a_missing_link_is_caught_even_when_the_rest_is_relinked() -> None:
    links = relink([link for link in build_chain(5) if link.seq != 3], 2)

    count, problem = verify_chain(links)

    assert count == 2
    assert problem == ChainBreak(4, "r4", "sequence gap: expected 3")


def test_reordered_links_are_a_sequence_gap() -> None:
    links = build_chain(5)
    links[1], links[2] = links[2], links[1]

    count, problem = verify_chain(links)

    assert count == 1
    assert problem == ChainBreak(3, "r3", "sequence gap: expected 2")


def test_a_chain_must_start_at_one() -> None:
    count, problem = verify_chain(build_chain(5)[1:])

    assert count == 0
    assert problem == ChainBreak(2, "r2", "sequence gap: expected 1")


def test_a_wrong_previous_link_in_the_middle_is_caught() -> None:
    links = build_chain(5)
    links[3] = replace(links[3], prev_hash=links[1].hash)
    links[3] = replace(links[3], hash=link_hash(links[3].prev_hash, links[3].fields))

    count, problem = verify_chain(links)

    assert count == 3
    assert problem == ChainBreak(4, "r4", "previous-hash link does not match")


def test_only_the_first_break_is_reported() -> None:
    links = build_chain(6)
    links[1] = replace(links[1], fields={**links[1].fields, "action": "x"})
    links[4] = replace(links[4], fields={**links[4].fields, "action": "y"})

    count, problem = verify_chain(links)

    assert count == 1
    assert problem is not None
    assert (problem.seq, problem.record_id) == (2, "r2")

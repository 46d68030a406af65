"""The directly written canonical JSON of an event is byte for byte what the chain hashes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.chain import canonical_json, link_hash, link_hash_of
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    Evidence,
    EvidenceDigests,
    Relationship,
    canonical_event,
    canonical_event_json,
)
from consentry.domain.model import Channel

texts = st.none() | st.text(max_size=40)
ids = st.none() | st.uuids()
times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(timezones=st.just(timezone(timedelta(hours=-5, minutes=-30))))


@given(
    action=st.sampled_from(ConsentAction),
    basis=st.sampled_from(ConsentBasis),
    channel=st.sampled_from(Channel),
    method=st.sampled_from(ConsentMethod),
    relationship=st.none() | st.sampled_from(Relationship),
    strings=st.tuples(texts, texts, texts, texts, texts, texts, texts),
    policy=ids,
    batch=ids,
    point_key=st.binary(max_size=32),
    seq=st.integers(min_value=0, max_value=2**62),
    occurred=times,
    recorded=times,
    expires=st.none() | times,
)
def test_it_matches_the_canonical_fields_rendered_by_json(
    action: ConsentAction,
    basis: ConsentBasis,
    channel: Channel,
    method: ConsentMethod,
    relationship: Relationship | None,
    strings: tuple[str | None, ...],
    policy: uuid.UUID | None,
    batch: uuid.UUID | None,
    point_key: bytes,
    seq: int,
    occurred: datetime,
    recorded: datetime,
    expires: datetime | None,
) -> None:
    disclosure, actor, inbound, source, ip, agent, note = strings
    event = ConsentEvent(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        contact_id=uuid.uuid4(),
        point_key=point_key,
        topic_id=uuid.uuid4(),
        channel=channel,
        action=action,
        basis=basis,
        evidence=Evidence(
            method=method,
            policy_document_id=policy,
            disclosure_hash=disclosure,
            actor=actor,
            import_batch_id=batch,
            inbound_message_id=inbound,
            relationship=relationship,
        ),
        occurred_at=occurred,
        recorded_at=recorded,
        expires_at=expires,
        seq=seq,
    )
    digests = EvidenceDigests(source=source, ip_address=ip, user_agent=agent, note=note)
    expected = canonical_json(canonical_event(event, digests))
    written = canonical_event_json(event, digests).encode("ascii")
    assert written == expected
    assert link_hash_of("ab" * 32, written) == link_hash("ab" * 32, canonical_event(event, digests))


def test_repeated_ids_and_instants_render_as_written_whatever_was_rendered_before() -> None:
    """A bulk import renders the same tenant, topic, batch and recording time a million times
    (looked up, not rendered again); an equal instant in another offset still renders its own
    offset."""
    tenant, topic, batch = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    utc = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == paris
    for recorded in (utc, utc, paris, utc, paris):
        event = ConsentEvent(
            id=uuid.uuid4(),
            tenant_id=tenant,
            contact_id=uuid.uuid4(),
            point_key=b"k",
            topic_id=topic,
            channel=Channel.EMAIL,
            action=ConsentAction.GRANTED,
            basis=ConsentBasis.EXPRESS,
            evidence=Evidence(method=ConsentMethod.IMPORT, import_batch_id=batch),
            occurred_at=utc,
            recorded_at=recorded,
        )
        digests = EvidenceDigests(source=None, ip_address=None, user_agent=None, note=None)
        written = canonical_event_json(event, digests)
        assert written.encode("ascii") == canonical_json(canonical_event(event, digests))
        assert f'"recorded_at":"{recorded.isoformat(timespec="microseconds")}"' in written
        assert f'"tenant_id":"{tenant}"' in written

"""The consent ledger: the fold's state machine, evidence rules and the canonical chain record."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.chain import canonical_json, link_hash
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Evidence,
    EvidenceDigests,
    Relationship,
    apply_event,
    canonical_event,
    fold,
    validate_evidence,
)
from consentry.domain.errors import ConsentryError, EvidenceIncomplete, InvalidInput
from consentry.domain.model import Channel

TENANT = uuid.UUID("00000000-0000-7000-8000-0000000000a1")
CONTACT = uuid.UUID("00000000-0000-7000-8000-0000000000c1")
OTHER_CONTACT = uuid.UUID("00000000-0000-7000-8000-0000000000c2")
TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000001")
OTHER_TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000002")
POLICY = uuid.UUID("00000000-0000-7000-8000-0000000000d1")
BATCH = uuid.UUID("00000000-0000-7000-8000-0000000000b1")
KEY = b"blind-index-current"
OLD_KEY = b"blind-index-previous"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

A = ConsentAction
S = ConsentStatus
B = ConsentBasis


def event(
    action: ConsentAction,
    seq: int,
    *,
    basis: ConsentBasis = B.EXPRESS,
    key: bytes = KEY,
    topic: uuid.UUID = TOPIC,
    channel: Channel = Channel.EMAIL,
    contact: uuid.UUID = CONTACT,
    expires_at: datetime | None = None,
) -> ConsentEvent:
    occurred = T0 + timedelta(hours=seq)
    return ConsentEvent(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        contact_id=contact,
        point_key=key,
        topic_id=topic,
        channel=channel,
        action=action,
        basis=basis,
        evidence=Evidence(method=ConsentMethod.API, actor="crm-sync"),
        occurred_at=occurred,
        recorded_at=occurred + timedelta(seconds=1),
        expires_at=expires_at,
        seq=seq,
    )


def run(*events: ConsentEvent) -> ConsentState:
    state: ConsentState | None = None
    for e in events:
        state = apply_event(state, e)
    assert state is not None
    return state


def assert_reflects(state: ConsentState, last: ConsentEvent) -> None:
    """Every state names the event that produced it."""
    assert state.event_id == last.id
    assert state.seq == last.seq
    assert state.updated_at == last.occurred_at
    assert state.point_key == last.point_key
    assert (state.contact_id, state.topic_id, state.channel) == (
        last.contact_id,
        last.topic_id,
        last.channel,
    )


# --- the fold: transitions --------------------------------------------------------------------


def test_a_request_starts_pending_and_unconfirmed() -> None:
    request = event(A.REQUESTED, 1, basis=B.DOUBLE_OPT_IN)

    state = run(request)

    assert state.status is S.PENDING
    assert not state.confirmed
    assert state.basis is B.DOUBLE_OPT_IN
    assert state.granted_at == request.occurred_at
    assert_reflects(state, request)


def test_confirming_a_request_makes_it_active_and_confirmed() -> None:
    request = event(A.REQUESTED, 1, basis=B.DOUBLE_OPT_IN)
    confirmation = event(A.CONFIRMED, 2, basis=B.DOUBLE_OPT_IN)

    state = run(request, confirmation)

    assert state.status is S.ACTIVE
    assert state.confirmed
    assert state.basis is B.DOUBLE_OPT_IN
    assert state.granted_at == request.occurred_at, "consent dates from the request"
    assert_reflects(state, confirmation)


def test_an_express_grant_is_active_but_not_confirmed() -> None:
    grant = event(A.GRANTED, 1, basis=B.EXPRESS)

    state = run(grant)

    assert state.status is S.ACTIVE
    assert not state.confirmed
    assert state.basis is B.EXPRESS
    assert state.granted_at == grant.occurred_at
    assert_reflects(state, grant)


def test_a_double_opt_in_grant_is_active_and_confirmed() -> None:
    state = run(event(A.GRANTED, 1, basis=B.DOUBLE_OPT_IN))

    assert state.status is S.ACTIVE
    assert state.confirmed


def test_a_grant_carries_its_expiry() -> None:
    expiry = T0 + timedelta(days=730)

    state = run(event(A.GRANTED, 1, basis=B.IMPLIED_RELATIONSHIP, expires_at=expiry))

    assert state.expires_at == expiry
    assert state.basis is B.IMPLIED_RELATIONSHIP


PRIOR_HISTORIES: dict[str, tuple[ConsentAction, ...]] = {
    "none": (),
    "pending": (A.REQUESTED,),
    "active": (A.GRANTED,),
    "withdrawn": (A.GRANTED, A.WITHDRAWN),
    "lapsed": (A.GRANTED, A.LAPSED),
    "void": (A.GRANTED, A.VOIDED),
}


def history(name: str) -> list[ConsentEvent]:
    return [event(action, seq) for seq, action in enumerate(PRIOR_HISTORIES[name], start=1)]


@pytest.mark.parametrize("prior", list(PRIOR_HISTORIES))
def test_a_confirmation_from_any_state_makes_it_active_and_confirmed(prior: str) -> None:
    confirmation = event(A.CONFIRMED, 10)

    state = run(*history(prior), confirmation)

    assert state.status is S.ACTIVE
    assert state.confirmed
    assert state.basis is B.DOUBLE_OPT_IN
    assert_reflects(state, confirmation)


@pytest.mark.parametrize(
    ("action", "status"),
    [(A.WITHDRAWN, S.WITHDRAWN), (A.LAPSED, S.LAPSED), (A.VOIDED, S.VOID)],
)
@pytest.mark.parametrize("prior", list(PRIOR_HISTORIES))
def test_an_ending_from_any_state_sets_its_status(
    prior: str, action: ConsentAction, status: ConsentStatus
) -> None:
    ending = event(action, 10)

    state = run(*history(prior), ending)

    assert state.status is status
    assert_reflects(state, ending)


def test_a_withdrawal_keeps_the_record_of_what_was_withdrawn() -> None:
    grant = event(A.GRANTED, 1, basis=B.DOUBLE_OPT_IN)

    state = run(grant, event(A.WITHDRAWN, 2, basis=B.DOUBLE_OPT_IN))

    assert state.granted_at == grant.occurred_at
    assert state.basis is B.DOUBLE_OPT_IN


@pytest.mark.parametrize("prior", ["withdrawn", "lapsed", "void"])
def test_a_new_grant_after_an_ending_is_active_again(prior: str) -> None:
    grant = event(A.GRANTED, 10, basis=B.EXPRESS, expires_at=T0 + timedelta(days=5))

    state = run(*history(prior), grant)

    assert state.status is S.ACTIVE
    assert not state.confirmed
    assert state.granted_at == grant.occurred_at, "a new affirmative act, not the old one"
    assert state.expires_at == grant.expires_at
    assert_reflects(state, grant)


@pytest.mark.parametrize("prior", ["withdrawn", "lapsed", "void"])
def test_a_new_request_after_an_ending_is_pending_again(prior: str) -> None:
    request = event(A.REQUESTED, 10, basis=B.DOUBLE_OPT_IN)

    state = run(*history(prior), request)

    assert state.status is S.PENDING
    assert not state.confirmed
    assert state.granted_at == request.occurred_at
    assert_reflects(state, request)


def test_a_grant_after_an_ending_forgets_the_old_expiry() -> None:
    old = event(A.GRANTED, 1, basis=B.IMPLIED_RELATIONSHIP, expires_at=T0 + timedelta(days=1))

    state = run(old, event(A.LAPSED, 2), event(A.GRANTED, 3, basis=B.EXPRESS))

    assert state.expires_at is None
    assert state.basis is B.EXPRESS


# --- the fold: a new address starts afresh ----------------------------------------------------


def test_a_withdrawal_on_a_new_address_does_not_inherit_the_old_addresss_consent() -> None:
    old_grant = event(A.GRANTED, 1, basis=B.DOUBLE_OPT_IN, key=OLD_KEY)
    withdrawal = event(A.WITHDRAWN, 2, basis=B.EXPRESS, key=KEY)

    state = run(old_grant, withdrawal)

    assert state.point_key == KEY
    assert state.status is S.WITHDRAWN
    assert not state.confirmed
    assert state.basis is B.EXPRESS
    assert state.granted_at is None
    assert state.expires_at is None
    assert_reflects(state, withdrawal)


@pytest.mark.parametrize(("action", "status"), [(A.LAPSED, S.LAPSED), (A.VOIDED, S.VOID)])
def test_an_ending_on_a_new_address_starts_a_fresh_state(
    action: ConsentAction, status: ConsentStatus
) -> None:
    old_grant = event(A.GRANTED, 1, basis=B.DOUBLE_OPT_IN, key=OLD_KEY, expires_at=T0)

    state = run(old_grant, event(action, 2, key=KEY))

    assert state.point_key == KEY
    assert state.status is status
    assert not state.confirmed
    assert state.granted_at is None
    assert state.expires_at is None


def test_a_confirmation_on_a_new_address_dates_consent_from_itself() -> None:
    old_request = event(A.REQUESTED, 1, basis=B.DOUBLE_OPT_IN, key=OLD_KEY)
    confirmation = event(A.CONFIRMED, 2, key=KEY)

    state = run(old_request, confirmation)

    assert state.point_key == KEY
    assert state.status is S.ACTIVE
    assert state.granted_at == confirmation.occurred_at


def test_a_request_on_a_new_address_is_pending_even_if_the_old_one_was_confirmed() -> None:
    state = run(
        event(A.GRANTED, 1, basis=B.DOUBLE_OPT_IN, key=OLD_KEY),
        event(A.REQUESTED, 2, basis=B.DOUBLE_OPT_IN, key=KEY),
    )

    assert state.point_key == KEY
    assert state.status is S.PENDING
    assert not state.confirmed


# --- fold over many events --------------------------------------------------------------------


def test_fold_keeps_one_state_per_contact_topic_and_channel() -> None:
    events = [
        event(A.GRANTED, 1),
        event(A.GRANTED, 2, topic=OTHER_TOPIC),
        event(A.REQUESTED, 3, channel=Channel.SMS),
        event(A.GRANTED, 4, contact=OTHER_CONTACT),
        event(A.WITHDRAWN, 5, topic=OTHER_TOPIC),
    ]

    states = fold(events)

    assert states.keys() == {
        (CONTACT, TOPIC, Channel.EMAIL),
        (CONTACT, OTHER_TOPIC, Channel.EMAIL),
        (CONTACT, TOPIC, Channel.SMS),
        (OTHER_CONTACT, TOPIC, Channel.EMAIL),
    }
    assert states[CONTACT, TOPIC, Channel.EMAIL].status is S.ACTIVE
    assert states[CONTACT, OTHER_TOPIC, Channel.EMAIL].status is S.WITHDRAWN
    assert states[CONTACT, TOPIC, Channel.SMS].status is S.PENDING
    assert states[OTHER_CONTACT, TOPIC, Channel.EMAIL].status is S.ACTIVE


def test_fold_of_nothing_is_empty() -> None:
    assert fold([]) == {}


def test_fold_applies_events_in_sequence_order_whatever_order_they_arrive_in() -> None:
    events = [
        event(A.REQUESTED, 1, basis=B.DOUBLE_OPT_IN),
        event(A.CONFIRMED, 2),
        event(A.WITHDRAWN, 3),
        event(A.GRANTED, 4, basis=B.EXPRESS),
        event(A.GRANTED, 5, topic=OTHER_TOPIC),
        event(A.WITHDRAWN, 6, topic=OTHER_TOPIC),
    ]
    expected = fold(events)

    assert expected[CONTACT, TOPIC, Channel.EMAIL].status is S.ACTIVE
    assert expected[CONTACT, OTHER_TOPIC, Channel.EMAIL].status is S.WITHDRAWN
    for order in itertools.islice(itertools.permutations(events), 0, None, 37):
        assert fold(list(order)) == expected
    assert fold(events[::-1]) == expected


# --- fold properties --------------------------------------------------------------------------

actions = st.sampled_from(ConsentAction)
bases = st.sampled_from(ConsentBasis)
keys = st.sampled_from([KEY, OLD_KEY])
seq_lists = st.lists(
    st.integers(min_value=1, max_value=10_000), min_size=1, max_size=12, unique=True
)


@st.composite
def histories(draw: st.DrawFn) -> list[ConsentEvent]:
    """Events on one contact, topic and channel, with distinct sequence numbers, in any order."""
    return [
        replace(
            event(draw(actions), seq, basis=draw(bases), key=draw(keys)),
            id=uuid.UUID(int=seq),
        )
        for seq in draw(seq_lists)
    ]


@settings(max_examples=200, deadline=None)
@given(histories())
def test_the_folded_state_names_the_last_event_in_sequence(events: list[ConsentEvent]) -> None:
    last = max(events, key=lambda e: e.seq)

    states = fold(events)

    assert list(states) == [(CONTACT, TOPIC, Channel.EMAIL)]
    state = states[CONTACT, TOPIC, Channel.EMAIL]
    assert state.event_id == last.id
    assert state.seq == last.seq
    assert state.updated_at == last.occurred_at
    assert state.point_key == last.point_key
    expected_status = {
        A.REQUESTED: S.PENDING,
        A.GRANTED: S.ACTIVE,
        A.CONFIRMED: S.ACTIVE,
        A.WITHDRAWN: S.WITHDRAWN,
        A.LAPSED: S.LAPSED,
        A.VOIDED: S.VOID,
    }[last.action]
    assert state.status is expected_status
    if last.action is A.CONFIRMED:
        assert state.confirmed


@settings(max_examples=100, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_fold_does_not_depend_on_input_order(events: list[ConsentEvent], rnd: Any) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)

    assert fold(shuffled) == fold(events)


# --- evidence ---------------------------------------------------------------------------------

COMPLETE: dict[ConsentMethod, Evidence] = {
    ConsentMethod.WEB_FORM: Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://shop.example/signup",
        ip_address="203.0.113.7",
        user_agent="Mozilla/5.0",
        policy_document_id=POLICY,
    ),
    ConsentMethod.API: Evidence(method=ConsentMethod.API, actor="crm", policy_document_id=POLICY),
    ConsentMethod.KEYWORD: Evidence(method=ConsentMethod.KEYWORD, inbound_message_id="SM123"),
    ConsentMethod.IMPORT: Evidence(
        method=ConsentMethod.IMPORT,
        import_batch_id=BATCH,
        source="spring-fair.csv",
        policy_document_id=POLICY,
    ),
    ConsentMethod.PAPER: Evidence(method=ConsentMethod.PAPER, actor="front-desk", note="form 12"),
    ConsentMethod.VERBAL: Evidence(method=ConsentMethod.VERBAL, actor="agent-7", note="call"),
}

REQUIRED: dict[ConsentMethod, tuple[str, ...]] = {
    ConsentMethod.WEB_FORM: ("source", "ip_address", "user_agent"),
    ConsentMethod.API: ("actor",),
    ConsentMethod.KEYWORD: ("inbound_message_id",),
    ConsentMethod.IMPORT: ("import_batch_id", "source"),
    ConsentMethod.PAPER: ("actor", "note"),
    ConsentMethod.VERBAL: ("actor", "note"),
}
AFFIRMATIVE_ACTIONS = [A.REQUESTED, A.GRANTED, A.CONFIRMED]
ENDING_ACTIONS = [A.WITHDRAWN, A.LAPSED, A.VOIDED]


def assert_incomplete(
    action: ConsentAction, basis: ConsentBasis, evidence: Evidence, field: str
) -> None:
    with pytest.raises(EvidenceIncomplete) as caught:
        validate_evidence(action, basis, evidence)
    assert caught.value.field == field
    assert caught.value.code == "EVIDENCE_INCOMPLETE"
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, ConsentryError)


@pytest.mark.parametrize("action", AFFIRMATIVE_ACTIONS)
@pytest.mark.parametrize("basis", list(ConsentBasis))
@pytest.mark.parametrize("method", list(ConsentMethod))
def test_complete_evidence_passes(
    method: ConsentMethod, basis: ConsentBasis, action: ConsentAction
) -> None:
    evidence = replace(COMPLETE[method], relationship=Relationship.PURCHASE)

    validate_evidence(action, basis, evidence)  # raises if anything were missing


@pytest.mark.parametrize("action", AFFIRMATIVE_ACTIONS)
@pytest.mark.parametrize(
    ("method", "missing"),
    [(method, name) for method, names in REQUIRED.items() for name in names],
)
def test_each_method_needs_its_own_fields(
    method: ConsentMethod, missing: str, action: ConsentAction
) -> None:
    blanked: dict[str, Any] = {missing: None}
    evidence = replace(COMPLETE[method], **blanked)

    assert_incomplete(action, B.EXPRESS, evidence, missing)


@pytest.mark.parametrize("missing", REQUIRED[ConsentMethod.WEB_FORM])
def test_an_empty_string_is_missing_too(missing: str) -> None:
    emptied: dict[str, Any] = {missing: ""}
    evidence = replace(COMPLETE[ConsentMethod.WEB_FORM], **emptied)

    assert_incomplete(A.GRANTED, B.EXPRESS, evidence, missing)


def test_the_first_missing_field_is_named() -> None:
    evidence = Evidence(method=ConsentMethod.WEB_FORM, user_agent="Mozilla/5.0")

    assert_incomplete(A.GRANTED, B.EXPRESS, evidence, "source")


@pytest.mark.parametrize("basis", [B.EXPRESS, B.DOUBLE_OPT_IN])
@pytest.mark.parametrize("action", [A.REQUESTED, A.GRANTED])
@pytest.mark.parametrize(
    "method", [ConsentMethod.WEB_FORM, ConsentMethod.API, ConsentMethod.IMPORT]
)
def test_express_consent_in_writing_needs_the_disclosure_shown(
    method: ConsentMethod, action: ConsentAction, basis: ConsentBasis
) -> None:
    evidence = replace(COMPLETE[method], policy_document_id=None)

    assert_incomplete(action, basis, evidence, "policy_document_id")


@pytest.mark.parametrize(
    "method", [ConsentMethod.WEB_FORM, ConsentMethod.API, ConsentMethod.IMPORT]
)
def test_a_confirmation_does_not_need_the_disclosure_again(method: ConsentMethod) -> None:
    evidence = replace(COMPLETE[method], policy_document_id=None)

    validate_evidence(A.CONFIRMED, B.DOUBLE_OPT_IN, evidence)


@pytest.mark.parametrize(
    "method", [ConsentMethod.KEYWORD, ConsentMethod.PAPER, ConsentMethod.VERBAL]
)
def test_express_consent_without_a_written_disclosure_needs_no_policy_document(
    method: ConsentMethod,
) -> None:
    evidence = replace(COMPLETE[method], policy_document_id=None)

    validate_evidence(A.GRANTED, B.EXPRESS, evidence)


@pytest.mark.parametrize("basis", [B.IMPLIED_RELATIONSHIP, B.SOFT_OPT_IN, B.SERVICE_NECESSITY])
def test_other_bases_need_no_policy_document(basis: ConsentBasis) -> None:
    evidence = replace(
        COMPLETE[ConsentMethod.WEB_FORM], policy_document_id=None, relationship=Relationship.INQUIRY
    )

    validate_evidence(A.GRANTED, basis, evidence)


@pytest.mark.parametrize("method", list(ConsentMethod))
def test_implied_consent_needs_the_relationship_it_rests_on(method: ConsentMethod) -> None:
    evidence = replace(COMPLETE[method], relationship=None)

    assert_incomplete(A.GRANTED, B.IMPLIED_RELATIONSHIP, evidence, "relationship")


@pytest.mark.parametrize("relationship", list(Relationship))
def test_implied_consent_with_a_relationship_passes(relationship: Relationship) -> None:
    evidence = replace(COMPLETE[ConsentMethod.PAPER], relationship=relationship)

    validate_evidence(A.GRANTED, B.IMPLIED_RELATIONSHIP, evidence)


@pytest.mark.parametrize("basis", list(ConsentBasis))
@pytest.mark.parametrize("action", ENDING_ACTIONS)
@pytest.mark.parametrize("method", [m for m in ConsentMethod if m is not ConsentMethod.KEYWORD])
def test_an_ending_needs_only_a_method(
    method: ConsentMethod, action: ConsentAction, basis: ConsentBasis
) -> None:
    validate_evidence(action, basis, Evidence(method=method))


@pytest.mark.parametrize("action", ENDING_ACTIONS)
def test_a_keyword_opt_out_needs_the_inbound_message_id(action: ConsentAction) -> None:
    assert_incomplete(
        action, B.EXPRESS, Evidence(method=ConsentMethod.KEYWORD), "inbound_message_id"
    )


def test_a_keyword_opt_out_with_its_inbound_message_passes() -> None:
    evidence = Evidence(method=ConsentMethod.KEYWORD, inbound_message_id="SM-STOP-1")

    validate_evidence(A.WITHDRAWN, B.EXPRESS, evidence)


# --- the canonical record the ledger chain covers ---------------------------------------------

DIGESTS = EvidenceDigests(
    source="hmac:source", ip_address="hmac:ip", user_agent="hmac:ua", note="hmac:note"
)


def full_event() -> ConsentEvent:
    evidence = Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://shop.example/signup?email=ana@example.com",
        ip_address="203.0.113.7",
        user_agent="Mozilla/5.0 (Ana's laptop)",
        policy_document_id=POLICY,
        disclosure_hash="sha256:abc",
        actor="web",
        import_batch_id=BATCH,
        inbound_message_id="SM1",
        relationship=Relationship.PURCHASE,
        note="Ana said yes at the till",
    )
    return replace(event(A.GRANTED, 7, expires_at=T0 + timedelta(days=730)), evidence=evidence)


def test_the_canonical_record_carries_no_personal_data_in_clear() -> None:
    ev = full_event()

    record = canonical_event(ev, DIGESTS)
    rendered = canonical_json(record).decode()

    for secret in (ev.evidence.source, ev.evidence.ip_address, ev.evidence.user_agent):
        assert secret is not None
        assert secret not in rendered
    assert ev.evidence.note is not None
    assert ev.evidence.note not in rendered
    assert (record["source"], record["ip"], record["user_agent"], record["note"]) == (
        "hmac:source",
        "hmac:ip",
        "hmac:ua",
        "hmac:note",
    )


def test_the_canonical_record_covers_every_ledger_field() -> None:
    ev = full_event()

    record = canonical_event(ev, DIGESTS)

    assert record["id"] == str(ev.id)
    assert record["tenant_id"] == str(TENANT)
    assert record["seq"] == 7
    assert record["contact_id"] == str(CONTACT)
    assert record["point_key"] == KEY.hex()
    assert record["topic_id"] == str(TOPIC)
    assert record["channel"] == "email"
    assert record["action"] == "granted"
    assert record["basis"] == "express"
    assert record["method"] == "web_form"
    assert record["policy_document_id"] == str(POLICY)
    assert record["disclosure_hash"] == "sha256:abc"
    assert record["actor"] == "web"
    assert record["import_batch_id"] == str(BATCH)
    assert record["inbound_message_id"] == "SM1"
    assert record["relationship"] == "purchase"
    assert record["occurred_at"] == "2025-03-01T16:00:00.000000+00:00"
    assert record["recorded_at"] == "2025-03-01T16:00:01.000000+00:00"
    assert record["expires_at"] == "2027-03-01T09:00:00.000000+00:00"
    json.loads(canonical_json(record))  # plain JSON, nothing exotic


def test_the_canonical_record_of_a_sparse_event_has_nulls_not_gaps() -> None:
    record = canonical_event(event(A.WITHDRAWN, 3), EvidenceDigests(None, None, None, None))

    assert set(record) == set(canonical_event(full_event(), DIGESTS))
    for name in ("policy_document_id", "import_batch_id", "relationship", "expires_at"):
        assert record[name] is None


def test_every_ledger_field_changes_the_chained_hash() -> None:
    """Tampering with any field of a stored event must break its link."""
    ev = full_event()
    baseline = link_hash("0" * 64, canonical_event(ev, DIGESTS))
    changed: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "contact_id": OTHER_CONTACT,
        "point_key": OLD_KEY,
        "topic_id": OTHER_TOPIC,
        "channel": Channel.SMS,
        "action": A.CONFIRMED,
        "basis": B.DOUBLE_OPT_IN,
        "occurred_at": ev.occurred_at + timedelta(microseconds=1),
        "recorded_at": ev.recorded_at + timedelta(microseconds=1),
        "expires_at": None,
        "seq": 8,
    }
    chained = {f.name for f in fields(ConsentEvent)} - {"evidence", "prev_hash", "hash"}
    assert set(changed) == chained
    for name, value in changed.items():
        tampered = replace(ev, **{name: value})
        assert link_hash("0" * 64, canonical_event(tampered, DIGESTS)) != baseline, name
    evidence_changes: dict[str, Any] = {
        "method": ConsentMethod.API,
        "policy_document_id": uuid.uuid4(),
        "disclosure_hash": "sha256:def",
        "actor": "someone-else",
        "import_batch_id": uuid.uuid4(),
        "inbound_message_id": "SM2",
        "relationship": Relationship.INQUIRY,
    }
    for name, value in evidence_changes.items():
        tampered = replace(ev, evidence=replace(ev.evidence, **{name: value}))
        assert link_hash("0" * 64, canonical_event(tampered, DIGESTS)) != baseline, name
    for name in ("source", "ip_address", "user_agent", "note"):
        other = replace(DIGESTS, **{name: "hmac:other"})
        assert link_hash("0" * 64, canonical_event(ev, other)) != baseline, name

"""SendGrid Event Webhook: signed-request verification and events parsed into signals."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from consentry.channels.sendgrid_events import (
    MAX_EVENTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SendGridEvents,
)
from consentry.domain.errors import ConfigurationError, InvalidInput
from consentry.domain.signals import (
    Bounce,
    BounceKind,
    Complaint,
    FeedbackType,
    ParsedInput,
    SignalSource,
    Unrecognised,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sendgrid"
SIGNED_AT = 1736853260
NOW = datetime.fromtimestamp(SIGNED_AT, UTC) + timedelta(seconds=3)
MESSAGE_ID = "4711.5f0c8a523d6e@acme-motors.example"
BODY = b'[{"email":"ana.lima@example.net","event":"spamreport","timestamp":1736853201}]\r\n'


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def public_der(key: ec.EllipticCurvePrivateKey) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(spki).decode()


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, at: int = SIGNED_AT) -> dict[str, str]:
    signature = key.sign(str(at).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: str(at)}


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def events(key: ec.EllipticCurvePrivateKey) -> SendGridEvents:
    return SendGridEvents(public_der(key), clock=lambda: NOW)


def parse_fixture(name: str) -> list[ParsedInput]:
    return SendGridEvents(public_der(ec.generate_private_key(ec.SECP256R1()))).parse(
        (FIXTURES / name).read_bytes()
    )


def only(parsed: ParsedInput) -> object:
    assert parsed.source is SignalSource.PROVIDER
    assert len(parsed.signals) == 1
    return parsed.signals[0]


# -- verification ----------------------------------------------------------------------------


def test_a_signed_request_verifies(events: SendGridEvents, key: ec.EllipticCurvePrivateKey) -> None:
    assert events.verify(signed(key, BODY), BODY)


def test_header_names_are_case_insensitive(
    events: SendGridEvents, key: ec.EllipticCurvePrivateKey
) -> None:
    headers = {name.lower(): value for name, value in signed(key, BODY).items()}
    assert events.verify(headers, BODY)
    headers = {name.upper(): value for name, value in signed(key, BODY).items()}
    assert events.verify(headers, BODY)


def test_a_pem_key_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert SendGridEvents(pem.decode(), clock=lambda: NOW).verify(signed(key, BODY), BODY)


def test_a_tampered_body_fails(events: SendGridEvents, key: ec.EllipticCurvePrivateKey) -> None:
    headers = signed(key, BODY)
    assert not events.verify(headers, BODY.replace(b"spamreport", b"delivered "))
    assert not events.verify(headers, BODY.rstrip())  # the trailing CRLF is signed too


def test_the_timestamp_is_signed(events: SendGridEvents, key: ec.EllipticCurvePrivateKey) -> None:
    headers = signed(key, BODY) | {TIMESTAMP_HEADER: str(SIGNED_AT + 1)}
    assert not events.verify(headers, BODY)


def test_another_key_fails(events: SendGridEvents) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert not events.verify(signed(other, BODY), BODY)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_a_missing_header_fails(
    events: SendGridEvents, key: ec.EllipticCurvePrivateKey, missing: str
) -> None:
    headers = {name: value for name, value in signed(key, BODY).items() if name != missing}
    assert not events.verify(headers, BODY)
    assert not events.verify({}, BODY)


@pytest.mark.parametrize(
    "age",
    [timedelta(minutes=10, seconds=1), timedelta(days=1), -timedelta(minutes=11)],
    ids=["just-stale", "a-day-old", "from-the-future"],
)
def test_a_timestamp_outside_the_window_fails(
    key: ec.EllipticCurvePrivateKey, age: timedelta
) -> None:
    at = int((NOW - age).timestamp())
    events = SendGridEvents(public_der(key), clock=lambda: NOW)
    assert not events.verify(signed(key, BODY, at), BODY)
    assert SendGridEvents(public_der(key), max_age=None).verify(signed(key, BODY, at), BODY)


def test_a_timestamp_inside_the_window_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    at = int((NOW - timedelta(minutes=9, seconds=59)).timestamp())
    assert SendGridEvents(public_der(key), clock=lambda: NOW).verify(signed(key, BODY, at), BODY)


@pytest.mark.parametrize(
    ("signature", "timestamp"),
    [
        ("not base64 at all!", str(SIGNED_AT)),
        ("QUJD", str(SIGNED_AT)),  # valid base64, not a DER signature
        ("MEUCIQ==" * 40, str(SIGNED_AT)),  # absurdly long
        ("", str(SIGNED_AT)),
        (None, "yesterday"),
        (None, "-1736853260"),
        (None, "1736853260.5"),
        (None, "9" * 40),
        (None, ""),
    ],
)
def test_garbled_headers_fail_without_raising(
    events: SendGridEvents, key: ec.EllipticCurvePrivateKey, signature: str | None, timestamp: str
) -> None:
    headers = signed(key, BODY)
    headers[TIMESTAMP_HEADER] = timestamp
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    assert not events.verify(headers, BODY)


def test_the_fixture_signed_with_the_test_key_verifies() -> None:
    request = fixture("signed_test_key_batch.json")
    private = serialization.load_pem_private_key(
        (FIXTURES / "test-signing-key.pem").read_bytes(), password=None
    )
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert public_der(private) == request["public_key"]
    events = SendGridEvents(request["public_key"], clock=lambda: NOW)
    body = request["body"].encode("utf-8")
    assert body.endswith(b"]\r\n")
    assert events.verify(request["headers"], body)
    assert not events.verify(request["headers"], body.replace(b"5.1.1", b"4.1.1"))


def test_sendgrids_own_signed_request_verifies() -> None:
    """The key, signature and timestamp of sendgrid-python's verification test."""
    request = fixture("signed_sendgrid_sdk_dropped.json")
    signed_at = datetime.fromtimestamp(int(request["headers"][TIMESTAMP_HEADER]), UTC)
    events = SendGridEvents(request["public_key"], clock=lambda: signed_at)
    body = request["body"].encode("utf-8")
    assert events.verify(request["headers"], body)
    assert not events.verify(request["headers"], b"payload")
    (parsed,) = events.parse(body)
    assert parsed.event_id == "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "not a key",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O",  # truncated
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe6ü",
    ],
)
def test_an_unreadable_key_is_a_configuration_error(public_key: str) -> None:
    with pytest.raises(ConfigurationError):
        SendGridEvents(public_key)


@pytest.mark.parametrize(
    "private",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p-384", "rsa"],
)
def test_a_key_that_is_not_p256_is_a_configuration_error(
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> None:
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigurationError):
        SendGridEvents(base64.b64encode(spki).decode())


# -- parsing ---------------------------------------------------------------------------------


def test_the_documented_batch() -> None:
    parsed = parse_fixture("events_documented_batch.json")
    assert [p.meta["event"] for p in parsed] == [
        "processed", "deferred", "delivered", "open", "click", "bounce", "dropped",
        "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe",
    ]  # fmt: skip
    assert {p.source for p in parsed} == {SignalSource.PROVIDER}
    assert parsed[0].event_id == "2FeCcG5VRWpck6mKqRgnDg=="
    assert len({p.event_id for p in parsed}) == len(parsed)
    assert {p.received_at for p in parsed} == {datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)}
    signals = [only(p) for p in parsed]
    assert signals[1] == Bounce(
        recipient="example@test.com",
        kind=BounceKind.DELAYED,
        status="4.0.0",
        diagnostic="400 try again later",
        original_message_id="14c5d75ce93.dfd.64b469@ismtpd-555",
    )
    assert signals[5] == Bounce(
        recipient="example@test.com",
        kind=BounceKind.HARD,
        status="5.0.0",
        diagnostic="500 unknown recipient",
        original_message_id="14c5d75ce93.dfd.64b469@ismtpd-555",
    )
    assert signals[7] == Complaint(
        recipient="example@test.com",
        feedback_type=FeedbackType.ABUSE,
        original_message_id="14c5d75ce93.dfd.64b469@ismtpd-555",
        arrival_date=datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC),
    )
    for index in (0, 2, 3, 4, 8, 9, 10):
        assert signals[index] == Unrecognised(
            f"{parsed[index].meta['event']} event: nothing to apply"
        )
    assert isinstance(signals[6], Unrecognised)


def test_a_hard_bounce() -> None:
    (parsed,) = parse_fixture("bounce_hard_5.1.1.json")
    assert parsed.event_id == "Ym91bmNlLTAtMzM1NjA0MjctdzVQc0RxT0xSaC1uLXFVQXZQWkJIdy0w"
    assert parsed.received_at == datetime(2025, 1, 14, 10, 11, 52, tzinfo=UTC)
    assert parsed.meta == {"event": "bounce", "type": "bounce"}
    bounce = only(parsed)
    assert isinstance(bounce, Bounce)
    assert bounce.recipient == "ana.lima@example.net"
    assert bounce.kind is BounceKind.HARD
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic.startswith("550 5.1.1 The email account that you tried to reach")
    assert bounce.original_message_id == MESSAGE_ID


def test_a_blocked_bounce_without_a_status_is_soft() -> None:
    (parsed,) = parse_fixture("bounce_blocked_no_status.json")
    assert parsed.meta == {"event": "bounce", "type": "blocked"}
    assert only(parsed) == Bounce(
        recipient="noemail@this.does.not.exist.example",
        kind=BounceKind.SOFT,
        status="",
        diagnostic="unable to get mx info: failed to get IPs from PTR record: lookup <nil>: "
        "unrecognized address",
        original_message_id="4712.8a1e3c0b9f24@acme-motors.example",
    )


def bounce_of(**fields: object) -> Bounce:
    event = {"event": "bounce", "email": "ana.lima@example.net", "sg_event_id": "b1"} | fields
    (parsed,) = parse_fixture_body(json.dumps([event]).encode())
    signal = only(parsed)
    assert isinstance(signal, Bounce)
    return signal


def parse_fixture_body(body: bytes) -> list[ParsedInput]:
    return SendGridEvents(public_der(ec.generate_private_key(ec.SECP256R1()))).parse(body)


HARD, SOFT, POLICY = BounceKind.HARD, BounceKind.SOFT, BounceKind.POLICY


@pytest.mark.parametrize(
    ("bounce_type", "status", "reason", "kind", "code"),
    [
        ("bounce", "5.1.1", None, HARD, "5.1.1"),
        ("bounce", "5.2.2", "552 5.2.2 mailbox full", SOFT, "5.2.2"),
        ("blocked", "5.7.1", None, POLICY, "5.7.1"),
        ("blocked", "4.7.0", None, SOFT, "4.7.0"),
        # SendGrid's status decides whatever the type: a blocked 5.x.x is hard
        ("blocked", "5.0.0", "550 rejected", HARD, "5.0.0"),
        # a generic X.0.0 gives way to the receiver's more precise code of the same class
        ("blocked", "5.0.0", "550 5.7.1 Client host blocked using Spamhaus", POLICY, "5.7.1"),
        ("bounce", "5.0.0", "550 5.1.1 <x@example.net> no such user", HARD, "5.1.1"),
        ("bounce", "5.0.0", "421 4.7.0 try later", HARD, "5.0.0"),
        # without a status: the reply's codes, then the type
        ("bounce", None, "550 5.1.1 unknown user", HARD, "5.1.1"),
        ("blocked", None, "554 rejected for policy reasons", HARD, "5.0.0"),
        ("bounce", None, "mailbox unavailable", HARD, ""),
        ("blocked", None, "connection from 10.0.0.451 refused", SOFT, ""),
        (None, None, None, HARD, ""),
        (None, 550, None, HARD, ""),
    ],
)
def test_bounce_classification(
    bounce_type: str | None, status: object, reason: str | None, kind: BounceKind, code: str
) -> None:
    given = {"type": bounce_type, "status": status, "reason": reason}
    bounce = bounce_of(**{name: value for name, value in given.items() if value is not None})
    assert (bounce.kind, bounce.status) == (kind, code)


def test_a_deferral_is_not_a_bounce() -> None:
    (parsed,) = parse_fixture("deferred.json")
    deferral = only(parsed)
    assert isinstance(deferral, Bounce)
    assert deferral.kind is BounceKind.DELAYED
    assert deferral.status == "4.7.28"
    assert deferral.diagnostic.startswith("421 4.7.28 Gmail has detected an unusual rate")
    assert deferral.original_message_id == MESSAGE_ID


def test_drops_are_noted_not_applied() -> None:
    parsed = parse_fixture("dropped.json")
    whys = []
    for item in parsed:
        signal = only(item)
        assert isinstance(signal, Unrecognised)
        whys.append(signal.why)
    assert whys == [
        "dropped event: Bounced Address, on SendGrid's own suppression list",
        "dropped event: Spam Reporting Address, on SendGrid's own suppression list",
        "dropped event: Unsubscribed Address, on SendGrid's own suppression list",
        "dropped event: Invalid",
    ]


def test_a_dropped_reason_is_kept_without_addresses() -> None:
    body = json.dumps([{"event": "dropped", "reason": "Invalid ana.lima@example.net\n"}]).encode()
    (parsed,) = parse_fixture_body(body)
    assert only(parsed) == Unrecognised("dropped event: Invalid <address>")


def test_a_spam_report_is_an_abuse_complaint() -> None:
    (parsed,) = parse_fixture("spamreport.json")
    assert only(parsed) == Complaint(
        recipient="ana.lima@example.net",
        feedback_type=FeedbackType.ABUSE,
        original_message_id=MESSAGE_ID,
        arrival_date=datetime(2025, 1, 14, 11, 13, 21, tzinfo=UTC),
    )


def test_a_delivery_has_nothing_to_apply() -> None:
    (parsed,) = parse_fixture("delivered.json")
    assert only(parsed) == Unrecognised("delivered event: nothing to apply")
    assert parsed.event_id == "ZGVsaXZlcmVkLTAtMzM1NjA0MjctdzVQc0RxT0xSaC1uLXFVQXZQWkJIdy0w"


def test_the_signed_batch_parses() -> None:
    request = fixture("signed_test_key_batch.json")
    events = SendGridEvents(request["public_key"], clock=lambda: NOW)
    kinds = [type(only(p)) for p in events.parse(request["body"].encode())]
    assert kinds == [Bounce, Complaint, Unrecognised]


def test_a_bad_event_does_not_spoil_the_batch() -> None:
    good = fixture("bounce_hard_5.1.1.json")[0]
    no_address = {"event": "bounce", "status": "5.1.1", "sg_event_id": "nobody"}
    bad_address = {"event": "spamreport", "email": ["ana.lima@example.net"], "sg_event_id": "x"}
    body = json.dumps([no_address, 42, good, "bounce", bad_address, None]).encode()
    parsed = parse_fixture_body(body)
    assert len(parsed) == 6
    assert only(parsed[0]) == Unrecognised("bounce event without a recipient address")
    assert parsed[0].event_id == "nobody"
    assert only(parsed[1]) == Unrecognised("a number in the batch, not an event object")
    assert isinstance(only(parsed[2]), Bounce)
    assert only(parsed[3]) == Unrecognised("a string in the batch, not an event object")
    assert only(parsed[4]) == Unrecognised("spamreport event without a recipient address")
    assert only(parsed[5]) == Unrecognised("a null in the batch, not an event object")
    assert parsed[1].event_id == "sha256:" + hashlib.sha256(b"42").hexdigest()


def test_an_event_without_an_id_is_keyed_by_its_canonical_json() -> None:
    event = {"event": "bounce", "email": "ana.lima@example.net", "status": "5.1.1", "timestamp": 1}
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    reordered = json.dumps(dict(reversed(event.items())), indent=2).encode()
    for body in (json.dumps([event]).encode(), b"[" + reordered + b"]"):
        (parsed,) = parse_fixture_body(body)
        assert parsed.event_id == "sha256:" + hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize("sg_event_id", ["", " ", "a b", "x" * 201, 7, None, "é"])
def test_an_unusable_event_id_falls_back_to_the_digest(sg_event_id: object) -> None:
    body = json.dumps([{"event": "open", "sg_event_id": sg_event_id}]).encode()
    (parsed,) = parse_fixture_body(body)
    assert parsed.event_id.startswith("sha256:")


@pytest.mark.parametrize("timestamp", ["1736849512", -1, 10**13, True, None, 1e300])
def test_an_unusable_timestamp_is_no_time(timestamp: object) -> None:
    body = json.dumps([{"event": "open", "sg_event_id": "e", "timestamp": timestamp}]).encode()
    (parsed,) = parse_fixture_body(body)
    assert parsed.received_at is None


def test_long_and_unprintable_text_is_bounded() -> None:
    reason = "550 5.1.1 " + "\x00\x1b[31m\ud800 no such user\r\n\t" * 400
    body = json.dumps([{"event": "bounce", "email": "a@example.net", "reason": reason}]).encode()
    bounce = only(parse_fixture_body(body)[0])
    assert isinstance(bounce, Bounce)
    assert len(bounce.diagnostic) == 500
    assert bounce.diagnostic.isprintable()
    bounce.diagnostic.encode("utf-8")  # no lone surrogates left


@pytest.mark.parametrize(
    "smtp_id",
    ["<" + "x" * 300 + "@example.net>", "no-at-sign", "<a@b> <c@d>", 12, ""],
)
def test_an_unusable_smtp_id_is_no_message_id(smtp_id: object) -> None:
    bounce = bounce_of(status="5.1.1", **{"smtp-id": smtp_id})
    assert bounce.original_message_id is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"event": "bounce", "email": "ana.lima@example.net"}',  # one object: the retired v1 form
        b'"[]"',
        b"[1, 2, 3]",
        b"[[{}]]",
        b"\xff\xfe[",
        b"[" * 100_000,
        b"[1" + b"0" * 5000 + b"]",
    ],
)
def test_a_body_that_is_not_an_event_array_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_fixture_body(body)


def test_an_empty_batch_has_no_events() -> None:
    assert parse_fixture_body(b"[]") == []


def test_the_batch_size_is_bounded() -> None:
    assert len(parse_fixture_body(json.dumps([{}] * MAX_EVENTS).encode())) == MAX_EVENTS
    with pytest.raises(InvalidInput):
        parse_fixture_body(json.dumps([{}] * (MAX_EVENTS + 1)).encode())


# -- properties ------------------------------------------------------------------------------

PARSER = SendGridEvents(public_der(ec.generate_private_key(ec.SECP256R1())), clock=lambda: NOW)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["bounce", "deferred", "dropped", "spamreport", "open"]) | JSON,
        "type": st.sampled_from(["bounce", "blocked"]) | JSON,
        "email": st.emails() | JSON,
        "status": st.from_regex(r"[2-5]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True) | JSON,
        "reason": JSON,
        "response": JSON,
        "smtp-id": JSON,
        "sg_event_id": JSON,
        "timestamp": JSON,
    },
)


def parse_or_invalid(body: bytes) -> list[ParsedInput] | None:
    try:
        return PARSER.parse(body)
    except InvalidInput:
        return None


@given(st.binary(max_size=2000))
def test_garbage_bytes_raise_nothing_but_invalid_input(body: bytes) -> None:
    parse_or_invalid(body)


@given(st.lists(EVENT | JSON, max_size=6))
def test_any_json_batch_raises_nothing_but_invalid_input(batch: list[object]) -> None:
    parsed = parse_or_invalid(json.dumps(batch).encode())
    if parsed is None:
        return
    assert len(parsed) == len(batch)
    for item in parsed:
        assert item.source is SignalSource.PROVIDER
        assert 0 < len(item.event_id) <= 200
        assert len(item.signals) == 1


HEADER_NAMES = st.sampled_from([SIGNATURE_HEADER, TIMESTAMP_HEADER.lower()]) | st.text(max_size=30)
HEADER_VALUES = (
    st.text(max_size=120)
    | st.just(str(SIGNED_AT))
    | st.from_regex(r"[0-9]{1,14}", fullmatch=True)
    | st.binary(max_size=90).map(lambda raw: base64.b64encode(raw).decode())
)


@given(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4), st.binary(max_size=200))
def test_verify_never_raises(headers: dict[str, str], body: bytes) -> None:
    assert PARSER.verify(headers, body) is False

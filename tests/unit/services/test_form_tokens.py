"""Form tokens: what a shown form names, the time window a hosted form may be sent in, and
nothing accepted that this key did not mint for a form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.forms import FormExpired, FormRejected
from consentry.domain.model import Channel
from consentry.services.compose.confirmation import ConfirmationClaims, ConfirmationTokens
from consentry.services.form_tokens import FormClaims, FormTokens, TokenKind

KEY = bytes(range(32))
NOW = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)
FORM = uuid.UUID("0193a1f2-0000-7000-8000-0000000000f1")
DISCLOSURE = uuid.UUID("0193a1f2-0000-7000-8000-0000000000d1")
tokens = FormTokens(KEY, min_age=timedelta(seconds=2), max_age=timedelta(hours=24))


def hosted(issued: datetime = NOW, disclosure: uuid.UUID | None = DISCLOSURE) -> str:
    return tokens.mint(TokenKind.HOSTED, FORM, 7, disclosure, issued)


def test_a_token_names_the_form_its_revision_the_disclosure_and_when_it_was_shown() -> None:
    token = hosted()
    claims = tokens.read(token, NOW + timedelta(seconds=5))
    assert isinstance(claims, FormClaims)
    assert claims.kind is TokenKind.HOSTED
    assert (claims.form_id, claims.revision, claims.disclosure_id) == (FORM, 7, DISCLOSURE)
    assert claims.issued_at == NOW
    assert len(claims.nonce) == 16
    assert FORM.hex not in token
    assert DISCLOSURE.hex not in token


def test_every_token_is_a_new_submission() -> None:
    first, second = hosted(), hosted()
    assert first != second
    later = NOW + timedelta(seconds=5)
    assert tokens.read(first, later).nonce != tokens.read(second, later).nonce


def test_a_token_without_a_disclosure_says_so() -> None:
    assert tokens.read(hosted(disclosure=None), NOW + timedelta(seconds=5)).disclosure_id is None


def test_issued_at_keeps_whole_seconds() -> None:
    token = hosted(NOW + timedelta(milliseconds=900))
    assert tokens.read(token, NOW + timedelta(seconds=3)).issued_at == NOW


def test_a_hosted_form_sent_back_faster_than_a_person_could_is_rejected() -> None:
    token = hosted()
    for elapsed in (timedelta(0), timedelta(seconds=1.999), timedelta(seconds=-30)):
        with pytest.raises(FormRejected) as refused:
            tokens.read(token, NOW + elapsed)
        assert refused.value.code == "FORM_REJECTED"
        assert refused.value.field == "form_token"
    assert tokens.read(token, NOW + timedelta(seconds=2)).form_id == FORM


def test_a_hosted_form_older_than_the_window_has_expired() -> None:
    token = hosted()
    assert tokens.read(token, NOW + timedelta(hours=24)).form_id == FORM
    with pytest.raises(FormExpired) as refused:
        tokens.read(token, NOW + timedelta(hours=24, seconds=1))
    assert refused.value.code == "FORM_EXPIRED"
    assert refused.value.field == "form_token"
    assert "expired" in str(refused.value)


def test_the_window_comes_from_the_settings() -> None:
    quick = FormTokens(KEY, min_age=timedelta(0), max_age=timedelta(hours=1))
    token = quick.mint(TokenKind.HOSTED, FORM, 1, DISCLOSURE, NOW)
    assert quick.read(token, NOW).form_id == FORM
    with pytest.raises(FormExpired):
        quick.read(token, NOW + timedelta(hours=1, seconds=1))


def test_an_embedded_snippet_skips_the_time_window() -> None:
    token = tokens.mint(TokenKind.EMBEDDED, FORM, 7, DISCLOSURE, NOW)
    for elapsed in (timedelta(0), timedelta(days=400)):
        claims = tokens.read(token, NOW + elapsed)
        assert claims.kind is TokenKind.EMBEDDED
        assert (claims.form_id, claims.revision) == (FORM, 7)


def _expired(token: str, reader: FormTokens = tokens) -> None:
    with pytest.raises(FormExpired) as refused:
        reader.read(token, NOW + timedelta(seconds=5))
    assert refused.value.field == "form_token"


def test_another_key_is_refused() -> None:
    _expired(hosted(), FormTokens(bytes(32)))
    _expired(FormTokens(bytes(32)).mint(TokenKind.EMBEDDED, FORM, 7, None, NOW))


def test_a_confirmation_token_under_the_same_key_is_not_a_form_token() -> None:
    confirmation = ConfirmationTokens(KEY).mint(
        ConfirmationClaims(
            tenant_id=uuid.uuid4(),
            contact_id=uuid.uuid4(),
            topic_id=uuid.uuid4(),
            channel=Channel.EMAIL,
            point_key=bytes(16),
            request_event_id=uuid.uuid4(),
            issued_at=NOW,
        )
    )
    _expired(confirmation)


@pytest.mark.parametrize("garbled", ["", "not-a-token", "A" * 120, "=" * 40, "é" * 20])
def test_garbled_tokens_are_refused(garbled: str) -> None:
    _expired(garbled)


@given(st.text(max_size=300))
def test_any_text_is_refused(value: str) -> None:
    _expired(value)


def test_every_altered_character_is_refused() -> None:
    token = hosted()
    for i in range(len(token)):
        swapped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        _expired(swapped)
    _expired(token[:-1])
    _expired(token + "A")

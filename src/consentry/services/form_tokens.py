"""Form tokens: a signed, time-stamped ticket that a form was shown, and what it showed.

The hosted page puts a fresh token in every form it renders: it names the form and its revision,
the disclosure version shown, when it was shown, and a random nonce. A submission is taken only
with a token that opens under our key, and only between ``min_age`` (people take a few seconds
to fill a form in; bots do not) and ``max_age`` after it was issued. The nonce makes a form
posted twice write once.

A snippet pasted into a business's own site cannot carry a fresh token. Its token is minted when
the snippet is produced, marked as embedded, and names the form revision: editing or archiving
the form retires old snippets. Embedded posts rely on the honeypot, the per-address rate limit and
confirmed opt-in instead of the time window (docs/forms.md).

Sealed with AES-256-GCM under a key derived for forms only (SealedCodec): a form token cannot pass
for an unsubscribe or confirmation token, nor the other way round.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from consentry.domain.forms import FormExpired, FormRejected
from consentry.services.compose.tokens import InvalidToken, SealedCodec

FORM_TOKEN_PURPOSE = "form token v1"  # noqa: S105  (a key-derivation label, not a secret)
_FORMAT = 1
# version, kind, form id, form revision, disclosure document id (zeros: none), issued at, nonce.
_PAYLOAD = struct.Struct(">BB16sI16sQ16s")
_AAD = b"consentry form token"
_NO_DOCUMENT = uuid.UUID(int=0)


class TokenKind(IntEnum):
    HOSTED = 1
    EMBEDDED = 2


@dataclass(frozen=True, slots=True)
class FormClaims:
    kind: TokenKind
    form_id: uuid.UUID
    revision: int
    disclosure_id: uuid.UUID | None
    issued_at: datetime  # aware; whole seconds
    nonce: bytes


class FormTokens:
    """Mints and checks form tokens under one key."""

    def __init__(
        self,
        key: bytes,
        *,
        min_age: timedelta = timedelta(seconds=2),
        max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self._codec = SealedCodec(key, _AAD, _PAYLOAD.size, "the form is not valid")
        self.min_age = min_age
        self.max_age = max_age

    def mint(
        self,
        kind: TokenKind,
        form_id: uuid.UUID,
        revision: int,
        disclosure_id: uuid.UUID | None,
        now: datetime,
    ) -> str:
        payload = _PAYLOAD.pack(
            _FORMAT,
            kind,
            form_id.bytes,
            revision,
            (disclosure_id or _NO_DOCUMENT).bytes,
            int(now.timestamp()),
            os.urandom(16),
        )
        return self._codec.seal(payload)

    def read(self, token: str, now: datetime) -> FormClaims:
        """The claims of a token we minted, checked for age when it came from the hosted page.

        FormExpired when the token is not ours, garbled, or too old (the page is shown again
        with a fresh one); FormRejected when it was sent back faster than a person could."""
        try:
            payload = self._codec.open(token)
        except InvalidToken:
            raise FormExpired(
                "this form has expired; please check your answers and send it again",
                field="form_token",
            ) from None
        version, kind, form, revision, document, issued, nonce = _PAYLOAD.unpack(payload)
        if version != _FORMAT or kind not in TokenKind.__members__.values():
            raise FormExpired("this form is not valid; please send it again", field="form_token")
        claims = FormClaims(
            kind=TokenKind(kind),
            form_id=uuid.UUID(bytes=form),
            revision=revision,
            disclosure_id=None if document == _NO_DOCUMENT.bytes else uuid.UUID(bytes=document),
            issued_at=datetime.fromtimestamp(issued, UTC),
            nonce=nonce,
        )
        if claims.kind is TokenKind.HOSTED:
            age = now - claims.issued_at
            if age > self.max_age:
                raise FormExpired(
                    "this form has expired; please check your answers and send it again",
                    field="form_token",
                )
            if age < self.min_age:
                raise FormRejected(
                    "the form was sent too quickly; please wait a moment and send it again",
                    field="form_token",
                )
        return claims

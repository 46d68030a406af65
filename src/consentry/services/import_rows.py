"""One import row: its cells read, validated and normalised into a contact and its evidence."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, NamedTuple

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    Evidence,
    EvidenceDigests,
)
from consentry.domain.errors import InvalidInput
from consentry.domain.ids import new_id
from consentry.domain.imports import (
    ADDRESS_MISSING,
    EVIDENCE_MISSING,
    INVALID_VALUE,
    ROW_SHAPE,
    SIGNUP_OUTSIDE_PERIOD,
    RowIssue,
    Severity,
)
from consentry.domain.model import (
    POINT_KIND,
    Channel,
    Contact,
    PhoneType,
    PointKind,
    point_index_value,
)
from consentry.services.addresses import (
    normalize_country,
    normalize_email,
    normalize_phone,
    validate_time_zone,
)
from consentry.services.import_file import Columns, RawRow

if TYPE_CHECKING:
    from consentry.services.ports import SealingKeys


@dataclass(frozen=True, slots=True)
class RowRules:
    """What every row of one import is checked against."""

    channel: Channel
    tenant_country: str
    collected_from: date
    collected_to: date
    required: tuple[str, ...]
    now: datetime


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    address: str  # the normalised contact point of the import's channel
    email: str | None
    phone: str | None
    phone_type: PhoneType | None
    whatsapp: str | None
    name: str | None
    country: str | None
    locale: str | None
    time_zone: str | None
    external_ref: str | None
    signup_at: datetime | None
    signup_ip: str | None


def _error(line: int, field: str | None, code: str, message: str, value: str | None) -> RowIssue:
    return RowIssue(line, field, code, Severity.ERROR, message, value or None)


def _signup_time(text: str) -> datetime:
    """ISO 8601 date or date and time; a time without an offset is read as UTC."""
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(text), time(0))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _ip_address(text: str) -> str:
    """``str(ipaddress.ip_address(text))``: the address in its normal form, or ValueError. A
    dotted quad the C library reads back unchanged is one already; anything else (IPv6, leading
    zeros, odd forms) goes through ``ipaddress``, which decides."""
    try:
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
            return text
    except OSError:
        pass
    return str(ipaddress.ip_address(text))


def parse_row(  # noqa: PLR0915  (one check per field, in the order a reader meets them)
    raw: RawRow, columns: Columns, rules: RowRules
) -> ParsedRow | list[RowIssue]:
    """The row's contact and evidence, or every problem found in it."""
    cells = raw.cells
    line = raw.line
    issues: list[RowIssue] = []

    def cell(field: str) -> str:
        position = columns.index.get(field)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    if len(cells) > columns.width and any(c.strip() for c in cells[columns.width :]):
        issues.append(
            _error(line, None, ROW_SHAPE,
                   f"the row has {len(cells)} cells and the header {columns.width}: "
                   "an unquoted comma?", None)
        )  # fmt: skip

    def normalised(field: str) -> str | None:
        value = cell(field)
        if not value:
            return None
        try:
            if field == "email":
                return normalize_email(value)
            if field == "country":
                return normalize_country(value)
            return validate_time_zone(value)
        except InvalidInput as exc:
            issues.append(_error(line, field, exc.code, exc.message, value))
            return None

    email = normalised("email")
    country = normalised("country")
    time_zone = normalised("time_zone")
    region = country or rules.tenant_country
    phone: str | None = None
    phone_type: PhoneType | None = None
    whatsapp: str | None = None
    for field in ("phone", "whatsapp"):
        value = cell(field)
        if not value:
            continue
        try:
            number, kind = normalize_phone(value, region, field=field)
        except InvalidInput as exc:
            issues.append(_error(line, field, exc.code, exc.message, value))
            continue
        if field == "phone":
            phone, phone_type = number, kind
            if rules.channel is Channel.SMS and kind is PhoneType.FIXED_LINE:
                issues.append(
                    _error(line, field, "INVALID_PHONE", "a fixed line cannot receive SMS", value)
                )
        else:
            whatsapp = number
    if rules.channel is Channel.WHATSAPP and whatsapp is None and cell("whatsapp") == "":
        whatsapp = phone  # the phone column stands for the WhatsApp number
    address = {Channel.EMAIL: email, Channel.SMS: phone, Channel.WHATSAPP: whatsapp}[rules.channel]
    address_field = {Channel.EMAIL: "email", Channel.SMS: "phone"}.get(rules.channel, "whatsapp")
    if address is None and not any(i.field in {address_field, "phone"} for i in issues):
        issues.append(
            _error(line, address_field, ADDRESS_MISSING,
                   f"no {address_field} for {rules.channel.value}", None)
        )  # fmt: skip
    signup_at: datetime | None = None
    if text := cell("signup_at"):
        try:
            signup_at = _signup_time(text)
        except ValueError:
            issues.append(
                _error(line, "signup_at", INVALID_VALUE,
                       "not a date or time in ISO 8601 (2026-03-01 or 2026-03-01T09:30:00Z)",
                       text)
            )  # fmt: skip
        else:
            day = signup_at.astimezone(UTC).date()
            if signup_at > rules.now:
                issues.append(
                    _error(line, "signup_at", INVALID_VALUE, "the sign-up time is in the future",
                           text)
                )  # fmt: skip
            elif not rules.collected_from <= day <= rules.collected_to:
                issues.append(
                    _error(line, "signup_at", SIGNUP_OUTSIDE_PERIOD,
                           f"signed up on {day}, outside the declared collection period "
                           f"{rules.collected_from} to {rules.collected_to}", text)
                )  # fmt: skip
    signup_ip: str | None = None
    if text := cell("signup_ip"):
        try:
            signup_ip = _ip_address(text)
        except ValueError:
            issues.append(_error(line, "signup_ip", INVALID_VALUE, "not an IP address", text))
    issues.extend(
        _error(line, field, EVIDENCE_MISSING, f"this import requires {field} on every row", None)
        for field in rules.required
        if not cell(field)
    )
    if issues or address is None:
        return issues
    return ParsedRow(
        line=line,
        address=address,
        email=email,
        phone=phone,
        phone_type=phone_type,
        whatsapp=whatsapp,
        name=cell("name") or None,
        country=country,
        locale=cell("locale") or None,
        time_zone=time_zone,
        external_ref=cell("external_ref")[:200] or None,
        signup_at=signup_at,
        signup_ip=signup_ip,
    )


@dataclass(frozen=True, slots=True)
class RowContext:
    """What every row of one import is prepared with, the same for all of them; plain data, so
    a helper process can prepare rows with it."""

    tenant_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    action: ConsentAction
    evidence: Evidence  # the import's; each row adds its sign-up IP and time
    source_digest: str | None
    rules: RowRules
    columns: Columns
    now: datetime


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row repeating the address of an earlier row of its batch."""

    line: int
    first_line: int


class ReadyRow(NamedTuple):
    """A row that parsed, with its new contact and consent event prepared for the store
    (``payload``, opaque here) before the look-ups say whether the address is known already.
    A named tuple: a large import makes a million of them in the importing process."""

    line: int
    address: str
    email: str | None
    key: bytes  # blind index of the address
    email_key: bytes | None
    payload: Any


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """One batch read, parsed and prepared without the database: what it reports before any
    look-up (rows with errors, repeats within the batch), the rows to look up, in file order,
    and the raw rows themselves (a row whose address is known already is prepared again, for
    the contact that has it)."""

    rows: int
    early: list[list[RowIssue] | Duplicate]
    ready: list[ReadyRow]
    raw: list[RawRow]


@dataclass(frozen=True, slots=True)
class ExistingConsent:
    """The consent event of a row whose address belongs to a contact already, for the store
    to seal and chain with the batch's new contacts' events."""

    event: ConsentEvent
    digests: EvidenceDigests


Parsed = tuple[ParsedRow, bytes, bytes | None]  # the row, its address's and email's indexes


def parsed_rows(
    ctx: RowContext, keys: SealingKeys, raw: list[RawRow]
) -> Iterator[list[RowIssue] | Duplicate | Parsed]:
    """Each raw row parsed and indexed, in order: its problems, a repeat of an earlier row of
    the batch, or the row with the blind indexes of its address and email."""
    kind = POINT_KIND[ctx.channel]
    index = keys.blind_index
    seen: dict[bytes, int] = {}
    for r in raw:
        parsed = parse_row(r, ctx.columns, ctx.rules)
        if isinstance(parsed, list):
            yield parsed
            continue
        key = index(kind, point_index_value(kind, parsed.address))
        first = seen.get(key)
        if first is not None:
            yield Duplicate(parsed.line, first)
            continue
        seen[key] = parsed.line
        if parsed.email is None:
            email_key = None
        elif kind is PointKind.EMAIL:
            email_key = key  # the address is the email address
        else:
            email_key = index(PointKind.EMAIL, point_index_value(PointKind.EMAIL, parsed.email))
        yield parsed, key, email_key


def new_contact(ctx: RowContext, row: ParsedRow, contact_id: uuid.UUID) -> Contact:
    return Contact(
        id=contact_id,
        tenant_id=ctx.tenant_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        phone_type=row.phone_type,
        whatsapp=row.whatsapp,
        country=row.country,
        time_zone=row.time_zone,
        locale=row.locale,
        external_ref=row.external_ref,
        created_at=ctx.now,
        updated_at=ctx.now,
    )


def row_event(
    ctx: RowContext, keys: SealingKeys, row: ParsedRow, contact_id: uuid.UUID, key: bytes
) -> tuple[ConsentEvent, EvidenceDigests]:
    """The row's unchained consent event for ``contact_id`` and the digests of its evidence."""
    base = ctx.evidence
    occurred_at = row.signup_at or ctx.now
    note = base.note
    if ctx.action is ConsentAction.REQUESTED:
        # The request for confirmation is made now, by the import: the confirmation window
        # counts from here. When the person signed up stays in the evidence.
        occurred_at = ctx.now
        if row.signup_at is not None:
            note = f"signed up at {row.signup_at.isoformat()}"
    evidence = Evidence(
        method=base.method,
        source=base.source,
        ip_address=base.ip_address if row.signup_ip is None else row.signup_ip,
        user_agent=base.user_agent,
        policy_document_id=base.policy_document_id,
        disclosure_hash=base.disclosure_hash,
        actor=base.actor,
        import_batch_id=base.import_batch_id,
        inbound_message_id=base.inbound_message_id,
        relationship=base.relationship,
        note=note,
    )
    event = ConsentEvent(
        id=new_id(),
        tenant_id=ctx.tenant_id,
        contact_id=contact_id,
        point_key=key,
        topic_id=ctx.topic_id,
        channel=ctx.channel,
        action=ctx.action,
        basis=ConsentBasis.EXPRESS,
        evidence=evidence,
        occurred_at=occurred_at,
        recorded_at=ctx.now,
    )
    digests = EvidenceDigests(
        source=ctx.source_digest,
        ip_address=keys.digest(evidence.ip_address),
        user_agent=keys.digest(evidence.user_agent),
        note=keys.digest(evidence.note),
    )
    return event, digests

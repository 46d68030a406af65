"""One import row: its cells read, validated and normalised into a contact and its evidence."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from consentry.domain.errors import InvalidInput
from consentry.domain.imports import (
    ADDRESS_MISSING,
    EVIDENCE_MISSING,
    INVALID_VALUE,
    ROW_SHAPE,
    SIGNUP_OUTSIDE_PERIOD,
    RowIssue,
    Severity,
)
from consentry.domain.model import Channel, PhoneType
from consentry.services.addresses import (
    normalize_country,
    normalize_email,
    normalize_phone,
    validate_time_zone,
)
from consentry.services.import_file import Columns, RawRow


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
            signup_ip = str(ipaddress.ip_address(text))
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

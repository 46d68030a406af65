"""Imports of contact lists with attestation: what the importer declares, what each row may say.

Errors (each an InvalidInput or NotFound with a stable code)::

    InvalidInput
    ├── ImportListRefused     IMPORT_LIST_REFUSED     bought, rented, traded or appended lists
    ├── AttestationIncomplete ATTESTATION_INCOMPLETE  a declaration is missing or contradictory
    ├── ImportFileInvalid     IMPORT_FILE_INVALID     the file cannot be read as a CSV of contacts
    │   ├── ImportEncoding    IMPORT_ENCODING         a line is not valid in the file's encoding
    │   └── ImportHeader      IMPORT_HEADER           no header, or a required column missing
    └── ImportTooLarge        IMPORT_TOO_LARGE        the file exceeds the configured limit
    NotFound
    └── ImportNotFound        IMPORT_NOT_FOUND

Row-level findings are not exceptions but ``RowIssue`` values in the import's report.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from consentry.domain.errors import InvalidInput, NotFound
from consentry.domain.model import Channel


class ImportListRefused(InvalidInput):
    code = "IMPORT_LIST_REFUSED"


class AttestationIncomplete(InvalidInput):
    code = "ATTESTATION_INCOMPLETE"


class ImportFileInvalid(InvalidInput):
    code = "IMPORT_FILE_INVALID"


class ImportEncoding(ImportFileInvalid):
    code = "IMPORT_ENCODING"


class ImportHeader(ImportFileInvalid):
    code = "IMPORT_HEADER"


class ImportTooLarge(InvalidInput):
    code = "IMPORT_TOO_LARGE"


class ImportNotFound(NotFound):
    code = "IMPORT_NOT_FOUND"


class Acquisition(StrEnum):
    """How the list came to the importer. Only a list collected by the business itself, from
    people who opted in to it, carries consent: the major mailbox providers, CAN-SPAM's
    "aggravated violations" (15 U.S.C. 7704(b)) and GDPR Art. 7 all treat bought, rented,
    traded or appended addresses as having no consent to this sender."""

    COLLECTED = "collected"
    BOUGHT = "bought"
    RENTED = "rented"
    TRADED = "traded"
    APPENDED = "appended"


class OptInMethod(StrEnum):
    WEB_FORM = "web_form"
    CHECKOUT = "checkout"
    PAPER_FORM = "paper_form"
    IN_PERSON = "in_person"
    KEYWORD = "keyword"
    OTHER = "other"


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"  # rows written (all good, or the good ones kept)
    REJECTED = "rejected"  # atomic import with row errors: nothing written
    DRY_RUN = "dry_run"  # checked only: nothing written
    FAILED = "failed"  # the file turned out unreadable, or the process failed


class Severity(StrEnum):
    ERROR = "error"  # the row cannot be imported
    SKIPPED = "skipped"  # the row is left out on purpose (suppressed, withdrawn, duplicate)
    NOTE = "note"  # about the file, not a row (ignored columns)


# Stable codes of row findings.
INVALID_EMAIL = "INVALID_EMAIL"
INVALID_PHONE = "INVALID_PHONE"
INVALID_VALUE = "INVALID_VALUE"
ADDRESS_MISSING = "ADDRESS_MISSING"
EVIDENCE_MISSING = "EVIDENCE_MISSING"
SIGNUP_OUTSIDE_PERIOD = "SIGNUP_OUTSIDE_PERIOD"
EMAIL_TAKEN = "EMAIL_TAKEN"
CONSENT_MINOR = "CONSENT_MINOR"
DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE"
SKIPPED_SUPPRESSED = "SKIPPED_SUPPRESSED"
SKIPPED_WITHDRAWN = "SKIPPED_WITHDRAWN"
SKIPPED_ALREADY_CONSENTED = "SKIPPED_ALREADY_CONSENTED"
EXTRA_COLUMN_IGNORED = "EXTRA_COLUMN_IGNORED"
ROW_SHAPE = "ROW_SHAPE"

# Fields a row may carry (CSV columns are mapped onto these).
CONTACT_FIELDS = ("email", "phone", "whatsapp", "name", "country", "locale", "time_zone",
                  "external_ref")  # fmt: skip
EVIDENCE_FIELDS = ("signup_at", "signup_ip")
FIELDS = CONTACT_FIELDS + EVIDENCE_FIELDS

ADDRESS_FIELD: dict[Channel, str] = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.WHATSAPP: "whatsapp",
}


@dataclass(frozen=True, slots=True)
class Attestation:
    """What the importer declares about the list, kept with the import."""

    source: str  # e.g. "newsletter sign-up box on our shop's website"
    opt_in_method: OptInMethod
    collected_from: date
    collected_to: date
    acquisition: Acquisition
    attested: bool  # "this list was not bought, rented, traded or appended"
    attested_by: str
    website: str | None = None  # the website or place of collection
    disclosure_document_id: uuid.UUID | None = None
    disclosure_text: str | None = None


def check_attestation(attestation: Attestation, today: date) -> None:
    """Refuse a list that is not the importer's own opt-in list, or an incomplete declaration."""
    if attestation.acquisition is not Acquisition.COLLECTED:
        raise ImportListRefused(
            f"a {attestation.acquisition.value} list carries no consent to you and cannot be "
            "imported; collect consent yourself",
            field="acquisition",
        )
    if not attestation.attested:
        raise AttestationIncomplete(
            "attest that the list was not bought, rented, traded or appended", field="attest"
        )
    if not attestation.source.strip():
        raise AttestationIncomplete("state the list's source", field="source")
    if not attestation.attested_by.strip():
        raise AttestationIncomplete("name who attests", field="attested_by")
    if attestation.collected_from > attestation.collected_to:
        raise AttestationIncomplete(
            "the collection period ends before it starts", field="collected_to"
        )
    if attestation.collected_to > today:
        raise AttestationIncomplete(
            "the collection period ends in the future", field="collected_to"
        )
    has_id = attestation.disclosure_document_id is not None
    has_text = bool((attestation.disclosure_text or "").strip())
    if has_id == has_text:
        raise AttestationIncomplete(
            "give the disclosure shown: a published policy document id, or its text",
            field="disclosure",
        )


@dataclass(frozen=True, slots=True)
class RowIssue:
    line: int  # physical line of the file where the row starts (the header is line 1)
    field: str | None
    code: str
    severity: Severity
    message: str
    value: str | None = None  # the offending cell, personal data: sealed at rest


@dataclass(frozen=True, slots=True)
class ImportCounts:
    rows: int = 0
    imported: int = 0  # consent recorded (granted, or requested for confirmed opt-in topics)
    pending: int = 0  # of which left pending confirmation
    contacts_created: int = 0
    skipped: int = 0
    errors: int = 0
    confirmations_sent: int = 0  # confirmation requests sent for the pending consents


@dataclass(frozen=True, slots=True)
class ImportRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    topic_id: uuid.UUID
    topic_key: str
    channel: Channel
    status: ImportStatus
    dry_run: bool
    keep_good_rows: bool
    file_name: str
    file_sha256: str
    file_bytes: int
    rows_total: int
    attestation: Attestation
    created_at: datetime
    mapping: dict[str, str]
    required: tuple[str, ...] = ()
    rows_done: int = 0
    counts: ImportCounts = ImportCounts()
    disclosure_document_id: uuid.UUID | None = None
    confirmation_required: bool = False
    error_code: str | None = None
    error_detail: str | None = None
    finished_at: datetime | None = None


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """A cell as written to an exported CSV: a leading formula character is escaped with ``'``
    so that spreadsheet programs show the text instead of evaluating it (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value

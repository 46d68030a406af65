"""Errors of the domain, each with a stable ``code``.

Hierarchy::

    ConsentryError
    ├── InvalidInput                  (400-class: the caller sent something wrong)
    │   ├── InvalidEmail              INVALID_EMAIL
    │   ├── InvalidPhone              INVALID_PHONE
    │   ├── InvalidCountry            INVALID_COUNTRY
    │   ├── InvalidTimeZone           INVALID_TIME_ZONE
    │   ├── DateOfBirthInFuture       DOB_IN_FUTURE
    │   ├── UnknownChannel            UNKNOWN_CHANNEL
    │   ├── UnknownValue              INVALID_VALUE
    │   ├── EvidenceIncomplete        EVIDENCE_INCOMPLETE
    │   ├── DisclosureMismatch        DISCLOSURE_MISMATCH
    │   ├── AddressMissing            ADDRESS_MISSING
    │   ├── ConsentForMinor           CONSENT_MINOR
    │   └── (imports: domain/imports.py)
    ├── NotFound                      (the object does not exist in the caller's tenant)
    │   ├── TenantNotFound            TENANT_NOT_FOUND
    │   ├── TopicNotFound             TOPIC_NOT_FOUND
    │   ├── ContactNotFound           CONTACT_NOT_FOUND
    │   ├── PolicyDocumentNotFound    POLICY_DOCUMENT_NOT_FOUND
    │   └── SuppressionNotFound       SUPPRESSION_NOT_FOUND
    ├── Conflict                      (the request contradicts stored state)
    │   ├── AlreadyExists             ALREADY_EXISTS
    │   ├── PolicyDocumentImmutable   POLICY_DOCUMENT_IMMUTABLE
    │   └── SuppressionNotLiftable    SUPPRESSION_NOT_LIFTABLE
    ├── ConfigurationError            CONFIGURATION_INVALID
    └── IntegrityFailure
        ├── LedgerTampered            LEDGER_TAMPERED
        └── KeyUnavailable            KEY_UNAVAILABLE
"""

from __future__ import annotations


class ConsentryError(Exception):
    """Base of every error consentry raises on purpose."""

    code = "CONSENTRY_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ConsentryError):
    code = "INVALID_INPUT"


class InvalidEmail(InvalidInput):
    code = "INVALID_EMAIL"


class InvalidPhone(InvalidInput):
    code = "INVALID_PHONE"


class InvalidCountry(InvalidInput):
    code = "INVALID_COUNTRY"


class InvalidTimeZone(InvalidInput):
    code = "INVALID_TIME_ZONE"


class DateOfBirthInFuture(InvalidInput):
    code = "DOB_IN_FUTURE"


class UnknownChannel(InvalidInput):
    code = "UNKNOWN_CHANNEL"


class UnknownValue(InvalidInput):
    code = "INVALID_VALUE"


class EvidenceIncomplete(InvalidInput):
    code = "EVIDENCE_INCOMPLETE"


class DisclosureMismatch(InvalidInput):
    code = "DISCLOSURE_MISMATCH"


class ConsentForMinor(InvalidInput):
    code = "CONSENT_MINOR"


class NotFound(ConsentryError):
    code = "NOT_FOUND"


class TenantNotFound(NotFound):
    code = "TENANT_NOT_FOUND"


class TopicNotFound(NotFound):
    code = "TOPIC_NOT_FOUND"


class ContactNotFound(NotFound):
    code = "CONTACT_NOT_FOUND"


class PolicyDocumentNotFound(NotFound):
    code = "POLICY_DOCUMENT_NOT_FOUND"


class SuppressionNotFound(NotFound):
    code = "SUPPRESSION_NOT_FOUND"


class Conflict(ConsentryError):
    code = "CONFLICT"


class AlreadyExists(Conflict):
    code = "ALREADY_EXISTS"


class PolicyDocumentImmutable(Conflict):
    code = "POLICY_DOCUMENT_IMMUTABLE"


class SuppressionNotLiftable(Conflict):
    code = "SUPPRESSION_NOT_LIFTABLE"


class IntegrityFailure(ConsentryError):
    code = "INTEGRITY_FAILURE"


class LedgerTampered(IntegrityFailure):
    code = "LEDGER_TAMPERED"


class KeyUnavailable(IntegrityFailure):
    code = "KEY_UNAVAILABLE"


class AddressMissing(InvalidInput):
    code = "ADDRESS_MISSING"


class ConfigurationError(ConsentryError):
    """The settings name something that cannot work (an unknown channel, a missing secret)."""

    code = "CONFIGURATION_INVALID"

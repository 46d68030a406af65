"""The access audit log: who read or changed which personal data, when and from where.

Entries are hash-chained per tenant like the consent ledger; the requester's IP address enters
only as a keyed digest. An entry is written first and chained by the sealer moments later
(services/audit.py): until then it has no ``seq`` and no hashes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.chain import Canonical

PLATFORM_CHAIN_ID = uuid.UUID(int=0)  # the chain of entries that belong to no tenant


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: uuid.UUID
    tenant_id: uuid.UUID
    actor: str
    action: str  # e.g. "contact.read", "consent.write"
    object_type: str
    object_id: str | None
    at: datetime
    ip_digest: str | None = None
    request_id: str | None = None
    seq: int | None = None  # None until sealed
    prev_hash: str | None = None
    hash: str | None = None

    @property
    def sealed(self) -> bool:
        return self.seq is not None


def canonical_audit(entry: AuditEntry) -> Canonical:
    return {
        "id": str(entry.id),
        "tenant_id": str(entry.tenant_id),
        "seq": entry.seq,
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "ip": entry.ip_digest,
        "request_id": entry.request_id,
        "at": entry.at.isoformat(timespec="microseconds"),
    }

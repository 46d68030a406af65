"""Verification of the consent ledger: its hash chains, and the state projection the gate reads."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

from consentry.domain.chain import GENESIS, ChainBreak, ChainLink, verify_chain
from consentry.domain.consent import ConsentState, StateKey, apply_event
from consentry.services.audit_seal import seal_audit
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

# The report of ledger rows that belong to no existing tenant.
NO_TENANT = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class ChainReport:
    tenant_id: uuid.UUID
    tenant_slug: str
    verified: int
    head_seq: int
    broken: ChainBreak | None
    projection_mismatches: tuple[str, ...] = ()
    dangling_references: tuple[str, ...] = ()
    audit_verified: int = 0
    audit_broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        return (
            self.broken is None
            and not self.projection_mismatches
            and not self.dangling_references
            and self.audit_broken is None
        )


class _LastHash:
    """Passes links through and remembers the last hash seen."""

    def __init__(self) -> None:
        self.value = GENESIS

    def track(self, links: Iterable[ChainLink]) -> Iterator[ChainLink]:
        for link in links:
            self.value = link.hash
            yield link


def _comparable(state: ConsentState) -> tuple[object, ...]:
    return (
        state.point_key,
        state.status,
        state.basis,
        state.confirmed,
        state.event_id,
        state.seq,
        state.expires_at,
    )


def _projection_mismatches(uow: UnitOfWork, tenant_id: uuid.UUID) -> tuple[str, ...]:
    """Fold the ledger again and compare with the stored states the gate decides from."""
    folded: dict[StateKey, ConsentState] = {}
    with closing(uow.ledger.events(tenant_id)) as events:
        for event in events:
            key = (event.contact_id, event.topic_id, event.channel)
            folded[key] = apply_event(folded.get(key), event)
    stored = {
        (s.contact_id, s.topic_id, s.channel): s for s in uow.consent_states.for_tenant(tenant_id)
    }
    problems: list[str] = []
    for key in sorted(folded.keys() | stored.keys(), key=str):
        want, have = folded.get(key), stored.get(key)
        if want is None or have is None or _comparable(want) != _comparable(have):
            contact_id, topic_id, channel = key
            problems.append(
                f"contact {contact_id} topic {topic_id} {channel.value}: stored state "
                f"{'missing' if have is None else have.status.value} does not match the ledger "
                f"({'nothing' if want is None else want.status.value})"
            )
    return tuple(problems)


def verify_chain_with_head(
    links: Generator[ChainLink, None, None], head: tuple[int, str]
) -> tuple[int, ChainBreak | None]:
    """Verify links in order and that they end where the chain head says (no truncation)."""
    last = _LastHash()
    with closing(links):
        verified, broken = verify_chain(last.track(links))
    head_seq, head_hash = head
    if broken is None and (verified != head_seq or last.value != head_hash):
        broken = ChainBreak(
            verified + 1, "", f"chain ends at {verified}, its head records {head_seq}"
        )
    return verified, broken


def verify_ledger(uow: UnitOfWork, tenant_slug: TenantRef | None = None) -> list[ChainReport]:
    """Recompute every tenant's consent chain (or one tenant's) and audit chain from stored rows,
    check that every event names a contact, topic and disclosure of its own tenant (and, for all
    tenants, that no event or state names a tenant that does not exist), and that the
    consent states the gate reads are exactly the fold of the ledger. Writes
    nothing but the links of audit entries waiting for the sealer, which it seals first."""
    reports: list[ChainReport] = []
    seal_audit(uow)
    with uow:
        tenants = [find_tenant(uow, tenant_slug)] if tenant_slug else uow.tenants.list()
        for tenant in tenants:
            # Rows removed from the end leave a shorter chain that is valid on its own; the
            # head remembers how long it was and where it ended.
            verified, broken = verify_chain_with_head(
                uow.ledger.links(tenant.id), uow.ledger.head(tenant.id)
            )
            audit_verified, audit_broken = verify_chain_with_head(
                uow.audit.links(tenant.id), uow.audit.head(tenant.id)
            )
            reports.append(
                ChainReport(
                    tenant_id=tenant.id,
                    tenant_slug=tenant.slug,
                    verified=verified,
                    head_seq=uow.ledger.head(tenant.id)[0],
                    broken=broken,
                    projection_mismatches=_projection_mismatches(uow, tenant.id),
                    dangling_references=tuple(uow.ledger.dangling_references(tenant.id)),
                    audit_verified=audit_verified,
                    audit_broken=audit_broken,
                )
            )
        if tenant_slug is None and (orphans := uow.ledger.without_tenant()):
            reports.append(
                ChainReport(
                    tenant_id=NO_TENANT,
                    tenant_slug="(no tenant)",
                    verified=0,
                    head_seq=0,
                    broken=None,
                    dangling_references=tuple(orphans),
                )
            )
    return reports

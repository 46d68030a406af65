"""Verification of the consent ledger: its hash chains, and the state projection the gate reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

from consentry.domain.chain import GENESIS, ChainBreak, ChainLink, verify_chain
from consentry.domain.consent import ConsentState, StateKey, apply_event
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


@dataclass(frozen=True, slots=True)
class ChainReport:
    tenant_id: uuid.UUID
    tenant_slug: TenantRef
    verified: int
    head_seq: int
    broken: ChainBreak | None
    projection_mismatches: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return self.broken is None and not self.projection_mismatches


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


def verify_ledger(uow: UnitOfWork, tenant_slug: str | None = None) -> list[ChainReport]:
    """Recompute every tenant's chain (or one tenant's) from stored rows, and check that the
    consent states the gate reads are exactly the fold of the ledger; writes nothing."""
    reports: list[ChainReport] = []
    with uow:
        tenants = [find_tenant(uow, tenant_slug)] if tenant_slug else uow.tenants.list()
        for tenant in tenants:
            last = _LastHash()
            with closing(uow.ledger.links(tenant.id)) as links:
                verified, broken = verify_chain(last.track(links))
            head_seq, head_hash = uow.ledger.head(tenant.id)
            # Rows removed from the end leave a shorter chain that is valid on its own; the head
            # remembers how long it was and where it ended.
            if broken is None and (verified != head_seq or last.value != head_hash):
                broken = ChainBreak(
                    verified + 1, "", f"chain ends at {verified}, its head records {head_seq}"
                )
            reports.append(
                ChainReport(
                    tenant.id,
                    tenant.slug,
                    verified,
                    head_seq,
                    broken,
                    _projection_mismatches(uow, tenant.id),
                )
            )
    return reports

"""Verification of the consent ledger's hash chains."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from consentry.domain.chain import GENESIS, ChainBreak, ChainLink, verify_chain
from consentry.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class ChainReport:
    tenant_id: uuid.UUID
    tenant_slug: str
    verified: int
    head_seq: int
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.broken is None


class _LastHash:
    """Passes links through and remembers the last hash seen."""

    def __init__(self) -> None:
        self.value = GENESIS

    def track(self, links: Iterable[ChainLink]) -> Iterator[ChainLink]:
        for link in links:
            self.value = link.hash
            yield link


def verify_ledger(uow: UnitOfWork, tenant_slug: str | None = None) -> list[ChainReport]:
    """Recompute every tenant's chain (or one tenant's) from stored rows; writes nothing."""
    reports: list[ChainReport] = []
    with uow:
        tenants = [uow.tenants.by_slug(tenant_slug)] if tenant_slug else uow.tenants.list()
        for tenant in tenants:
            last = _LastHash()
            verified, broken = verify_chain(last.track(uow.ledger.links(tenant.id)))
            head_seq, head_hash = uow.ledger.head(tenant.id)
            # Rows removed from the end leave a shorter chain that is valid on its own; the head
            # remembers how long it was and where it ended.
            if broken is None and (verified != head_seq or last.value != head_hash):
                broken = ChainBreak(
                    verified + 1, "", f"chain ends at {verified}, its head records {head_seq}"
                )
            reports.append(ChainReport(tenant.id, tenant.slug, verified, head_seq, broken))
    return reports

"""The report of a permission pass: what became of its messages and of its members."""

from __future__ import annotations

from consentry.domain.consent import ConsentStatus
from consentry.domain.delivery import DeliveryStatus
from consentry.domain.passes import MemberOutcome, PassReport, PermissionPass, outcome_of
from consentry.services.ports import UnitOfWork

S = DeliveryStatus
_SENT = frozenset({S.SENT, S.DELIVERED, S.COMPLAINED})
_FAILED = frozenset({S.FAILED, S.BOUNCED, S.UNKNOWN})
_WAITING = frozenset({S.PLANNED, S.QUEUED, S.DEFERRED, S.SENDING})


def pass_report(uow: UnitOfWork, permission_pass: PermissionPass) -> PassReport:
    """Counts of messages by fate and of members by outcome: stored once the pass has ended,
    read from the current consent states while it runs."""
    members = dict.fromkeys(MemberOutcome, 0)
    targeted = 0
    for stored, status, on_start_event, n in uow.passes.member_counts(permission_pass.id):
        targeted += n
        if stored is not None:
            outcome = MemberOutcome(stored)
        else:
            current = None if status is None else ConsentStatus(status)
            outcome = outcome_of(current, on_start_event)
        members[outcome] += n
    messages = {"sent": 0, "waiting": 0, "failed": 0, "cancelled": 0}
    refused: dict[str, int] = {}
    for status, reasons, n in uow.passes.delivery_counts(permission_pass.campaign_id):
        fate = DeliveryStatus(status)
        if fate is S.SUPPRESSED:
            first = reasons.split(",", 1)[0] if reasons else "UNKNOWN"
            refused[first] = refused.get(first, 0) + n
        elif fate in _SENT:
            messages["sent"] += n
        elif fate in _FAILED:
            messages["failed"] += n
        elif fate in _WAITING:
            messages["waiting"] += n
        else:
            messages["cancelled"] += n
    ended = permission_pass.ended_at is not None
    undecided = members[MemberOutcome.LAPSED]
    return PassReport(
        targeted=targeted,
        sent=messages["sent"],
        waiting=messages["waiting"],
        failed=messages["failed"],
        refused=dict(sorted(refused.items())),
        cancelled=messages["cancelled"],
        renewed=members[MemberOutcome.RENEWED],
        lapsed=undecided if ended else 0,
        other=members[MemberOutcome.OTHER],
        awaiting=0 if ended else undecided,
    )

"""POST /v1/decisions: the gate's answer for one contact, topic and channel, with its reasons."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from consentry.domain.access import Scope
from consentry.domain.errors import ConsentryError
from consentry.domain.model import Channel
from consentry.services.audit import RequestContext
from consentry.services.gate import ExplainedDecision, explain_decision
from consentry.web.deps import ContainerDep, TenantDep, run_short
from consentry.web.schemas import Strict
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["decisions"])
Decider = Annotated[RequestContext, Depends(needs(Scope.DECISIONS))]


class DecisionRequest(Strict):
    contact: str = Field(
        min_length=1, max_length=320, description="Contact id, email address or phone number."
    )
    topic: str = Field(min_length=1, max_length=64, description="Topic key.")
    channel: Channel
    whatsapp_free_form: bool = Field(
        default=False, description="A free-form WhatsApp reply, not a template."
    )


class CheckOut(BaseModel):
    rule: str
    outcome: str
    detail: str
    reason: str | None
    source: str | None


class EvidenceOut(BaseModel):
    event_id: uuid.UUID
    action: str
    basis: str
    method: str
    occurred_at: datetime
    disclosure_hash: str | None


class DecisionOut(BaseModel):
    contact_id: uuid.UUID
    topic: str
    channel: Channel
    decided_at: datetime
    verdict: str
    reasons: list[str]
    consent_event_id: uuid.UUID | None
    defer_until: datetime | None
    rule_pack: str
    checks: list[CheckOut]
    evidence: EvidenceOut | None


def decision_out(result: ExplainedDecision) -> DecisionOut:
    ex = result.explanation
    decision = ex.decision
    evidence = None
    if result.evidence is not None:
        e = result.evidence
        evidence = EvidenceOut(
            event_id=e.id,
            action=e.action.value,
            basis=e.basis.value,
            method=e.evidence.method.value,
            occurred_at=e.occurred_at,
            disclosure_hash=e.evidence.disclosure_hash,
        )
    return DecisionOut(
        contact_id=result.contact.id,
        topic=result.topic.key,
        channel=result.channel,
        decided_at=result.at,
        verdict=decision.verdict.value,
        reasons=list(decision.reasons),
        consent_event_id=decision.consent_event_id,
        defer_until=decision.defer_until,
        rule_pack=ex.pack_code,
        checks=[
            CheckOut(
                rule=c.rule,
                outcome=c.outcome.value,
                detail=c.detail,
                reason=c.reason,
                source=c.source,
            )
            for c in ex.checks
        ],
        evidence=evidence,
    )


@router.post(
    "/decisions",
    response_model=DecisionOut,
    summary="Would a message go now? The decision, each rule checked, the evidence",
)
async def decide_one(
    body: DecisionRequest, c: ContainerDep, context: Decider, tenant: TenantDep
) -> DecisionOut:
    result = await run_short(
        c,
        explain_decision,
        c.uow(),
        tenant,
        body.contact,
        body.topic,
        body.channel,
        whatsapp_free_form=body.whatsapp_free_form,
        context=context,
    )
    return decision_out(result)


class BatchRequest(Strict):
    items: list[DecisionRequest] = Field(min_length=1, max_length=1000)


class BatchItemOut(BaseModel):
    index: int
    decision: DecisionOut | None = None
    error: dict[str, str | None] | None = None


@router.post(
    "/decisions/batch",
    response_model=list[BatchItemOut],
    summary="Up to 1,000 decisions at once; each item answers or names its error",
)
def decide_many(
    body: BatchRequest, c: ContainerDep, context: Decider, tenant: TenantDep
) -> list[BatchItemOut]:
    out: list[BatchItemOut] = []
    for index, item in enumerate(body.items):
        try:
            result = explain_decision(
                c.uow(),
                tenant,
                item.contact,
                item.topic,
                item.channel,
                whatsapp_free_form=item.whatsapp_free_form,
                context=context,
            )
        except ConsentryError as exc:
            out.append(
                BatchItemOut(
                    index=index, error={"code": exc.code, "detail": exc.message, "field": exc.field}
                )
            )
        else:
            out.append(BatchItemOut(index=index, decision=decision_out(result)))
    return out

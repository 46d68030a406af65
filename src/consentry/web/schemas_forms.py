"""Request and response bodies of /v1/forms."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from consentry.domain.forms import FormStatus, SubscriptionForm
from consentry.domain.model import Channel, PolicyKind
from consentry.web.schemas import Strict


class FormChoiceIn(Strict):
    topic: str = Field(min_length=1, max_length=63, description="A topic key of the tenant.")
    channel: Channel


class FormChangeIn(Strict):
    """What a form offers and says; its key names it in the path."""

    title: str = Field(min_length=1, max_length=200)
    intro: str = Field(default="", max_length=2000)
    choices: list[FormChoiceIn] = Field(
        min_length=1, max_length=20, description="Each offered as its own unticked box."
    )
    disclosure_kind: PolicyKind = Field(
        default=PolicyKind.CONSENT_DISCLOSURE,
        description="The form shows the latest published version of this document.",
    )
    privacy_url: str | None = Field(
        default=None,
        max_length=500,
        description="Where the privacy policy is; by default the tenant's latest published "
        "privacy policy on its public page.",
    )
    confirm: bool = Field(
        default=True,
        description="Email and SMS subscriptions wait for the address's owner to confirm "
        "(a link, or a YES reply). Always on for topics that require confirmed opt-in.",
    )


class FormIn(FormChangeIn):
    key: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")


class FormChoiceOut(BaseModel):
    topic: str
    channel: Channel


class FormOut(BaseModel):
    id: uuid.UUID
    key: str
    title: str
    intro: str
    choices: list[FormChoiceOut]
    disclosure_kind: str
    privacy_url: str | None
    confirm: bool
    status: FormStatus
    revision: int
    url: str = Field(description="The hosted page.")
    created_at: datetime
    updated_at: datetime
    submissions: int | None = None
    embed_html: str | None = Field(
        default=None, description="A plain HTML form to paste into the business's own site."
    )

    @classmethod
    def of(
        cls,
        form: SubscriptionForm,
        url: str,
        *,
        submissions: int | None = None,
        embed_html: str | None = None,
    ) -> FormOut:
        return cls(
            id=form.id,
            key=form.key,
            title=form.title,
            intro=form.intro,
            choices=[FormChoiceOut(topic=c.topic_key, channel=c.channel) for c in form.choices],
            disclosure_kind=form.disclosure_kind,
            privacy_url=form.privacy_url,
            confirm=form.confirm,
            status=form.status,
            revision=form.revision,
            url=url,
            created_at=form.created_at,
            updated_at=form.updated_at,
            submissions=submissions,
            embed_html=embed_html,
        )

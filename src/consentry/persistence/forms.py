"""Subscription forms and the record of their submissions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from consentry.domain.forms import (
    FormAlreadySent,
    FormChoice,
    FormNotFound,
    FormStatus,
    SubscriptionForm,
)
from consentry.domain.model import Channel
from consentry.persistence.driver import DriverStatement, insert_new
from consentry.persistence.tables import form_submissions, subscription_forms

# A submission runs these (a form post is a public page under load), so built once.
_SUBMISSION_COLUMNS = ("id", "tenant_id", "form_id", "dedupe_key", "ticked", "outcomes",
                       "disclosure_document_id", "received_at")  # fmt: skip
_ADD_SUBMISSION = insert_new(form_submissions, _SUBMISSION_COLUMNS, form_submissions.c.id)
_FORM_BY_KEY = DriverStatement(
    select(subscription_forms).where(
        subscription_forms.c.tenant_id == bindparam("tenant"),
        subscription_forms.c.key == bindparam("key"),
    )
)
_RECORD_OUTCOMES = DriverStatement(
    update(form_submissions)
    .where(form_submissions.c.id == bindparam("b_id"))
    .values(outcomes=bindparam("b_outcomes"))
)


def _form(row: Any) -> SubscriptionForm:
    return SubscriptionForm(
        id=row.id,
        tenant_id=row.tenant_id,
        key=row.key,
        title=row.title,
        intro=row.intro,
        choices=tuple(
            FormChoice(uuid.UUID(c["topic_id"]), c["topic_key"], Channel(c["channel"]))
            for c in json.loads(row.choices)
        ),
        disclosure_kind=row.disclosure_kind,
        privacy_url=row.privacy_url,
        confirm=row.confirm,
        status=FormStatus(row.status),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _choices_json(choices: Sequence[FormChoice]) -> str:
    return json.dumps(
        [
            {"topic_id": str(c.topic_id), "topic_key": c.topic_key, "channel": c.channel.value}
            for c in choices
        ]
    )


class SqlForms:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, form: SubscriptionForm) -> None:
        self._conn.execute(
            insert(subscription_forms).values(
                id=form.id,
                tenant_id=form.tenant_id,
                key=form.key,
                title=form.title,
                intro=form.intro,
                choices=_choices_json(form.choices),
                disclosure_kind=form.disclosure_kind,
                privacy_url=form.privacy_url,
                confirm=form.confirm,
                status=form.status.value,
                revision=form.revision,
                created_at=form.created_at,
                updated_at=form.updated_at,
            )
        )

    def exists(self, tenant_id: uuid.UUID, key: str) -> bool:
        query = select(subscription_forms.c.id).where(
            subscription_forms.c.tenant_id == tenant_id, subscription_forms.c.key == key
        )
        return self._conn.execute(query).first() is not None

    def by_key(self, tenant_id: uuid.UUID, key: str) -> SubscriptionForm:
        row = _FORM_BY_KEY.one_or_none(self._conn, {"tenant": tenant_id, "key": key})
        if row is None:
            raise FormNotFound("no such form", field="form")
        return _form(row)

    def list(self, tenant_id: uuid.UUID) -> list[SubscriptionForm]:
        rows = self._conn.execute(
            select(subscription_forms)
            .where(subscription_forms.c.tenant_id == tenant_id)
            .order_by(subscription_forms.c.key)
        )
        return [_form(r) for r in rows]

    def replace(self, form: SubscriptionForm) -> None:
        """Store a changed form (same id and key)."""
        self._conn.execute(
            update(subscription_forms)
            .where(subscription_forms.c.id == form.id)
            .values(
                title=form.title,
                intro=form.intro,
                choices=_choices_json(form.choices),
                disclosure_kind=form.disclosure_kind,
                privacy_url=form.privacy_url,
                confirm=form.confirm,
                revision=form.revision,
                updated_at=form.updated_at,
            )
        )

    def set_status(
        self, form: SubscriptionForm, status: FormStatus, at: datetime
    ) -> SubscriptionForm:
        self._conn.execute(
            update(subscription_forms)
            .where(subscription_forms.c.id == form.id)
            .values(status=status.value, revision=form.revision + 1, updated_at=at)
        )
        return self.by_key(form.tenant_id, form.key)

    def add_submission(  # noqa: PLR0917  (one submission's record)
        self,
        submission_id: uuid.UUID,
        form: SubscriptionForm,
        dedupe_key: bytes,
        ticked: Sequence[str],
        outcomes: Mapping[str, str],
        disclosure_document_id: uuid.UUID | None,
        at: datetime,
    ) -> None:
        """Record a submission; FormAlreadySent if this one was already taken (the
        transaction must then be rolled back)."""
        values = {
            "id": submission_id,
            "tenant_id": form.tenant_id,
            "form_id": form.id,
            "dedupe_key": dedupe_key,
            "ticked": json.dumps(list(ticked)),
            "outcomes": json.dumps(dict(outcomes)),
            "disclosure_document_id": disclosure_document_id,
            "received_at": at,
        }
        if not _ADD_SUBMISSION[self._conn.dialect.name].rows(self._conn, values):
            raise FormAlreadySent("this form was already sent")

    def record_outcomes(self, submission_id: uuid.UUID, outcomes: Mapping[str, str]) -> None:
        _RECORD_OUTCOMES.execute(
            self._conn, {"b_id": submission_id, "b_outcomes": json.dumps(dict(outcomes))}
        )

    def submission_count(self, form_id: uuid.UUID) -> int:
        query = select(func.count()).where(form_submissions.c.form_id == form_id)
        return int(self._conn.execute(query).scalar_one())

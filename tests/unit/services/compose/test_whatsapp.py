"""WhatsApp composition: templates for business-initiated messages, text only for replies."""

from __future__ import annotations

import uuid

import pytest

from consentry.domain.templates import MessageTooLong, TemplateInvalid, TemplateRenderError
from consentry.services.compose.templates import RenderedContent
from consentry.services.compose.whatsapp import compose_whatsapp

TENANT_ID = uuid.UUID("0193a1f2-0000-7000-8000-0000000000aa")
TEMPLATE = RenderedContent(
    text="",
    whatsapp_template="appointment_reminder",
    whatsapp_language="en_GB",
    whatsapp_parameters=("Ada", "Tue 10:00"),
)


def compose(content: RenderedContent, *, free_form_reply: bool = False) -> object:
    return compose_whatsapp(
        content,
        delivery_id=9,
        tenant_id=TENANT_ID,
        to="+447700900123",
        phone_number_id="106540352242922",
        free_form_reply=free_form_reply,
    )


def test_template_message() -> None:
    message = compose_whatsapp(
        TEMPLATE,
        delivery_id=9,
        tenant_id=TENANT_ID,
        to="+447700900123",
        phone_number_id="106540352242922",
    )

    assert message.template_name == "appointment_reminder"
    assert message.language == "en_GB"
    assert message.parameters == ("Ada", "Tue 10:00")
    assert message.text is None
    assert (message.delivery_id, message.tenant_id, message.to) == (9, TENANT_ID, "+447700900123")
    assert message.phone_number_id == "106540352242922"
    assert message.idempotency_key == "delivery-9"


def test_free_text_only_as_a_reply() -> None:
    content = RenderedContent(text="  Yes, we open at 9.  ")

    message = compose_whatsapp(
        content,
        delivery_id=9,
        tenant_id=TENANT_ID,
        to="+447700900123",
        phone_number_id="1",
        free_form_reply=True,
    )

    assert message.text == "Yes, we open at 9."
    assert message.template_name is None
    with pytest.raises(TemplateInvalid, match="approved template") as caught:
        compose(content)
    assert caught.value.field == "whatsapp_template"


def test_a_reply_needs_text_within_the_limit() -> None:
    with pytest.raises(TemplateInvalid):
        compose(RenderedContent(text=" \n"), free_form_reply=True)
    with pytest.raises(MessageTooLong):
        compose(RenderedContent(text="x" * 4097), free_form_reply=True)
    assert compose(RenderedContent(text="x" * 4096), free_form_reply=True)


def test_parameters_are_flattened_as_the_api_requires() -> None:
    content = RenderedContent(
        text="",
        whatsapp_template="t",
        whatsapp_parameters=("Line one\nline\ttwo", "a" + " " * 9 + "b"),
    )

    message = compose_whatsapp(
        content, delivery_id=1, tenant_id=TENANT_ID, to="+447700900123", phone_number_id="1"
    )

    assert message.parameters == ("Line one line two", "a    b")


def test_empty_parameters_are_refused() -> None:
    content = RenderedContent(text="", whatsapp_template="t", whatsapp_parameters=("Ada", " \n "))

    with pytest.raises(TemplateRenderError) as caught:
        compose(content)
    assert caught.value.field == "whatsapp_parameters[1]"

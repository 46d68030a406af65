"""Templates: validation per channel, the sandbox, and rendering per recipient."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from consentry.domain.model import BusinessProfile, Channel, Contact, Tenant, TenantStatus
from consentry.domain.templates import (
    Template,
    TemplateInvalid,
    TemplateRenderError,
    WhatsAppTemplateUnknown,
)
from consentry.services.compose.templates import (
    RenderedContent,
    compile_template,
    template_variables,
)

TENANT = Tenant(
    id=uuid.UUID("00000000-0000-7000-8000-0000000000aa"),
    slug="garage",
    name="Zoë's Garage",
    profile=BusinessProfile(
        legal_name="Zoe Garage Ltd",
        country="GB",
        contact_email="hello@garage.example",
        postal_address="1 High St, Springfield",
        website="https://garage.example",
    ),
    status=TenantStatus.ACTIVE,
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
)
CONTACT = Contact(
    id=uuid.uuid4(),
    tenant_id=TENANT.id,
    name="Ada  Lovelace",
    email="ada@example.org",
    phone="+447700900123",
    locale="en-GB",
    country="GB",
)


def template(channel: Channel = Channel.EMAIL, **kw: object) -> Template:
    fields: dict[str, object] = {
        "subject": "Hi {{ contact.first_name }}",
        "text": "Hello {{ contact.name }}, from {{ business.name }}.",
    }
    fields.update(kw)
    return Template(
        id=uuid.uuid4(),
        tenant_id=TENANT.id,
        topic_id=uuid.uuid4(),
        channel=channel,
        name="t",
        **fields,  # type: ignore[arg-type]
    )


def variables(**extra: object) -> dict[str, object]:
    return template_variables(TENANT, CONTACT, extra)


def test_renders_every_email_part() -> None:
    compiled = compile_template(
        template(
            html="<p>Hi {{ contact.first_name }} {{ data.note }}</p>", text="Note: {{ data.note }}"
        )
    )

    rendered = compiled.render(variables(note="<b>Tom & Jerry</b>"))

    assert rendered == RenderedContent(
        subject="Hi Ada",
        text="Note: <b>Tom & Jerry</b>",
        html="<p>Hi Ada &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>",
    )


def test_variables_hold_contact_business_and_data() -> None:
    values = variables(order="A-1")

    assert values["contact"] == {
        "first_name": "Ada",
        "name": "Ada  Lovelace",
        "email": "ada@example.org",
        "phone": "+447700900123",
        "locale": "en-GB",
        "country": "GB",
    }
    assert values["business"] == {
        "name": "Zoë's Garage",
        "legal_name": "Zoe Garage Ltd",
        "website": "https://garage.example",
        "contact_email": "hello@garage.example",
        "contact_phone": None,
        "postal_address": "1 High St, Springfield",
    }
    assert values["data"] == {"order": "A-1"}


def test_a_missing_name_renders_empty_not_none() -> None:
    nameless = template_variables(TENANT, replace(CONTACT, name=None), {})
    compiled = compile_template(template(text="Hi {{ contact.first_name }}!"))

    assert compiled.render(nameless).text == "Hi !"
    assert (
        compile_template(template(text="Hi {{ contact.first_name or 'there' }}"))
        .render(nameless)
        .text
        == "Hi there"
    )


def test_one_compiled_template_serves_many_recipients() -> None:
    compiled = compile_template(template(text="{{ data.n }}"))

    assert [compiled.render(variables(n=i)).text for i in range(3)] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("channel", "fields", "missing"),
    [
        (Channel.EMAIL, {"subject": None}, "subject"),
        (Channel.EMAIL, {"subject": "  "}, "subject"),
        (Channel.EMAIL, {"text": ""}, "text"),
        (Channel.SMS, {"text": " \n"}, "text"),
        (Channel.WHATSAPP, {"text": "", "whatsapp_template": None}, "text"),
    ],
)
def test_required_parts_per_channel(
    channel: Channel, fields: dict[str, object], missing: str
) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_template(template(channel, **fields))

    assert caught.value.field == missing
    assert caught.value.code == "TEMPLATE_INVALID"


def test_syntax_errors_name_the_part_and_line() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_template(template(html="<p>\n{% if x %}unclosed</p>"))

    assert caught.value.field == "html"
    assert "line" in caught.value.message


def test_unknown_top_level_names_fail_at_compile_time() -> None:
    with pytest.raises(TemplateInvalid, match="contatc") as caught:
        compile_template(template(text="Hi {{ contatc.name }}"))

    assert caught.value.field == "text"
    # Names the template sets itself are fine.
    compiled = compile_template(
        template(text="{% set x = 2 %}{% for i in [1] %}{{ x + i }}{% endfor %}")
    )
    assert compiled.render(variables()).text == "3"


def test_undefined_variables_fail_at_render_without_quoting_values() -> None:
    compiled = compile_template(template(subject="Order {{ data.order_no }}"))

    with pytest.raises(TemplateRenderError) as caught:
        compiled.render(variables(secret="ada-secret-value"))

    assert caught.value.field == "subject"
    assert "order_no" in caught.value.message
    assert "ada-secret-value" not in caught.value.message
    assert caught.value.__cause__ is None


def test_runtime_errors_never_quote_the_data() -> None:
    compiled = compile_template(template(text="{{ data.n | int(base=1) }}{{ data.n + 1 }}"))

    with pytest.raises(TemplateRenderError) as caught:
        compiled.render(variables(n="ada@example.org"))

    assert "ada@example.org" not in str(caught.value)
    assert caught.value.field == "text"


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.__class__.__mro__ }}",
        "{{ data.items.__globals__ }}",
        "{{ data.pop('x') }}",
        "{{ contact.update({'name': 'x'}) }}",
        "{{ ''.__class__.__subclasses__() }}",
    ],
)
def test_the_sandbox_refuses_internals_and_mutation(source: str) -> None:
    compiled = compile_template(template(text=source))

    with pytest.raises(TemplateRenderError, match=r"sandbox|undefined|attribute"):
        compiled.render(variables(x=1))


@pytest.mark.parametrize(
    "source",
    ["{% include '/etc/passwd' %}", "{% extends 'base' %}", "{% from 'm' import x %}{{ x }}"],
)
def test_templates_cannot_reach_other_files(source: str) -> None:
    with pytest.raises(TemplateInvalid, match="include"):
        compile_template(template(text=source))


def test_whatsapp_templates_render_their_parameters() -> None:
    compiled = compile_template(
        template(
            Channel.WHATSAPP,
            text="",
            subject=None,
            whatsapp_template="appointment_reminder",
            whatsapp_language="en_GB",
            whatsapp_parameters=("contact.first_name", "data.when", "business.name | upper"),
        ),
        known_whatsapp_templates=frozenset({"appointment_reminder"}),
    )

    rendered = compiled.render(variables(when="Tue 10:00"))

    assert rendered.whatsapp_template == "appointment_reminder"
    assert rendered.whatsapp_language == "en_GB"
    assert rendered.whatsapp_parameters == ("Ada", "Tue 10:00", "ZOË'S GARAGE")


def test_whatsapp_parameter_errors() -> None:
    wa = template(Channel.WHATSAPP, text="", subject=None, whatsapp_template="t")

    with pytest.raises(TemplateInvalid) as bad_syntax:
        compile_template(replace(wa, whatsapp_parameters=("data.x +",)))
    assert bad_syntax.value.field == "whatsapp_parameters[0]"

    compiled = compile_template(replace(wa, whatsapp_parameters=("contact.name", "data.missing")))
    with pytest.raises(TemplateRenderError) as missing:
        compiled.render(variables())
    assert missing.value.field == "whatsapp_parameters[1]"
    assert "missing" in missing.value.message


def test_unknown_whatsapp_template_names() -> None:
    wa = template(Channel.WHATSAPP, text="", subject=None, whatsapp_template="promo_v2")

    with pytest.raises(WhatsAppTemplateUnknown) as caught:
        compile_template(wa, known_whatsapp_templates=frozenset({"promo_v1"}))
    assert caught.value.code == "WHATSAPP_TEMPLATE_UNKNOWN"
    # Without a list of approved names there is nothing to check against.
    assert compile_template(wa).render(variables()).whatsapp_template == "promo_v2"


def test_free_form_whatsapp_text() -> None:
    compiled = compile_template(template(Channel.WHATSAPP, text="Thanks {{ contact.first_name }}"))

    assert compiled.render(variables()).text == "Thanks Ada"


def test_channels_without_templates_are_refused() -> None:
    with pytest.raises(TemplateInvalid):
        compile_template(template(Channel.VOICE))

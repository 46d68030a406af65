"""Templates compiled once per send and rendered per recipient in a Jinja2 sandbox.

Tenants write templates, so they are untrusted code: the immutable sandbox refuses attribute
access to internals and any mutation, there is no loader (no ``include`` or ``import`` of
files), and ``StrictUndefined`` turns a misspelt variable into an error instead of an empty
greeting. Only the html part is auto-escaped; the subject, the text part and WhatsApp
parameters are plain text. Names the template may use: ``contact``, ``business``, ``data``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from consentry.domain.model import Channel, Contact, Tenant
from consentry.domain.templates import (
    Template,
    TemplateInvalid,
    TemplateRenderError,
    WhatsAppTemplateUnknown,
)

VARIABLES = frozenset({"contact", "business", "data"})
_OTHER_FILES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


@dataclass(frozen=True, slots=True)
class RenderedContent:
    """One recipient's rendered template, before the system adds its compliance parts."""

    text: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str = "en"
    whatsapp_parameters: tuple[str, ...] = ()


def _blank_none(value: object) -> object:
    # A contact without a name renders as "" rather than the word "None".
    return "" if value is None else value


@cache
def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    # Built on first use, not at import, and shared: environments are thread-safe once built.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        finalize=_blank_none,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _compile(source: str, field: str, *, html: bool = False) -> JinjaTemplate:
    env = _environment(autoescape=html)
    try:
        tree = env.parse(source)
        unknown = meta.find_undeclared_variables(tree) - VARIABLES
        compiled = env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"{field}: line {exc.lineno}: {exc.message}", field=field) from exc
    if any(True for _ in tree.find_all(_OTHER_FILES)):
        raise TemplateInvalid(f"{field}: templates cannot include other templates", field=field)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TemplateInvalid(f"{field}: unknown variable(s) {names}", field=field)
    return compiled


def _compile_expression(source: str, field: str) -> Callable[..., Any]:
    env = _environment(autoescape=False)
    try:
        unknown = meta.find_undeclared_variables(env.parse("{{ " + source + " }}")) - VARIABLES
        expression = env.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"{field}: {exc.message}", field=field) from exc
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TemplateInvalid(f"{field}: unknown variable(s) {names}", field=field)
    return expression


def _render_error(field: str, exc: Exception) -> TemplateRenderError:
    # Jinja's undefined-variable messages name the type and the missing key, never a value;
    # other runtime errors (int("abc") ...) may quote personal data, so only their type is kept.
    if isinstance(exc, UndefinedError):
        detail = exc.message or "undefined variable"
    elif isinstance(exc, SecurityError):
        detail = "the template used something the sandbox does not allow"
    else:
        detail = f"the template failed ({type(exc).__name__})"
    return TemplateRenderError(f"{field}: {detail}", field=field)


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A validated template, ready to render for any number of recipients."""

    template: Template
    subject: JinjaTemplate | None
    text: JinjaTemplate | None
    html: JinjaTemplate | None
    parameters: tuple[Callable[..., Any], ...]

    def render(self, variables: Mapping[str, object]) -> RenderedContent:
        """Render every part for one recipient; TemplateRenderError names the failing part."""
        subject = self._part("subject", self.subject, variables)
        text = self._part("text", self.text, variables) or ""
        html = self._part("html", self.html, variables)
        params = []
        for i, expression in enumerate(self.parameters):
            field = f"whatsapp_parameters[{i}]"
            try:
                params.append(str(_blank_none(expression(**variables))))
            except Exception as exc:  # noqa: BLE001  (any template failure is one recipient's)
                raise _render_error(field, exc) from None
        return RenderedContent(
            text=text,
            subject=subject,
            html=html,
            whatsapp_template=self.template.whatsapp_template,
            whatsapp_language=self.template.whatsapp_language,
            whatsapp_parameters=tuple(params),
        )

    @staticmethod
    def _part(
        field: str, compiled: JinjaTemplate | None, variables: Mapping[str, object]
    ) -> str | None:
        if compiled is None:
            return None
        try:
            return compiled.render(variables)
        except Exception as exc:  # noqa: BLE001  (any template failure is one recipient's)
            # `from None`: the original exception's arguments may hold personal data.
            raise _render_error(field, exc) from None


def _require(value: str | None, field: str, channel: Channel) -> str:
    if value is None or not value.strip():
        raise TemplateInvalid(f"a {channel} template needs {field}", field=field)
    return value


def compile_template(
    template: Template, known_whatsapp_templates: frozenset[str] | None = None
) -> CompiledTemplate:
    """Validate ``template`` for its channel and compile its parts once.

    Raises TemplateInvalid for a syntax error, an unknown variable or a missing required part
    (email: subject and text; sms: text; whatsapp: an approved template name or text), and
    WhatsAppTemplateUnknown when ``known_whatsapp_templates`` does not list the name.
    """
    channel = template.channel
    if channel is Channel.EMAIL:
        subject = _compile(_require(template.subject, "subject", channel), "subject")
        text = _compile(_require(template.text, "text", channel), "text")
        html = _compile(template.html, "html", html=True) if template.html else None
        return CompiledTemplate(template, subject, text, html, ())
    if channel is Channel.SMS:
        text = _compile(_require(template.text, "text", channel), "text")
        return CompiledTemplate(template, None, text, None, ())
    if channel is Channel.WHATSAPP:
        name = template.whatsapp_template
        if not name and not template.text.strip():
            raise TemplateInvalid(
                "a whatsapp template needs whatsapp_template or text", field="text"
            )
        if name and known_whatsapp_templates is not None and name not in known_whatsapp_templates:
            raise WhatsAppTemplateUnknown(
                f"no approved WhatsApp template named {name!r}", field="whatsapp_template"
            )
        free_text = _compile(template.text, "text") if template.text.strip() else None
        params = tuple(
            _compile_expression(source, f"whatsapp_parameters[{i}]")
            for i, source in enumerate(template.whatsapp_parameters)
        )
        return CompiledTemplate(template, None, free_text, None, params)
    raise TemplateInvalid(f"templates for {channel} are not supported", field="channel")


def business_variables(tenant: Tenant) -> dict[str, str | None]:
    """What templates see as ``business``: the tenant's public business profile."""
    profile = tenant.profile
    return {
        "name": tenant.name,
        "legal_name": profile.legal_name,
        "website": profile.website,
        "contact_email": profile.contact_email,
        "contact_phone": profile.contact_phone,
        "postal_address": profile.postal_address,
    }


def template_variables(
    tenant: Tenant, contact: Contact, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The variables one recipient's template is rendered with: contact, business, data."""
    name = (contact.name or "").strip()
    return {
        "contact": {
            "first_name": name.split()[0] if name else None,
            "name": contact.name,
            "email": contact.email,
            "phone": contact.phone,
            "locale": contact.locale,
            "country": contact.country,
        },
        "business": business_variables(tenant),
        "data": dict(extra or {}),
    }

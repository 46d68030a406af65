"""Composing messages: templates rendered in a sandbox, then the compliance parts the system
adds (unsubscribe headers and footer, sender identity, STOP instruction), DKIM signatures and
unsubscribe tokens. Pure computation: no I/O, nothing built at import time."""

from consentry.services.compose.dkim import DkimSigner, generate_dkim_key
from consentry.services.compose.email import (
    ComplianceLinks,
    EmailComposer,
    SenderIdentity,
    SenderMisconfigured,
    message_id_for,
)
from consentry.services.compose.sms import SmsPreview, compose_sms, sms_preview
from consentry.services.compose.templates import (
    CompiledTemplate,
    RenderedContent,
    compile_template,
    template_variables,
)
from consentry.services.compose.tokens import (
    InvalidToken,
    TokenClaims,
    UnsubscribeTokens,
    derive_token_key,
)
from consentry.services.compose.whatsapp import compose_whatsapp

__all__ = [
    "CompiledTemplate",
    "ComplianceLinks",
    "DkimSigner",
    "EmailComposer",
    "InvalidToken",
    "RenderedContent",
    "SenderIdentity",
    "SenderMisconfigured",
    "SmsPreview",
    "TokenClaims",
    "UnsubscribeTokens",
    "compile_template",
    "compose_sms",
    "compose_whatsapp",
    "derive_token_key",
    "generate_dkim_key",
    "message_id_for",
    "sms_preview",
    "template_variables",
]

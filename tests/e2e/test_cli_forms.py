"""``consentry form``: create, list, show, embed and archive public subscription forms, and the
clear refusals of a bad definition."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.conftest import DISCLOSURE_TEXT, Cli
from tests.e2e.pages.form_helpers import fields_of

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.services.form_tokens import TokenKind
from consentry.services.forms import get_form

URL = "https://localhost:8000/f/acme/join"  # the default public base URL, tenant acme, key join


def _publish_privacy(cli: Cli) -> None:
    text = cli.data_dir.parent / "privacy.txt"
    text.write_text("We keep your details safe.\n", encoding="utf-8")
    cli.ok("policy", "publish", str(text), "-t", cli.tenant, "--kind", "privacy_policy",
           "--title", "Privacy policy")  # fmt: skip


def _create(cli: Cli, *extra: str, key: str = "join") -> list[str]:
    return ["form", "create", key, "-t", cli.tenant, "--title", "Join us", *extra]


def test_a_form_is_created_listed_shown_embedded_and_archived(seeded: Cli) -> None:
    before = seeded.counts()
    seeded.fails("POLICY_DOCUMENT_NOT_FOUND", *_create(seeded, "--choice", "offers:email"))
    assert seeded.counts() == before
    _publish_privacy(seeded)

    out = seeded.ok(*_create(seeded, "--choice", "offers:email", "--choice", "offers:sms",
                             "--intro", "Deals, only if you want them."))  # fmt: skip
    assert out.strip() == f"form join created: {URL}"
    assert seeded.count("subscription_forms") == 1

    listed = seeded.ok("form", "list", "-t", seeded.tenant)
    [row] = [line for line in listed.splitlines() if " join " in line]
    for cell in ("Join us", "offers:email, offers:sms", "yes", "active", URL):
        assert cell in row, listed

    shown = seeded.ok("form", "show", "join", "-t", seeded.tenant).splitlines()
    assert shown == [
        "Join us (join, revision 1, active)",
        f"address: {URL}",
        "choices: offers:email, offers:sms",
        "submissions: 0",
    ]

    before = seeded.counts()
    snippet = seeded.ok("form", "embed", "join", "-t", seeded.tenant)
    assert seeded.counts() == before
    assert snippet.startswith("<!-- Join us: subscription form of Acme Parts Ltd.")
    fields = fields_of(snippet)
    assert fields.action == URL
    assert fields.boxes() == {"offers:email": False, "offers:sms": False}
    assert fields.value("website") == ""
    assert DISCLOSURE_TEXT.strip() in snippet
    # The snippet's token is this form's, minted for embedding: it opens under the data
    # directory's keys whenever it is sent.
    container = bootstrap(Settings(data_dir=seeded.data_dir, database_url=None))
    try:
        form = get_form(container.read_uow(), seeded.tenant, "join").form
        claims = container.form_tokens().read(fields.value("form_token"), datetime.now(UTC))
    finally:
        container.close()
    assert claims.kind is TokenKind.EMBEDDED
    assert (claims.form_id, claims.revision) == (form.id, 1)

    updated = seeded.ok("form", "update", "join", "-t", seeded.tenant, "--title", "Texts",
                        "--choice", "offers:sms")  # fmt: skip
    assert updated.strip() == "form join is now at revision 2"
    assert seeded.ok("form", "show", "join", "-t", seeded.tenant).splitlines()[:3] == [
        "Texts (join, revision 2, active)", f"address: {URL}", "choices: offers:sms",
    ]  # fmt: skip

    assert seeded.ok("form", "archive", "join", "-t", seeded.tenant).strip() == (
        "form join archived"
    )
    assert seeded.ok("form", "show", "join", "-t", seeded.tenant).splitlines()[0] == (
        "Texts (join, revision 3, archived)"
    )
    assert "archived" in seeded.ok("form", "list", "-t", seeded.tenant)
    seeded.fails("FORM_ARCHIVED", "form", "embed", "join", "-t", seeded.tenant)


def test_a_form_may_take_subscriptions_without_confirmation(seeded: Cli) -> None:
    privacy = "https://acme.example/privacy"
    out = seeded.ok(*_create(seeded, "--choice", "offers:whatsapp", "--choice", "offers:email",
                             "--no-confirm", "--privacy-url", privacy))  # fmt: skip
    assert out.strip() == f"form join created: {URL}"
    [row] = [line for line in seeded.ok("form", "list", "-t", "acme").splitlines() if URL in line]
    assert " no " in row
    assert "offers:whatsapp, offers:email" in row
    assert f'<a href="{privacy}">privacy policy</a>' in seeded.ok("form", "embed", "join", "-t",
                                                                 "acme")  # fmt: skip


def test_a_bad_definition_is_refused_clearly_and_writes_nothing(seeded: Cli) -> None:
    _publish_privacy(seeded)
    before = seeded.counts()
    for code, choice, said in (
        ("INVALID_VALUE", "offers", "a choice is topic:channel"),
        ("INVALID_VALUE", "offers:pigeon", "a choice is topic:channel"),
        ("FORM_INVALID", "offers:voice", "email, SMS and WhatsApp only"),
        ("FORM_INVALID", "all-marketing:email", "no bundled consent"),
        ("FORM_INVALID", "newsletter:whatsapp", "needs confirmed opt-in"),
        ("TOPIC_NOT_FOUND", "nonesuch:email", ""),
    ):
        err = seeded.fails(code, *_create(seeded, "--choice", "offers:email", "--choice", choice))
        assert said in err, err
    seeded.fails("FORM_INVALID", *_create(seeded, "--choice", "offers:email", key="Join Us"))
    seeded.fails("FORM_NOT_FOUND", "form", "show", "join", "-t", seeded.tenant)
    seeded.fails("TENANT_NOT_FOUND", "form", "list", "-t", "nobody")
    assert seeded.counts() == before
    seeded.ok(*_create(seeded, "--choice", "offers:email"))
    seeded.fails("ALREADY_EXISTS", *_create(seeded, "--choice", "offers:sms"))
    assert seeded.count("subscription_forms") == 1

"""Bad input: exit code 2, the stable error code on stderr, and nothing written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from tests.e2e.conftest import Cli

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.model import PolicyKind
from consentry.services.tenancy import draft_policy


def refused_without_writing(cli: Cli, code: str, *args: str) -> str:
    """Run a command that must fail with ``code`` and leave every table as it was."""
    before = cli.counts()
    assert before["tenants"] >= 1
    stderr = cli.fails(code, *args)
    assert cli.counts() == before
    return stderr


def grant(cli: Cli, *options: str, contact: str | None = None) -> tuple[str, ...]:
    """The arguments of ``consent grant`` for Jane (unless ``contact``) with ``options``."""
    return ("consent", "grant", "-t", cli.tenant, "-c", contact or cli.email, *options)


OFFERS_EMAIL = ("--topic", "offers", "--channel", "email")
PAPER = ("--method", "paper", "--actor", "front-desk", "--note", "signed form")


# --- contacts ------------------------------------------------------------------------------


def test_invalid_email_is_refused(seeded: Cli) -> None:
    stderr = refused_without_writing(
        seeded,
        "INVALID_EMAIL",
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--name",
        "Max Power",
        "--email",
        "max@@example.com",
    )
    assert "(field: email)" in stderr


@pytest.mark.parametrize("phone", ["12345", "+44 20 7946 09", "call me"])
def test_invalid_phone_is_refused_and_the_valid_email_beside_it_is_not_stored(
    seeded: Cli, phone: str
) -> None:
    stderr = refused_without_writing(
        seeded,
        "INVALID_PHONE",
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--email",
        "max@example.org",
        "--phone",
        phone,
    )
    assert "(field: phone)" in stderr
    seeded.fails("CONTACT_NOT_FOUND", "contact", "show", "max@example.org", "-t", seeded.tenant)


def test_date_of_birth_in_the_future_is_refused(seeded: Cli) -> None:
    future = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    stderr = refused_without_writing(
        seeded,
        "DOB_IN_FUTURE",
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--email",
        "unborn@example.org",
        "--dob",
        future,
    )
    assert "(field: date_of_birth)" in stderr


def test_a_second_contact_with_the_same_email_is_refused(seeded: Cli) -> None:
    refused_without_writing(
        seeded,
        "ALREADY_EXISTS",
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--name",
        "Someone Else",
        "--email",
        seeded.email.upper(),
    )


# --- tenants and topics --------------------------------------------------------------------


def test_duplicate_tenant_slug_is_refused(seeded: Cli) -> None:
    stderr = refused_without_writing(
        seeded,
        "ALREADY_EXISTS",
        "tenant",
        "create",
        seeded.tenant,
        "--name",
        "Another Acme",
        "--legal-name",
        "Another Acme Inc",
        "--country",
        "US",
    )
    assert "(field: slug)" in stderr
    listed = seeded.ok("tenant", "list")
    assert "Acme Parts" in listed
    assert "Another Acme" not in listed


@pytest.mark.parametrize(
    "args",
    [
        ("contact", "add", "-t", "no-such-shop", "--email", "max@example.org"),
        (
            "consent",
            "grant",
            "-t",
            "no-such-shop",
            "-c",
            "jane.roe@example.com",
            *OFFERS_EMAIL,
            *PAPER,
        ),
        ("topic", "create", "promos", "-t", "no-such-shop", "--name", "P", "--category", "service"),
        ("suppress", "add", "jane.roe@example.com", "-t", "no-such-shop", "--channel", "email"),
        ("explain", "-t", "no-such-shop", "-c", "jane.roe@example.com", *OFFERS_EMAIL),
    ],
    ids=["contact-add", "consent-grant", "topic-create", "suppress-add", "explain"],
)
def test_unknown_tenant_is_refused(seeded: Cli, args: tuple[str, ...]) -> None:
    stderr = refused_without_writing(seeded, "TENANT_NOT_FOUND", *args)
    assert "no-such-shop" in stderr


# --- consent -------------------------------------------------------------------------------


def test_unknown_topic_is_refused(seeded: Cli) -> None:
    stderr = refused_without_writing(
        seeded,
        "TOPIC_NOT_FOUND",
        *grant(
            seeded,
            "--topic",
            "no-such-topic",
            "--channel",
            "email",
            *seeded.web_form(seeded.disclosure),
        ),
    )
    assert "(field: topic)" in stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--topic", "offers", "--channel", "fax"),
        ("--topic", "offers", "--channel", "EMAIL "),
    ],
)
def test_unknown_channel_is_a_usage_error(seeded: Cli, args: tuple[str, ...]) -> None:
    before = seeded.counts()
    result = seeded.run(*grant(seeded, *args, *seeded.web_form(seeded.disclosure)))
    assert result.exit_code != 0
    assert "--channel" in result.stderr
    assert seeded.counts() == before
    assert seeded.ok("consent", "history", "-t", seeded.tenant, "-c", seeded.email).strip() == (
        "no consent events"
    )


def test_unknown_channel_for_a_suppression_is_a_usage_error(seeded: Cli) -> None:
    before = seeded.counts()
    result = seeded.run("suppress", "add", seeded.email, "-t", seeded.tenant, "--channel", "pigeon")
    assert result.exit_code != 0
    assert seeded.counts() == before


def test_marketing_consent_from_a_minor_is_refused(seeded: Cli) -> None:
    today = datetime.now(UTC).date()
    ten_years_old = date(today.year - 10, 1, 1).isoformat()
    seeded.ok(
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--email",
        "kid@example.org",
        "--country",
        "GB",
        "--dob",
        ten_years_old,
    )
    before = seeded.counts()

    stderr = seeded.fails(
        "CONSENT_MINOR",
        *grant(
            seeded, *OFFERS_EMAIL, *seeded.web_form(seeded.disclosure), contact="kid@example.org"
        ),
    )

    assert "(field: contact)" in stderr
    assert seeded.counts() == before
    history = seeded.ok("consent", "history", "-t", seeded.tenant, "-c", "kid@example.org")
    assert history.strip() == "no consent events"
    # Service messages are not marketing: the same person may get them.
    seeded.ok(
        *grant(
            seeded,
            "--topic",
            "reminders",
            "--channel",
            "email",
            "--basis",
            "service_necessity",
            "--method",
            "paper",
            "--actor",
            "desk",
            "--note",
            "work order",
            contact="kid@example.org",
        )
    )
    assert seeded.count("consent_events") == before["consent_events"] + 1


@pytest.mark.parametrize(
    ("missing", "field"),
    [("--ip", "ip_address"), ("--user-agent", "user_agent"), ("--source", "source")],
)
def test_web_form_evidence_missing_a_field_is_refused(
    seeded: Cli, missing: str, field: str
) -> None:
    evidence = seeded.web_form(seeded.disclosure)
    at = evidence.index(missing)
    del evidence[at : at + 2]

    stderr = refused_without_writing(
        seeded, "EVIDENCE_INCOMPLETE", *grant(seeded, *OFFERS_EMAIL, *evidence)
    )

    assert f"(field: {field})" in stderr


def test_express_web_form_consent_without_a_disclosure_is_refused(seeded: Cli) -> None:
    evidence = seeded.web_form(seeded.disclosure)[:-2]  # without --disclosure
    refused_without_writing(seeded, "EVIDENCE_INCOMPLETE", *grant(seeded, *OFFERS_EMAIL, *evidence))


def test_unknown_disclosure_is_refused(seeded: Cli) -> None:
    unknown = "01a20188-538b-7ee9-9856-1c0154888362"
    assert unknown != seeded.disclosure
    refused_without_writing(
        seeded,
        "POLICY_DOCUMENT_NOT_FOUND",
        *grant(seeded, *OFFERS_EMAIL, *seeded.web_form(unknown)),
    )


def test_a_disclosure_that_is_not_an_id_is_refused(seeded: Cli) -> None:
    stderr = refused_without_writing(
        seeded, "INVALID_VALUE", *grant(seeded, *OFFERS_EMAIL, *seeded.web_form("v1"))
    )
    assert "(field: disclosure)" in stderr


def test_a_draft_disclosure_is_refused(seeded: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "MASTER_KEY", "INDEX_KEY", "KEY_FILE"):
        monkeypatch.delenv(f"CONSENTRY_{name}", raising=False)
    # The CLI publishes what it stores, so the draft is made through the service layer.
    container = bootstrap(Settings(data_dir=seeded.data_dir))
    try:
        draft = draft_policy(
            container.uow(),
            seeded.tenant,
            kind=PolicyKind.CONSENT_DISCLOSURE,
            title="Not yet approved",
            body="Draft wording nobody has seen.",
        )
    finally:
        container.close()

    stderr = refused_without_writing(
        seeded,
        "DISCLOSURE_MISMATCH",
        *grant(seeded, *OFFERS_EMAIL, *seeded.web_form(str(draft.id))),
    )
    assert "published" in stderr


def test_another_tenants_disclosure_is_refused(
    seeded: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = tmp_path_factory.mktemp("other") / "other.txt"
    text.write_text("Other wording", encoding="utf-8")
    seeded.ok(
        "tenant", "create", "other", "--name", "O", "--legal-name", "O Ltd", "--country", "GB"
    )
    foreign = seeded.new_id(
        "policy",
        "publish",
        str(text),
        "-t",
        "other",
        "--kind",
        "consent_disclosure",
        "--title",
        "Other",
    )

    refused_without_writing(
        seeded,
        "POLICY_DOCUMENT_NOT_FOUND",
        *grant(seeded, *OFFERS_EMAIL, *seeded.web_form(foreign)),
    )


def test_consent_on_a_channel_the_contact_has_no_address_for_is_refused(seeded: Cli) -> None:
    refused_without_writing(
        seeded,
        "ADDRESS_MISSING",
        *grant(
            seeded,
            "--topic",
            "offers",
            "--channel",
            "whatsapp",
            *seeded.web_form(seeded.disclosure),
        ),
    )


def test_consent_time_without_an_offset_is_refused(seeded: Cli) -> None:
    refused_without_writing(
        seeded,
        "INVALID_VALUE",
        *grant(
            seeded, *OFFERS_EMAIL, *seeded.web_form(seeded.disclosure), "--at", "2025-01-01T10:00"
        ),
    )


def test_the_refusals_leave_the_ledger_intact(seeded: Cli) -> None:
    seeded.ok(*grant(seeded, *OFFERS_EMAIL, *seeded.web_form(seeded.disclosure)))
    seeded.fails("TOPIC_NOT_FOUND", *grant(seeded, "--topic", "nope", "--channel", "email", *PAPER))
    seeded.fails(
        "EVIDENCE_INCOMPLETE",
        *grant(seeded, *OFFERS_EMAIL, "--method", "web_form", "--ip", "1.2.3.4"),
    )
    out = seeded.ok(
        *grant(
            seeded,
            "--topic",
            "newsletter",
            "--channel",
            "email",
            *seeded.web_form(seeded.disclosure),
        )
    )
    assert "(seq 2)" in out  # no sequence number was used up by a refusal
    assert "ok acme: 2 events verified" in seeded.ok("verify-ledger")


# --- suppressions, registries and documents -------------------------------------------------


def test_a_suppression_of_another_tenant_cannot_be_lifted(seeded: Cli) -> None:
    seeded.ok(
        "tenant", "create", "other", "--name", "O", "--legal-name", "O Ltd", "--country", "GB"
    )
    manual = seeded.new_id(
        "suppress", "add", seeded.email, "-t", seeded.tenant, "--channel", "email"
    )

    refused_without_writing(
        seeded, "SUPPRESSION_NOT_FOUND", "suppress", "lift", manual, "-t", "other"
    )

    listed = seeded.ok("suppress", "list", "-t", seeded.tenant)
    assert manual in listed
    assert seeded.ok("suppress", "list", "-t", "other").strip() == "no suppressions"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--channel", "email", "--channel", "sms", "-t", "acme"), "INVALID_VALUE"),
        (("--channel", "email", "-t", "acme", "--platform"), "INVALID_VALUE"),
        (("--channel", "email"), "INVALID_VALUE"),
        (("--channel", "sms", "-t", "acme"), "INVALID_PHONE"),
    ],
    ids=["mixed-address-kinds", "tenant-and-platform", "neither", "email-as-phone"],
)
def test_bad_suppressions_are_refused(seeded: Cli, args: tuple[str, ...], code: str) -> None:
    refused_without_writing(seeded, code, "suppress", "add", seeded.email, *args)


def test_a_registry_batch_with_one_bad_number_lists_none(seeded: Cli) -> None:
    stderr = refused_without_writing(
        seeded,
        "INVALID_PHONE",
        "dnc",
        "add",
        seeded.phone_e164,
        "+1 415 555 2671",
        "12345",
        "--registry",
        "UK-TPS",
    )
    assert "(field: number)" in stderr


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b"   \n"], ids=["not-utf-8", "blank"])
def test_a_bad_policy_document_is_not_stored(seeded: Cli, content: bytes) -> None:
    document = seeded.data_dir.parent / "policy.txt"
    document.write_bytes(content)

    refused_without_writing(
        seeded,
        "INVALID_VALUE",
        "policy",
        "publish",
        str(document),
        "-t",
        seeded.tenant,
        "--kind",
        "privacy_policy",
        "--title",
        "Privacy",
    )

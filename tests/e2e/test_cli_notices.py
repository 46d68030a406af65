"""``consentry policy notify`` and ``policy notice`` in-process through typer's CliRunner, on
SQLite: a new disclosure is published, consents keep citing the old one, the notice is sent at
once with its acceptance link and reported."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import DISCLOSURE_TEXT, UUID_RE, Cli

from consentry.domain.model import content_hash


def test_a_new_disclosure_is_notified_sent_and_reported(seeded: Cli, tmp_path: Path) -> None:
    cli = seeded
    cli.ok("consent", "grant", "-t", cli.tenant, "-c", cli.email, "--topic", "offers",
           "--channel", "email", *cli.web_form(cli.disclosure))  # fmt: skip
    cli.fails(
        "NOTICE_NOT_NEEDED", "policy", "notify", cli.disclosure, "-t", cli.tenant
    )  # version 1 changed nothing
    text = tmp_path / "v2.txt"
    text.write_text("Offers by email, and a survey now and then.", encoding="utf-8")
    out = cli.ok("policy", "publish", str(text), "-t", cli.tenant, "--kind",
                 "consent_disclosure", "--title", "Offers consent")  # fmt: skip
    assert "consent_disclosure v2 published" in out
    v2 = UUID_RE.findall(out)[0]
    v2_hash = out.split()[-1]
    history = cli.ok("consent", "history", "-t", cli.tenant, "-c", cli.email)
    assert content_hash(DISCLOSURE_TEXT) in history.replace("\n", "")  # the words Jane saw
    assert v2_hash not in history.replace("\n", "")

    before = cli.count("captured_messages")
    cli.fails("NOTICE_CHANNEL_INVALID", "policy", "notify", v2, "-t", cli.tenant,
              "--channel", "whatsapp")  # fmt: skip
    sent = cli.ok("policy", "notify", v2, "-t", cli.tenant, "--ask-acceptance")
    assert cli.count("captured_messages") == before + 1
    assert "1 contact point(s) concerned" in sent
    notice = UUID_RE.findall(sent)[0]
    for label in ("targeted", "sent", "accepted"):
        assert label in sent
    outbox = cli.ok("outbox")
    assert "Acme Parts Ltd has changed its Offers consent" in outbox
    status = cli.ok("policy", "notice", notice, "-t", cli.tenant)
    assert "done" in status
    assert "│ sent " in status
    # A second notice reaches nobody new: Jane has been told.
    again = cli.ok("policy", "notify", v2, "-t", cli.tenant)
    assert "0 contact point(s) concerned" in again
    assert cli.count("captured_messages") == before + 1

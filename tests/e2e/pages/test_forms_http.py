"""Public subscription forms over HTTP, on SQLite and PostgreSQL: made through the API, shown on
the hosted page and as an embeddable snippet, sent by people and by bots, and what the ledger
keeps of each submission."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from urllib.parse import parse_qs

import httpx
import pytest
from tests.e2e.api.conftest import DISCLOSURE
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.form_helpers import (
    BLOG,
    JANE,
    PHONE,
    PRIVACY_TEXT,
    PUBLIC,
    UA,
    FormFields,
    answers,
    captured,
    create_form,
    fields_of,
    history,
    local,
    publish,
    publish_privacy,
    show,
)
from tests.e2e.pages.helpers import consenting_contact, ledger, verdict

from consentry.domain.access import Role
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod
from consentry.domain.model import Category, Channel, PolicyKind, content_hash
from consentry.services import tenancy
from consentry.services.contacts import ContactInput, add_contact

SAM = "sam.smith@example.com"


@pytest.fixture
def quick(serve: Callable[..., Api]) -> Api:
    """The app taking forms back at once (no least time), so tests need not wait."""
    return serve(form_min_seconds=0)


@pytest.fixture
def shop(quick: Api) -> Seeded:
    """A tenant on the quick server with a published privacy policy, and its form ``join``
    offering offers by email and by SMS."""
    tenant = quick.tenant("acme")
    publish_privacy(quick, tenant)
    create_form(quick, tenant)
    return tenant


def post(client: httpx.Client, tenant: Seeded, data: Mapping[str, object], key: str = "join",
         **headers: str) -> httpx.Response:  # fmt: skip
    return client.post(f"/f/{tenant.slug}/{key}", data=data, headers={"User-Agent": UA, **headers})


def form_error(page: httpx.Response) -> str:
    found = re.search(r'id="form-error">(.*?)</p>', page.text, re.DOTALL)
    assert found is not None, page.text
    return re.sub(r"<[^>]+>", "", found.group(1))


def result(page: httpx.Response) -> str:
    found = re.search(r'<p id="result">(.*?)</p>', page.text, re.DOTALL)
    assert found is not None, page.text
    return " ".join(found.group(1).split())


def heading(page: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page.text, re.DOTALL)
    assert found is not None, page.text
    return found.group(1).strip()


def confirmation_link(message: bytes) -> str:
    parsed = message_from_bytes(message, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    found = re.search(r"https://\S+/c/[A-Za-z0-9_-]+", str(parsed.get_content()))
    assert found is not None
    return found.group(0)


def confirm_by_link(api: Api, link: str) -> httpx.Response:
    """Open the emailed link and press Confirm, as a browser does (CSRF cookie and field)."""
    client = api.client()
    path = local(link, api).removeprefix(api.base_url)
    page = client.get(path)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    return client.post(path, data={"csrf_token": csrf.group(1)})


def settle(api: Api) -> dict[str, int]:
    """Row counts once any confirmation sent after an answer has been captured."""
    time.sleep(0.3)
    return api.counts()


# --- made through the API --------------------------------------------------------------------


def test_the_api_creates_a_form_with_its_public_address(api: Api, acme: Seeded) -> None:
    publish_privacy(api, acme)
    client = api.client(acme.token)
    before = api.counts()
    created = create_form(api, acme)
    assert created["url"] == f"{PUBLIC}/f/{acme.slug}/join"
    assert created["choices"] == [
        {"topic": "offers", "channel": "email"},
        {"topic": "offers", "channel": "sms"},
    ]
    assert (created["status"], created["revision"], created["confirm"]) == ("active", 1, True)
    assert created["privacy_url"] is None  # the tenant's published privacy policy is linked
    assert created["disclosure_kind"] == "consent_disclosure"
    after = api.counts()
    assert after["subscription_forms"] == before["subscription_forms"] + 1
    assert after["consent_events"] == before["consent_events"]
    assert "form.create" in [e.action for e in api.audit(acme.id)]

    assert [f["key"] for f in client.get("/v1/forms").json()] == ["join"]
    shown = client.get("/v1/forms/join").json()
    assert shown["submissions"] == 0
    assert shown["id"] == created["id"]
    assert fields_of(shown["embed_html"]).action == created["url"]


def test_the_api_refuses_forms_that_bundle_or_cannot_keep_their_promise(
    api: Api, acme: Seeded
) -> None:
    publish_privacy(api, acme)
    tenancy.create_topic(
        api.container.uow(), acme.slug, key="news", name="Weekly news",
        category=Category.MARKETING, requires_double_opt_in=True,
    )  # fmt: skip
    client = api.client(acme.token)

    def create(*choices: tuple[str, str], **extra: object) -> httpx.Response:
        body = {"key": "join", "title": "Join", **extra}
        body["choices"] = [{"topic": t, "channel": c} for t, c in choices]
        return client.post("/v1/forms", json=body)

    before = api.counts()
    umbrella = api.problem(
        create(("offers", "email"), ("all-marketing", "email")), 422, "FORM_INVALID",
        field="choices",
    )  # fmt: skip
    assert "no bundled consent" in umbrella["detail"]
    api.problem(create(("nonesuch", "email")), 404, "TOPIC_NOT_FOUND")
    whatsapp = api.problem(create(("news", "whatsapp")), 422, "FORM_INVALID", field="choices")
    assert "confirmed opt-in" in whatsapp["detail"]
    api.problem(create(("offers", "voice")), 422, "FORM_INVALID", field="choices")
    api.problem(create(("offers", "email"), ("offers", "email")), 422, "FORM_INVALID")
    api.problem(
        create(("offers", "email"), privacy_url="ftp://acme.example/privacy"), 422,
        "FORM_INVALID", field="privacy_url",
    )  # fmt: skip
    api.problem(
        create(("offers", "email"), disclosure_kind="whatsapp_opt_in"), 404,
        "POLICY_DOCUMENT_NOT_FOUND", field="disclosure_kind",
    )  # fmt: skip
    assert api.counts() == before

    assert create(("news", "email"), ("offers", "sms")).status_code == 201
    api.problem(create(("offers", "email")), 409, "ALREADY_EXISTS", field="key")


def test_a_form_needs_a_privacy_policy_or_an_address_for_one(api: Api, acme: Seeded) -> None:
    client = api.client(acme.token)
    body = {"key": "join", "title": "Join", "choices": [{"topic": "offers", "channel": "email"}]}
    before = api.counts()
    refused = client.post("/v1/forms", json=body)
    api.problem(refused, 404, "POLICY_DOCUMENT_NOT_FOUND", field="privacy_url")
    assert api.counts() == before
    elsewhere = "https://acme.example/privacy"
    created = client.post("/v1/forms", json={**body, "privacy_url": elsewhere})
    assert created.status_code == 201, created.text
    assert created.json()["privacy_url"] == elsewhere
    page = api.client().get(f"/f/{acme.slug}/join")
    assert f'<a href="{elsewhere}">privacy policy</a>' in page.text


def test_making_and_archiving_forms_needs_the_admin_scope(api: Api, acme: Seeded) -> None:
    publish_privacy(api, acme)
    operator = api.client(api.issue_key(acme.slug, role=Role.TENANT_OPERATOR).token)
    body = {"key": "join", "title": "Join", "choices": [{"topic": "offers", "channel": "email"}]}
    before = api.counts()
    api.problem(operator.post("/v1/forms", json=body), 403, "FORBIDDEN")
    assert api.counts() == before
    create_form(api, acme)
    api.problem(operator.post("/v1/forms/join/archive"), 403, "FORBIDDEN")
    assert operator.get("/v1/forms/join").json()["status"] == "active"  # reading is allowed


def test_another_tenant_cannot_see_or_archive_a_form(api: Api, acme: Seeded) -> None:
    publish_privacy(api, acme)
    create_form(api, acme)
    other = api.tenant("other")
    stranger = api.client(other.token)
    api.problem(stranger.get("/v1/forms/join"), 404, "FORM_NOT_FOUND")
    api.problem(stranger.post("/v1/forms/join/archive"), 404, "FORM_NOT_FOUND")
    assert stranger.get("/v1/forms").json() == []
    # Nor by naming acme in the tenant header: the key decides the tenant.
    named = api.client(other.token, tenant=acme.id)
    api.problem(named.get("/v1/forms/join"), 404, "FORM_NOT_FOUND")
    assert api.client(acme.token).get("/v1/forms/join").json()["status"] == "active"
    # Keys are per tenant: the other tenant may have its own "join", on its own page.
    mine = create_form(api, other, privacy_url="https://other.example/privacy")
    assert mine["url"] == f"{PUBLIC}/f/{other.slug}/join"
    assert mine["id"] != api.client(acme.token).get("/v1/forms/join").json()["id"]


# --- the hosted page ---------------------------------------------------------------------------


def test_the_hosted_page_offers_every_box_unticked_and_writes_nothing(
    api: Api, acme: Seeded
) -> None:
    privacy = publish_privacy(api, acme)
    create_form(api, acme, choices=("offers:email", "offers:sms", "reminders:email"))
    client = api.client()
    before = api.counts()
    page = client.get(f"/f/{acme.slug}/join", headers={"Referer": BLOG})
    second = client.get(f"/f/{acme.slug}/join")
    assert api.counts() == before
    assert page.status_code == 200
    shown = fields_of(page.text)
    assert shown.action == f"{PUBLIC}/f/{acme.slug}/join"
    assert shown.boxes() == {"offers:email": False, "offers:sms": False, "reminders:email": False}
    assert [(f.value, f.checked) for f in shown.fields if f.name == "adult"] == [
        ("yes", False),
        ("no", False),
    ]
    assert shown.value("ref") == BLOG
    assert shown.value("website") == ""  # the honeypot
    assert shown.value("form_token") != fields_of(second.text).value("form_token")
    text = page.text
    assert "Join the Acme list" in text
    assert "Offers by email from Acme Ltd" in text
    assert "Offers by text message from Acme Ltd" in text
    assert "Reminders by email from Acme Ltd" in text
    assert DISCLOSURE in text
    assert "(version 1)" in text
    assert "Are you 18 or older?" in text
    assert "Msg&amp;data rates may apply" in text
    link = f"{PUBLIC}/d/{acme.slug}/{privacy.id}"
    assert f'<a href="{link}">privacy policy</a>' in text
    policy = client.get(local(link, api))
    assert policy.status_code == 200
    assert PRIVACY_TEXT in policy.text


def test_a_form_offering_no_marketing_asks_no_age(quick: Api, shop: Seeded) -> None:
    create_form(quick, shop, key="alerts", choices=("reminders:email",))
    client = quick.client()
    page = client.get(f"/f/{shop.slug}/alerts")
    assert "or older" not in page.text
    assert not [f for f in fields_of(page.text).fields if f.name == "adult"]
    done = post(client, shop, answers(fields_of(page.text), "reminders:email", email=JANE),
                key="alerts")  # fmt: skip
    assert done.status_code == 200, done.text
    [entry] = history(quick, shop, JANE)
    assert "adult=" not in (entry.event.evidence.note or "")


def test_unknown_forms_and_tenants_are_not_found(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    before = quick.counts()
    for path in (f"/f/{shop.slug}/nonesuch", "/f/nobody-here/join"):
        page = client.get(path)
        assert page.status_code == 404
        assert "FORM_NOT_FOUND" in page.text
        assert client.post(path, data={"choice": "offers:email"}).status_code == 404
    assert quick.counts() == before


# --- a person subscribes -----------------------------------------------------------------------


def test_a_person_subscribes_by_email_and_sms_and_confirms_the_email(
    quick: Api, shop: Seeded
) -> None:
    client = quick.client()
    shown = show(client, shop, Referer=BLOG)
    sent = answers(shown, "offers:email", "offers:sms", email=JANE, phone="07400 123456",
                   name="Jane Roe", adult="yes")  # fmt: skip
    done = post(client, shop, sent)
    assert done.status_code == 200, done.text
    assert heading(done) == "Thank you"
    assert result(done) == (
        "Please confirm: we have sent a message to your email address and to your mobile "
        "number (reply YES). Your subscription starts when you confirm."
    )

    # One confirmation request per channel, sent after the answer.
    messages = {m.channel: m for m in captured(quick, shop, 2)}
    email, sms = messages[Channel.EMAIL], messages[Channel.SMS]
    assert email.recipient == JANE
    assert email.summary == f"Please confirm: Offers from {shop.name}"
    assert sms.recipient == PHONE
    [text] = parse_qs(sms.raw.decode())["Body"]  # the Twilio request, as it would go
    for part in ("YES", shop.name, "Msg&data rates may apply", "STOP", "HELP"):
        assert part in text

    # The ledger: one request per ticked box, each with the form's full evidence.
    entries = history(quick, shop, JANE)
    assert [(e.topic_key, e.event.channel, e.event.action) for e in entries] == [
        ("offers", Channel.EMAIL, ConsentAction.REQUESTED),
        ("offers", Channel.SMS, ConsentAction.REQUESTED),
    ]
    form = quick.client(shop.token).get("/v1/forms/join").json()
    for entry in entries:
        evidence = entry.event.evidence
        assert entry.event.basis is ConsentBasis.EXPRESS
        assert evidence.method is ConsentMethod.WEB_FORM
        assert evidence.source == f"{PUBLIC}/f/{shop.slug}/join"
        assert evidence.ip_address == "127.0.0.1"
        assert evidence.user_agent == UA
        assert evidence.policy_document_id == shop.disclosure_id
        assert evidence.disclosure_hash == content_hash(DISCLOSURE)
        assert evidence.actor == "form:join"
        note = (evidence.note or "").split("; ")
        for part in (
            "form=join", f"form_id={form['id']}", "revision=1", f"referrer={BLOG}",
            "embedded=no", "offered=offers:email,offers:sms", "ticked=offers:email,offers:sms",
            "adult=yes", f"page={PUBLIC}/f/{shop.slug}/join",
        ):  # fmt: skip
            assert part in note, note
    jane = entries[0].event.contact_id
    assert entries[1].event.contact_id == jane  # both new addresses on one new contact
    for channel in (Channel.EMAIL, Channel.SMS):
        assert verdict(quick, shop, jane, "offers", channel) == ("deny", ("CONSENT_PENDING",))
    assert form["submissions"] == 1

    # The emailed link confirms the email address; the SMS waits for its YES.
    confirmed = confirm_by_link(quick, confirmation_link(email.raw))
    assert confirmed.status_code == 200
    assert "you are subscribed" in confirmed.text
    by_email = [e.event for e in history(quick, shop, JANE) if e.event.channel is Channel.EMAIL]
    assert [e.action for e in by_email] == [ConsentAction.REQUESTED, ConsentAction.CONFIRMED]
    assert by_email[1].basis is ConsentBasis.DOUBLE_OPT_IN
    assert by_email[1].evidence.source == f"{PUBLIC}/c"
    assert verdict(quick, shop, jane, "offers", Channel.EMAIL) == ("allow", ())
    assert verdict(quick, shop, jane, "offers", Channel.SMS) == ("deny", ("CONSENT_PENDING",))

    # The very same submission again: taken once.
    before = settle(quick)
    again = post(client, shop, sent)
    assert again.status_code == 200
    assert heading(again) == "We already have this"
    assert settle(quick) == before
    assert quick.client(shop.token).get("/v1/forms/join").json()["submissions"] == 1


def test_a_known_contact_is_never_changed_by_a_form(quick: Api, shop: Seeded) -> None:
    jane = add_contact(
        quick.container.uow(), shop.slug,
        ContactInput(name="Jane Roe", email=JANE, phone=PHONE, country="GB"),
    )  # fmt: skip
    client = quick.client()
    stranger_phone = "+447400999888"
    before = quick.counts()
    sent = answers(show(client, shop), "offers:email", "offers:sms", email=JANE,
                   phone=stranger_phone, name="Mallory", adult="yes")  # fmt: skip
    assert post(client, shop, sent).status_code == 200
    with quick.container.uow() as uow:
        assert uow.contacts.get(shop.id, jane.id) == jane  # name, phone, everything as it was
    assert quick.counts()["contacts"] == before["contacts"] + 1
    [by_email] = history(quick, shop, JANE)
    assert (by_email.event.channel, by_email.event.action) == (Channel.EMAIL, "requested")
    assert by_email.event.contact_id == jane.id
    [by_sms] = history(quick, shop, stranger_phone)
    assert (by_sms.event.channel, by_sms.event.action) == (Channel.SMS, "requested")
    assert by_sms.event.contact_id != jane.id
    with quick.container.uow() as uow:
        added = uow.contacts.get(shop.id, by_sms.event.contact_id)
    assert (added.name, added.email, added.phone) == ("Mallory", None, stranger_phone)


def test_a_standing_subscription_is_not_put_back_to_pending_by_a_form(
    quick: Api, shop: Seeded
) -> None:
    """Anyone can type anyone's address: a form asking new subscribers to confirm must not
    suspend (and, unconfirmed, lapse) a subscription that already stands."""
    jane = consenting_contact(quick, shop, email=JANE)
    assert verdict(quick, shop, jane, "offers", Channel.EMAIL) == ("allow", ())
    events = ledger(quick, shop, jane)
    client = quick.client()
    before = settle(quick)
    sent = answers(show(client, shop), "offers:email", email=JANE, adult="yes")
    assert post(client, shop, sent).status_code == 200
    assert ledger(quick, shop, jane) == events
    assert verdict(quick, shop, jane, "offers", Channel.EMAIL) == ("allow", ())
    after = settle(quick)
    assert after["consent_events"] == before["consent_events"]
    assert after["captured_messages"] == before["captured_messages"]  # nothing to confirm
    assert after["form_submissions"] == before["form_submissions"] + 1


@pytest.mark.parametrize(
    ("confirm", "answer"),
    [
        (True, "Please confirm: we have sent a message to your email address. Your "
               "subscription starts when you confirm."),
        (False, "You are subscribed."),
    ],
)  # fmt: skip
def test_the_answer_does_not_tell_a_stranger_who_is_subscribed(
    quick: Api, shop: Seeded, confirm: bool, answer: str
) -> None:
    create_form(quick, shop, key="news", choices=("offers:email",), confirm=confirm)
    consenting_contact(quick, shop, email=JANE)  # subscribed already
    client = quick.client()
    answers_for = {
        address: post(client, shop, answers(show(client, shop, "news"), "offers:email",
                                            email=address, adult="yes"), key="news")
        for address in (JANE, SAM)
    }  # fmt: skip
    assert {address: result(page) for address, page in answers_for.items()} == {
        JANE: answer,
        SAM: answer,
    }


def test_without_confirmation_whatsapp_and_email_are_granted_at_once(
    quick: Api, shop: Seeded
) -> None:
    create_form(quick, shop, key="chat", choices=("offers:email", "offers:whatsapp"),
                confirm=False)  # fmt: skip
    client = quick.client()
    page = client.get(f"/f/{shop.slug}/chat")
    assert "We will send you a message to confirm" not in page.text
    before = settle(quick)
    sent = answers(fields_of(page.text), "offers:whatsapp", "offers:email", email=JANE,
                   whatsapp="07400 123457", adult="yes")  # fmt: skip
    done = post(client, shop, sent, key="chat")
    assert done.status_code == 200
    assert result(done) == "You are subscribed."
    entries = history(quick, shop, JANE)
    assert [(e.event.channel, e.event.action, e.event.basis) for e in entries] == [
        (Channel.WHATSAPP, ConsentAction.GRANTED, ConsentBasis.EXPRESS),
        (Channel.EMAIL, ConsentAction.GRANTED, ConsentBasis.EXPRESS),
    ]
    assert "ticked=offers:whatsapp,offers:email" in (entries[0].event.evidence.note or "")
    assert verdict(quick, shop, entries[0].event.contact_id, "offers", Channel.EMAIL) == (
        "allow",
        (),
    )
    assert settle(quick)["captured_messages"] == before["captured_messages"]


def test_a_pending_address_sent_again_gets_no_second_request_event(
    quick: Api, shop: Seeded
) -> None:
    client = quick.client()
    first = answers(show(client, shop), "offers:email", email=JANE, adult="yes")
    assert post(client, shop, first).status_code == 200
    captured(quick, shop, 1)
    again = answers(show(client, shop), "offers:email", email=JANE, adult="yes")
    done = post(client, shop, again)
    assert done.status_code == 200
    assert result(done).startswith("Please confirm")
    # Still one request in the ledger; the resend interval holds the second message back.
    assert [e.event.action for e in history(quick, shop, JANE)] == [ConsentAction.REQUESTED]
    settle(quick)
    assert len(quick.container.outbox().list(shop.id)) == 1
    assert quick.client(shop.token).get("/v1/forms/join").json()["submissions"] == 2


# --- refused submissions ------------------------------------------------------------------------


def _refused(api: Api, page: httpx.Response, code: str) -> FormFields:
    """A refusal shown on the form itself: status 400, the reason and its code in #form-error,
    and a fresh form to send again."""
    assert page.status_code == 400, page.text
    assert f"({code})" in form_error(page)
    return fields_of(page.text)


def test_a_filled_honeypot_is_refused_and_nothing_written(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    sent = answers(show(client, shop), "offers:email", email=JANE, adult="yes")
    before = quick.counts()
    refused = post(client, shop, {**sent, "website": "https://spam.example"})
    assert refused.status_code == 400
    assert "FORM_REJECTED" in refused.text
    assert quick.counts() == before
    # The same form without the bait is a person's.
    assert post(client, shop, sent).status_code == 200


def test_a_form_sent_back_at_once_is_refused_by_default(api: Api, acme: Seeded) -> None:
    publish_privacy(api, acme)
    create_form(api, acme)
    client = api.client()
    sent = answers(show(client, acme), "offers:email", email=JANE, adult="yes")
    before = api.counts()
    refused = post(client, acme, sent)
    assert refused.status_code == 400
    assert "FORM_REJECTED" in refused.text
    assert "sent too quickly" in refused.text
    assert api.counts() == before
    time.sleep(2.1)  # form_min_seconds is 2 by default; a person takes at least that long
    assert post(client, acme, sent).status_code == 200


def test_a_forged_token_gets_the_form_back_with_a_fresh_one(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    token = show(client, shop).value("form_token")
    middle = len(token) // 2
    forged = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    sent = {"form_token": forged, "website": "", "choice": ["offers:sms"], "phone": PHONE,
            "adult": "yes"}  # fmt: skip
    before = quick.counts()
    refused = post(client, shop, sent)
    again = _refused(quick, refused, "FORM_EXPIRED")
    assert "expired" in form_error(refused)
    assert quick.counts() == before
    fresh = again.value("form_token")
    assert fresh not in {forged, token}
    # The answers are kept, so the person only sends it again.
    assert again.boxes() == {"offers:email": False, "offers:sms": True}
    assert again.value("phone") == PHONE
    assert [f.value for f in again.fields if f.name == "adult" and f.checked] == ["yes"]
    assert post(client, shop, {**sent, "form_token": fresh}).status_code == 200


@pytest.mark.parametrize("token", ["", "not-a-token", "A" * 151])
def test_a_missing_or_garbled_token_is_refused(quick: Api, shop: Seeded, token: str) -> None:
    client = quick.client()
    before = quick.counts()
    sent = {"form_token": token, "choice": "offers:email", "email": JANE, "adult": "yes"}
    _refused(quick, post(client, shop, sent), "FORM_EXPIRED")
    assert quick.counts() == before


def test_under_the_age_threshold_is_refused_with_a_clear_message(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    shown = show(client, shop)
    before = quick.counts()
    young = post(client, shop, answers(shown, "offers:email", email=JANE, adult="no"))
    _refused(quick, young, "AGE_BELOW_THRESHOLD")
    assert "you must be 18 or older to subscribe to these messages" in form_error(young)
    silent = post(client, shop, answers(shown, "offers:email", email=JANE))
    _refused(quick, silent, "FORM_INVALID")
    assert "please say whether you are 18 or older" in form_error(silent)
    assert quick.counts() == before


def test_an_invalid_or_missing_address_is_named(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    shown = show(client, shop)
    before = quick.counts()
    bad = post(client, shop, answers(shown, "offers:email", email="jane@", adult="yes"))
    assert _refused(quick, bad, "INVALID_EMAIL").value("email") == "jane@"
    assert form_error(bad).startswith("Email address")
    missing = post(client, shop, answers(shown, "offers:email", "offers:sms", email=JANE,
                                         adult="yes"))  # fmt: skip
    _refused(quick, missing, "FORM_INVALID")
    assert "enter your mobile number" in form_error(missing)
    assert quick.counts() == before


def test_a_box_the_form_does_not_offer_or_none_at_all_is_refused(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    shown = show(client, shop)
    before = quick.counts()
    forged = post(client, shop, answers(shown, "offers:email", "reminders:email", email=JANE,
                                        adult="yes"))  # fmt: skip
    _refused(quick, forged, "FORM_INVALID")
    assert "does not offer" in form_error(forged)
    none = post(client, shop, answers(shown, email=JANE, adult="yes"))
    _refused(quick, none, "FORM_INVALID")
    assert "tick at least one box" in form_error(none)
    assert quick.counts() == before


# --- the embeddable snippet ---------------------------------------------------------------------


def test_an_embedded_snippet_posts_without_cookies_or_waiting_and_once(
    api: Api, acme: Seeded
) -> None:
    publish_privacy(api, acme)
    create_form(api, acme)
    snippet = api.client(acme.token).get("/v1/forms/join").json()["embed_html"]
    shown = fields_of(snippet)
    assert shown.action == f"{PUBLIC}/f/{acme.slug}/join"
    assert shown.boxes() == {"offers:email": False, "offers:sms": False}
    assert DISCLOSURE in snippet
    assert "<script" not in snippet
    assert "<link" not in snippet
    # Posted straight from the business's own page: no cookie, no wait (default settings).
    visitor = api.client()
    sent = answers(shown, "offers:email", email=JANE, adult="yes")
    done = post(visitor, acme, sent, Referer="https://shop.example/signup")
    assert done.status_code == 200, done.text
    assert result(done).startswith("Please confirm")
    assert not visitor.cookies
    [entry] = history(api, acme, JANE)
    note = (entry.event.evidence.note or "").split("; ")
    assert "embedded=yes" in note
    assert "referrer=https://shop.example/signup" in note
    captured(api, acme, 1)
    before = api.counts()
    again = post(api.client(), acme, sent, Referer="https://shop.example/signup")
    assert again.status_code == 200
    # Written once; and answered as the first time, since from another site a reload and a
    # stranger typing the same address look alike.
    assert heading(again) == "Thank you"
    assert result(again) == result(done)
    assert settle(api) == before


def test_the_disclosure_a_page_showed_is_the_one_recorded(quick: Api, shop: Seeded) -> None:
    client = quick.client()
    old_page = show(client, shop)
    new_words = "Yes, send me offers. Version two of the words. Reply STOP to opt out."
    v2 = publish(quick, shop, PolicyKind.CONSENT_DISCLOSURE, "Offers consent", new_words)
    new_page = client.get(f"/f/{shop.slug}/join")
    assert new_words in new_page.text
    assert "(version 2)" in new_page.text
    assert DISCLOSURE not in new_page.text
    old = post(client, shop, answers(old_page, "offers:email", email=JANE, adult="yes"))
    new = post(client, shop, answers(fields_of(new_page.text), "offers:email", email=SAM,
                                     adult="yes"))  # fmt: skip
    assert old.status_code == new.status_code == 200
    [jane] = history(quick, shop, JANE)
    assert jane.event.evidence.policy_document_id == shop.disclosure_id
    assert jane.event.evidence.disclosure_hash == content_hash(DISCLOSURE)
    [sam] = history(quick, shop, SAM)
    assert sam.event.evidence.policy_document_id == v2.id
    assert sam.event.evidence.disclosure_hash == content_hash(new_words)


def test_an_archived_form_is_gone_and_takes_nothing(quick: Api, shop: Seeded) -> None:
    owner = quick.client(shop.token)
    client = quick.client()
    shown = show(client, shop)
    archived = owner.post("/v1/forms/join/archive")
    assert archived.status_code == 200
    assert (archived.json()["status"], archived.json()["revision"]) == ("archived", 2)
    before = quick.counts()
    page = client.get(f"/f/{shop.slug}/join")
    assert page.status_code == 410
    assert "Form closed" in page.text
    assert "FORM_ARCHIVED" in page.text
    sent = post(client, shop, answers(shown, "offers:email", email=JANE, adult="yes"))
    assert sent.status_code == 410
    assert quick.counts() == before
    details = owner.get("/v1/forms/join").json()
    assert (details["status"], details["embed_html"]) == ("archived", None)
    again = owner.post("/v1/forms/join/archive")
    assert (again.json()["status"], again.json()["revision"]) == ("archived", 2)


def test_too_many_posts_from_one_address_are_refused_for_a_while(
    serve: Callable[..., Api],
) -> None:
    api = serve(form_min_seconds=0, form_posts_per_minute=2)
    tenant = api.tenant("acme")
    publish_privacy(api, tenant)
    create_form(api, tenant)
    client = api.client()
    for email in (JANE, SAM):
        sent = answers(show(client, tenant), "offers:email", email=email, adult="yes")
        assert post(client, tenant, sent).status_code == 200
    captured(api, tenant, 2)
    sent = answers(show(client, tenant), "offers:email", email="third@example.com", adult="yes")
    before = api.counts()
    refused = post(client, tenant, sent)
    api.problem(refused, 429, "RATE_LIMITED")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert api.counts() == before


# --- policy pages -------------------------------------------------------------------------------


def test_policy_pages_show_published_versions_only(api: Api, acme: Seeded) -> None:
    privacy = publish_privacy(api, acme)
    draft = tenancy.draft_policy(
        api.container.uow(), acme.slug, kind=PolicyKind.PRIVACY_POLICY, title="Privacy policy",
        body="Not yet in force.",
    )  # fmt: skip
    other = api.tenant("other")
    client = api.client()
    page = client.get(f"/d/{acme.slug}/{privacy.id}")
    assert page.status_code == 200
    assert PRIVACY_TEXT in page.text
    assert "Version 1" in page.text
    assert privacy.content_hash in page.text
    disclosure = client.get(f"/d/{acme.slug}/{acme.disclosure_id}")
    assert disclosure.status_code == 200
    assert DISCLOSURE in disclosure.text
    for path in (
        f"/d/{acme.slug}/{draft.id}",  # a draft
        f"/d/{other.slug}/{privacy.id}",  # another tenant's address for it
        f"/d/{acme.slug}/{other.disclosure_id}",  # another tenant's document
        f"/d/{acme.slug}/00000000-0000-7000-8000-000000000000",
        f"/d/nobody-here/{privacy.id}",
    ):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert "Not yet in force." not in missing.text


def test_form_and_policy_pages_carry_the_page_security_headers(serve: Callable[..., Api]) -> None:
    api = serve(form_min_seconds=0)
    tenant = api.tenant("headers")
    owner = api.client(tenant.token)
    made = owner.post(
        "/v1/forms",
        json={"key": "join", "title": "Join", "choices": [{"topic": "offers", "channel": "email"}],
              "privacy_url": "https://headers.example/privacy"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    browser = api.client()
    for path in (f"/f/{tenant.slug}/join", f"/d/{tenant.slug}/{tenant.disclosure_id}"):
        page = browser.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"], path
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["cache-control"] == "no-store", path


def test_a_whatsapp_box_finds_the_number_among_whatsapp_numbers_and_never_undoes_a_no(
    quick: Api, shop: Seeded
) -> None:
    create_form(quick, shop, key="wa", choices=("offers:whatsapp",), confirm=False)
    owner = quick.client(shop.token)
    number = "+447400765432"
    assert owner.post("/v1/contacts", json={"phone": number}).status_code == 201  # SMS only
    before = settle(quick)["contacts"]

    for _ in range(2):
        shown = show(quick.client(), shop, "wa")
        sent = answers(shown, "offers:whatsapp", whatsapp=number, adult="yes")
        assert post(quick.client(), shop, sent, key="wa").status_code == 200

    assert settle(quick)["contacts"] == before + 1  # one contact for the WhatsApp number
    [on_whatsapp] = [
        c for c in owner.get("/v1/contacts", params={"limit": 200}).json()["items"]
        if c.get("whatsapp") == number
    ]  # fmt: skip
    withdrawn = owner.post(
        "/v1/consent",
        json={"contact": on_whatsapp["id"], "topic": "offers", "channel": "whatsapp",
              "action": "withdrawn", "evidence": {"method": "api"}},
    )  # fmt: skip
    assert withdrawn.status_code == 201, withdrawn.text

    # Someone types the number into the form again: the "no" stands.
    shown = show(quick.client(), shop, "wa")
    sent = answers(shown, "offers:whatsapp", whatsapp=number, adult="yes")
    assert post(quick.client(), shop, sent, key="wa").status_code == 200
    actions = [e.event.action for e in history(quick, shop, on_whatsapp["id"])]
    assert actions[-1] is ConsentAction.WITHDRAWN
    decided = verdict(quick, shop, uuid.UUID(on_whatsapp["id"]), "offers", Channel.WHATSAPP)
    assert decided[0] == "deny"


def test_posts_arriving_together_write_once_and_answer_as_pages(quick: Api, shop: Seeded) -> None:
    """Reach: a double click sends the same form twice at once, and two people may type the same
    new address at once; neither may end in an error page or a second contact."""
    before = settle(quick)
    shown = show(quick.client(), shop)
    same = answers(shown, "offers:email", email="twice@example.com", adult="yes")
    others = [
        answers(show(quick.client(), shop), "offers:email", email="twice@example.com",
                adult="yes")
        for _ in range(2)
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:
        answered = list(
            pool.map(lambda data: post(quick.client(), shop, data), [same, same, *others])
        )

    assert [a.status_code for a in answered] == [200, 200, 200, 200]
    headings = sorted(heading(a) for a in answered)
    assert headings == ["Thank you", "Thank you", "Thank you", "We already have this"]
    after = settle(quick)
    assert after["contacts"] == before["contacts"] + 1
    assert after["form_submissions"] == before["form_submissions"] + 3


def test_changing_a_form_retires_the_pages_and_snippets_shown_before(
    quick: Api, shop: Seeded
) -> None:
    owner = quick.client(shop.token)
    old_snippet = fields_of(owner.get("/v1/forms/join").json()["embed_html"])
    old_page = show(quick.client(), shop)
    changed = owner.put(
        "/v1/forms/join",
        json={"title": "Texts only", "choices": [{"topic": "offers", "channel": "sms"}]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["revision"] == 2
    assert [c["channel"] for c in changed.json()["choices"]] == ["sms"]
    before = settle(quick)

    for shown in (old_page, old_snippet):
        sent = answers(shown, "offers:email", email=JANE, adult="yes")
        refused = post(quick.client(), shop, sent)
        assert refused.status_code == 400
        assert "FORM_EXPIRED" in form_error(refused)
        assert fields_of(refused.text).boxes() == {"offers:sms": False}  # the form as it is now
    assert settle(quick) == before

    fresh = show(quick.client(), shop)
    done = post(quick.client(), shop, answers(fresh, "offers:sms", phone=PHONE, adult="yes"))
    assert done.status_code == 200
    assert heading(done) == "Thank you"


def test_a_form_change_is_checked_like_a_new_form_and_not_made_to_an_archived_one(
    quick: Api, shop: Seeded
) -> None:
    owner = quick.client(shop.token)
    umbrella = {"title": "All", "choices": [{"topic": "all-marketing", "channel": "email"}]}
    quick.problem(owner.put("/v1/forms/join", json=umbrella), 422, "FORM_INVALID")
    unknown = {"title": "X", "choices": [{"topic": "nope", "channel": "email"}]}
    quick.problem(owner.put("/v1/forms/join", json=unknown), 404, "TOPIC_NOT_FOUND")
    quick.problem(
        owner.put("/v1/forms/nope", json={"title": "X", "choices": [
            {"topic": "offers", "channel": "email"}]}), 404, "FORM_NOT_FOUND",
    )  # fmt: skip
    assert owner.get("/v1/forms/join").json()["revision"] == 1
    assert owner.post("/v1/forms/join/archive").status_code == 200
    again = {"title": "Back", "choices": [{"topic": "offers", "channel": "email"}]}
    quick.problem(owner.put("/v1/forms/join", json=again), 409, "FORM_ARCHIVED")

"""Example-based tests of the gate: one or more per reason code and per category rule."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.explain import explain
from consentry.domain.gate import (
    ConsentFact,
    Decision,
    FrequencyCap,
    Intent,
    Reason,
    RecipientFacts,
    SuppressionFact,
    Verdict,
    decide,
)
from consentry.domain.model import Category, Channel, TenantStatus
from consentry.domain.suppression import SuppressionReason, SuppressionScope

TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMBRELLA = uuid.UUID("00000000-0000-7000-8000-000000000002")
OTHER_TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000003")
CONTACT = uuid.UUID("00000000-0000-7000-8000-0000000000c1")
KEY = b"blind-index-current"
OLD_KEY = b"blind-index-previous"

# 16:00 in New York, 10:00 in Honolulu, 01:30 (next day) in India: every US zone is open.
NOW = datetime(2025, 6, 11, 20, 0, tzinfo=UTC)

MARKETING = Category.MARKETING
SERVICE = Category.SERVICE


def consent(
    *,
    topic: uuid.UUID = TOPIC,
    key: bytes = KEY,
    status: ConsentStatus = ConsentStatus.ACTIVE,
    basis: ConsentBasis = ConsentBasis.EXPRESS,
    confirmed: bool = True,
    seq: int = 1,
    expires_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> ConsentFact:
    return ConsentFact(
        topic_id=topic,
        point_key=key,
        status=status,
        basis=basis,
        confirmed=confirmed,
        event_id=event_id or uuid.uuid4(),
        seq=seq,
        expires_at=expires_at,
    )


def facts(**overrides: Any) -> RecipientFacts:
    """A recipient who may receive anything: active tenant, valid address, express consent.

    The tenant is in GB (the default pack, which has no quiet hours) unless overridden.
    """
    base = RecipientFacts(
        contact_id=CONTACT,
        tenant_status=TenantStatus.ACTIVE,
        tenant_country="GB",
        point_key=KEY,
        consents=(consent(),),
    )
    return replace(base, **overrides)


def intent(**overrides: Any) -> Intent:
    base = Intent(
        topic_id=TOPIC,
        umbrella_topic_id=UMBRELLA,
        category=MARKETING,
        channel=Channel.EMAIL,
    )
    return replace(base, **overrides)


def suppression(
    reason: SuppressionReason,
    scope: SuppressionScope = SuppressionScope.ALL,
    *,
    platform: bool = False,
) -> SuppressionFact:
    return SuppressionFact(reason=reason, scope=scope, platform=platform)


def assert_denied(decision: Decision, *reasons: str) -> None:
    assert decision.verdict is Verdict.DENY
    assert decision.reasons == reasons
    assert decision.consent_event_id is None
    assert decision.defer_until is None
    assert not decision.allowed


def assert_allowed(decision: Decision, event_id: uuid.UUID | None) -> None:
    assert decision.verdict is Verdict.ALLOW
    assert decision.reasons == ()
    assert decision.consent_event_id == event_id
    assert decision.defer_until is None
    assert decision.allowed


# --- baseline ---------------------------------------------------------------------------------


def test_allows_marketing_with_active_express_consent_and_names_the_authorising_event() -> None:
    grant = consent()

    decision = decide(facts(consents=(grant,)), intent(), NOW)

    assert_allowed(decision, grant.event_id)


# --- 1. tenant status -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TenantStatus.SUSPENDED, TenantStatus.TERMINATED])
@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_suspended_or_terminated_tenant_sends_nothing(
    status: TenantStatus, category: Category
) -> None:
    decision = decide(facts(tenant_status=status), intent(category=category), NOW)

    assert_denied(decision, Reason.TENANT_NOT_ACTIVE)


def test_paused_tenant_may_not_send_marketing() -> None:
    decision = decide(facts(tenant_status=TenantStatus.PAUSED), intent(), NOW)

    assert_denied(decision, Reason.TENANT_NOT_ACTIVE)


def test_paused_tenant_still_sends_service_messages() -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY, confirmed=False)

    decision = decide(
        facts(tenant_status=TenantStatus.PAUSED, consents=(basis,)),
        intent(category=SERVICE, channel=Channel.SMS),
        NOW,
    )

    assert_allowed(decision, basis.event_id)


# --- 2. content -------------------------------------------------------------------------------


@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_non_compliant_content_is_denied(category: Category) -> None:
    decision = decide(facts(), intent(category=category, content_compliant=False), NOW)

    assert_denied(decision, Reason.CONTENT_NOT_COMPLIANT)


# --- 3. contact point -------------------------------------------------------------------------


def test_missing_address_is_denied() -> None:
    assert_denied(decide(facts(point_key=None), intent(), NOW), Reason.ADDRESS_MISSING)


def test_missing_address_stops_the_remaining_checks_but_keeps_earlier_reasons() -> None:
    recipient = facts(
        tenant_status=TenantStatus.SUSPENDED,
        point_key=None,
        address_valid=False,
        suppressions=(suppression(SuppressionReason.COMPLAINT),),
        dnc_listed=True,
        adult_on=NOW.date() + timedelta(days=400),
        consents=(),
    )

    decision = decide(recipient, intent(channel=Channel.SMS, content_compliant=False), NOW)

    assert_denied(
        decision,
        Reason.TENANT_NOT_ACTIVE,
        Reason.CONTENT_NOT_COMPLIANT,
        Reason.ADDRESS_MISSING,
    )


def test_invalid_address_is_denied_and_stops_the_remaining_checks() -> None:
    recipient = facts(
        address_valid=False,
        suppressions=(suppression(SuppressionReason.HARD_BOUNCE),),
        dnc_listed=True,
        adult_on=NOW.date() + timedelta(days=400),
        consents=(),
    )

    decision = decide(recipient, intent(channel=Channel.SMS), NOW)

    assert_denied(decision, Reason.ADDRESS_INVALID)


# --- 4. suppression ---------------------------------------------------------------------------


@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_all_scope_suppression_blocks_service_and_marketing(category: Category) -> None:
    # Express consent would authorise either category; only the suppression stands in the way.
    recipient = facts(suppressions=(suppression(SuppressionReason.HARD_BOUNCE),))

    decision = decide(recipient, intent(category=category), NOW)

    assert_denied(decision, "SUPPRESSED_HARD_BOUNCE")


def test_marketing_scope_suppression_blocks_marketing() -> None:
    recipient = facts(
        suppressions=(suppression(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),)
    )

    decision = decide(recipient, intent(), NOW)

    assert_denied(decision, "SUPPRESSED_UNSUBSCRIBED")


def test_marketing_scope_suppression_leaves_service_messages_alone() -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY)
    recipient = facts(
        suppressions=(suppression(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),),
        consents=(basis,),
    )

    decision = decide(recipient, intent(category=SERVICE), NOW)

    assert_allowed(decision, basis.event_id)


@pytest.mark.parametrize("reason", list(SuppressionReason))
def test_every_suppression_reason_has_its_own_code(reason: SuppressionReason) -> None:
    decision = decide(facts(suppressions=(suppression(reason),)), intent(), NOW)

    assert_denied(decision, f"SUPPRESSED_{reason.value.upper()}")


def test_platform_wide_suppression_blocks_like_a_tenant_one() -> None:
    recipient = facts(suppressions=(suppression(SuppressionReason.COMPLAINT, platform=True),))

    assert_denied(decide(recipient, intent(), NOW), "SUPPRESSED_COMPLAINT")


def test_the_weightiest_covering_suppression_is_the_one_reason_reported() -> None:
    recipient = facts(
        suppressions=(
            suppression(SuppressionReason.MANUAL),
            suppression(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),
            suppression(SuppressionReason.COMPLAINT),
            suppression(SuppressionReason.HARD_BOUNCE),
        )
    )

    decision = decide(recipient, intent(), NOW)

    assert_denied(decision, "SUPPRESSED_COMPLAINT")


def test_erasure_outweighs_every_other_suppression() -> None:
    recipient = facts(
        suppressions=(
            suppression(SuppressionReason.COMPLAINT),
            suppression(SuppressionReason.ERASED),
            suppression(SuppressionReason.HARD_BOUNCE),
        )
    )

    assert_denied(decide(recipient, intent(), NOW), "SUPPRESSED_ERASED")


def test_a_weightier_suppression_that_does_not_cover_service_is_passed_over() -> None:
    recipient = facts(
        suppressions=(
            suppression(SuppressionReason.COMPLAINT, SuppressionScope.MARKETING),
            suppression(SuppressionReason.MANUAL, SuppressionScope.ALL),
        ),
        consents=(consent(basis=ConsentBasis.SERVICE_NECESSITY),),
    )

    decision = decide(recipient, intent(category=SERVICE), NOW)

    assert_denied(decision, "SUPPRESSED_MANUAL")


# --- 5. do-not-contact registry ---------------------------------------------------------------


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE])
def test_registry_listed_number_gets_no_marketing_by_sms_or_voice(channel: Channel) -> None:
    decision = decide(facts(dnc_listed=True), intent(channel=channel), NOW)

    assert_denied(decision, Reason.DNC_REGISTERED)


def test_registry_listing_does_not_stop_marketing_email() -> None:
    grant = consent()

    decision = decide(facts(dnc_listed=True, consents=(grant,)), intent(), NOW)

    assert_allowed(decision, grant.event_id)


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE])
def test_registry_listing_does_not_stop_service_calls_or_texts(channel: Channel) -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY)

    decision = decide(
        facts(dnc_listed=True, consents=(basis,)),
        intent(category=SERVICE, channel=channel),
        NOW,
    )

    assert_allowed(decision, basis.event_id)


# --- 6. age -----------------------------------------------------------------------------------


def test_minor_gets_no_marketing() -> None:
    decision = decide(facts(adult_on=NOW.date() + timedelta(days=1)), intent(), NOW)

    assert_denied(decision, Reason.MINOR)


def test_person_is_an_adult_from_their_adult_on_date() -> None:
    grant = consent()

    decision = decide(facts(adult_on=NOW.date(), consents=(grant,)), intent(), NOW)

    assert_allowed(decision, grant.event_id)


def test_minor_still_gets_service_messages() -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY)

    decision = decide(
        facts(adult_on=date(2030, 1, 1), consents=(basis,)), intent(category=SERVICE), NOW
    )

    assert_allowed(decision, basis.event_id)


# --- 7. consent -------------------------------------------------------------------------------


def test_no_consent_at_all() -> None:
    assert_denied(decide(facts(consents=()), intent(), NOW), Reason.NO_CONSENT)


def test_consent_on_an_unrelated_topic_does_not_count() -> None:
    recipient = facts(consents=(consent(topic=OTHER_TOPIC),))

    assert_denied(decide(recipient, intent(), NOW), Reason.NO_CONSENT)


def test_consent_given_for_a_previous_address_does_not_count() -> None:
    recipient = facts(consents=(consent(key=OLD_KEY),))

    assert_denied(decide(recipient, intent(), NOW), Reason.NO_CONSENT)


def test_a_newer_state_on_a_previous_address_does_not_override_the_current_one() -> None:
    current = consent(seq=3)
    recipient = facts(
        consents=(current, consent(key=OLD_KEY, status=ConsentStatus.WITHDRAWN, seq=9))
    )

    assert_allowed(decide(recipient, intent(), NOW), current.event_id)


def test_pending_double_opt_in_is_not_consent_yet() -> None:
    recipient = facts(
        consents=(
            consent(
                status=ConsentStatus.PENDING, basis=ConsentBasis.DOUBLE_OPT_IN, confirmed=False
            ),
        )
    )

    assert_denied(decide(recipient, intent(), NOW), Reason.CONSENT_PENDING)


def test_unconfirmed_consent_is_pending_when_the_topic_requires_confirmation() -> None:
    recipient = facts(consents=(consent(confirmed=False),))

    decision = decide(recipient, intent(requires_confirmation=True), NOW)

    assert_denied(decision, Reason.CONSENT_PENDING)


def test_unconfirmed_consent_suffices_when_the_topic_does_not_require_confirmation() -> None:
    grant = consent(confirmed=False)

    decision = decide(facts(consents=(grant,)), intent(requires_confirmation=False), NOW)

    assert_allowed(decision, grant.event_id)


def test_confirmed_consent_satisfies_a_topic_requiring_confirmation() -> None:
    grant = consent(basis=ConsentBasis.DOUBLE_OPT_IN, confirmed=True)

    decision = decide(facts(consents=(grant,)), intent(requires_confirmation=True), NOW)

    assert_allowed(decision, grant.event_id)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ConsentStatus.WITHDRAWN, Reason.CONSENT_WITHDRAWN),
        (ConsentStatus.LAPSED, Reason.CONSENT_LAPSED),
        (ConsentStatus.VOID, Reason.CONSENT_VOID_REASSIGNED),
    ],
)
@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_ended_consent_is_denied_with_its_own_reason(
    status: ConsentStatus, reason: Reason, category: Category
) -> None:
    recipient = facts(consents=(consent(status=status),))

    assert_denied(decide(recipient, intent(category=category), NOW), reason)


@pytest.mark.parametrize(
    "expires_at", [NOW, NOW - timedelta(microseconds=1), NOW - timedelta(days=3)]
)
def test_active_consent_past_its_expiry_has_lapsed(expires_at: datetime) -> None:
    recipient = facts(consents=(consent(expires_at=expires_at),))

    assert_denied(decide(recipient, intent(), NOW), Reason.CONSENT_LAPSED)


def test_active_consent_before_its_expiry_authorises() -> None:
    grant = consent(expires_at=NOW + timedelta(seconds=1))

    assert_allowed(decide(facts(consents=(grant,)), intent(), NOW), grant.event_id)


def test_a_withdrawal_of_service_messages_blocks_service() -> None:
    recipient = facts(
        consents=(
            consent(
                topic=UMBRELLA,
                basis=ConsentBasis.SERVICE_NECESSITY,
                status=ConsentStatus.WITHDRAWN,
            ),
        )
    )

    decision = decide(recipient, intent(category=SERVICE, channel=Channel.SMS), NOW)

    assert_denied(decision, Reason.CONSENT_WITHDRAWN)


# --- bases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("country", ["US", "CA", "DE", "IN", "GB"])
def test_a_service_basis_never_authorises_marketing(country: str) -> None:
    recipient = facts(country=country, consents=(consent(basis=ConsentBasis.SERVICE_NECESSITY),))

    assert_denied(decide(recipient, intent(), NOW), Reason.NO_CONSENT)


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS])
def test_a_service_basis_authorises_service(channel: Channel) -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY, confirmed=False)

    decision = decide(facts(consents=(basis,)), intent(category=SERVICE, channel=channel), NOW)

    assert_allowed(decision, basis.event_id)


def test_implied_consent_authorises_marketing_email_in_canada() -> None:
    implied = consent(basis=ConsentBasis.IMPLIED_RELATIONSHIP, expires_at=NOW + timedelta(days=90))

    decision = decide(facts(country="CA", consents=(implied,)), intent(), NOW)

    assert_allowed(decision, implied.event_id)


def test_implied_consent_follows_the_tenants_country_when_the_recipients_is_unknown() -> None:
    implied = consent(basis=ConsentBasis.IMPLIED_RELATIONSHIP)

    decision = decide(facts(country=None, tenant_country="CA", consents=(implied,)), intent(), NOW)

    assert_allowed(decision, implied.event_id)


@pytest.mark.parametrize(("country", "tenant_country"), [("US", "US"), ("GB", "GB"), ("US", "CA")])
def test_implied_consent_does_not_authorise_marketing_outside_canada(
    country: str, tenant_country: str
) -> None:
    recipient = facts(
        country=country,
        tenant_country=tenant_country,
        consents=(consent(basis=ConsentBasis.IMPLIED_RELATIONSHIP),),
    )

    assert_denied(decide(recipient, intent(), NOW), Reason.NO_CONSENT)


def test_implied_consent_that_expired_has_lapsed() -> None:
    implied = consent(basis=ConsentBasis.IMPLIED_RELATIONSHIP, expires_at=NOW - timedelta(days=1))

    decision = decide(facts(country="CA", consents=(implied,)), intent(), NOW)

    assert_denied(decision, Reason.CONSENT_LAPSED)


@pytest.mark.parametrize("country", ["DE", "FR", "IE"])
def test_soft_opt_in_authorises_marketing_email_in_the_eu(country: str) -> None:
    soft = consent(basis=ConsentBasis.SOFT_OPT_IN, confirmed=False)

    decision = decide(facts(country=country, consents=(soft,)), intent(), NOW)

    assert_allowed(decision, soft.event_id)


@pytest.mark.parametrize("country", ["GB", "US", "CA", "IN"])
def test_soft_opt_in_does_not_authorise_marketing_outside_the_eu(country: str) -> None:
    recipient = facts(country=country, consents=(consent(basis=ConsentBasis.SOFT_OPT_IN),))

    assert_denied(decide(recipient, intent(), NOW), Reason.NO_CONSENT)


def test_an_unlawful_basis_is_no_consent_even_when_confirmation_is_also_missing() -> None:
    # Confirming would not help: the basis itself does not authorise marketing here.
    recipient = facts(
        country="GB", consents=(consent(basis=ConsentBasis.SOFT_OPT_IN, confirmed=False),)
    )

    decision = decide(recipient, intent(requires_confirmation=True), NOW)

    assert_denied(decision, Reason.NO_CONSENT)


# --- WhatsApp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_whatsapp_template_needs_an_express_opt_in_whatever_the_category(
    category: Category,
) -> None:
    recipient = facts(consents=(consent(basis=ConsentBasis.SERVICE_NECESSITY),))

    decision = decide(recipient, intent(category=category, channel=Channel.WHATSAPP), NOW)

    assert_denied(decision, Reason.NO_CONSENT)


@pytest.mark.parametrize("basis", [ConsentBasis.EXPRESS, ConsentBasis.DOUBLE_OPT_IN])
@pytest.mark.parametrize("category", [MARKETING, SERVICE])
def test_whatsapp_template_with_an_express_opt_in_is_allowed(
    basis: ConsentBasis, category: Category
) -> None:
    opt_in = consent(basis=basis)

    decision = decide(
        facts(consents=(opt_in,)), intent(category=category, channel=Channel.WHATSAPP), NOW
    )

    assert_allowed(decision, opt_in.event_id)


def test_implied_consent_does_not_authorise_whatsapp_even_in_canada() -> None:
    recipient = facts(country="CA", consents=(consent(basis=ConsentBasis.IMPLIED_RELATIONSHIP),))

    decision = decide(recipient, intent(channel=Channel.WHATSAPP), NOW)

    assert_denied(decision, Reason.NO_CONSENT)


@pytest.mark.parametrize(
    "last_inbound_at", [None, NOW - timedelta(hours=25), NOW - timedelta(hours=24)]
)
def test_free_form_whatsapp_outside_the_24_hour_window_is_denied(
    last_inbound_at: datetime | None,
) -> None:
    recipient = facts(last_inbound_at=last_inbound_at)

    decision = decide(
        recipient,
        intent(category=SERVICE, channel=Channel.WHATSAPP, whatsapp_free_form=True),
        NOW,
    )

    assert_denied(decision, Reason.OUTSIDE_SERVICE_WINDOW)


def test_free_form_whatsapp_inside_the_window_needs_no_consent() -> None:
    recipient = facts(consents=(), last_inbound_at=NOW - timedelta(hours=23, minutes=59))

    decision = decide(
        recipient,
        intent(category=SERVICE, channel=Channel.WHATSAPP, whatsapp_free_form=True),
        NOW,
    )

    assert_allowed(decision, None)


def test_free_form_whatsapp_is_still_stopped_by_a_block() -> None:
    recipient = facts(
        last_inbound_at=NOW - timedelta(hours=1),
        suppressions=(suppression(SuppressionReason.BLOCKED),),
    )

    decision = decide(
        recipient,
        intent(category=SERVICE, channel=Channel.WHATSAPP, whatsapp_free_form=True),
        NOW,
    )

    assert_denied(decision, "SUPPRESSED_BLOCKED")


def test_the_free_form_flag_means_nothing_off_whatsapp() -> None:
    decision = decide(facts(consents=()), intent(whatsapp_free_form=True), NOW)

    assert_denied(decision, Reason.NO_CONSENT)


def test_a_withdrawal_of_service_messages_stops_even_a_reply_inside_the_window() -> None:
    recipient = facts(
        consents=(consent(topic=TOPIC, status=ConsentStatus.WITHDRAWN),),
        last_inbound_at=NOW - timedelta(hours=1),
    )
    service_reply = intent(category=SERVICE, channel=Channel.WHATSAPP, whatsapp_free_form=True)

    decision = decide(recipient, service_reply, NOW)

    assert_denied(decision, Reason.CONSENT_WITHDRAWN)
    explained = explain(recipient, service_reply, NOW)
    assert explained.decision == decision
    assert [c.reason for c in explained.checks if c.reason] == [Reason.CONSENT_WITHDRAWN]


def test_free_form_whatsapp_marketing_still_honours_a_withdrawal() -> None:
    recipient = facts(
        consents=(consent(topic=UMBRELLA, status=ConsentStatus.WITHDRAWN),),
        last_inbound_at=NOW - timedelta(hours=1),
    )

    decision = decide(recipient, intent(channel=Channel.WHATSAPP, whatsapp_free_form=True), NOW)

    assert decision.verdict is Verdict.DENY
    assert Reason.CONSENT_WITHDRAWN in decision.reasons


# --- umbrella topic ---------------------------------------------------------------------------


def test_umbrella_consent_alone_authorises_the_topic() -> None:
    umbrella = consent(topic=UMBRELLA)

    assert_allowed(decide(facts(consents=(umbrella,)), intent(), NOW), umbrella.event_id)


def test_umbrella_withdrawal_newer_than_a_topic_grant_wins() -> None:
    recipient = facts(
        consents=(
            consent(topic=TOPIC, seq=5),
            consent(topic=UMBRELLA, status=ConsentStatus.WITHDRAWN, seq=9),
        )
    )

    assert_denied(decide(recipient, intent(), NOW), Reason.CONSENT_WITHDRAWN)


def test_topic_grant_newer_than_an_umbrella_withdrawal_wins() -> None:
    grant = consent(topic=TOPIC, seq=9)
    recipient = facts(
        consents=(consent(topic=UMBRELLA, status=ConsentStatus.WITHDRAWN, seq=5), grant)
    )

    assert_allowed(decide(recipient, intent(), NOW), grant.event_id)


def test_topic_withdrawal_newer_than_an_umbrella_grant_wins() -> None:
    recipient = facts(
        consents=(
            consent(topic=UMBRELLA, seq=2),
            consent(topic=TOPIC, status=ConsentStatus.WITHDRAWN, seq=7),
        )
    )

    assert_denied(decide(recipient, intent(), NOW), Reason.CONSENT_WITHDRAWN)


def test_the_newest_state_wins_whatever_order_the_facts_come_in() -> None:
    newest = consent(topic=UMBRELLA, seq=30)
    states = (consent(topic=TOPIC, status=ConsentStatus.WITHDRAWN, seq=20), newest)

    assert_allowed(decide(facts(consents=states), intent(), NOW), newest.event_id)
    assert_allowed(decide(facts(consents=states[::-1]), intent(), NOW), newest.event_id)


# --- 8. timing: quiet hours -------------------------------------------------------------------

NEW_YORK = "America/New_York"


def us_recipient(time_zone: str | None = NEW_YORK, **overrides: Any) -> RecipientFacts:
    return facts(country="US", tenant_country="US", time_zone=time_zone, **overrides)


def test_marketing_sms_at_22_00_in_new_york_waits_until_08_00_local() -> None:
    grant = consent()
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 EDT on 10 June

    decision = decide(us_recipient(consents=(grant,)), intent(channel=Channel.SMS), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.QUIET_HOURS,)
    assert decision.defer_until == datetime(2025, 6, 11, 12, 0, tzinfo=UTC)  # 08:00 EDT
    assert decision.consent_event_id == grant.event_id
    assert not decision.allowed


def test_marketing_voice_call_before_08_00_waits_until_08_00_the_same_day() -> None:
    now = datetime(2025, 6, 11, 11, 30, tzinfo=UTC)  # 07:30 EDT

    decision = decide(us_recipient(), intent(channel=Channel.VOICE), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.defer_until == datetime(2025, 6, 11, 12, 0, tzinfo=UTC)


def test_quiet_hours_use_the_recipients_own_time_zone() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York, 19:00 in Los Angeles
    grant = consent()

    decision = decide(
        us_recipient("America/Los_Angeles", consents=(grant,)), intent(channel=Channel.SMS), now
    )

    assert_allowed(decision, grant.event_id)


def test_us_recipient_with_unknown_time_zone_must_be_inside_hours_in_every_us_zone() -> None:
    now = datetime(2025, 6, 11, 12, 30, tzinfo=UTC)  # 08:30 New York, 02:30 Honolulu

    decision = decide(us_recipient(None), intent(channel=Channel.SMS), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.QUIET_HOURS,)
    assert decision.defer_until == datetime(2025, 6, 11, 18, 0, tzinfo=UTC)  # 08:00 Honolulu


def test_the_same_moment_is_fine_for_a_us_recipient_known_to_be_in_new_york() -> None:
    now = datetime(2025, 6, 11, 12, 30, tzinfo=UTC)

    assert decide(us_recipient(), intent(channel=Channel.SMS), now).verdict is Verdict.ALLOW


def test_indian_quiet_hours_are_stated_in_ist_whatever_the_recipients_zone() -> None:
    now = datetime(2025, 6, 11, 16, 0, tzinfo=UTC)  # 21:30 IST, 12:00 in New York
    recipient = facts(country="IN", tenant_country="IN", time_zone=NEW_YORK)

    decision = decide(recipient, intent(channel=Channel.SMS), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.QUIET_HOURS,)
    assert decision.defer_until == datetime(2025, 6, 12, 4, 30, tzinfo=UTC)  # 10:00 IST


def test_indian_promotional_sms_before_10_00_ist_waits() -> None:
    now = datetime(2025, 6, 11, 3, 30, tzinfo=UTC)  # 09:00 IST

    decision = decide(facts(country="IN"), intent(channel=Channel.SMS), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.defer_until == datetime(2025, 6, 11, 4, 30, tzinfo=UTC)


def test_the_recipients_country_chooses_the_pack_over_the_tenants() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York
    recipient = facts(country="GB", tenant_country="US", time_zone=NEW_YORK)

    assert decide(recipient, intent(channel=Channel.SMS), now).verdict is Verdict.ALLOW


def test_the_tenants_country_chooses_the_pack_when_the_recipients_is_unknown() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York
    recipient = facts(country=None, tenant_country="US", time_zone=NEW_YORK)

    decision = decide(recipient, intent(channel=Channel.SMS), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.QUIET_HOURS,)


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.WHATSAPP])
def test_quiet_hours_do_not_apply_to_email_or_whatsapp(channel: Channel) -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York
    grant = consent()

    decision = decide(us_recipient(consents=(grant,)), intent(channel=channel), now)

    assert_allowed(decision, grant.event_id)


def test_service_sms_is_not_held_back_by_quiet_hours() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY)

    decision = decide(
        us_recipient(consents=(basis,)), intent(category=SERVICE, channel=Channel.SMS), now
    )

    assert_allowed(decision, basis.event_id)


# --- 8. timing: frequency cap -----------------------------------------------------------------

WEEKLY_TWO = FrequencyCap(max_messages=2, period=timedelta(days=7))


def test_frequency_cap_defers_marketing_until_the_oldest_counted_send_leaves_the_window() -> None:
    grant = consent()
    recipient = facts(
        consents=(grant,), recent_sends=(NOW - timedelta(days=1), NOW - timedelta(days=3))
    )

    decision = decide(recipient, intent(frequency_cap=WEEKLY_TWO), NOW)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.FREQUENCY_CAP,)
    assert decision.defer_until == NOW + timedelta(days=4)
    assert decision.consent_event_id == grant.event_id


def test_frequency_cap_counts_the_nth_most_recent_send_whatever_the_input_order() -> None:
    sends = (NOW - timedelta(days=3), NOW - timedelta(days=1), NOW - timedelta(days=2))

    decision = decide(facts(recent_sends=sends), intent(frequency_cap=WEEKLY_TWO), NOW)

    assert decision.verdict is Verdict.DEFER
    assert decision.defer_until == NOW + timedelta(days=5)


def test_under_the_cap_is_allowed() -> None:
    cap = FrequencyCap(max_messages=3, period=timedelta(days=7))
    recipient = facts(recent_sends=(NOW - timedelta(days=1), NOW - timedelta(days=2)))

    assert decide(recipient, intent(frequency_cap=cap), NOW).verdict is Verdict.ALLOW


def test_sends_outside_the_period_do_not_count() -> None:
    recipient = facts(
        recent_sends=(NOW - timedelta(days=1), NOW - timedelta(days=7), NOW - timedelta(days=9))
    )

    assert decide(recipient, intent(frequency_cap=WEEKLY_TWO), NOW).verdict is Verdict.ALLOW


def test_frequency_cap_never_defers_service() -> None:
    basis = consent(basis=ConsentBasis.SERVICE_NECESSITY)
    recipient = facts(
        consents=(basis,),
        recent_sends=tuple(NOW - timedelta(hours=h) for h in range(1, 10)),
    )

    decision = decide(recipient, intent(category=SERVICE, frequency_cap=WEEKLY_TWO), NOW)

    assert_allowed(decision, basis.event_id)


def test_quiet_hours_are_reported_before_the_frequency_cap() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York
    recipient = us_recipient(recent_sends=(now - timedelta(hours=1), now - timedelta(hours=2)))

    decision = decide(recipient, intent(channel=Channel.SMS, frequency_cap=WEEKLY_TWO), now)

    assert decision.verdict is Verdict.DEFER
    assert decision.reasons == (Reason.QUIET_HOURS,)


# --- precedence and order ---------------------------------------------------------------------


def test_a_deny_takes_precedence_over_quiet_hours() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York

    decision = decide(us_recipient(consents=()), intent(channel=Channel.SMS), now)

    assert_denied(decision, Reason.NO_CONSENT)


def test_a_deny_takes_precedence_over_the_frequency_cap() -> None:
    recipient = facts(
        consents=(consent(status=ConsentStatus.WITHDRAWN),),
        recent_sends=(NOW - timedelta(days=1), NOW - timedelta(days=2)),
    )

    decision = decide(recipient, intent(frequency_cap=WEEKLY_TWO), NOW)

    assert_denied(decision, Reason.CONSENT_WITHDRAWN)


def test_every_deny_reason_is_reported_in_the_documented_order() -> None:
    recipient = facts(
        tenant_status=TenantStatus.SUSPENDED,
        suppressions=(suppression(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),),
        dnc_listed=True,
        adult_on=NOW.date() + timedelta(days=30),
        consents=(consent(status=ConsentStatus.PENDING, confirmed=False),),
    )

    decision = decide(recipient, intent(channel=Channel.SMS, content_compliant=False), NOW)

    assert_denied(
        decision,
        Reason.TENANT_NOT_ACTIVE,
        Reason.CONTENT_NOT_COMPLIANT,
        "SUPPRESSED_UNSUBSCRIBED",
        Reason.DNC_REGISTERED,
        Reason.MINOR,
        Reason.CONSENT_PENDING,
    )


def test_outside_service_window_is_reported_last() -> None:
    recipient = facts(
        tenant_status=TenantStatus.PAUSED,
        adult_on=NOW.date() + timedelta(days=30),
        last_inbound_at=NOW - timedelta(days=2),
    )

    decision = decide(recipient, intent(channel=Channel.WHATSAPP, whatsapp_free_form=True), NOW)

    assert_denied(decision, Reason.TENANT_NOT_ACTIVE, Reason.MINOR, Reason.OUTSIDE_SERVICE_WINDOW)

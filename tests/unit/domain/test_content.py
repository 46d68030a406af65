"""SMS segments and the content review."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.content import (
    DEFAULT_RULES,
    GSM_BASIC,
    GSM_EXTENSION,
    ContentUnderReview,
    ReviewRules,
    has_opt_out_instruction,
    review_message,
    sms_segments,
)
from consentry.domain.model import Category, Channel

BASIC = "".join(sorted(GSM_BASIC))
gsm_basic = st.text(alphabet=BASIC)
non_gsm = st.characters(
    blacklist_characters=list(GSM_BASIC | GSM_EXTENSION), blacklist_categories=["Cs"]
)

# -- sms_segments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("Price: 5€ {ok} [x] ~ | \\ ^", "GSM-7", 35, 1),
        ("Ça coûte 5 €", "UCS-2", 12, 1),  # û is not in GSM 03.38
        ("é è ù ì ò Ç Ø Å Æ ß É Ä Ö Ñ Ü § ¿ ¡ à ä ö ñ ü ΔΦΓΛΩΠΨΣΘΞ", "GSM-7", 56, 1),
        ("ç", "UCS-2", 1, 1),  # only the capital Ç is in the alphabet
        ("a" * 70 + "’", "UCS-2", 71, 2),  # noqa: RUF001  (a typographic apostrophe)
        ("😀" * 35, "UCS-2", 70, 1),  # astral characters are two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_known_examples(text: str, encoding: str, units: int, segments: int) -> None:
    result = sms_segments(text)

    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)


def test_per_segment_drops_to_the_concatenated_size() -> None:
    assert sms_segments("a" * 160).per_segment == 160
    assert sms_segments("a" * 161).per_segment == 153
    assert sms_segments("ü" * 10 + "ç").per_segment == 70
    assert sms_segments("ç" * 71).per_segment == 67


def test_an_escape_sequence_never_straddles_two_segments() -> None:
    # 152 septets then a two-septet character: 154 units, but the euro moves whole into the
    # second segment, and the 153 units after it need a third.
    text = "a" * 152 + "€" + "a" * 152
    result = sms_segments(text)

    assert result.units == 306
    assert math.ceil(result.units / 153) == 2
    assert result.segments == 3


@given(st.integers(min_value=1, max_value=160), st.data())
def test_up_to_160_basic_gsm_characters_are_one_segment(n: int, data: st.DataObject) -> None:
    text = data.draw(st.text(alphabet=BASIC, min_size=n, max_size=n))

    result = sms_segments(text)

    assert (result.encoding, result.units, result.segments) == ("GSM-7", n, 1)


@given(gsm_basic.filter(bool), non_gsm)
def test_one_non_gsm_character_switches_to_ucs2(text: str, extra: str) -> None:
    result = sms_segments(text + extra)

    assert result.encoding == "UCS-2"
    assert result.units == len((text + extra).encode("utf-16-le")) // 2


@given(gsm_basic)
def test_basic_gsm_segments_follow_the_formula(text: str) -> None:
    result = sms_segments(text)
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)

    assert result.segments == expected


@given(st.text(alphabet=BASIC + "".join(GSM_EXTENSION)))
def test_extension_characters_count_twice(text: str) -> None:
    result = sms_segments(text)

    assert result.units == len(text) + sum(c in GSM_EXTENSION for c in text)
    assert result.segments >= (math.ceil(result.units / 153) if result.units > 160 else 0)


@given(st.text())
def test_segments_never_exceed_what_the_units_need_by_much(text: str) -> None:
    result = sms_segments(text)
    if result.units <= result.per_segment:
        assert result.segments == (1 if text else 0)
    else:
        # Packing whole characters costs at most one unit of room per segment.
        assert result.segments <= math.ceil(result.units / (result.per_segment - 1))


# -- review: content checks ---------------------------------------------------------------------


def email(
    subject: str = "Our spring menu", text: str = "Hello there.", **kw: object
) -> ContentUnderReview:
    fields: dict[str, Any] = {"channel": Channel.EMAIL, "category": Category.MARKETING}
    return ContentUnderReview(**{**fields, "subject": subject, "text": text, **kw})


def codes(msg: ContentUnderReview, rules: ReviewRules = DEFAULT_RULES) -> dict[str, str]:
    return {f.code: f.severity for f in review_message(msg, rules).findings}


def test_a_plain_message_passes() -> None:
    review = review_message(email())

    assert review.passed
    assert review.findings == ()


@pytest.mark.parametrize(
    "subject",
    ["Re: your order", "RE: offer", "Fwd: deal", "FW: deal", "Fw: deal", "AW: Angebot",
     "WG: Angebot", "TR: offre", "  re : spaced", "Re[2]: again", "Re：全角"],  # noqa: RUF001
)  # fmt: skip
def test_reply_and_forward_prefixes_outside_a_thread_are_deceptive(subject: str) -> None:
    assert codes(email(subject)) == {"DECEPTIVE_SUBJECT": "error"}
    assert "DECEPTIVE_SUBJECT" not in codes(email(subject, in_reply_thread=True))


@pytest.mark.parametrize("subject", ["Recipes for spring", "Fwiw, new hours", "Tracking: #123"])
def test_words_that_merely_start_like_a_prefix_are_fine(subject: str) -> None:
    assert "DECEPTIVE_SUBJECT" not in codes(email(subject))


@pytest.mark.parametrize(
    "link",
    ["https://bit.ly/3xYz", "http://tinyurl.com/abc", "bit.ly/abc", "BIT.LY/abc",
     "https://t.co/x", "see goo.gl.", "https://user@ow.ly/x", "https://go.rebrand.ly/x",
     "//is.gd/x", "https://bl.ink:443/x", "(https://cutt.ly/x)"],
)  # fmt: skip
def test_link_shorteners_are_errors(link: str) -> None:
    found = review_message(email(text=f"Book now: {link} today"))

    assert [(f.code, f.severity, f.field) for f in found.findings] == [
        ("LINK_SHORTENER", "error", "text")
    ]


@pytest.mark.parametrize(
    "text",
    ["https://habit.ly/x", "https://example.com/bit.ly", "mail info@bit.ly.example.org",
     "write to help@t.co", "https://t.com/x", "https://shop.example/?ref=s.idx"],
)  # fmt: skip
def test_hosts_that_only_resemble_a_shortener_pass(text: str) -> None:
    assert "LINK_SHORTENER" not in codes(email(text=text))


def test_shorteners_in_html_hrefs_are_found() -> None:
    html = '<p>Book <a href="https://rb.gy/abc">here</a></p>'

    found = review_message(email(html=html)).findings

    assert [(f.code, f.field) for f in found] == [("LINK_SHORTENER", "html")]


def test_spam_phrases_warn_case_insensitively_on_word_boundaries() -> None:
    assert codes(email(text="ACT   NOW and save")) == {"SPAM_PHRASE": "warning"}
    assert codes(email(text="It is 100% FREE")) == {"SPAM_PHRASE": "warning"}
    assert codes(email(text="Our winners club")) == {}  # "winner" is not "winners"
    assert codes(email(text="react now")) == {}
    assert review_message(email(text="Act now")).passed


def test_disrespectful_phrases_fail() -> None:
    assert codes(email(text="Pay up, you idiot.")) == {"DISRESPECTFUL_PHRASE": "error"}


def test_phrase_lists_are_configurable() -> None:
    rules = replace(DEFAULT_RULES, spam_phrases=("free pizza",), disrespectful_phrases=())

    assert codes(email(text="Free   Pizza Friday, act now, you idiot"), rules) == {
        "SPAM_PHRASE": "warning"
    }


def test_capitals() -> None:
    assert codes(email(subject="BIG SPRING SALE")) == {"EXCESSIVE_CAPITALS": "error"}
    assert codes(email(subject="BIG SPRING SALE on tyres")) == {"EXCESSIVE_CAPITALS": "warning"}
    assert codes(email(subject="VW")) == {}  # too short to be shouting
    assert codes(email(text="EVERYTHING MUST GO this weekend")) == {"EXCESSIVE_CAPITALS": "warning"}
    assert codes(email(text="Visit the NHS or DVLA site for details")) == {}
    strict = replace(DEFAULT_RULES, capitals_threshold=0.1)
    assert codes(email(text="Visit the NHS or DVLA site for details"), strict) == {
        "EXCESSIVE_CAPITALS": "warning"
    }


def test_exclamation_marks() -> None:
    assert codes(email(subject="Sale now on!")) == {}
    assert codes(email(subject="Sale! Now on!")) == {"EXCESSIVE_EXCLAMATION": "error"}
    assert codes(email(subject="Sale now on!!")) == {"EXCESSIVE_EXCLAMATION": "error"}
    assert codes(email(text="We missed you!!")) == {"EXCESSIVE_EXCLAMATION": "warning"}
    lenient = replace(DEFAULT_RULES, max_subject_exclamations=3)
    assert codes(email(subject="Sale! Now! On!"), lenient) == {}


# -- review: required elements of composed marketing ------------------------------------------

UNSUB = "https://links.example/u/tok?x=1&y=2"
ADDRESS = "1 High Street\nSpringfield 12345"
GOOD_HEADERS = {
    "List-Unsubscribe": f"<{UNSUB}>,\r\n <mailto:u+tok@shop.example>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}
GOOD_TEXT = f"Hello.\n\n-- \nShop Ltd\n1 High Street\nSpringfield 12345\nUnsubscribe: {UNSUB}\n"
GOOD_HTML = (
    "<p>Hello.</p><p>Shop Ltd<br>1 High Street, Springfield 12345<br>"
    '<a href="https://links.example/u/tok?x=1&amp;y=2">Unsubscribe</a></p>'
)


def composed(**kw: object) -> ContentUnderReview:
    base: dict[str, object] = {
        "text": GOOD_TEXT,
        "html": GOOD_HTML,
        "headers": GOOD_HEADERS,
        "composed": True,
        "postal_address": ADDRESS,
        "unsubscribe_url": UNSUB,
    }
    base.update(kw)
    return email(**base)


def test_a_complete_marketing_email_passes() -> None:
    assert review_message(composed()).findings == ()


def test_required_elements_are_checked_only_on_composed_marketing() -> None:
    bare = {"headers": {}, "text": "Hi", "html": None, "postal_address": None}

    assert review_message(composed(**bare, composed=False)).passed
    assert review_message(composed(**bare, category=Category.SERVICE)).passed
    assert codes(composed(**bare)) == {
        "MISSING_UNSUBSCRIBE": "error",
        "MISSING_ONE_CLICK": "error",
        "MISSING_POSTAL_ADDRESS": "error",
    }


@pytest.mark.parametrize(
    "value",
    [
        f"<{UNSUB}>",
        "<mailto:u@shop.example>",
        f"<{UNSUB.replace('https', 'http')}>, <mailto:u@x.example>",
        "",
    ],
)
def test_list_unsubscribe_needs_https_and_mailto(value: str) -> None:
    headers = {**GOOD_HEADERS, "List-Unsubscribe": value}

    assert codes(composed(headers=headers)) == {"MISSING_UNSUBSCRIBE": "error"}


def test_header_names_are_case_insensitive_and_one_click_is_exact() -> None:
    lower = {k.lower(): v for k, v in GOOD_HEADERS.items()}
    assert review_message(composed(headers=lower)).passed

    wrong = {**GOOD_HEADERS, "List-Unsubscribe-Post": "List-Unsubscribe=Yes"}
    assert codes(composed(headers=wrong)) == {"MISSING_ONE_CLICK": "error"}


def test_the_unsubscribe_link_must_be_visible_in_every_part() -> None:
    no_text_link = GOOD_TEXT.replace(UNSUB, "https://links.example/other")
    no_html_link = GOOD_HTML.replace("tok?x=1&amp;y=2", "other")

    assert codes(composed(text=no_text_link)) == {"MISSING_UNSUBSCRIBE": "error"}
    assert codes(composed(html=no_html_link)) == {"MISSING_UNSUBSCRIBE": "error"}


def test_the_postal_address_must_appear_in_text_and_html() -> None:
    assert codes(composed(postal_address="2 Low Road")) == {"MISSING_POSTAL_ADDRESS": "error"}
    no_html_address = GOOD_HTML.replace("Springfield", "")
    assert codes(composed(html=no_html_address)) == {"MISSING_POSTAL_ADDRESS": "error"}


def sms(text: str, **kw: object) -> ContentUnderReview:
    fields: dict[str, Any] = {"channel": Channel.SMS, "category": Category.MARKETING}
    return ContentUnderReview(
        **{**fields, "text": text, "composed": True, "brand_name": "Kwik Fit", **kw}
    )


def test_marketing_sms_names_the_brand_and_says_stop() -> None:
    assert review_message(sms("Kwik Fit: 20% off tyres. Reply STOP to opt out.")).passed
    assert codes(sms("20% off tyres. Reply STOP to opt out.")) == {
        "MISSING_SENDER_IDENTITY": "error"
    }
    assert codes(sms("Kwik Fit: 20% off tyres.")) == {"MISSING_OPT_OUT_INSTRUCTION": "error"}
    assert codes(sms("Kwik Fit: don't stop now")) == {"MISSING_OPT_OUT_INSTRUCTION": "error"}
    assert review_message(sms("Kwik Fit: offer", category=Category.SERVICE)).passed


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Reply STOP to opt out", True), ("Text stop to end", True), ("STOP=end", True),
     ("Don't stop me now", False), ("Stopwatch sale", False), ("Reply STOPPED", False)],
)  # fmt: skip
def test_opt_out_instruction(text: str, expected: bool) -> None:
    assert has_opt_out_instruction(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "Your car is ready. Book your next service and get 20% off!",
        "Invoice attached. Use promo code SPRING for your next visit.",
        "Appointment confirmed. Shop now for winter tyres.",
    ],
)
def test_an_offer_in_a_service_message_fails_its_review(text: str) -> None:
    review = review_message(ContentUnderReview(Channel.SMS, Category.SERVICE, text))
    assert not review.passed
    assert "PROMOTIONAL_IN_SERVICE" in review.codes
    # The same words are what marketing is for.
    assert (
        "PROMOTIONAL_IN_SERVICE"
        not in review_message(ContentUnderReview(Channel.SMS, Category.MARKETING, text)).codes
    )


@pytest.mark.parametrize(
    "text",
    [
        "Your car is ready for collection at 5pm.",
        "Your order 4411 has shipped. Bill of sale attached.",
        "Your discount of 20 EUR was applied to invoice 88.",
    ],
)
def test_a_plain_service_message_passes(text: str) -> None:
    assert review_message(ContentUnderReview(Channel.SMS, Category.SERVICE, text)).passed

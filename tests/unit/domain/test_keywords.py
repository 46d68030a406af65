"""SMS keyword classification: natural variants, false positives, languages, replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.keywords import (
    DEFAULT_KEYWORDS,
    KeywordLists,
    KeywordReplyTexts,
    classify,
    help_reply,
    normalise,
    opt_in_reply,
    opt_out_reply,
)
from consentry.domain.signals import KeywordKind

OPT_OUT, OPT_IN, HELP = KeywordKind.OPT_OUT, KeywordKind.OPT_IN, KeywordKind.HELP
REFUSAL, OTHER = KeywordKind.REFUSAL_LIKE, KeywordKind.OTHER
EN_KEYWORDS = [
    *(("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout")),
    *(("start", "yes", "unstop", "help", "info")),
]


@pytest.mark.parametrize(
    "text",
    ["STOP", "Stop.", " stop ", "STOP!!!", "stop please", "please stop", "stop all", "opt out",
     "opt-out", "Opt Out", "unsubscribe me", "stop texting me", "STOPALL", "Unsubscribe",
     "cancel", "END", "quit", "Revoke", "OPTOUT", "🛑 STOP 🛑", "stop stop stop",
     "Stop please, thank you", "\tstop\n", "unsubscribe me from this list", "\u201cStop\u201d"],
)  # fmt: skip
def test_opt_out_variants(text: str) -> None:
    assert classify(text) == (OPT_OUT, "en")


@pytest.mark.parametrize("text", ["start", "Yes", "unstop", "START!", "yes please", " UNSTOP "])
def test_opt_in_variants(text: str) -> None:
    assert classify(text) == (OPT_IN, "en")


@pytest.mark.parametrize("text", ["help", "info?", "HELP!", "Info please", "help me"])
def test_help_variants(text: str) -> None:
    assert classify(text) == (HELP, "en")


@pytest.mark.parametrize(
    "text",
    [
        "Don't stop sending me deals",
        "I can't make it, please cancel my appointment",
        "cancel my appointment",
        "Yes I'll be there at 10",
        "Is the shop open until the end of the day?",
        "Can you help me find my order",
        "ok thanks",
        "",
        "   ",
        "!!!",
    ],
)
def test_ordinary_messages_are_not_keywords(text: str) -> None:
    assert classify(text) == (OTHER, None)


@pytest.mark.parametrize(
    "text",
    [
        "leave me alone",
        "who is this? don't text me",
        "remove me from your list",
        "no more messages",
        "Please stop sending me these deals",
        "STOP texting me or I will report you",
        "wrong number",
        "I want to unsubscribe from the promotions",
    ],
)
def test_refusals_without_a_keyword_go_to_review(text: str) -> None:
    assert classify(text) == (REFUSAL, "en")


def test_the_safer_reading_wins_when_kinds_are_mixed() -> None:
    assert classify("start stop") == (OPT_OUT, "en")
    assert classify("help stop") == (OPT_OUT, "en")
    assert classify("yes help") == (HELP, "en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BAJA", (OPT_OUT, "es")),
        ("para por favor", (OPT_OUT, "es")),
        ("darme de baja", (OPT_OUT, "es")),
        ("Sí", (OPT_IN, "es")),
        ("ayuda", (HELP, "es")),
        ("ARRÊT", (OPT_OUT, "fr")),
        ("stop svp", (OPT_OUT, "fr")),
        ("désabonner", (OPT_OUT, "fr")),
        ("aide", (HELP, "fr")),
        ("Stopp bitte", (OPT_OUT, "de")),
        ("Kündigen", (OPT_OUT, "de")),
        ("hilfe", (HELP, "de")),
        ("ja", (OPT_IN, "de")),
        ("laissez-moi tranquille", (REFUSAL, "fr")),
        ("no me escriban más", (REFUSAL, "es")),
        ("keine SMS mehr", (REFUSAL, "de")),
    ],
)
def test_other_languages(text: str, expected: tuple[KeywordKind, str]) -> None:
    assert classify(text) == expected


def test_lists_are_configurable_and_replace_the_defaults() -> None:
    custom = {
        "en": KeywordLists(
            language="en", opt_out=("halt",), opt_in=("resume",), help=("assist",),
            fillers=("please",),
        )
    }  # fmt: skip
    assert classify("Halt please", custom) == (OPT_OUT, "en")
    assert classify("resume", custom) == (OPT_IN, "en")
    assert classify("assist", custom) == (HELP, "en")
    assert classify("stop", custom) == (OTHER, None)  # only the tenant's own words count


def test_languages_are_tried_in_the_order_given() -> None:
    both = {"de": DEFAULT_KEYWORDS["de"], "en": DEFAULT_KEYWORDS["en"]}
    assert classify("stop", both) == (OPT_OUT, "de")
    assert classify("stop", {"en": DEFAULT_KEYWORDS["en"]}) == (OPT_OUT, "en")


def test_normalise_drops_case_accents_and_punctuation() -> None:
    assert normalise("  Opt-Out!!! 🛑 ") == ("opt", "out")
    assert normalise("Don\u2019t ARR\u00caTER") == ("dont", "arreter")


def test_opt_out_reply_names_the_brand_and_carries_no_marketing() -> None:
    text = opt_out_reply("Acme Motors")
    assert text.startswith("Acme Motors:")
    assert "unsubscribed" in text
    assert "START" in text
    for word in ("offer", "deal", "sale", "%", "http"):
        assert word not in text.lower()


def test_help_reply_names_brand_contact_and_stop() -> None:
    text = help_reply("Acme Motors", "help@acme.example")
    assert "Acme Motors" in text
    assert "help@acme.example" in text
    assert "Reply STOP to opt out" in text


def test_opt_in_reply_names_brand_frequency_stop_and_help() -> None:
    text = opt_in_reply("Acme Motors", "Up to 4 msgs/month.")
    assert "Acme Motors" in text
    assert "Up to 4 msgs/month." in text
    assert "Reply STOP to opt out" in text
    assert "HELP for help" in text


def test_replies_in_other_languages_and_unknown_languages_fall_back_to_english() -> None:
    assert "STOPP" in opt_in_reply("Acme", "2/Monat", language="de")
    assert "2/Monat" in opt_in_reply("Acme", "2/Monat", language="de")
    assert opt_out_reply("Acme", language="xx") == opt_out_reply("Acme")


def test_reply_templates_substitute_only_named_values() -> None:
    odd = KeywordLists(
        language="en", opt_out=("stop",), opt_in=(), help=(),
        opt_out_reply="$brand stopped {0} ${unknown}",
    )  # fmt: skip
    assert opt_out_reply("{brand.__class__}", lists={"en": odd}) == (
        "{brand.__class__} stopped {0} ${unknown}"
    )


def test_reply_texts_object_answers_per_brand() -> None:
    replies = KeywordReplyTexts(support_contact="+15005550006", frequency="Weekly.")
    assert replies.opt_out("Acme") == opt_out_reply("Acme")
    assert replies.opt_in("Acme") == opt_in_reply("Acme", "Weekly.")
    assert "+15005550006" in replies.help("Acme")


@given(st.text(max_size=300))
def test_classify_never_raises(text: str) -> None:
    kind, language = classify(text)
    assert kind in KeywordKind
    assert (language is None) == (kind is OTHER)


_SPACE = st.text(alphabet=" \t\n\r", max_size=4)
_TRAILING = st.text(alphabet=".,!?;:…)\"' 🛑🙏", max_size=5)


@given(
    keyword=st.sampled_from(EN_KEYWORDS),
    case=st.sampled_from([str.lower, str.upper, str.title, str.swapcase]),
    before=_SPACE,
    after=_SPACE,
    trailing=_TRAILING,
)
def test_keywords_survive_case_whitespace_and_trailing_punctuation(
    keyword: str, case: object, before: str, after: str, trailing: str
) -> None:
    assert callable(case)
    variant = f"{before}{case(keyword)}{trailing}{after}"
    assert classify(variant) == classify(keyword)
    assert classify(keyword)[0] in (OPT_OUT, OPT_IN, HELP)


@given(text=st.text(max_size=80))
def test_classification_ignores_case_and_surrounding_whitespace(text: str) -> None:
    padded = f"  {text}\n"
    assert classify(padded) == classify(text)
    if text.isascii():
        assert classify(text.upper()) == classify(text.lower())

"""A deployment's own keywords and reply texts, added to the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consentry.bootstrap import load_keywords
from consentry.domain.errors import ConfigurationError, InvalidInput
from consentry.domain.keywords import (
    DEFAULT_KEYWORDS,
    KeywordReplyTexts,
    classify,
    extend_keywords,
)
from consentry.domain.signals import KeywordKind


def test_added_words_are_understood_and_the_standard_ones_still_are() -> None:
    lists = extend_keywords({"en": {"opt_out": ["halt", "no more"], "fillers": ["kindly"]}})
    assert classify("HALT", lists) == (KeywordKind.OPT_OUT, "en")
    assert classify("kindly no more", lists) == (KeywordKind.OPT_OUT, "en")
    assert classify("STOP", lists) == (KeywordKind.OPT_OUT, "en")
    assert classify("halt", DEFAULT_KEYWORDS)[0] is KeywordKind.OTHER  # defaults untouched


def test_a_new_language_and_its_replies() -> None:
    lists = extend_keywords(
        {
            "it": {
                "opt_out": ["basta", "disiscriviti"],
                "opt_in": ["inizio"],
                "help": ["aiuto"],
                "opt_out_reply": "$brand: non riceverai altri messaggi.",
            }
        }
    )
    assert classify("Basta!", lists) == (KeywordKind.OPT_OUT, "it")
    assert classify("aiuto", lists) == (KeywordKind.HELP, "it")
    replies = KeywordReplyTexts("help@example.com", "Weekly.", language="it", lists=lists)
    assert replies.opt_out("Harbour Auto") == "Harbour Auto: non riceverai altri messaggi."


def test_a_reply_text_replaces_the_default() -> None:
    lists = extend_keywords({"en": {"help_reply": "$brand help: call $support_contact."}})
    replies = KeywordReplyTexts("+1 555 0100", "Weekly.", lists=lists)
    assert replies.help("Harbour Auto") == "Harbour Auto help: call +1 555 0100."


@pytest.mark.parametrize(
    ("custom", "named"),
    [
        ({"en": ["stop"]}, "keywords.en"),
        ({"en": {"opt_out": "halt"}}, "keywords.en.opt_out"),
        ({"en": {"opt_out": ["!!!"]}}, "keywords.en.opt_out"),
        ({"en": {"colour": ["red"]}}, "unknown field colour"),
        ({"en": {"help_reply": ""}}, "keywords.en.help_reply"),
        ({"xx": {"help": ["aide"]}}, "needs opt_out words"),
        # Replies name the business; a stop is confirmed in one message with nothing else in it.
        ({"en": {"help_reply": "Help at $support_contact."}}, "must name the business"),
        (
            {"en": {"opt_out_reply": "$brand: unsubscribed. 20% off at https://shop.example"}},
            "may not carry a link",
        ),
        ({"en": {"opt_out_reply": "$brand: see shop.com for deals"}}, "may not carry a link"),
        ({"en": {"opt_out_reply": "$brand: unsubscribed." + " ok" * 60}}, "one message"),
    ],
)
def test_a_bad_entry_is_refused_by_name(custom: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput, match=named.replace(".", r"\.")):
        extend_keywords(custom)


def test_the_keywords_file_is_read_and_a_bad_one_is_a_configuration_error(tmp_path: Path) -> None:
    assert load_keywords(None) is DEFAULT_KEYWORDS
    good = tmp_path / "keywords.json"
    good.write_text(json.dumps({"en": {"opt_out": ["halt"]}}), encoding="utf-8")
    assert classify("halt", load_keywords(good))[0] is KeywordKind.OPT_OUT
    for content in ("[]", "{not json", json.dumps({"en": {"opt_out": 3}})):
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigurationError, match="CONSENTRY_SMS_KEYWORDS_FILE"):
            load_keywords(bad)
    with pytest.raises(ConfigurationError):
        load_keywords(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("custom", "text"),
    [
        ({"en": {"opt_in": ["stop all"]}}, "Stop all"),
        ({"en": {"help": ["stop please"]}}, "stop please"),
        ({"en": {"fillers": ["stop"]}}, "start stop"),
        ({"es": {"help": ["baja ayuda"]}}, "BAJA"),
    ],
)
def test_added_words_can_never_make_a_stop_mean_something_else(
    custom: dict[str, object], text: str
) -> None:
    assert classify(text)[0] is KeywordKind.OPT_OUT
    with pytest.raises(InvalidInput, match="contains an opt-out word"):
        extend_keywords(custom)


def test_phrases_that_only_share_letters_with_an_opt_out_word_are_fine() -> None:
    lists = extend_keywords({"en": {"opt_in": ["weekend deals"], "help": ["info please"]}})
    assert classify("weekend deals", lists)[0] is KeywordKind.OPT_IN

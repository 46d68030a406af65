"""Click-to-chat opt-in texts: the reference round-trips, and only a trailing reference counts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.chat_opt_in import chat_link, parse_ref, prefilled_text

SLUGS = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)
KEYS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


@given(NAMES, NAMES, SLUGS, KEYS)
def test_the_prefilled_text_names_the_business_and_its_reference_reads_back(
    business: str, topic: str, slug: str, key: str
) -> None:
    text = prefilled_text(business, topic, slug, key)
    assert business in text
    assert parse_ref(text) == (slug, key)


def test_the_reference_may_be_spelt_loosely_but_must_end_the_message() -> None:
    assert parse_ref("Sí, envíame noticias. REF acme-1/News") == ("acme-1", "news")
    assert parse_ref("ref#acme/offers!") == ("acme", "offers")
    assert parse_ref("Ref: acme/offers and more words") is None
    assert parse_ref("hello there") is None
    assert parse_ref("Ref: a/offers") is None  # a tenant slug has at least two characters


def test_the_link_opens_a_chat_with_the_business_number_and_the_text() -> None:
    text = prefilled_text("Harbour Auto Ltd", "Weekly news", "harbour-auto", "news")
    link = urlsplit(chat_link("+44 7911 123456", text))
    assert (link.scheme, link.netloc, link.path) == ("https", "wa.me", "/447911123456")
    assert parse_qs(link.query)["text"] == [text]

"""The vocabulary: contact points per channel, umbrella topics, index values and content hashes."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from consentry.domain.model import (
    ALL_MARKETING_KEY,
    ALL_SERVICE_KEY,
    POINT_KIND,
    Category,
    Channel,
    Contact,
    PointKind,
    Topic,
    content_hash,
    point_index_value,
)

CONTACT = Contact(
    id=uuid.UUID(int=1),
    tenant_id=uuid.UUID(int=2),
    email="Ana.Silva@example.com",
    phone="+14155550100",
    whatsapp="+351912345678",
    postal_address="1 Main St",
)


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (Channel.EMAIL, "Ana.Silva@example.com"),
        (Channel.SMS, "+14155550100"),
        (Channel.VOICE, "+14155550100"),
        (Channel.WHATSAPP, "+351912345678"),
        (Channel.POST, "1 Main St"),
    ],
)
def test_each_channel_delivers_to_its_own_contact_point(channel: Channel, address: str) -> None:
    assert CONTACT.address_for(channel) == address


def test_a_contact_without_a_whatsapp_number_has_no_whatsapp_address() -> None:
    contact = Contact(id=uuid.UUID(int=1), tenant_id=uuid.UUID(int=2), phone="+14155550100")

    assert contact.address_for(Channel.WHATSAPP) is None
    assert contact.address_for(Channel.EMAIL) is None


def test_every_channel_has_a_point_kind() -> None:
    assert set(POINT_KIND) == set(Channel)


@pytest.mark.parametrize(
    ("category", "umbrella"),
    [(Category.MARKETING, ALL_MARKETING_KEY), (Category.SERVICE, ALL_SERVICE_KEY)],
)
def test_a_topics_umbrella_follows_its_category(category: Category, umbrella: str) -> None:
    topic = Topic(
        id=uuid.UUID(int=3), tenant_id=uuid.UUID(int=2), key="news", name="News", category=category
    )

    assert topic.umbrella_key() == umbrella


def test_email_index_values_fold_case() -> None:
    assert point_index_value(PointKind.EMAIL, "Ana.Silva@Example.com") == "ana.silva@example.com"


def test_phone_index_values_are_kept_as_given() -> None:
    assert point_index_value(PointKind.PHONE, "+14155550100") == "+14155550100"


def test_postal_index_values_fold_case_and_whitespace() -> None:
    assert point_index_value(PointKind.POSTAL, "  1 Main  St\n Springfield ") == (
        "1 main st springfield"
    )


def test_content_hash_quotes_the_exact_words() -> None:
    body = "We will text you offers. Reply STOP to opt out."

    assert content_hash(body) == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert content_hash(body) != content_hash(body + " ")

"""A tenant's sealing keys seal, index and digest exactly as the key ring does, also once
pickled to a helper process."""

from __future__ import annotations

import pickle
import uuid

import pytest

from consentry.domain.errors import InvalidInput, KeyUnavailable
from consentry.domain.model import PointKind
from consentry.persistence.crypto import FileKeyRing

RING = FileKeyRing({1: b"\x01" * 32, 2: b"\x03" * 32}, 2, b"\x02" * 32)


@pytest.mark.parametrize("helper", [False, True], ids=["here", "pickled"])
def test_sealing_keys_agree_with_the_key_ring(helper: bool) -> None:
    tenant = uuid.uuid4()
    wrapped = RING.new_wrapped_data_key(tenant)
    keys = RING.sealing_keys(tenant, wrapped)
    if helper:
        keys = pickle.loads(pickle.dumps(keys))  # noqa: S301  (our own object)
    sealed = keys.seal("contacts.email", "ana@example.com")
    assert sealed is not None
    assert RING.decrypt(tenant, wrapped, "contacts.email", sealed) == "ana@example.com"
    with pytest.raises(KeyUnavailable):  # bound to its column, as the ring's own ciphertext
        RING.decrypt(tenant, wrapped, "contacts.name", sealed)
    assert keys.seal("contacts.email", None) is None
    assert keys.seal("contacts.email", "ana@example.com") != sealed  # a fresh nonce each time
    assert keys.blind_index(PointKind.EMAIL, "ana@example.com") == RING.blind_index(
        PointKind.EMAIL, "ana@example.com"
    )
    assert keys.digest("203.0.113.9") == RING.digest("203.0.113.9")
    assert keys.digest(None) is None


def test_another_tenants_wrapped_key_does_not_unwrap() -> None:
    tenant = uuid.uuid4()
    wrapped = RING.new_wrapped_data_key(tenant)
    with pytest.raises(KeyUnavailable):
        RING.sealing_keys(uuid.uuid4(), wrapped)


def test_text_that_is_not_unicode_is_refused_naming_the_column() -> None:
    tenant = uuid.uuid4()
    keys = RING.sealing_keys(tenant, RING.new_wrapped_data_key(tenant))
    with pytest.raises(InvalidInput) as raised:
        keys.seal("contacts.name", "\ud800")
    assert raised.value.field == "contacts.name"

"""The per-process reference cache: what it keeps, when, and what a late put cannot undo."""

from __future__ import annotations

import pytest

from consentry.persistence.refcache import ReferenceCache


def _listening() -> ReferenceCache:
    cache = ReferenceCache()
    cache._set_listening(True)  # what the listener does once LISTEN succeeded
    return cache


def test_nothing_mutable_is_kept_while_not_listening() -> None:
    cache = ReferenceCache()
    cache.put(("tenant", 1), "acme", cache.generation)
    assert cache.get(("tenant", 1)) is None
    cache.put_immutable(("topic", 1, "news"), "topic")
    assert cache.get_immutable(("topic", 1, "news")) == "topic"


def test_a_put_from_a_read_that_began_before_a_change_is_dropped() -> None:
    cache = _listening()
    before = cache.generation
    cache.clear()  # a change was heard of while the read ran
    cache.put(("api-key", "ck_1"), "old row", before)
    assert cache.get(("api-key", "ck_1")) is None
    now = cache.generation
    cache.put(("api-key", "ck_1"), "new row", now)
    assert cache.get(("api-key", "ck_1")) == "new row"


def test_losing_the_listener_forgets_everything_mutable() -> None:
    cache = _listening()
    cache.put(("tenant", 1), "acme", cache.generation)
    assert cache.get(("tenant", 1)) == "acme"
    generation = cache.generation
    cache._set_listening(False)
    assert cache.get(("tenant", 1)) is None
    cache._set_listening(True)
    assert cache.get(("tenant", 1)) is None
    cache.put(("tenant", 1), "acme", generation)  # read while the listener was away
    assert cache.get(("tenant", 1)) is None


def test_drop_where_forgets_only_what_it_picks() -> None:
    cache = _listening()
    g = cache.generation
    cache.put(("api-key", "a"), ("key", 1), g)
    cache.put(("api-key", "b"), ("key", 2), g)
    cache.drop_where(lambda kept: kept == ("key", 1))
    assert cache.get(("api-key", "a")) is None
    assert cache.get(("api-key", "b")) == ("key", 2)


def test_the_cache_empties_itself_rather_than_grow_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("consentry.persistence.refcache.MAX_ENTRIES", 3)
    cache = _listening()
    g = cache.generation
    for i in range(4):
        cache.put(("tenant", i), i, g)
        cache.put_immutable(("topic", i), i)
    assert cache.get(("tenant", 3)) == 3
    assert cache.get(("tenant", 0)) is None
    assert cache.get_immutable(("topic", 3)) == 3
    assert cache.get_immutable(("topic", 0)) is None

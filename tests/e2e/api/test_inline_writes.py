"""Writes on the event loop (PostgreSQL): a lock held for long moves them to worker threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.e2e.api.conftest import Api, chain_held
from tests.e2e.api.test_decisions import _consent

from consentry.bootstrap import INLINE_LOCK_TIMEOUT_MS

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]

HELD_SECONDS = 3.0


def test_a_write_behind_a_held_chain_waits_on_a_thread_and_the_loop_keeps_answering(
    api: Api,
) -> None:
    acme, other = api.tenant("acme"), api.tenant("other")
    acme_client, other_client = api.client(acme.token), api.client(other.token)
    jane = acme_client.post("/v1/contacts", json={"email": "jane@example.com"}).json()["id"]
    john = acme_client.post("/v1/contacts", json={"email": "john@example.com"}).json()["id"]
    omar = other_client.post("/v1/contacts", json={"email": "omar@example.com"}).json()["id"]
    first = _consent(acme, acme_client, jane, "granted")
    assert first.status_code == 201, first.text
    assert not api.container.contended(acme.id, time.monotonic())  # it went inline, unhindered

    with ThreadPoolExecutor(2) as pool:
        with chain_held(api, acme.id):
            held_at = time.monotonic()
            waiting = pool.submit(_consent, acme, api.client(acme.token), jane, "withdrawn")
            time.sleep(INLINE_LOCK_TIMEOUT_MS / 1000 * 4)
            # The loop gave the lock up and moved on: another tenant's write, and acme's
            # decisions, are answered while acme's chain is still held.
            started = time.monotonic()
            elsewhere = _consent(other, other_client, omar, "granted")
            decision = acme_client.post(
                "/v1/decisions", json={"contact": john, "topic": "offers", "channel": "email"}
            )
            answered_in = time.monotonic() - started
            assert elsewhere.status_code == 201, elsewhere.text
            assert decision.status_code == 200, decision.text
            assert answered_in < HELD_SECONDS / 2, answered_in
            assert api.container.contended(acme.id, time.monotonic())
            assert not api.container.contended(other.id, time.monotonic())
            # A second write of acme goes to a thread at once, and waits there too.
            queued = pool.submit(_consent, acme, api.client(acme.token), john, "granted")
            time.sleep(HELD_SECONDS - (time.monotonic() - held_at))
            assert not waiting.done()
            assert not queued.done()
        withdrawn, granted = waiting.result(timeout=30), queued.result(timeout=30)

    assert withdrawn.status_code == 201, withdrawn.text
    assert granted.status_code == 201, granted.text
    # Written once each, in one chain with no gap: the rolled-back inline attempt left nothing.
    assert sorted([withdrawn.json()["seq"], granted.json()["seq"]]) == [
        first.json()["seq"] + 1,
        first.json()["seq"] + 2,
    ]
    history = acme_client.get(f"/v1/contacts/{jane}/consent").json()
    assert [e["action"] for e in history] == ["granted", "withdrawn"]
    verdict = acme_client.post(
        "/v1/decisions", json={"contact": jane, "topic": "offers", "channel": "email"}
    ).json()
    assert verdict["verdict"] == "deny"


def test_writes_keep_to_threads_when_inline_is_off(serve: Callable[..., Api]) -> None:
    """With ``http_inline`` off, nothing runs on the loop: no inline engine is even made."""
    api = serve(http_inline=False)
    acme = api.tenant("acme")
    client = api.client(acme.token)
    jane = client.post("/v1/contacts", json={"email": "jane@example.com"}).json()["id"]
    assert _consent(acme, client, jane, "granted").status_code == 201
    assert api.container._inline_engine is None

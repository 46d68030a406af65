"""Subscription forms under load: hosted-form POSTs on PostgreSQL.

    .venv/bin/python bench/forms_load.py [--workers 4] [--contacts 20000] [--duration 20]

Uses the seeded database of ``api_server.py`` and ``consentry serve --workers N``, driven from a
second process on 127.0.0.1 by ``api_load.py --generate`` (open loop: latencies count from each
request's scheduled instant), like ``signals_load.py``. The demo tenant gets a form ``bench-join``
offering "promotions" by email with confirmed opt-in (the default). Every request is what a
new subscriber's browser sends: a form token minted for the hosted page (issued ten seconds
before, so it is past the bot window), the box ticked, a new email address, the age answer and
the empty honeypot. Each is a real submission: a new contact (sealed, blind-indexed), the
submission record, a ``requested`` ledger event with the form's evidence under the tenant's
chain, and a confirmation email built and captured after the answer. Target: 200 requests/s with
p99 under 50 ms. Writes bench/results/forms.json; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rich.console import Console
from sqlalchemy import create_engine

import api_server
import machine
import signals_load
from consentry.bootstrap import Container, bootstrap
from consentry.domain.errors import AlreadyExists
from consentry.domain.model import Channel
from consentry.services.clock import utcnow
from consentry.services.demo import DEMO_SLUG
from consentry.services.form_page import form_path, form_view
from consentry.services.form_tokens import TokenKind
from consentry.services.forms import FormDefinition, create_form

RESULTS = Path(__file__).resolve().parent / "results" / "forms.json"
FORM_KEY = "bench-join"
SCENARIO = "form"
TARGET, P99_MS = 200, 50.0
console = Console(width=None if sys.stdout.isatty() else 150)


def ensure_form() -> None:
    container = bootstrap(api_server._settings(), migrate=False)
    definition = FormDefinition(
        key=FORM_KEY,
        title="Join Harbour Auto",
        choices=[("promotions", Channel.EMAIL)],
        privacy_url="https://harbourauto.example/privacy",
    )
    try:
        create_form(container.uow(), DEMO_SLUG, definition)
    except AlreadyExists:
        pass
    finally:
        container.close()


class FormPosts:
    """Submissions of new subscribers; every address is new across runs."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(4)
        self.made = 0

    def __call__(self, count: int) -> list[list[Any]]:
        container = bootstrap(api_server._settings(), migrate=False)
        tokens = container.form_tokens()
        try:
            with container.read_uow() as uow:
                tenant = uow.tenants.by_slug(DEMO_SLUG)
                form = uow.forms.by_key(tenant.id, FORM_KEY)
            disclosure = shown_disclosure(container)
        finally:
            container.close()
        issued = utcnow() - timedelta(seconds=10)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        out = []
        for i in range(self.made, self.made + count):
            body = {
                "form_token": tokens.mint(
                    TokenKind.HOSTED, form.id, form.revision, disclosure, issued
                ),
                "choice": "promotions:email",
                "email": f"form-{self.run}-{i}@subscribers.example",
                "name": "",
                "adult": "yes",
                "website": "",
                "ref": "https://harbourauto.example/offers",
            }
            out.append([form_path(DEMO_SLUG, FORM_KEY), headers, urlencode(body)])
        self.made += count
        return out


def shown_disclosure(container: Container) -> uuid.UUID:
    """The id of the disclosure the hosted page shows now."""
    page = form_view(
        container.read_uow(), container.form_tokens(), "https://bench.example", DEMO_SLUG, FORM_KEY
    )
    return page.disclosure.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--search-steps", type=int, default=3)
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    seeded = api_server.prepare(args.contacts, rebuild=args.rebuild, log=console.log)
    ensure_form()
    signals_load.SCENARIOS[SCENARIO] = (1, TARGET, P99_MS)
    # Submissions per client address are limited (10 a minute); the load comes from one address.
    os.environ["CONSENTRY_FORM_POSTS_PER_MINUTE"] = "100000000"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    server = api_server.Server(args.workers, RESULTS.parent / "forms-server.log")
    make = FormPosts()
    results: dict[str, Any] = {
        "machine": machine.describe(),
        "workers": args.workers,
        "database": {"rows": seeded.rows, "reused": seeded.reused},
        "settings": vars(args),
    }
    console.log(f"starting consentry serve --workers {args.workers} on {server.url}")
    server.start()
    run = signals_load.Run(args, server)
    try:
        engine = create_engine(api_server.database_url())
        results["database"]["server"] = machine.postgres_version(engine)
        engine.dispose()
        out: dict[str, Any] = {"target_per_second": TARGET, "p99_target_ms": P99_MS}
        out["at_target"] = run.measure(SCENARIO, make, TARGET)
        if not args.no_search:
            out["search"] = run.search(SCENARIO, make, out["at_target"])
        results["form"] = out
    finally:
        server.stop()
    results["load_average_after"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

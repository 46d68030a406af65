"""The pages served by a real uvicorn on 127.0.0.1 (the API's fixtures), and headless Chromium.

Chromium is the distribution's (``/usr/bin/chromium``), driven by Playwright without its own
browser download. Without it the browser tests skip locally; under CI they fail, as the
PostgreSQL tests do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import IN_CI
from tests.e2e.api.conftest import (  # noqa: F401  (fixtures shared with the API tests)
    Api,
    Seeded,
    _pg_reaper,
    _sqlite_reaper,
    acme,
    api,
    database,
    serve,
)

CHROMIUM = Path(os.environ.get("CONSENTRY_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module; each test opens its own context.

    Playwright's sync API keeps an event loop running in this thread while it is open, which
    makes every later ``asyncio.run`` in the same process fail; module scope stops it as soon as
    the browser tests are done instead of at the end of the session.
    """
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} not installed: browser tests skipped (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()

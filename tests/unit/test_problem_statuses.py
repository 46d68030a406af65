"""Domain errors map to HTTP statuses in one place."""

from __future__ import annotations

import pytest

from consentry.domain.errors import ConsentryError, InvalidInput, NotFound
from consentry.domain.imports import ImportTooLarge
from consentry.web.problems import status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ImportTooLarge("the file is too large"), 413),
        (InvalidInput("bad"), 422),
        (NotFound("gone"), 404),
    ],
)
def test_status_for(error: ConsentryError, status: int) -> None:
    assert status_for(error) == status

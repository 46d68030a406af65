"""A known defect of the OpenAPI document, expected (strictly and narrowly) until src fixes it.

Every /v1 error is an RFC 9457 problem+json body (``web/problems.py``), but the document declares
no such response: 422 is declared as ``application/json`` HTTPValidationError, and 400, 401,
403, 404, 409, 413 and 429 are not declared at all. While an operation documents no problem+json
response, its conformance test is expected to fail with exactly those two findings (an
undocumented error status, or a problem+json body where another type is declared); any other
finding fails the test, and so does a clean run (the defect is fixed: this hook goes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from schemathesis.openapi.checks import UndefinedContentType, UndefinedStatusCode

PROBLEM = "application/problem+json"
ERROR_STATUSES = frozenset({400, 401, 403, 404, 409, 413, 422, 429})
REASON = "the OpenAPI document declares none of the problem+json error responses"


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _is_the_known_defect(exc: BaseException) -> bool:
    def known(leaf: BaseException) -> bool:
        if isinstance(leaf, UndefinedContentType):
            return leaf.content_type.startswith(PROBLEM)
        if isinstance(leaf, UndefinedStatusCode):
            return leaf.status_code in ERROR_STATUSES
        return False

    found = list(_leaves(exc))
    return bool(found) and all(known(leaf) for leaf in found)


def _expect_the_known_defect(item: pytest.Function) -> None:
    run: Callable[[], None] = item.runtest

    def runtest() -> None:
        try:
            run()
        except BaseException as exc:
            if _is_the_known_defect(exc):
                pytest.xfail(REASON)
            raise
        pytest.fail(f"{item.name} conforms now: remove the expected failure in {__file__}")

    item.runtest = runtest  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or "responses_match_the_document" not in item.name:
            continue
        method, _, path = item.name.partition("[")[2].rstrip("]").partition(" ")
        documents_problems = getattr(item.module, "documents_problems", None)
        # Every /v1 operation authenticates and validates, so it can answer an error.
        if documents_problems and path.startswith("/v1/") and not documents_problems(method, path):
            _expect_the_known_defect(item)

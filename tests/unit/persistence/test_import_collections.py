"""While an import prepares rows, the cyclic collector runs less often; the thresholds come back
when the last import of the process ends, also when two overlap or one fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from consentry.persistence.import_prep import IMPORTER_GC_THRESHOLDS, ThreadPreparer


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*before)


def _preparer() -> ThreadPreparer:
    return ThreadPreparer(None, None, None)  # type: ignore[arg-type]  (nothing is prepared)


def test_an_import_raises_the_thresholds_and_puts_them_back(
    thresholds: tuple[int, int, int],
) -> None:
    assert IMPORTER_GC_THRESHOLDS[0] > thresholds[0]
    with _preparer():
        assert gc.get_threshold() == IMPORTER_GC_THRESHOLDS
    assert gc.get_threshold() == thresholds


def test_overlapping_imports_restore_only_when_the_last_ends(
    thresholds: tuple[int, int, int],
) -> None:
    first, second = _preparer(), _preparer()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == IMPORTER_GC_THRESHOLDS  # the second is still importing
    second.__exit__(None, None, None)
    assert gc.get_threshold() == thresholds


def test_a_failed_import_puts_them_back(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError, match="bad row"), _preparer():
        raise RuntimeError("bad row")
    assert gc.get_threshold() == thresholds

"""An import's row-level report: spooled to disk while the import runs, exported as CSV."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from consentry.domain.imports import RowIssue, Severity, neutralise_cell


class IssueSpool:
    """The report while it grows: rows of a temporary file, counted by severity."""

    def __init__(self) -> None:
        # Closed by close(): the spool outlives the function that opens it.
        self._file: IO[str] = tempfile.TemporaryFile("w+", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self.counts = dict.fromkeys(Severity, 0)

    def add(self, issue: RowIssue) -> None:
        self.counts[issue.severity] += 1
        self._writer.writerow(
            (issue.line, issue.field or "", issue.code, issue.severity.value, issue.message,
             "" if issue.value is None else issue.value, "1" if issue.value is not None else "")
        )  # fmt: skip

    def __iter__(self) -> Iterator[RowIssue]:
        self._file.flush()
        self._file.seek(0)
        for line, fld, code, severity, message, value, has_value in csv.reader(self._file):
            yield RowIssue(
                int(line), fld or None, code, Severity(severity), message,
                value if has_value else None,
            )  # fmt: skip
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()


REPORT_COLUMNS = ("line", "field", "code", "severity", "message", "value")


def report_rows(issues: Iterable[RowIssue]) -> Iterator[list[str]]:
    """The report as CSV rows, header first; every cell neutralised against formulas."""
    yield list(REPORT_COLUMNS)
    for issue in issues:
        yield [
            neutralise_cell(cell)
            for cell in (str(issue.line), issue.field or "", issue.code, issue.severity.value,
                         issue.message, issue.value or "")
        ]  # fmt: skip

"""Every quality gate in one command: formatting, lint, types, layer contracts, tests.

Run from the repository root with the project's virtual environment:
``.venv/bin/python scripts/check.py``. Exits non-zero if any gate fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

GATES: list[tuple[str, list[str]]] = [
    ("ruff format", [str(BIN / "ruff"), "format", "--check", "src", "tests", "bench", "scripts"]),
    ("ruff lint", [str(BIN / "ruff"), "check", "src", "tests", "bench", "scripts"]),
    ("mypy --strict", [sys.executable, "-m", "mypy", "src"]),
    ("import contracts", [str(BIN / "lint-imports")]),
    ("pytest", [sys.executable, "-m", "pytest", "--cov=consentry", "--cov-report=term", "tests"]),
]


def main() -> int:
    failed: list[str] = []
    for name, command in GATES:
        started = time.monotonic()
        print(f"\n=== {name} ===", flush=True)
        code = subprocess.call(command, cwd=ROOT)
        print(
            f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} "
            f"in {time.monotonic() - started:.1f}s ===",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    print("\nall gates passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
